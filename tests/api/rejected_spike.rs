//! Spikes of rejected data (ARCHITECTURE §5), on every backend: a feed half of whose rows are
//! refused raises a pending alert of its department, which fires once the spike has lasted
//! `for_minutes` on the simulated clock and reaches the department's webhook naming the top
//! reasons; it resolves when the window holds no spike. A feed with occasional rejections
//! raises nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::rejected::RejectedSpikes;
use ktxh::alerts::routing::AlertingConfig;
use ktxh::auth::Role;
use ktxh::domain::alert::AlertState;
use ktxh::pipeline::Change;
use serde_json::{json, Value};

use crate::helpers::{
    allow_loopback, mint_token, spawn_app_alerting, wait_until, Backend, TestApp,
};
use crate::on_every_backend;
use crate::webhook::WebhookReceiver;

const SECRET: &str = "s3cret-for-rejects";

fn alerting(url: &str) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        repeat_interval_seconds = 3600
        [[route.routes]]
        matchers = {{ alertname = "rejected_spike", department = "HEALTH" }}
        receiver = "health-hook"
        [[receiver]]
        name = "health-hook"
        type = "webhook"
        url = "{url}"
        secret = "{SECRET}"
        # The service's own timer looks once at start; the test drives the clock.
        [rejected_spike]
        window_minutes = 10
        threshold = 0.2
        min_rows = 20
        for_minutes = 5
        check_interval_seconds = 3600
        "#
    ))
    .expect("alerting config")
}

/// Ten good yearly figures of hospital beds (HEALTH), and ten refused rows: five of a unit
/// that does not exist, three out of range, two for a year to come.
fn half_refused() -> Value {
    let mut rows: Vec<Value> = (2017..=2026)
        .map(|year| {
            json!({"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM",
                   "period": year.to_string(), "value": 30.0})
        })
        .collect();
    for _ in 0..5 {
        rows.push(
            json!({"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "ATLANTIS",
                         "period": "2026", "value": 30.0}),
        );
    }
    for _ in 0..3 {
        rows.push(json!({"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM",
                         "period": "2026", "value": 1.0e9}));
    }
    for _ in 0..2 {
        rows.push(json!({"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM",
                         "period": "2040", "value": 30.0}));
    }
    json!({ "observations": rows })
}

/// Twenty-two good monthly export figures (CUSTOMS) and one refused row.
fn occasionally_refused() -> Value {
    let mut rows: Vec<Value> = (0..22)
        .map(|n| {
            let (year, month) = (2025 + n / 12, n % 12 + 1);
            json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM",
                   "period": format!("{year}-{month:02}"), "value": 1000.0 + f64::from(n)})
        })
        .collect();
    rows.push(json!({"indicator": "EXPORT_TURNOVER", "unit": "ATLANTIS",
                     "period": "2026-01", "value": 1.0}));
    json!({ "observations": rows })
}

