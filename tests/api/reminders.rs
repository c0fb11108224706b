//! Release calendars per indicator and reminders to departments (ARCHITECTURE §4, §5): a yearly
//! index published months into the next year is not stale in January, live and as of then; a
//! department is reminded of a figure at the configured lead time and told when it is late, on a
//! simulated clock, once each, across a restart; a bad calendar in the catalogue is refused at
//! load naming the indicator and the key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use ktxh::alerts::outbox::{Outbox, ReceiverSender};
use ktxh::alerts::reminders::Reminders;
use ktxh::alerts::routing::AlertingConfig;
use ktxh::config::load_catalogue;
use ktxh::domain::calendar::ReleaseCalendar;
use ktxh::pipeline::Change;
use serde_json::{json, Value};

use crate::helpers::{
    allow_loopback, judge_every_past_period, repo_config, spawn_app_alerting, spawn_app_with,
    wait_until, Backend, TestApp,
};
use crate::on_every_backend;
use crate::webhook::WebhookReceiver;

const SECRET: &str = "reminder-secret";
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// A local time in the city: "2024-03-04T00:00:00" is read as +07:00.
fn local(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{raw}+07:00"))
        .expect("a local time")
        .with_timezone(&Utc)
}

async fn put_target(app: &TestApp, year: i32, indicator: &str, value: f64) {
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{year}/{indicator}")))
                .bearer_auth(&app.admin)
                .json(&json!({ "value": value, "reason": "release calendar test" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn status(app: &TestApp, indicator: &str, year: i32, as_of: Option<&str>) -> Value {
    let as_of = as_of.map_or_else(String::new, |at| {
        format!("&as_of={}", at.replace('+', "%2B"))
    });
    let reply = app
        .get(
            &format!("/api/v1/status/{indicator}?year={year}{as_of}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// PCI (VCCI, published in April or May of the next year) has `release = { months_after = 5,
/// day = 31 }`; hospital beds follow the city's calendar, due 6 January.
async fn a_yearly_index_on_its_own_calendar_is_not_stale_in_january(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.rules.for_evaluations = 1;
        s.rules.for_seconds = 0;
        // Only the ticks this test sends evaluate.
        s.rules.evaluation_interval_seconds = 86_400;
    })
    .await
    else {
        return;
    };
    let year = Utc::now().with_timezone(&ZONE).year();

    // Live: the engine ticked on 20 January of next year, then past the PCI's due date.
    put_target(&app, year, "PCI_SCORE", 70.0).await;
    put_target(&app, year, "HOSPITAL_BEDS_PER_10K", 40.0).await;
    let next = year + 1;
    let tick = async |at: &str| {
        app.state.pipeline.apply(Change::Tick(local(at))).await;
    };
    tick(&format!("{next}-01-20T00:00:00")).await;
    let pci = status(&app, "PCI_SCORE", year, None).await;
    assert_ne!(pci["status"], "stale", "{pci}");
    assert!(pci.get("overdue_period").is_none(), "{pci}");
    let beds = status(&app, "HOSPITAL_BEDS_PER_10K", year, None).await;
    assert_eq!(beds["status"], "stale", "{beds}");
    assert_eq!(beds["overdue_period"], year.to_string(), "{beds}");
    // Due by the end of 31 May, late after the two days of grace.
    tick(&format!("{next}-06-02T23:59:00")).await;
    let pci = status(&app, "PCI_SCORE", year, None).await;
    assert_ne!(pci["status"], "stale", "{pci}");
    tick(&format!("{next}-06-03T00:00:00")).await;
    let pci = status(&app, "PCI_SCORE", year, None).await;
    assert_eq!(pci["status"], "stale", "{pci}");
    assert_eq!(pci["overdue_period"], year.to_string(), "{pci}");

    // As of a past January, the replay judges by the same calendars.
    let past = year - 2;
    put_target(&app, past, "PCI_SCORE", 70.0).await;
    put_target(&app, past, "HOSPITAL_BEDS_PER_10K", 40.0).await;
    let january = format!("{}-01-20T00:00:00+07:00", past + 1);
    let pci = status(&app, "PCI_SCORE", past, Some(&january)).await;
    assert_ne!(pci["status"], "stale", "{pci}");
    assert!(pci.get("overdue_period").is_none(), "{pci}");
    let beds = status(&app, "HOSPITAL_BEDS_PER_10K", past, Some(&january)).await;
    assert_eq!(beds["status"], "stale", "{beds}");
    let june = format!("{}-06-03T00:00:00+07:00", past + 1);
    let pci = status(&app, "PCI_SCORE", past, Some(&june)).await;
    assert_eq!(pci["status"], "stale", "{pci}");
    assert_eq!(pci["overdue_period"], past.to_string(), "{pci}");
    app.stop().await;
}

/// The customs office's monthly exports of 2024, reminded of three days ahead and when late.
fn alerting(url: &str) -> AlertingConfig {
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [reminders]
        lead_days = 3
        late = true
        # The service's own check runs at start, on today's date: nothing of 2024 is due then.
        check_interval_seconds = 86400
        [route]
        group_by = ["department"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        [[route.routes]]
        matchers = {{ alertname = "figure_due", year = "2024" }}
        receiver = "customs-hook"
        [[route.routes]]
        matchers = {{ alertname = "figure_late", year = "2024" }}
        receiver = "customs-hook"
        [[receiver]]
        name = "customs-hook"
        type = "webhook"
        url = "{url}"
        secret = "{SECRET}"
        "#
    ))
    .expect("alerting config")
}

/// The reminders and the outbox as the service runs them, on a clock the test sets.
struct Clock {
    reminders: Reminders,
    outbox: Outbox,
}

impl Clock {
    fn new(app: &TestApp, config: &AlertingConfig) -> Self {
        Self::judging_from(app, config, app.state.settings.release_calendar.judged_from)
    }

    /// A clock of a service that judges lateness from `from` (its first start).
    fn judging_from(app: &TestApp, config: &AlertingConfig, from: Option<DateTime<Utc>>) -> Self {
        let state = &app.state;
        let calendar = ReleaseCalendar {
            judged_from: from,
            ..state.settings.release_calendar.clone()
        };
        let policy = state
            .settings
            .outbound
            .policy()
            .unwrap_or_else(|problems| panic!("outbound policy: {problems:?}"));
        let sender = ReceiverSender::build(&config.receiver, &Arc::new(policy)).expect("receivers");
        Self {
            reminders: Reminders::new(
                app.store.clone(),
                state.engine.clone(),
                state.catalogue.clone(),
                config,
                calendar,
                state.settings.zone(),
            ),
            outbox: Outbox::new(
                app.store.clone(),
                state.alerts.clone(),
                Arc::new(sender),
                config.clone(),
            ),
        }
    }

    /// Reminders queued at the local time `at`; what is queued is delivered (now: the outbox's
    /// clock is the real one, and its notifications are due at once).
    async fn at(&self, at: &str) -> usize {
        let queued = self.reminders.run(local(at)).await.expect("reminders");
        self.outbox.deliver(Utc::now()).await.expect("deliver");
        queued
    }
}

async fn post_exports(app: &TestApp, period: &str) {
    let body = json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": period, "value": 4_000.0}
    ]});
    let reply = app.post_observations(&app.customs, &body).await;
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
}

/// The requests the receiver answered 200, in order.
/// The notifications received, each once: delivery is at least once, and a send made again
/// (here the test's outbox and the service's own can both take one up) carries the same
/// idempotency key, which a receiver applies once (ARCHITECTURE §5).
fn delivered(receiver: &WebhookReceiver) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    receiver
        .hits()
        .into_iter()
        .filter(|hit| hit.answered == 200 && seen.insert(hit.idempotency_key.clone()))
        .map(|hit| hit.body)
        .collect()
}

