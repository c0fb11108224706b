//! Alerts end to end: a slipping target raises an alert after `for`, a real webhook receiver
//! gets it signed, recovery sends the resolved notice, and an input hovering at a threshold
//! does not flood anyone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::routing::AlertingConfig;
use ktxh::pipeline::Change;
use serde_json::{json, Value};

use crate::helpers::{
    allow_loopback, assert_problem, mint_token, notifications_of, spawn_app_alerting, wait_until,
    Backend, TestApp,
};
use crate::on_every_backend;
use crate::webhook::WebhookReceiver;
use ktxh::auth::Role;

const SECRET: &str = "s3cret-for-tests";
const INDICATOR: &str = "HOSPITAL_BEDS_PER_10K";

fn alerting(url: &str, repeat_seconds: u64) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        repeat_interval_seconds = {repeat_seconds}
        # A fresh database has every feed stale; these tests watch slippage only.
        [[route.routes]]
        matchers = {{ alertname = "target_slipping", indicator = "{INDICATOR}" }}
        receiver = "hook"
        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{url}"
        secret = "{SECRET}"
        "#
    ))
    .unwrap()
}

async fn post_beds(app: &TestApp, year: i32, value: f64) {
    let body = json!({"observations": [{"indicator": INDICATOR, "unit": "HCM", "period": year.to_string(), "value": value}]});
    let reply = app.post_observations(&app.admin, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn status_of(app: &TestApp) -> Value {
    app.get(&format!("/api/v1/status/{INDICATOR}"), &app.viewer)
        .await
        .body
}

async fn target_value(app: &TestApp, year: i32) -> f64 {
    let reply = app
        .get(&format!("/api/v1/targets?year={year}"), &app.viewer)
        .await;
    reply.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["indicator"] == INDICATOR && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap()
}

/// Waits (bounded) until `check` holds, polling; the bound is generous for slow CI machines.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    wait_until(what, Duration::from_secs(10), async || check()).await
}

/// The service's outbox, run by the test: one dispatch and one delivery pass, now, against the
/// app's database and alerts, through the configured receivers. Whatever is due to go out has
/// been sent when [`Flush::run`] returns, so "nothing was sent" checked after it means nothing
/// was due, not that the service's dispatcher had not come round yet.
struct Flush(Outbox);

impl Flush {
    fn new(app: &TestApp, config: &AlertingConfig) -> Self {
        let policy = app
            .state
            .settings
            .outbound
            .policy()
            .unwrap_or_else(|problems| panic!("outbound policy: {problems:?}"));
        let sender = ReceiverSender::build(&config.receiver, &Arc::new(policy)).expect("receivers");
        Self(Outbox::new(
            app.store.clone(),
            app.state.alerts.clone(),
            Arc::new(sender),
            config.clone(),
        ))
    }

    /// Notifications queued and delivered by one pass.
    async fn run(&self) -> (usize, usize) {
        let queued = self.0.dispatch(Utc::now()).await.expect("dispatch");
        let delivered = self.0.deliver(Utc::now()).await.expect("deliver");
        (queued, delivered)
    }
}

/// The statuses of the outbox's notifications, newest first.
async fn outbox_statuses(app: &TestApp) -> Vec<Value> {
    let outbox = app.get("/api/v1/notifications", &app.admin).await;
    assert_eq!(outbox.status, 200, "{outbox:?}");
    outbox.body["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["status"].clone())
        .collect()
}

async fn a_slipping_target_alerts_after_for_and_recovery_resolves_it(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&receiver.url, 3600);
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.rules.for_evaluations = 2;
            s.rules.evaluation_interval_seconds = 3600; // only ingests evaluate here
        },
        config.clone(),
    )
    .await
    else {
        return;
    };
    let flush = Flush::new(&app, &config);
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let target = target_value(&app, year).await;

    post_beds(&app, year, (target * 1.1).round()).await;
    assert_eq!(status_of(&app).await["status"], "on_track");

    // One evaluation judges off track: pending, nothing sent.
    post_beds(&app, year, (target * 0.5).round()).await;
    let status = status_of(&app).await;
    assert_eq!(
        (status["status"].clone(), status["judged"].clone()),
        (json!("on_track"), json!("off_track")),
        "{status}"
    );
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let ours: Vec<&Value> = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["indicator"] == INDICATOR && a["rule"] == "slippage")
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["state"], "pending");
    let flushed = flush.run().await;
    assert!(
        receiver.delivered().is_empty(),
        "a pending alert is not sent (queued, delivered by one more pass: {flushed:?})"
    );
    // Nor queued: a notification on its way (claimed by the service's own delivery) shows here.
    assert_eq!(outbox_statuses(&app).await, Vec::<Value>::new());

    // The second consecutive evaluation makes it official: firing, delivered once, signed.
    post_beds(&app, year, (target * 0.5).round() + 1.0).await;
    assert_eq!(status_of(&app).await["status"], "off_track");
    let firing = eventually("the firing notification", || {
        receiver.delivered().first().cloned()
    })
    .await;
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["alerts"][0]["labels"]["indicator"], INDICATOR);
    assert_eq!(firing["alerts"][0]["labels"]["department"], "HEALTH");
    assert_eq!(firing["alerts"][0]["severity"], "critical");
    assert!(firing["alerts"][0]["link"]
        .as_str()
        .unwrap()
        .contains(INDICATOR));
    assert!(
        firing["alerts"][0]["summary_vi"]
            .as_str()
            .unwrap()
            .contains("chậm tiến độ"),
        "{firing}"
    );
    assert!(firing["id"].as_i64().unwrap() > 0);

    let fingerprint = firing["alerts"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&app.admin)
                .json(&json!({"comment": "Sở Y tế đang xử lý"})),
        )
        .await;
    assert_eq!(ack.status, 200, "{ack:?}");
    assert_eq!(ack.body["ack"]["comment"], "Sở Y tế đang xử lý");
    let viewer_ack = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&app.viewer)
                .json(&json!({"comment": "x"})),
        )
        .await;
    assert_problem(&viewer_ack, 403, "forbidden");
    // A NUL cannot be stored by PostgreSQL: a 422 naming the field on every backend, not a 500.
    let nul_ack = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&app.admin)
                .json(&json!({"comment": "a\0b"})),
        )
        .await;
    assert_problem(&nul_ack, 422, "invalid_field");
    assert_eq!(nul_ack.body["errors"][0]["pointer"], "/comment");

    // Recovery with margin resolves at once and sends the resolved notice.
    post_beds(&app, year, (target * 1.1).round()).await;
    let resolved = eventually("the resolved notice", || {
        receiver.delivered().get(1).cloned()
    })
    .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["fingerprint"], fingerprint.as_str());
    assert!(resolved["alerts"][0]["ends_at"].is_string());
    // The notice tells the recovery with the figure that brought it, not the slip it fired with.
    let recovered = (target * 1.1).round();
    let summary = resolved["alerts"][0]["summary_vi"]
        .as_str()
        .unwrap_or_default();
    assert!(
        summary.contains("đúng tiến độ") && !summary.contains("chậm tiến độ"),
        "{resolved}"
    );
    let working = &resolved["alerts"][0]["working"];
    assert_eq!(working["actual"].as_f64(), Some(recovered), "{resolved}");

    // Both recorded as delivered, and one more pass of the outbox finds nothing left to send.
    wait_until(
        "both notifications recorded as delivered",
        Duration::from_secs(10),
        async || {
            let statuses = outbox_statuses(&app).await;
            statuses.iter().all(|s| s == "delivered").then_some(())
        },
    )
    .await;
    let flushed = flush.run().await;
    assert_eq!(
        receiver.delivered().len(),
        2,
        "each notice exactly once (queued, delivered by one more pass: {flushed:?})"
    );
    assert_eq!(receiver.forged(), 0);
    assert_eq!(
        outbox_statuses(&app).await,
        vec![json!("delivered"), json!("delivered")]
    );
    app.stop().await;
}

