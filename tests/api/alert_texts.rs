//! An alert's texts as the API and the receivers get them: the short form in each language's
//! notation with its unit, and the working with the target version in force.

use std::sync::{Arc, Mutex};

use chrono::{Datelike, Utc};
use serde_json::{json, Value};

use ktxh::alerts::routing::AlertingConfig;
use ktxh::domain::number::{format as figure, Notation};

use crate::helpers::{
    allow_loopback, misnotated, notifications_of, python_with, spawn_app_alerting, spawn_app_with,
    wait_until, Backend, TestApp,
};
use crate::on_every_backend;
use crate::smtp::SmtpSink;
use crate::webhook::WebhookReceiver;

async fn export_alert(app: &TestApp) -> Option<Value> {
    let alerts = app.get("/api/v1/alerts?limit=1000", &app.admin).await;
    alerts.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "target_slipping"
                && a["labels"]["indicator"] == "EXPORT_TURNOVER"
                && a["labels"]["unit"] == "HCM"
        })
        .cloned()
}

/// Sets the year's export target to 345,678.5 and reports 1,234.5 for each month begun, so
/// that the pace alone makes it slip; the alert it raises.
async fn make_exports_slip(app: &TestApp, year: i32, months: u32) -> Value {
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{year}/EXPORT_TURNOVER")))
                .bearer_auth(&app.admin)
                .json(&json!({ "value": 345_678.5, "reason": "Nghị quyết điều chỉnh" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let rows: Vec<Value> = (1..=months)
        .map(|m| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{year}-{m:02}"), "value": 1_234.5}))
        .collect();
    let accepted = app
        .post_observations(&app.customs, &json!({ "observations": rows }))
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    export_alert(app).await.expect("the export target slips")
}

/// This year in the city's zone and how many of its months have begun. A month is accepted once
/// it has begun, and the engine paces by the end of the last period reported, so the texts can
/// be tested in January too.
fn months_begun_this_year() -> (i32, u32) {
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    (today.year(), today.month())
}

async fn a_slipping_targets_texts_write_figures_as_each_language_does(backend: Backend) {
    let (year, months) = months_begun_this_year();
    // Judged from this start: no month of the year is late, the pace alone slips.
    let Some(app) = spawn_app_with(backend, |s| s.release_calendar.staleness_from = None).await
    else {
        return;
    };
    let alert = make_exports_slip(&app, year, months).await;

    let vi = alert["summary_vi"].as_str().expect("summary_vi");
    let en = alert["summary_en"].as_str().expect("summary_en");
    let working = &alert["working"];
    let projection = working["projection"].as_f64().expect("a projection");
    // An estimate of a thousand or more is written whole, as a statistics office writes one.
    let decimals = if projection.abs() >= 1000.0 { 0 } else { 2 };
    let vi_projection = ktxh::domain::number::format(
        projection,
        decimals,
        ktxh::domain::number::Notation::Vietnamese,
    );
    let en_projection = ktxh::domain::number::format(
        projection,
        decimals,
        ktxh::domain::number::Notation::English,
    );
    assert!(
        vi.ends_with(&format!(
            "năm {year}: chậm tiến độ; dự báo {vi_projection} triệu USD, mục tiêu 345.678,5 triệu USD"
        )),
        "{vi}"
    );
    assert!(
        en.ends_with(&format!(
            "{year}: off track; projected {en_projection} USD million, target 345,678.5 USD million"
        )),
        "{en}"
    );
    // Thousands: a figure with four or more digits is grouped the language's way.
    assert!(projection >= 1_000.0, "{projection}");
    let whole = projection.round().to_string();
    let (thousands, units) = whole.split_at(whole.len() - 3);
    assert!(
        vi_projection.starts_with(&format!("{thousands}.{units}"))
            && en_projection.starts_with(&format!("{thousands},{units}")),
        "{vi_projection} / {en_projection}"
    );

    // The working the email shows: the figures as judged, and the version put just now.
    assert_eq!(working["measure_vi"], "triệu USD");
    assert_eq!(working["target"], 345_678.5);
    assert_eq!(
        working["actual"].as_f64(),
        Some(1_234.5 * f64::from(months))
    );
    assert!(working["expected"].as_f64().is_some(), "{working}");
    assert!(working["interval"].is_array() || working["interval"].is_null());
    assert_eq!(
        working["target_reason"], "Nghị quyết điều chỉnh",
        "{working}"
    );
    let history = app
        .get(
            &format!("/api/v1/targets/{year}/EXPORT_TURNOVER/history"),
            &app.viewer,
        )
        .await;
    let in_force = history.body["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["valid_to"].is_null()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        working["target_since"], in_force["valid_from"],
        "{history:?}"
    );
    app.stop().await;
}

/// A Telegram Bot API stand-in on loopback: records each `sendMessage` body and answers as the
/// Bot API does.
async fn telegram_recorder() -> (String, Arc<Mutex<Vec<Value>>>) {
    let sent: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = sent.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                log.lock().expect("log").push(json);
            }
            axum::Json(json!({"ok": true, "result": {"message_id": 1}}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, sent)
}

fn every_receiver(telegram: &str, smtp_port: u16, hook: &str) -> AlertingConfig {
    let route = |receiver: &str| {
        format!(
            r#"
            [[route.routes]]
            matchers = {{ alertname = "target_slipping", indicator = "EXPORT_TURNOVER", unit = "HCM" }}
            receiver = "{receiver}"
            continue = true
            "#
        )
    };
    let routes: String = ["tg-vi", "tg-en", "mail-vi", "mail-en", "hook"]
        .into_iter()
        .map(route)
        .collect();
    toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        group_by = ["alertname", "indicator"]
        group_wait_seconds = 0
        group_interval_seconds = 0
        repeat_interval_seconds = 86400
        {routes}
        [[receiver]]
        name = "tg-vi"
        type = "telegram"
        api_url = "{telegram}"
        bot_token = "123456:vi"
        chat_id = -1001
        [[receiver]]
        name = "tg-en"
        type = "telegram"
        api_url = "{telegram}"
        bot_token = "123456:en"
        chat_id = -1002
        language = "en"
        [[receiver]]
        name = "mail-vi"
        type = "email"
        host = "127.0.0.1"
        port = {smtp_port}
        from = "ktxh@example.gov.vn"
        to = ["so-cong-thuong@example.gov.vn"]
        [[receiver]]
        name = "mail-en"
        type = "email"
        host = "127.0.0.1"
        port = {smtp_port}
        from = "ktxh@example.gov.vn"
        to = ["trade@example.gov.vn"]
        language = "en"
        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{hook}"
        secret = "notation-secret"
        "#
    ))
    .expect("alerting config")
}

/// Every text an alert goes out in — Telegram, email and the webhook's
/// summaries — writes the figures in its language's notation: `345.678,5` in Vietnamese,
/// `345,678.5` in English, and never the other way inside a sentence.
async fn every_receiver_writes_figures_in_its_languages_notation(backend: Backend) {
    let Some(python) = python_with("aiosmtpd", "aiosmtpd") else {
        return;
    };
    let (year, months) = months_begun_this_year();
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpSink::start(&python, dir.path()).await;
    let (telegram, sent) = telegram_recorder().await;
    let hook = WebhookReceiver::start("notation-secret", true).await;
    let alerting = every_receiver(&telegram, smtp.port, &hook.url);
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.release_calendar.staleness_from = None;
        },
        alerting,
    )
    .await
    else {
        return;
    };
    let alert = make_exports_slip(&app, year, months).await;
    let projection = alert["working"]["projection"]
        .as_f64()
        .expect("a projection");
    assert!(
        projection >= 1_000.0,
        "a figure with thousands: {projection}"
    );
    let actual = 1_234.5 * f64::from(months);
    let written = |notation| {
        [
            // An estimate of a thousand or more is written whole; a target as it was set.
            figure(projection, 0, notation),
            figure(345_678.5, 2, notation),
        ]
    };
    let (vi, en) = (written(Notation::Vietnamese), written(Notation::English));

    let patience = std::time::Duration::from_secs(20);
    let texts = crate::helpers::wait_until("both Telegram messages", patience, async || {
        let sent = sent.lock().expect("log").clone();
        (sent.len() >= 2).then_some(sent)
    })
    .await;
    let mails = crate::helpers::wait_until("both emails", patience, async || {
        let mails = smtp.messages();
        (mails.len() >= 2).then_some(mails)
    })
    .await;
    let hooks = crate::helpers::wait_until("the webhook", patience, async || {
        let delivered = hook.delivered();
        (!delivered.is_empty()).then_some(delivered)
    })
    .await;

    let telegram_in = |chat: i64| {
        texts
            .iter()
            .find(|m| m["chat_id"] == chat)
            .and_then(|m| m["text"].as_str())
            .unwrap_or_else(|| panic!("no message to chat {chat}: {texts:?}"))
            .to_owned()
    };
    let mail_in = |lang: &str| {
        mails
            .iter()
            .find(|m| m["headers"]["content-language"] == lang)
            .unwrap_or_else(|| panic!("no {lang} mail: {mails:?}"))
            .clone()
    };
    let (mail_vi, mail_en) = (mail_in("vi"), mail_in("en"));
    let text_of = |value: &Value| value.as_str().expect("a text").to_owned();
    let surfaces = [
        ("Telegram vi", telegram_in(-1001), &vi, &en),
        ("Telegram en", telegram_in(-1002), &en, &vi),
        ("email vi", text_of(&mail_vi["body"]), &vi, &en),
        ("email en", text_of(&mail_en["body"]), &en, &vi),
        (
            "webhook summary_vi",
            text_of(&hooks[0]["alerts"][0]["summary_vi"]),
            &vi,
            &en,
        ),
        (
            "webhook summary_en",
            text_of(&hooks[0]["alerts"][0]["summary_en"]),
            &en,
            &vi,
        ),
    ];
    for (surface, text, own, other) in surfaces {
        let notation = if own == &vi {
            Notation::Vietnamese
        } else {
            Notation::English
        };
        let wrong = misnotated(&text, notation);
        assert!(wrong.is_empty(), "{surface}: {wrong:?} in {text}");
        for (want, not) in own.iter().zip(other.iter()) {
            assert!(
                text.contains(want.as_str()),
                "{surface} lacks {want}: {text}"
            );
            assert!(!text.contains(not.as_str()), "{surface} has {not}: {text}");
        }
    }
    // The working the email adds: the figure to date, in each notation.
    let body_vi = mail_vi["body"].as_str().unwrap_or_default();
    let body_en = mail_en["body"].as_str().unwrap_or_default();
    assert!(
        body_vi.contains(&figure(actual, 2, Notation::Vietnamese)),
        "{body_vi}"
    );
    assert!(
        body_en.contains(&figure(actual, 2, Notation::English)),
        "{body_en}"
    );
    app.stop().await;
}