async fn push(app: &TestApp, token: &str, body: &Value, refused: usize) {
    let reply = app.post_observations(token, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let rejected = reply.body["rejected"].as_array().map_or(0, Vec::len);
    assert_eq!(rejected, refused, "{reply:?}");
}

/// The webhook deliveries about HEALTH's spike, in order of arrival: (status, alert).
fn spike_messages(receiver: &WebhookReceiver) -> Vec<(String, Value)> {
    receiver
        .delivered()
        .into_iter()
        .flat_map(|body| {
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            body["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["labels"]["alertname"] == "rejected_spike")
                .map(move |a| (status.clone(), a))
        })
        .collect()
}

/// The service's outbox, run by the test: one dispatch and one delivery pass.
fn outbox(app: &TestApp, config: &AlertingConfig) -> Outbox {
    let policy = app
        .state
        .settings
        .outbound
        .policy()
        .unwrap_or_else(|problems| panic!("outbound policy: {problems:?}"));
    let sender = ReceiverSender::build(&config.receiver, &Arc::new(policy)).expect("receivers");
    Outbox::new(
        app.store.clone(),
        app.state.alerts.clone(),
        Arc::new(sender),
        config.clone(),
    )
}

/// At `now` on the test's clock: the events the alerts committed at that time are due.
async fn flush(outbox: &Outbox, now: DateTime<Utc>) {
    outbox.dispatch(now).await.expect("dispatch");
    outbox.deliver(now).await.expect("deliver");
}

async fn rejected_spike_alerts(app: &TestApp) -> Vec<(String, String, AlertState)> {
    app.store
        .alerts(true, 1000)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.rule == "rejected_spike")
        .map(|a| {
            let department = a.labels.get("department").cloned().unwrap_or_default();
            (department, a.fingerprint, a.state)
        })
        .collect()
}

async fn a_feed_refusing_half_its_rows_alerts_its_department(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&receiver.url);
    let Some(app) = spawn_app_alerting(backend, allow_loopback, config.clone()).await else {
        return;
    };
    let (_, health) = mint_token(&app.store, Role::Department, Some("HEALTH")).await;
    let start: DateTime<Utc> = Utc::now();
    for _ in 0..3 {
        push(&app, &health, &half_refused(), 10).await;
    }
    push(&app, &app.customs, &occasionally_refused(), 1).await;

    let spikes = RejectedSpikes::new(
        app.store.clone(),
        app.state.alerts.clone(),
        config.rejected_spike.clone(),
    );
    let at = |minutes: i64| start + chrono::Duration::minutes(minutes);
    let outbox = outbox(&app, &config);

    // Seen: pending, and nothing sent.
    let changed = spikes.run(at(1)).await.expect("run");
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].state, AlertState::Pending);
    assert_eq!(changed[0].labels["department"], "HEALTH");
    assert_eq!(changed[0].labels["audience"], "department");
    assert!(
        spikes.run(at(4)).await.expect("run").is_empty(),
        "still pending"
    );
    flush(&outbox, at(4)).await;
    assert!(
        spike_messages(&receiver).is_empty(),
        "a pending alert is not sent"
    );

    // Lasted five minutes: fires, and the department's webhook gets it.
    let changed = spikes.run(at(6)).await.expect("run");
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].state, AlertState::Firing);
    let fired = wait_until("the firing notice", Duration::from_secs(10), async || {
        flush(&outbox, at(6)).await;
        spike_messages(&receiver).into_iter().next()
    })
    .await;
    assert_eq!(fired.0, "firing");
    let alert = fired.1;
    assert_eq!(alert["labels"]["department"], "HEALTH");
    assert_eq!(alert["sequence"], 1);
    let summary_vi = alert["summary_vi"].as_str().expect("summary_vi");
    assert!(
        summary_vi.contains("50 % số dòng bị từ chối trong 10 phút qua (30/60 dòng)")
            && summary_vi.contains(
                "Lý do chính: unknown_unit (15), value_out_of_range (9), period_in_future (6)"
            ),
        "{summary_vi}"
    );
    let summary_en = alert["summary_en"].as_str().expect("summary_en");
    assert!(
        summary_en.contains("50 % of rows refused in the last 10 minutes (30 of 60 rows)")
            && summary_en.contains(
                "Top reasons: unknown_unit (15), value_out_of_range (9), period_in_future (6)"
            ),
        "{summary_en}"
    );

    // The timer's evaluation of every target leaves the spike's alert to its own rule.
    app.state.pipeline.apply(Change::Tick(Utc::now())).await;
    assert_eq!(
        rejected_spike_alerts(&app).await,
        vec![(
            "HEALTH".to_owned(),
            changed[0].fingerprint.clone(),
            AlertState::Firing
        )]
    );

    // The pushes leave the window: resolved, and told.
    let changed = spikes.run(at(13)).await.expect("run");
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].state, AlertState::Resolved);
    let resolved = wait_until("the resolved notice", Duration::from_secs(10), async || {
        flush(&outbox, at(13)).await;
        spike_messages(&receiver).into_iter().nth(1)
    })
    .await;
    assert_eq!(resolved.0, "resolved");
    assert_eq!(resolved.1["sequence"], 2);

    // The customs feed's one refused row in twenty-three never raised anything.
    let alerts = rejected_spike_alerts(&app).await;
    assert!(
        alerts
            .iter()
            .all(|(department, _, _)| department == "HEALTH"),
        "{alerts:?}"
    );
    assert_eq!(spike_messages(&receiver).len(), 2);
    app.stop().await;
}

on_every_backend!(a_feed_refusing_half_its_rows_alerts_its_department);