async fn an_input_hovering_at_a_threshold_notifies_at_most_once(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let mut config = alerting(&receiver.url, 3600);
    // The test drives the timer and the outbox itself, one step at a time, so that every
    // change is followed by a timer evaluation and a dispatch: the service's own timer and
    // dispatcher only run once, at start.
    config.dispatch_interval_ms = 3_600_000;
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.rules.for_evaluations = 2;
            s.rules.evaluation_interval_seconds = 3600;
        },
        config.clone(),
    )
    .await
    else {
        return;
    };
    let flush = Flush::new(&app, &config);
    let tick = async || {
        app.state.pipeline.apply(Change::Tick(Utc::now())).await;
    };
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let target = target_value(&app, year).await;
    post_beds(&app, year, target * 1.05).await;
    tick().await;
    flush.run().await;
    // Just under the target (at risk) and just over it (on track, but inside the recovery
    // margin), back and forth, with a timer evaluation and a dispatch after each change.
    for i in 0..16 {
        let value = if i % 2 == 0 {
            target * 0.99
        } else {
            target * 1.002
        };
        post_beds(&app, year, value).await;
        flush.run().await;
        tick().await;
        flush.run().await;
    }
    let sent: Vec<Value> = receiver
        .delivered()
        .iter()
        .map(|n| n["status"].clone())
        .collect();
    assert!(
        sent.len() <= 1,
        "{} notifications for one hovering target within one repeat interval: {sent:?}",
        sent.len()
    );
    app.stop().await;
}

