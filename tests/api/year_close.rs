//! The close of a year and the audiences of alerts (ARCHITECTURE §5): a simulated clock crosses
//! the year's end and its release deadlines; each slipping target's alert resolves with one
//! closing notice (achieved or missed, with the final figures) at the receiver its audience
//! routes to, leaves the leadership's live alerts, and a figure of the closed year still missing
//! stays a data gap for its department.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;
use futures::SinkExt;
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::pipeline::Change;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{allow_loopback, assert_problem, spawn_app_alerting, wait_until, Backend};
use crate::live::next_json;
use crate::on_every_backend;
use crate::webhook::WebhookReceiver;

const SECRET: &str = "s3cret-for-tests";

/// Leadership alerts to the wall's receiver; the departments' slippage, and the revenue feed's
/// staleness, to the departments' receiver; nothing else is sent.
fn alerting(wall: &str, departments: &str) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        # The test runs the outbox itself (`flush`), one pass after each step.
        dispatch_interval_ms = 3600000
        [route]
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        repeat_interval_seconds = 86400
        [[route.routes]]
        matchers = {{ audience = "leadership" }}
        receiver = "wall"
        [[route.routes]]
        matchers = {{ audience = "department", alertname = "target_slipping" }}
        receiver = "departments"
        [[route.routes]]
        matchers = {{ audience = "department", alertname = "feed_stale", indicator = "DOMESTIC_REVENUE" }}
        receiver = "departments"
        [[receiver]]
        name = "wall"
        type = "webhook"
        url = "{wall}"
        secret = "{SECRET}"
        [[receiver]]
        name = "departments"
        type = "webhook"
        url = "{departments}"
        secret = "{SECRET}"
        "#
    ))
    .expect("alerting config")
}

/// The city's local midnight of `date`.
fn local(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(year, month, day).expect("date");
    Ho_Chi_Minh
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("one instant")
        .with_timezone(&Utc)
}

/// Every alert entry each receiver got, by fingerprint, in order of arrival.
fn entries(receiver: &WebhookReceiver) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for notification in receiver.delivered() {
        for alert in notification["alerts"].as_array().into_iter().flatten() {
            let fingerprint = alert["fingerprint"].as_str().unwrap_or("").to_owned();
            out.entry(fingerprint).or_default().push(alert.clone());
        }
    }
    out
}

fn states(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|a| a["state"].as_str().unwrap_or(""))
        .collect()
}

