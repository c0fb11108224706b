//! Lateness starts at the service's first start (ARCHITECTURE §4): a new database with the
//! shipped catalogue owes none of the figures of the periods due before it, and the first start
//! is recorded once and kept across restarts.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_every_backend;

/// The `feed_stale` alerts not resolved, as "indicator/unit/year".
async fn stale_alerts(app: &TestApp) -> Vec<String> {
    let reply = app.get("/api/v1/alerts?limit=1000", &app.admin).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["alertname"] == "feed_stale")
        .map(|a| {
            let label = |name: &str| a["labels"][name].as_str().unwrap_or("?").to_owned();
            format!("{}/{}/{}", label("indicator"), label("unit"), label("year"))
        })
        .collect()
}

/// Targets whose status is `stale`, over every year with targets.
async fn stale_targets(app: &TestApp) -> Vec<Value> {
    let mut stale = Vec::new();
    let this_year = Utc::now().format("%Y").to_string();
    let this_year: i32 = this_year.parse().expect("year");
    for year in [this_year - 1, this_year] {
        let reply = app
            .get(&format!("/api/v1/status?year={year}"), &app.viewer)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        stale.extend(
            reply.body["statuses"]
                .as_array()
                .expect("statuses")
                .iter()
                .filter(|s| s["status"] == "stale")
                .cloned(),
        );
    }
    stale
}

async fn a_new_database_owes_no_figure_due_before_its_first_start(backend: Backend) {
    let started = Utc::now();
    // The default: no `staleness_from`, so the first start is the start of lateness.
    let Some(app) = spawn_app_with(backend, |s| s.release_calendar.staleness_from = None).await
    else {
        return;
    };
    let recorded = app
        .store
        .first_start(Utc::now() + Duration::days(30))
        .await
        .expect("first start");
    assert!(
        recorded >= started - Duration::seconds(1) && recorded <= Utc::now(),
        "the first start is this start: {recorded}"
    );
    let alerts = stale_alerts(&app).await;
    assert!(
        alerts.is_empty(),
        "{} feed_stale alerts: {alerts:?}",
        alerts.len()
    );
    let targets = stale_targets(&app).await;
    assert!(
        targets.is_empty(),
        "{} stale targets: {targets:?}",
        targets.len()
    );

    // A restart keeps the first start: it is the database's, not the process's.
    let paused = app.pause().await;
    let app = paused
        .resume(|s| s.release_calendar.staleness_from = None)
        .await;
    let again = app
        .store
        .first_start(Utc::now() + Duration::days(60))
        .await
        .expect("first start");
    assert_eq!(again, recorded);
    assert!(stale_alerts(&app).await.is_empty());
    app.stop().await;
}

/// The same catalogue judged from a configured day long ago owes its past figures: what the
/// first start spares a new installation (issue: about 190 alerts at first start).
async fn a_configured_start_owes_the_figures_due_after_it(backend: Backend) {
    // The test helpers judge from 2000-01-01 unless a test says otherwise.
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let alerts = stale_alerts(&app).await;
    assert!(
        alerts.len() > 50,
        "every target of a year that has begun waits for a figure: {alerts:?}"
    );
    let last_year = Utc::now()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .expect("year")
        - 1;
    assert!(
        alerts.iter().any(|a| a.ends_with(&format!("/{last_year}"))),
        "last year's missing figures are late too: {alerts:?}"
    );
    app.stop().await;
}

on_every_backend!(
    a_new_database_owes_no_figure_due_before_its_first_start,
    a_configured_start_owes_the_figures_due_after_it,
);