async fn silences_mute_notifications_and_are_scoped(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&receiver.url, 3600);
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.rules.for_evaluations = 1;
        },
        config.clone(),
    )
    .await
    else {
        return;
    };
    let flush = Flush::new(&app, &config);
    let create = |token: String, body: Value| {
        app.send(
            app.client
                .post(app.url("/api/v1/silences"))
                .bearer_auth(token)
                .json(&body),
        )
    };
    let foreign = create(
        app.customs.clone(),
        json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "x"}),
    )
    .await;
    assert_problem(&foreign, 403, "forbidden");
    let no_end = create(
        app.admin.clone(),
        json!({"matchers": {"department": "HEALTH"}, "comment": "x"}),
    )
    .await;
    assert_problem(&no_end, 422, "invalid_field");
    // A NUL cannot be stored by PostgreSQL: a 422 naming the field on every backend, not a 500.
    for (body, pointer) in [
        (
            json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "a\0"}),
            "/comment",
        ),
        (
            json!({"matchers": {"department": "HE\0"}, "duration_minutes": 60, "comment": "x"}),
            "/matchers/department",
        ),
    ] {
        let nul = create(app.admin.clone(), body).await;
        assert_problem(&nul, 422, "invalid_field");
        assert_eq!(nul.body["errors"][0]["pointer"], pointer, "{nul:?}");
    }
    let created = create(app.admin.clone(), json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "bảo trì hệ thống"})).await;
    assert_eq!(created.status, 201, "{created:?}");

    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let target = target_value(&app, year).await;
    post_beds(&app, year, (target * 1.1).round()).await;
    post_beds(&app, year, (target * 0.5).round()).await;
    let alerts = app.get("/api/v1/alerts?state=firing", &app.viewer).await;
    let ours = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["indicator"] == INDICATOR && a["rule"] == "slippage")
        .count();
    assert_eq!(ours, 1, "the slipping target fires");
    let flushed = flush.run().await;
    assert!(
        receiver.delivered().is_empty(),
        "a silenced alert is recorded but not sent (queued, delivered by one more pass: {flushed:?})"
    );
    // Nor queued: a notification on its way (claimed by the service's own delivery) shows here.
    assert_eq!(outbox_statuses(&app).await, Vec::<Value>::new());

    let id = created.body["id"].as_str().unwrap().to_owned();
    let expired = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/silences/{id}")))
                .bearer_auth(&app.admin),
        )
        .await;
    assert_eq!(expired.status, 204);
    let listed = app.get("/api/v1/silences", &app.viewer).await;
    assert_eq!(listed.body["silences"][0]["active"], false);

    // The silence lifted, the alert still firing is told once, as it never was.
    let later = Utc::now() + chrono::Duration::minutes(2);
    assert_eq!(flush.0.dispatch(later).await.expect("dispatch"), 1);
    flush.0.deliver(later).await.expect("deliver");
    let told = eventually("the lifted alert's notice", || {
        receiver.delivered().first().cloned()
    })
    .await;
    assert_eq!(told["status"], "firing", "{told}");
    assert_eq!(told["alerts"][0]["labels"]["indicator"], INDICATOR);
    assert_eq!(
        flush.0.dispatch(later).await.expect("dispatch"),
        0,
        "told once"
    );
    app.stop().await;
}