async fn delivered_count(receiver: &WebhookReceiver, count: usize) -> Vec<Value> {
    wait_until(
        &format!("{count} reminders delivered"),
        Duration::from_secs(10),
        async || {
            let got = delivered(receiver);
            (got.len() >= count).then_some(got)
        },
    )
    .await
}

async fn a_department_is_reminded_once_before_and_when_a_figure_is_due(backend: Backend) {
    let receiver = WebhookReceiver::start(SECRET, true).await;
    let config = alerting(&receiver.url);
    // Judged from long ago, as a service that has run since before 2024.
    let tweak = |s: &mut ktxh::config::Settings| {
        allow_loopback(s);
        judge_every_past_period(s);
    };
    let Some(app) = spawn_app_alerting(backend, tweak, config.clone()).await else {
        return;
    };
    put_target(&app, 2024, "EXPORT_TURNOVER", 48_000.0).await;
    post_exports(&app, "2024-01").await;
    let clock = Clock::new(&app, &config);

    // February is due by the end of 6 March (Decree 62/2024), so reminded from 4 March 00:00.
    assert_eq!(clock.at("2024-03-03T23:59:59").await, 0);
    assert_eq!(clock.at("2024-03-04T00:00:00").await, 1);
    let hits = delivered_count(&receiver, 1).await;
    let alert = &hits[0]["alerts"][0];
    assert_eq!(alert["rule"], "reminder", "{alert}");
    assert_eq!(alert["labels"]["alertname"], "figure_due", "{alert}");
    assert_eq!(alert["labels"]["department"], "CUSTOMS", "{alert}");
    assert_eq!(alert["labels"]["period"], "2024-02", "{alert}");
    let summary_vi = alert["summary_vi"].as_str().unwrap_or_default();
    assert!(
        summary_vi.starts_with("Nhắc hạn báo cáo: Kim ngạch xuất khẩu hàng hóa")
            && summary_vi.contains("kỳ 2024-02")
            && summary_vi.contains("06/03/2024"),
        "{summary_vi}"
    );
    let summary_en = alert["summary_en"].as_str().unwrap_or_default();
    assert!(
        summary_en.contains("2024-02") && summary_en.contains("2024-03-06"),
        "{summary_en}"
    );
    assert_eq!(hits[0]["language"], "vi", "{}", hits[0]);
    // Checked again, nothing new.
    assert_eq!(clock.at("2024-03-05T00:00:00").await, 0);

    // A restart remembers what was sent.
    // Restarted with the same routing: the service's own outbox delivers to the same receiver
    // as the clock's, rather than taking up the reminders for a receiver it does not know.
    let app = app
        .pause()
        .await
        .resume_alerting(tweak, config.clone())
        .await;
    let clock = Clock::new(&app, &config);
    assert_eq!(clock.at("2024-03-05T12:00:00").await, 0);
    assert_eq!(clock.at("2024-03-06T23:59:59").await, 0);
    // The due date passed without the figure: told once.
    assert_eq!(clock.at("2024-03-07T00:00:00").await, 1);
    let hits = delivered_count(&receiver, 2).await;
    let late = &hits[1]["alerts"][0];
    assert_eq!(late["labels"]["alertname"], "figure_late", "{late}");
    assert_eq!(late["labels"]["period"], "2024-02", "{late}");
    assert_eq!(late["severity"], "warning", "{late}");
    let late_vi = late["summary_vi"].as_str().unwrap_or_default();
    assert!(
        late_vi.starts_with("Quá hạn báo cáo:") && late_vi.contains("06/03/2024"),
        "{late_vi}"
    );
    assert_eq!(clock.at("2024-03-08T00:00:00").await, 0);

    // A figure sent before its reminder is not reminded of, nor late.
    post_exports(&app, "2024-02").await;
    post_exports(&app, "2024-03").await;
    assert_eq!(clock.at("2024-04-04T00:00:00").await, 0);
    assert_eq!(clock.at("2024-04-07T00:00:00").await, 0);
    // April is not in: reminded in May.
    assert_eq!(clock.at("2024-05-04T00:00:00").await, 1);
    let hits = delivered_count(&receiver, 3).await;
    assert_eq!(hits[2]["alerts"][0]["labels"]["period"], "2024-04");
    // April falls due by the end of 6 May. A service first started on the 10th does not owe
    // it: no one is told it is late. One running since before is told.
    let started_later = Clock::judging_from(&app, &config, Some(local("2024-05-10T00:00:00")));
    assert_eq!(started_later.at("2024-05-11T00:00:00").await, 0);
    assert_eq!(clock.at("2024-05-11T00:00:00").await, 1);
    let hits = delivered_count(&receiver, 4).await;
    assert_eq!(hits[3]["alerts"][0]["labels"]["alertname"], "figure_late");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivered(&receiver).len(), 4, "one delivery per reminder");
    app.stop().await;
}

