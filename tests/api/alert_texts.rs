//! An alert's texts as the API and the receivers get them: the short form in each language's
//! notation with its unit, and the working with the target version in force.

use chrono::{Datelike, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_every_backend;

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

async fn a_slipping_targets_texts_write_figures_as_each_language_does(backend: Backend) {
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let today = Utc::now().with_timezone(&zone);
    let complete_months = today.month() - 1;
    if complete_months == 0 {
        return; // January: no month of the year to report yet.
    }
    let year = today.year();
    // Judged from this start: no month of the year is late, the pace alone slips.
    let Some(app) = spawn_app_with(backend, |s| s.release_calendar.staleness_from = None).await
    else {
        return;
    };
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/api/v1/targets/{year}/EXPORT_TURNOVER")))
                .bearer_auth(&app.admin)
                .json(&json!({ "value": 1_000_000.5, "reason": "Nghị quyết điều chỉnh" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let rows: Vec<Value> = (1..=complete_months)
        .map(|m| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("{year}-{m:02}"), "value": 1_234.5}))
        .collect();
    let accepted = app
        .post_observations(&app.customs, &json!({ "observations": rows }))
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    let alert = export_alert(&app).await.expect("the export target slips");

    let vi = alert["summary_vi"].as_str().expect("summary_vi");
    let en = alert["summary_en"].as_str().expect("summary_en");
    let working = &alert["working"];
    let projection = working["projection"].as_f64().expect("a projection");
    let vi_projection =
        ktxh::domain::number::format(projection, 2, ktxh::domain::number::Notation::Vietnamese);
    let en_projection =
        ktxh::domain::number::format(projection, 2, ktxh::domain::number::Notation::English);
    assert!(
        vi.ends_with(&format!(
            "năm {year}: chậm tiến độ; dự báo {vi_projection} triệu USD, mục tiêu 1.000.000,5 triệu USD"
        )),
        "{vi}"
    );
    assert!(
        en.ends_with(&format!(
            "{year}: off track; projected {en_projection} USD million, target 1,000,000.5 USD million"
        )),
        "{en}"
    );
    // Thousands: a figure with four or more digits is grouped the language's way.
    assert!(projection >= 1_000.0, "{projection}");
    let whole = projection.trunc().to_string();
    let (thousands, units) = whole.split_at(whole.len() - 3);
    assert!(
        vi_projection.starts_with(&format!("{thousands}.{units}"))
            && en_projection.starts_with(&format!("{thousands},{units}")),
        "{vi_projection} / {en_projection}"
    );

    // The working the email shows: the figures as judged, and the version put just now.
    assert_eq!(working["measure_vi"], "triệu USD");
    assert_eq!(working["target"], 1_000_000.5);
    assert_eq!(
        working["actual"].as_f64(),
        Some(1_234.5 * f64::from(complete_months))
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

on_every_backend!(a_slipping_targets_texts_write_figures_as_each_language_does);