async fn a_jump_against_recent_changes_raises_an_anomaly_alert(backend: Backend) {
    let Some(app) = spawn_app_alerting(backend, |_| {}, AlertingConfig::default()).await else {
        return;
    };
    let steady: Vec<_> = (1..=11)
        .map(|m| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("2025-{m:02}"), "value": 15000.0 + f64::from(m) * 100.0 + f64::from(m % 3) * 7.0}))
        .collect();
    assert_eq!(
        app.post_observations(&app.customs, &json!({"observations": steady}))
            .await
            .body["accepted"],
        11
    );
    // Each month has been one at a time before; then December jumps.
    let spike = json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-12", "value": 29000.0}]});
    assert_eq!(
        app.post_observations(&app.customs, &spike).await.body["accepted"],
        1
    );
    let status = app
        .get("/api/v1/status/EXPORT_TURNOVER?year=2025", &app.viewer)
        .await;
    assert_eq!(
        status.body["anomaly"]["period"], "2025-12",
        "{:?}",
        status.body
    );
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let anomaly = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "anomaly" && a["labels"]["indicator"] == "EXPORT_TURNOVER")
        .cloned()
        .expect("an anomaly alert");
    assert_eq!(anomaly["labels"]["alertname"], "value_anomaly");
    let summary_vi = anomaly["summary_vi"].as_str().unwrap();
    assert!(summary_vi.contains("bất thường"), "{summary_vi}");
    // The unit by its name, as the slippage alerts name it, not by its code.
    assert!(
        summary_vi.contains("– Thành phố Hồ Chí Minh:"),
        "{summary_vi}"
    );
    let summary_en = anomaly["summary_en"].as_str().unwrap();
    assert!(summary_en.contains("– Ho Chi Minh City:"), "{summary_en}");
    assert!(
        summary_en.contains(
            "is unusual: rose by 12,886 USD million on the previous period; \
             recent periods usually rose by about 107 USD million"
        ),
        "{summary_en}"
    );
    // No `base_url` configured: links lead to the server itself, on the port it is bound to.
    let link = anomaly["link"].as_str().unwrap();
    assert!(
        link.starts_with(&app.url("/#/indicator/EXPORT_TURNOVER?unit=HCM")),
        "{link}"
    );

    // A corrected December within the usual pattern clears it.
    let corrected = json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-12", "value": 16207.0}]});
    assert_eq!(
        app.post_observations(&app.customs, &corrected).await.body["accepted"],
        1
    );
    let status = app
        .get("/api/v1/status/EXPORT_TURNOVER?year=2025", &app.viewer)
        .await;
    assert!(status.body["anomaly"].is_null(), "{:?}", status.body);
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    assert!(!alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["rule"] == "anomaly"));
    app.stop().await;
}

