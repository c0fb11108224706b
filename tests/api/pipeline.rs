//! One path after every change: a target set through the API re-judges the target and brings
//! its alerts in line before the answer, without waiting for the timer.

use chrono::{Datelike, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_every_backend;

const INDICATOR: &str = "HOSPITAL_BEDS_PER_10K";

async fn slippage_alerts(app: &TestApp) -> Vec<Value> {
    let reply = app.get("/api/v1/alerts", &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["indicator"] == INDICATOR && a["rule"] == "slippage")
        .cloned()
        .collect()
}

/// The fingerprints of every other target's unresolved alerts (a fresh database has stale
/// feeds everywhere).
async fn other_alerts(app: &TestApp) -> Vec<String> {
    let reply = app.get("/api/v1/alerts?limit=1000", &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut fingerprints: Vec<String> = reply.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["indicator"] != INDICATOR)
        .filter_map(|a| a["fingerprint"].as_str().map(str::to_owned))
        .collect();
    fingerprints.sort();
    fingerprints
}

async fn put_target(app: &TestApp, year: i32, value: f64) {
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{year}/{INDICATOR}")))
                .bearer_auth(&app.admin)
                .json(&json!({"value": value, "reason": "Điều chỉnh kế hoạch"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn a_target_change_reconciles_its_alerts_at_once(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        // No tick within the test: whatever changes, changes through the target API.
        s.rules.evaluation_interval_seconds = 3600;
        s.rules.for_evaluations = 3;
    })
    .await
    else {
        return;
    };
    let year = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year();
    let body = json!({"observations": [
        {"indicator": INDICATOR, "unit": "HCM", "period": year.to_string(), "value": 40.0}
    ]});
    let posted = app.post_observations(&app.admin, &body).await;
    assert_eq!(posted.status, 200, "{posted:?}");
    assert!(slippage_alerts(&app).await.is_empty());
    let others = other_alerts(&app).await;
    assert!(!others.is_empty(), "stale feeds elsewhere have alerts");

    // Twice the figure: off track on this evaluation, pending until `for` is met.
    put_target(&app, year, 80.0).await;
    let status = app
        .get(&format!("/api/v1/status/{INDICATOR}"), &app.viewer)
        .await
        .body;
    assert_eq!(status["judged"], "off_track", "{status}");
    let alerts = slippage_alerts(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["state"], "pending", "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["year"], year.to_string());
    // Only the changed target's alerts were looked at: the others stand as they were.
    assert_eq!(other_alerts(&app).await, others);

    // Back below the figure: the pending alert is resolved by the same answer.
    put_target(&app, year, 30.0).await;
    assert!(
        slippage_alerts(&app).await.is_empty(),
        "{:?}",
        slippage_alerts(&app).await
    );
    app.stop().await;
}

on_every_backend!(a_target_change_reconciles_its_alerts_at_once);