async fn a_firing_alerts_texts_follow_new_figures_without_a_new_notice(backend: Backend) {
    let (year, months) = months_begun_this_year();
    let hook = WebhookReceiver::start("quiet-secret", true).await;
    let alerting: AlertingConfig = toml::from_str(&format!(
        r#"
        base_url = "http://127.0.0.1:8080"
        dispatch_interval_ms = 50
        [route]
        group_by = ["alertname"]
        group_wait_seconds = 0
        [[route.routes]]
        matchers = {{ alertname = "target_slipping", indicator = "EXPORT_TURNOVER" }}
        receiver = "hook"
        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{}"
        secret = "quiet-secret"
        "#,
        hook.url
    ))
    .expect("alerting");
    let Some(app) = spawn_app_alerting(
        backend,
        |s| {
            allow_loopback(s);
            s.release_calendar.staleness_from = None;
            s.rules.for_evaluations = 1;
        },
        alerting,
    )
    .await
    else {
        return;
    };
    let fired = make_exports_slip(&app, year, months).await;
    let fingerprint = fired["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fired["state"], "firing", "{fired}");
    let patience = std::time::Duration::from_secs(10);
    let notices = wait_until("the firing notice", patience, async || {
        let queued = notifications_of(&app, &fingerprint).await;
        (queued >= 1).then_some(queued)
    })
    .await;
    let acked = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/alerts/{fingerprint}/ack")))
                .bearer_auth(&app.admin)
                .json(&json!({"comment": "Sở Công Thương đang xử lý"})),
        )
        .await;
    assert_eq!(acked.status, 200, "{acked:?}");

    // January is revised up by 10,000: still far off the target, with another projection.
    let revised = app
        .post_observations(
            &app.customs,
            &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{year}-01"), "value": 11_234.5}]}),
        )
        .await;
    assert_eq!(revised.status, 200, "{revised:?}");
    assert_eq!(revised.body["updated"], 1, "{revised:?}");
    // The write moved no judgement; the timer's next evaluation brings the texts up.
    app.state
        .pipeline
        .apply(ktxh::pipeline::Change::Tick(Utc::now()))
        .await;
    let now = export_alert(&app).await.expect("still slipping");
    let actual = 1_234.5 * f64::from(months) + 10_000.0;
    assert_eq!(now["working"]["actual"].as_f64(), Some(actual), "{now}");
    let projection = now["working"]["projection"].as_f64().expect("a projection");
    let before = fired["working"]["projection"]
        .as_f64()
        .expect("a projection");
    assert!(projection > before, "{before} → {projection}");
    let vi = now["summary_vi"].as_str().expect("summary_vi");
    let en = now["summary_en"].as_str().expect("summary_en");
    assert!(
        vi.contains(&format!(
            "dự báo {} triệu USD",
            figure(projection, 0, Notation::Vietnamese)
        )),
        "{vi}"
    );
    assert!(
        en.contains(&format!(
            "projected {} USD million",
            figure(projection, 0, Notation::English)
        )),
        "{en}"
    );
    // The same alert, as acknowledged, and nobody told again.
    assert_eq!(now["state"], "firing");
    assert_eq!(now["severity"], fired["severity"]);
    assert_eq!(now["fired_at"], fired["fired_at"]);
    assert_eq!(now["ack"]["comment"], "Sở Công Thương đang xử lý", "{now}");
    assert_eq!(now["working"]["target_reason"], "Nghị quyết điều chỉnh");
    // Ten dispatch passes: time enough for a notice the refresh would have queued.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(notifications_of(&app, &fingerprint).await, notices);
    app.stop().await;
}

on_every_backend!(
    a_slipping_targets_texts_write_figures_as_each_language_does,
    every_receiver_writes_figures_in_its_languages_notation,
    a_firing_alerts_texts_follow_new_figures_without_a_new_notice,
);