async fn silences_and_acks_are_bounded_and_kept_to_their_department(backend: Backend) {
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            s.rules.for_evaluations = 1;
            s.rules.evaluation_interval_seconds = 3600;
        },
        AlertingConfig::default(),
    )
    .await
    else {
        return;
    };
    let (_, health) = mint_token(&app.store, Role::Department, Some("HEALTH")).await;
    let silence = |token: &str, body: Value| {
        app.send(
            app.client
                .post(app.url("/api/v1/silences"))
                .bearer_auth(token)
                .json(&body),
        )
    };
    let now = Utc::now();
    let long_text = "x".repeat(1001);
    let too_many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("label{i}"), json!("v"))).collect();
    let mut too_many_with_department = too_many.clone();
    too_many_with_department.insert("department".into(), json!("HEALTH"));
    for (body, pointer) in [
        // `ends_at` is held to the 90 days `duration_minutes` is.
        (
            json!({"matchers": {"department": "HEALTH"}, "ends_at": "9999-12-31T00:00:00Z", "comment": "x"}),
            "/ends_at",
        ),
        (
            json!({"matchers": {"department": "HEALTH"}, "ends_at": now + chrono::Duration::days(91), "comment": "x"}),
            "/ends_at",
        ),
        (
            json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60 * 24 * 90 + 1, "comment": "x"}),
            "/duration_minutes",
        ),
        (
            json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": long_text}),
            "/comment",
        ),
        (
            json!({"matchers": too_many_with_department, "duration_minutes": 60, "comment": "x"}),
            "/matchers",
        ),
        (
            json!({"matchers": {"department": "HEALTH", "x".repeat(65): "v"}, "duration_minutes": 60, "comment": "x"}),
            "/matchers",
        ),
        (
            json!({"matchers": {"department": "HEALTH", "summary": "v".repeat(257)}, "duration_minutes": 60, "comment": "x"}),
            "/matchers/summary",
        ),
    ] {
        let refused = silence(&health, body.clone()).await;
        assert_problem(&refused, 422, "invalid_field");
        assert_eq!(refused.body["errors"][0]["pointer"], pointer, "{body}");
    }
    let within = silence(
        &health,
        json!({"matchers": {"department": "HEALTH"}, "ends_at": now + chrono::Duration::days(89), "comment": "bảo trì"}),
    )
    .await;
    assert_eq!(within.status, 201, "{within:?}");
    // A department's silence mutes the notices meant for it, never what the leadership
    // hears about it.
    assert_eq!(
        within.body["matchers"]["audience"], "department",
        "{within:?}"
    );
    let leadership = silence(
        &health,
        json!({"matchers": {"department": "HEALTH", "audience": "leadership"}, "duration_minutes": 60, "comment": "x"}),
    )
    .await;
    assert_problem(&leadership, 403, "forbidden");
    let by_admin = silence(
        &app.admin,
        json!({"matchers": {"department": "HEALTH", "audience": "leadership"}, "duration_minutes": 60, "comment": "bảo trì"}),
    )
    .await;
    assert_eq!(by_admin.status, 201, "{by_admin:?}");
    // Nor may the department lift it.
    let admins = by_admin.body["id"].as_str().expect("an id");
    let lifted = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/silences/{admins}")))
                .bearer_auth(&health),
        )
        .await;
    assert_problem(&lifted, 403, "forbidden");

    // Another department's: a silence matching HEALTH or no department at all, or lifting
    // HEALTH's silence.
    for body in [
        json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "x"}),
        json!({"matchers": {"indicator": INDICATOR}, "duration_minutes": 60, "comment": "x"}),
    ] {
        let foreign = silence(&app.customs, body).await;
        assert_problem(&foreign, 403, "forbidden");
    }
    let id = within.body["id"].as_str().unwrap();
    let lift = |token: &str| {
        app.send(
            app.client
                .delete(app.url(&format!("/api/v1/silences/{id}")))
                .bearer_auth(token),
        )
    };
    assert_problem(&lift(&app.customs).await, 403, "forbidden");
    assert_eq!(lift(&health).await.status, 204);

    // A HEALTH alert is acknowledged by HEALTH, never by CUSTOMS.
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let target = target_value(&app, year).await;
    post_beds(&app, year, (target * 0.5).round()).await;
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let alert = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["indicator"] == INDICATOR && a["rule"] == "slippage")
        .expect("the slipping target alerts")
        .clone();
    assert_eq!(alert["labels"]["department"], "HEALTH");
    let fingerprint = alert["fingerprint"].as_str().unwrap();
    let ack = |token: &str, comment: &str| {
        app.send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(token)
                .json(&json!({ "comment": comment })),
        )
    };
    assert_problem(&ack(&app.customs, "not ours").await, 403, "forbidden");
    let too_long = ack(&health, &long_text).await;
    assert_problem(&too_long, 422, "invalid_field");
    assert_eq!(too_long.body["errors"][0]["pointer"], "/comment");
    let acked = ack(&health, "Sở Y tế đang xử lý").await;
    assert_eq!(acked.status, 200, "{acked:?}");
    assert!(acked.body["ack"]["by"]
        .as_str()
        .unwrap()
        .starts_with("department:HEALTH:"));
    app.stop().await;
}