on_every_backend!(
    a_yearly_index_on_its_own_calendar_is_not_stale_in_january,
    a_department_is_reminded_once_before_and_when_a_figure_is_due,
);

/// The shipped configuration in a directory of its own, with `edit` applied to the indicators
/// of administrative reform.
fn config_with_reform(edit: impl FnOnce(&str) -> String) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read config") {
            let path = entry.expect("entry").path();
            let target = to.join(path.file_name().expect("a name"));
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(&repo_config(), dir.path());
    let file = dir.path().join("catalogue/indicators/19-admin_reform.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, edit(&text)).expect("write");
    dir
}

#[test]
fn a_bad_release_calendar_is_refused_naming_the_indicator_and_key() {
    let shipped = "release = { months_after = 5, day = 31 }";
    let cases = [
        ("release = { months_after = 5 }", "release.day"),
        ("release = { months_after = 5, day = 32 }", "release.day"),
        (
            "release = { months_after = 30, day = 31 }",
            "release.months_after",
        ),
        (
            "release = { months_after = 5, day = 31, lag_days = 3 }",
            "release.lag_days",
        ),
        ("release = { month = 5, day = 31 }", "release"),
        ("release = { lag_days = -1 }", "release.lag_days"),
    ];
    for (bad, key) in cases {
        let dir = config_with_reform(|text| {
            assert!(text.contains(shipped), "the PCI's calendar is shipped");
            text.replace(shipped, bad)
        });
        let error = load_catalogue(dir.path()).expect_err(bad).to_string();
        assert!(error.contains("PCI_SCORE"), "{bad}: {error}");
        assert!(error.contains(key), "{bad}: {error}");
    }
    // The shipped one loads, and the index carries it.
    let catalogue = load_catalogue(&repo_config()).expect("the shipped catalogue");
    let pci = catalogue.indicator("PCI_SCORE").expect("PCI");
    assert!(pci.release.is_some());
}
