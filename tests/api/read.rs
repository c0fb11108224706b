//! The read API: catalogue, targets and their audit, bucketed history.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, Backend};
use crate::on_every_backend;

async fn the_catalogue_is_served_whole_and_filtered(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let groups = app.get("/api/v1/groups", &app.viewer).await;
    assert_eq!(groups.status, 200);
    let groups = groups.body["groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 20);
    let total: u64 = groups
        .iter()
        .map(|g| g["indicators"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 110);

    let all = app.get("/api/v1/indicators", &app.viewer).await;
    assert_eq!(all.body["indicators"].as_array().unwrap().len(), 110);
    // Short names for the wall: given, or the full name; never two alike within a group.
    let mut shorts = std::collections::HashSet::new();
    for indicator in all.body["indicators"].as_array().unwrap() {
        for lang in ["vi", "en"] {
            let short = indicator[format!("short_{lang}")]
                .as_str()
                .unwrap_or_default();
            assert!(!short.is_empty(), "{indicator}");
            assert!(
                shorts.insert((lang, indicator["group"].clone(), short.to_lowercase())),
                "`{short}` twice in {}",
                indicator["group"]
            );
        }
        if indicator["code"] == "GRDP_GROWTH" {
            assert_eq!(indicator["short_vi"], "Tăng trưởng GRDP");
            assert_eq!(indicator["short_en"], "GRDP growth");
        }
        if indicator["code"] == "DOMESTIC_REVENUE" {
            assert_eq!(
                indicator["short_vi"], indicator["name_vi"],
                "no short_vi: the name"
            );
            assert_eq!(indicator["short_en"], "Domestic revenue");
        }
    }
    let health = app
        .get("/api/v1/indicators?group=HEALTH", &app.viewer)
        .await;
    let health = health.body["indicators"].as_array().unwrap().clone();
    assert!(!health.is_empty());
    assert!(health.iter().all(|i| i["group"] == "HEALTH"));
    let customs = app
        .get("/api/v1/indicators?department=CUSTOMS", &app.viewer)
        .await;
    assert!(customs.body["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["department"] == "CUSTOMS"));

    let unknown = app.get("/api/v1/indicators?group=NOPE", &app.viewer).await;
    assert_problem(&unknown, 422, "invalid_field");
    assert_eq!(unknown.body["errors"][0]["pointer"], "group");

    let one = app.get("/api/v1/indicators/GRDP_GROWTH", &app.viewer).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["indicator"]["kind"], "growth");
    let years: Vec<i64> = one.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["year"].as_i64().unwrap())
        .collect();
    assert!(years.contains(&2025) && years.contains(&2026), "{years:?}");
    assert_problem(
        &app.get("/api/v1/indicators/NOPE", &app.viewer).await,
        404,
        "not_found",
    );

    let units = app.get("/api/v1/units", &app.viewer).await;
    let units = units.body["units"].as_array().unwrap().clone();
    assert_eq!(units.iter().filter(|u| u["parent"].is_null()).count(), 1);
    assert!(units.len() > 100);

    for year in [2025, 2026] {
        let targets = app
            .get(&format!("/api/v1/targets?year={year}"), &app.viewer)
            .await;
        let targets = targets.body["targets"].as_array().unwrap().clone();
        let city: Vec<_> = targets.iter().filter(|t| t["unit"] == "HCM").collect();
        assert_eq!(city.len(), 110, "one city target per indicator in {year}");
    }
    assert_problem(&app.get("/api/v1/groups", "").await, 401, "missing_token");
    app.stop().await;
}

async fn an_admin_changes_a_target_and_the_audit_log_says_who_and_why(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let put = |token: &str, path: &str, body: serde_json::Value| {
        app.send(app.client.put(app.url(path)).bearer_auth(token).json(&body))
    };
    let before = app.get("/api/v1/targets?year=2026", &app.viewer).await;
    let old = before.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["indicator"] == "EXPORT_TURNOVER" && t["unit"] == "HCM")
        .cloned()
        .expect("configured target");

    let refused = put(
        &app.customs,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 1.0, "reason": "x"}),
    )
    .await;
    assert_problem(&refused, 403, "forbidden");
    let no_reason = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 1.0, "reason": " "}),
    )
    .await;
    assert_problem(&no_reason, 422, "invalid_field");
    assert_eq!(no_reason.body["errors"][0]["pointer"], "/reason");
    // A NUL cannot be stored by PostgreSQL: a 422 naming the field on every backend, not a 500.
    let nul_reason = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 1.0, "reason": "a\0b"}),
    )
    .await;
    assert_problem(&nul_reason, 422, "invalid_field");
    assert_eq!(nul_reason.body["errors"][0]["pointer"], "/reason");
    let band = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"lo": 1.0, "hi": 2.0, "reason": "x"}),
    )
    .await;
    assert_problem(&band, 422, "invalid_field");

    let set = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 240000.0, "tolerance": 0.03, "reason": "Nghị quyết điều chỉnh kế hoạch"}),
    )
    .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body["value"], 240000.0);
    assert_eq!(set.body["tolerance"], 0.03);
    assert_eq!(set.body["origin"], "api");
    // The configured target was illustrative; the value the city sets is its own, and the old
    // value's provenance is not the new one's.
    assert_eq!(old["illustrative"], true, "{old}");
    assert_eq!(set.body["illustrative"], false, "{set:?}");
    assert!(set.body["source"].is_null(), "{set:?}");
    // Too long, or more than one line (a line break, a Unicode line separator): refused.
    for source in [
        "x".repeat(501),
        "NQ 01/2026\nBcc: x@example.com".to_owned(),
        "NQ 01/2026\u{2028}Bcc: x@example.com".to_owned(),
    ] {
        let refused = put(
            &app.admin,
            "/api/v1/targets/2026/EXPORT_TURNOVER",
            json!({"value": 240000.0, "source": source, "reason": "x"}),
        )
        .await;
        assert_problem(&refused, 422, "invalid_field");
        assert_eq!(refused.body["errors"][0]["pointer"], "/source", "{source}");
    }
    let sourced = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 240000.0, "source": "Nghị quyết số 12/NQ-HĐND", "reason": "nguồn"}),
    )
    .await;
    assert_eq!(
        sourced.body["source"], "Nghị quyết số 12/NQ-HĐND",
        "{sourced:?}"
    );
    // A change of tolerance alone keeps where the value comes from.
    let tolerance = put(
        &app.admin,
        "/api/v1/targets/2026/EXPORT_TURNOVER",
        json!({"value": 240000.0, "tolerance": 0.03, "reason": "biên độ"}),
    )
    .await;
    assert_eq!(
        (&tolerance.body["source"], &tolerance.body["illustrative"]),
        (&json!("Nghị quyết số 12/NQ-HĐND"), &json!(false)),
        "{tolerance:?}"
    );

    let cpi = put(
        &app.admin,
        "/api/v1/targets/2026/CPI_GROWTH",
        json!({"lo": 3.5, "hi": 4.5, "reason": "band"}),
    )
    .await;
    assert_eq!(cpi.status, 200, "{cpi:?}");
    assert_eq!(
        (cpi.body["lo"].clone(), cpi.body["hi"].clone()),
        (json!(3.5), json!(4.5))
    );

    assert_eq!(app.get("/api/v1/audit", &app.viewer).await.status, 403);
    let audit = app.get("/api/v1/audit", &app.admin).await;
    let entries: Vec<serde_json::Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "target.set")
        .cloned()
        .collect();
    assert_eq!(entries.len(), 4);
    let export = entries
        .iter()
        .find(|e| {
            e["subject"] == "2026/EXPORT_TURNOVER/HCM"
                && e["reason"] == "Nghị quyết điều chỉnh kế hoạch"
        })
        .expect("audit row");
    assert_eq!(export["action"], "target.set");
    assert!(export["actor"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(export["reason"], "Nghị quyết điều chỉnh kế hoạch");
    assert_eq!(export["old"]["value"], old["value"]);
    assert_eq!(export["new"]["value"], 240000.0);
    app.stop().await;
}

async fn history_is_bucketed_by_calendar_periods(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let rows: Vec<_> = (1..=6)
        .map(|m| json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": format!("2026-{m:02}"), "value": f64::from(m) * 100.0}))
        .collect();
    let posted = app
        .post_observations(&app.customs, &json!({"observations": rows}))
        .await;
    assert_eq!(posted.body["accepted"], 6);
    // A revision of March must replace it in the buckets, not add to it.
    let revised = app
        .post_observations(&app.customs, &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-03", "value": 350.0}]}))
        .await;
    assert_eq!(revised.body["accepted"], 1);

    let quarters = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&bucket=quarter",
            &app.viewer,
        )
        .await;
    assert_eq!(quarters.status, 200, "{quarters:?}");
    let points = quarters.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["value"], 100.0 + 200.0 + 350.0);
    assert_eq!(points[0]["count"], 3);
    assert_eq!(points[0]["start"], "2025-12-31T17:00:00Z");
    assert_eq!(points[1]["value"], 400.0 + 500.0 + 600.0);
    assert_eq!(quarters.body["aggregate"], "sum");

    let months = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&bucket=month&from=2026-02&to=2026-03",
            &app.viewer,
        )
        .await;
    let values: Vec<f64> = months.body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![200.0, 350.0]);

    let bad = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&bucket=fortnight",
            &app.viewer,
        )
        .await;
    assert_problem(&bad, 422, "invalid_field");
    assert_eq!(bad.body["errors"][0]["pointer"], "bucket");
    app.stop().await;
}

on_every_backend!(
    the_catalogue_is_served_whole_and_filtered,
    an_admin_changes_a_target_and_the_audit_log_says_who_and_why,
    history_is_bucketed_by_calendar_periods,
);

#[tokio::test]
async fn a_method_a_path_does_not_serve_gets_a_problem_naming_the_allowed_ones() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for (method, path, allowed) in [
        (reqwest::Method::DELETE, "/api/v1/groups", "GET,HEAD"),
        (
            reqwest::Method::PUT,
            "/api/v1/observations",
            "GET,HEAD,POST",
        ),
        (reqwest::Method::GET, "/api/v2/write", "POST"),
        (reqwest::Method::POST, "/healthz", "GET,HEAD"),
    ] {
        let request = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&app.admin);
        let response = request.send().await.expect("request sent");
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .replace(' ', "");
        assert_eq!(allow, allowed, "{method} {path}");
        let reply = app
            .send(app.client.request(method.clone(), app.url(path)))
            .await;
        assert_problem(&reply, 405, "method_not_allowed");
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(method.as_str()), "{reply:?}");
    }
    app.stop().await;
}