async fn another_unusual_figure_of_a_flagged_series_is_told_again(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config: AlertingConfig = toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        group_by = ["alertname"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        [[route.routes]]
        matchers = {{ alertname = "value_anomaly" }}
        receiver = "hook"
        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{}"
        secret = "{SECRET}"
        "#,
        receiver.url
    ))
    .unwrap();
    let Some(app) = spawn_app_alerting(backend, allow_loopback, config).await else {
        return;
    };
    let steady: Vec<_> = (1..=11)
        .map(|m| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("2025-{m:02}"), "value": 15000.0 + f64::from(m) * 100.0 + f64::from(m % 3) * 7.0}))
        .collect();
    app.post_observations(&app.customs, &json!({"observations": steady}))
        .await;
    let december = |value: f64| json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-12", "value": value}]});
    app.post_observations(&app.customs, &december(29_000.0))
        .await;
    let fingerprint = "anomaly:2025:EXPORT_TURNOVER:HCM";
    let patience = Duration::from_secs(10);
    wait_until("the first notice", patience, async || {
        (notifications_of(&app, fingerprint).await == 1).then_some(())
    })
    .await;
    let acked = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&app.customs)
                .json(&json!({"comment": "Đang kiểm tra tờ khai tháng 12"})),
        )
        .await;
    assert_eq!(acked.status, 200, "{acked:?}");

    // December is sent again, still far from the pattern: the department hears of it again,
    // and the alert waits for a new acknowledgement.
    let resent = app
        .post_observations(&app.customs, &december(27_500.0))
        .await;
    assert_eq!(resent.body["accepted"], 1, "{resent:?}");
    wait_until("the second notice", patience, async || {
        (notifications_of(&app, fingerprint).await == 2).then_some(())
    })
    .await;
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let anomaly = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == fingerprint)
        .cloned()
        .expect("the anomaly alert");
    assert_eq!(anomaly["state"], "firing");
    assert!(anomaly["ack"].is_null(), "{anomaly}");
    let summary_vi = anomaly["summary_vi"].as_str().unwrap();
    assert!(summary_vi.contains("27.500"), "{summary_vi}");

    // The same figure sent once more is no news.
    app.post_observations(&app.customs, &december(27_500.0))
        .await;
    app.state.pipeline.apply(Change::Tick(Utc::now())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notifications_of(&app, fingerprint).await, 2);
    app.stop().await;
}

/// A receiver hears of an alert's end only when it was told the alert fires: one that fires
/// and resolves within its group's wait, or between two notifications after a resolved one,
/// is not news (as in Alertmanager), and its events are settled without a notification.
async fn an_alert_resolved_before_it_was_announced_is_not_told(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let mut config = alerting(&receiver.url, 3600);
    // Long waits keep the service's own dispatcher off; the test dispatches at later instants.
    config.route.group_wait_seconds = Some(600);
    config.route.group_interval_seconds = Some(600);
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.rules.for_evaluations = 1;
            s.rules.evaluation_interval_seconds = 3600;
        },
        config.clone(),
    )
    .await
    else {
        return;
    };
    let flush = Flush::new(&app, &config);
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let target = target_value(&app, year).await;
    let (low, high) = ((target * 0.5).round(), (target * 1.1).round());
    let start = Utc::now();
    let pass = async |minutes: i64| {
        let at = start + chrono::Duration::minutes(minutes);
        let queued = flush.0.dispatch(at).await.expect("dispatch");
        flush.0.deliver(at).await.expect("deliver");
        queued
    };
    let told = || -> Vec<(Value, Value)> {
        receiver
            .delivered()
            .iter()
            .map(|n| (n["status"].clone(), n["alerts"][0]["sequence"].clone()))
            .collect()
    };

    // Fired and resolved within the group's wait: nothing to tell, then or later.
    post_beds(&app, year, low).await;
    post_beds(&app, year, high).await;
    assert_eq!(pass(11).await, 0);
    assert_eq!(outbox_statuses(&app).await, Vec::<Value>::new());
    assert_eq!(pass(12).await, 0, "the events are settled");

    // Told firing, its end is told.
    post_beds(&app, year, low).await;
    assert_eq!(pass(13).await, 1);
    post_beds(&app, year, high).await;
    assert_eq!(pass(24).await, 1);
    assert_eq!(
        told(),
        [(json!("firing"), json!(1)), (json!("resolved"), json!(2))]
    );

    // Fired and resolved again between two notifications: the receiver already knows it ended.
    post_beds(&app, year, low).await;
    post_beds(&app, year, high).await;
    assert_eq!(pass(35).await, 0);
    // Firing once more, it is told, numbered after the last message the receiver got.
    post_beds(&app, year, low).await;
    assert_eq!(pass(46).await, 1);
    let told = eventually("the third notice", || {
        let told = told();
        (told.len() == 3).then_some(told)
    })
    .await;
    assert_eq!(told[2], (json!("firing"), json!(3)));
    app.stop().await;
}

on_every_backend!(
    an_alert_resolved_before_it_was_announced_is_not_told,
    a_jump_against_recent_changes_raises_an_anomaly_alert,
    another_unusual_figure_of_a_flagged_series_is_told_again,
    silences_and_acks_are_bounded_and_kept_to_their_department,
    a_slipping_target_alerts_after_for_and_recovery_resolves_it,
    an_input_hovering_at_a_threshold_notifies_at_most_once,
    silences_mute_notifications_and_are_scoped,
);