async fn year_end_resolves_slippage_with_one_closing_notice_per_alert(backend: Backend) {
    let wall = WebhookReceiver::start(SECRET, true).await;
    let departments = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&wall.url, &departments.url);
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.rules.for_evaluations = 1;
            // The test moves the clock itself.
            s.rules.evaluation_interval_seconds = 86_400;
        },
        config.clone(),
    )
    .await
    else {
        return;
    };
    let policy = app
        .state
        .settings
        .outbound
        .policy()
        .unwrap_or_else(|problems| panic!("outbound policy: {problems:?}"));
    let sender = ReceiverSender::build(&config.receiver, &Arc::new(policy)).expect("receivers");
    let outbox = Outbox::new(
        app.store.clone(),
        app.state.alerts.clone(),
        Arc::new(sender),
        config.clone(),
    );
    let flush = async || {
        outbox.dispatch(Utc::now()).await.expect("dispatch");
        outbox.deliver(Utc::now()).await.expect("deliver");
    };
    // Passes of the outbox until `arrived` holds: a delivery may finish after its pass returns.
    let deliver_until = async |what: &str, arrived: &dyn Fn() -> bool| {
        wait_until(what, Duration::from_secs(10), async || {
            flush().await;
            arrived().then_some(())
        })
        .await;
    };
    let alerts = async |query: &str| -> Vec<Value> {
        let reply = app
            .get(&format!("/api/v1/alerts?limit=1000{query}"), &app.viewer)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["alerts"].as_array().expect("alerts").clone()
    };
    let year = Utc::now().with_timezone(&Ho_Chi_Minh).year();

    // The city's hospital beds (yearly) and domestic revenue (monthly, January to November)
    // far behind; one ward's health insurance coverage behind its own target.
    let mut rows = vec![
        json!({"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM", "period": year.to_string(), "value": 20.0}),
    ];
    for month in 1..=11 {
        rows.push(json!({"indicator": "DOMESTIC_REVENUE", "unit": "HCM", "period": format!("{year}-{month:02}"), "value": 10_000.0}));
        rows.push(json!({"indicator": "HEALTH_INSURANCE_COVERAGE", "unit": "X_CAN_GIO", "period": format!("{year}-{month:02}"), "value": 70.0}));
    }
    let reply = app
        .post_observations(&app.admin, &json!({ "observations": rows }))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    flush().await;

    let slipping = |alerts: &[Value], audience: &str| -> Vec<String> {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "target_slipping")
            .filter(|a| a["labels"]["audience"] == audience)
            .map(|a| a["fingerprint"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let active = alerts("").await;
    let leadership = slipping(&active, "leadership");
    let ward = format!("slippage:{year}:HEALTH_INSURANCE_COVERAGE:X_CAN_GIO");
    deliver_until("the firing notices", &|| {
        let at_wall = entries(&wall);
        leadership.iter().all(|f| at_wall.contains_key(f))
            && entries(&departments).contains_key(&ward)
    })
    .await;
    for wanted in [
        format!("slippage:{year}:HOSPITAL_BEDS_PER_10K:HCM"),
        format!("slippage:{year}:DOMESTIC_REVENUE:HCM"),
    ] {
        assert!(leadership.contains(&wanted), "{wanted} in {leadership:?}");
    }
    assert_eq!(slipping(&active, "department"), vec![ward.clone()]);
    // The leadership's alerts are the city's own slipping targets, and the filter says so.
    let filtered: Vec<String> = alerts("&audience=leadership")
        .await
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut expected = leadership.clone();
    expected.sort();
    let mut got = filtered.clone();
    got.sort();
    assert_eq!(got, expected);
    for alert in alerts("&audience=leadership").await {
        assert_eq!(alert["labels"]["unit"], "HCM", "{alert}");
        assert_eq!(alert["state"], "firing", "{alert}");
    }

    // Routed by audience: the wall got the city's, the departments the ward's.
    let at_wall = entries(&wall);
    for fingerprint in &leadership {
        assert_eq!(states(&at_wall[fingerprint]), ["firing"], "{fingerprint}");
    }
    assert!(at_wall
        .values()
        .flatten()
        .all(|a| a["labels"]["audience"] == "leadership"));
    assert_eq!(states(&entries(&departments)[&ward]), ["firing"]);

    // New Year's Day: the yearly figure is in and its year over, so the beds' target is final.
    let new_year = local(year + 1, 1, 2);
    app.state.pipeline.apply(Change::Tick(new_year)).await;
    let beds = format!("slippage:{year}:HOSPITAL_BEDS_PER_10K:HCM");
    deliver_until("the beds' closing notice", &|| {
        entries(&wall).get(&beds).is_some_and(|e| e.len() == 2)
    })
    .await;
    let closing = entries(&wall)[&beds].last().cloned().expect("an entry");
    assert_eq!(closing["state"], "resolved", "{closing}");
    assert_eq!(closing["labels"]["outcome"], "missed", "{closing}");
    let vi = closing["summary_vi"].as_str().unwrap_or("");
    assert!(
        vi.contains("không đạt kế hoạch")
            && vi.contains("thực hiện cả năm 20 ")
            && vi.contains("kế hoạch 37"),
        "{vi}"
    );
    let en = closing["summary_en"].as_str().unwrap_or("");
    assert!(
        en.contains("target missed") && en.contains("final value 20 "),
        "{en}"
    );
    let still = alerts("&audience=leadership").await;
    assert!(
        still.iter().all(|a| a["fingerprint"] != beds.as_str()),
        "{still:?}"
    );

    // Past the release deadlines of December's figures: the monthly targets are final too,
    // though revenue's December never came.
    let summer = local(year + 1, 7, 1);
    app.state.pipeline.apply(Change::Tick(summer)).await;
    let gap = format!("staleness:{year}:DOMESTIC_REVENUE:HCM");
    deliver_until("every closing notice and the data gap", &|| {
        let at_wall = entries(&wall);
        let at_departments = entries(&departments);
        leadership
            .iter()
            .all(|f| at_wall.get(f).is_some_and(|e| e.len() >= 2))
            && at_departments.get(&ward).is_some_and(|e| e.len() >= 2)
            && at_departments.contains_key(&gap)
    })
    .await;
    // A later tick and pass change nothing.
    app.state
        .pipeline
        .apply(Change::Tick(local(year + 1, 8, 1)))
        .await;
    flush().await;

    let at_wall = entries(&wall);
    for fingerprint in &leadership {
        assert_eq!(
            states(&at_wall[fingerprint]),
            ["firing", "resolved"],
            "one closing notice for {fingerprint}"
        );
        let closing = &at_wall[fingerprint][1];
        assert!(
            ["achieved", "missed"].contains(&closing["labels"]["outcome"].as_str().unwrap_or("")),
            "{closing}"
        );
        assert!(
            closing["summary_vi"]
                .as_str()
                .unwrap_or("")
                .contains("đã khép lại năm"),
            "{closing}"
        );
    }
    let at_departments = entries(&departments);
    assert_eq!(states(&at_departments[&ward]), ["firing", "resolved"]);
    assert_eq!(at_departments[&ward][1]["labels"]["outcome"], "missed");

    // Nothing of the closed year is the leadership's any more …
    let leadership_now = alerts("&audience=leadership").await;
    assert!(
        leadership_now
            .iter()
            .all(|a| a["labels"]["year"] != year.to_string().as_str()),
        "{leadership_now:?}"
    );
    // … but revenue's missing December is still a gap in the department's data, sent to it.
    let department_now = alerts("&audience=department&department=TAX").await;
    let stale = department_now
        .iter()
        .find(|a| a["fingerprint"] == gap.as_str())
        .unwrap_or_else(|| panic!("{gap} in {department_now:?}"));
    assert_eq!(stale["labels"]["alertname"], "feed_stale");
    assert!(
        stale["summary_vi"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("{year}-12")),
        "{stale}"
    );
    assert_eq!(
        states(&entries(&departments)[&gap]).first(),
        Some(&"firing")
    );
    assert!(!entries(&wall).contains_key(&gap));
    assert_eq!(wall.forged() + departments.forged(), 0);

    app.stop().await;
}

async fn alerts_filter_by_audience_and_department(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let year = Utc::now().with_timezone(&Ho_Chi_Minh).year();
    let body = json!({"observations": [{"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM", "period": year.to_string(), "value": 5.0}]});
    let reply = app.post_observations(&app.admin, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let list = async |query: &str| {
        let limit = if query.contains("limit=") {
            ""
        } else {
            "&limit=1000"
        };
        let reply = app
            .get(
                &format!("/api/v1/alerts?include_resolved=false{limit}{query}"),
                &app.viewer,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["alerts"].as_array().expect("alerts").clone()
    };
    let beds = format!("slippage:{year}:HOSPITAL_BEDS_PER_10K:HCM");
    wait_until(
        "the beds' slippage alert",
        Duration::from_secs(10),
        async || {
            let all = list("").await;
            all.iter()
                .any(|a| a["fingerprint"] == beds.as_str())
                .then_some(())
        },
    )
    .await;
    let all = list("").await;
    // Every alert carries its audience; the three filters partition the list.
    assert!(all
        .iter()
        .all(|a| ["leadership", "department"]
            .contains(&a["labels"]["audience"].as_str().unwrap_or(""))));
    let leadership = list("&audience=leadership").await;
    let department = list("&audience=department").await;
    let operators = list("&audience=operators").await;
    assert!(leadership.iter().any(|a| a["fingerprint"] == beds.as_str()));
    assert!(leadership
        .iter()
        .all(|a| a["labels"]["alertname"] == "target_slipping"));
    assert!(department
        .iter()
        .all(|a| a["labels"]["audience"] == "department"));
    assert!(!department.is_empty(), "a fresh database has late feeds");
    assert!(operators.is_empty());
    assert_eq!(leadership.len() + department.len(), all.len());
    // With a limit, the filter picks before the limit cuts.
    let one = list("&audience=leadership&limit=1").await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["labels"]["audience"], "leadership");
    let health = list("&department=HEALTH&audience=leadership").await;
    assert!(health.iter().any(|a| a["fingerprint"] == beds.as_str()));
    assert!(list("&department=CUSTOMS&audience=leadership")
        .await
        .iter()
        .all(|a| a["labels"]["department"] == "CUSTOMS"));

    // The screens hear the same label: the alerts topic's snapshot carries it on every alert.
    let mut request = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.viewer).parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket opens");
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    socket
        .send(Message::text(
            json!({ "subscribe": ["alerts"] }).to_string(),
        ))
        .await
        .expect("sent");
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let pushed = snapshot["data"]["alerts"].as_array().expect("alerts");
    let beds_pushed = pushed
        .iter()
        .find(|a| a["fingerprint"] == beds.as_str())
        .expect("the beds' alert on the screens");
    assert_eq!(beds_pushed["labels"]["audience"], "leadership");
    assert!(pushed.iter().all(|a| a["labels"]["audience"].is_string()));

    let bad = app
        .get("/api/v1/alerts?audience=everyone", &app.viewer)
        .await;
    assert_problem(&bad, 422, "invalid_field");
    assert!(bad.body.to_string().contains("audience"), "{:?}", bad.body);
    app.stop().await;
}

on_every_backend!(
    year_end_resolves_slippage_with_one_closing_notice_per_alert,
    alerts_filter_by_audience_and_department,
);
