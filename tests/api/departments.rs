//! A department's own page (`GET /api/v1/departments/{code}/dashboard`, `GET /api/v1/departments`)
//! and the validate-only push (`POST /api/v1/observations?dry_run=true`) its entry form uses.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, Backend, TestApp};
use crate::on_every_backend;

/// The customs office's indicators in the shipped catalogue.
const CUSTOMS_INDICATORS: [&str; 3] = ["EXPORT_GROWTH", "EXPORT_TURNOVER", "IMPORT_EXPORT_REVENUE"];

fn row(indicator: &str, unit: &str, period: &str, value: Value) -> Value {
    json!({"indicator": indicator, "unit": unit, "period": period, "value": value})
}

async fn dashboard(app: &TestApp, code: &str, token: &str) -> crate::helpers::Reply {
    app.get(&format!("/api/v1/departments/{code}/dashboard"), token)
        .await
}

fn codes(reply: &crate::helpers::Reply) -> Vec<String> {
    let mut codes: Vec<String> = reply.body["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .map(|i| i["code"].as_str().expect("code").to_owned())
        .collect();
    codes.sort();
    codes
}

async fn a_department_token_reads_only_its_own_page(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let own = dashboard(&app, "CUSTOMS", &app.customs).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body["department"]["code"], "CUSTOMS");
    assert_eq!(own.body["unit"], "HCM");
    assert_eq!(codes(&own), CUSTOMS_INDICATORS);
    for indicator in own.body["indicators"].as_array().unwrap() {
        assert!(indicator["next"]["due_at"].is_string(), "{indicator}");
        assert!(indicator["periodicity"].is_string(), "{indicator}");
    }

    // Another department's token, and an unknown department.
    let foreign = dashboard(&app, "CUSTOMS", &app.finance).await;
    assert_problem(&foreign, 403, "forbidden");
    let finance = dashboard(&app, "FINANCE", &app.finance).await;
    assert_eq!(finance.status, 200, "{finance:?}");
    assert!(codes(&finance).contains(&"PCI_SCORE".to_owned()));
    assert!(!codes(&finance).iter().any(|c| c == "EXPORT_TURNOVER"));
    assert_problem(
        &dashboard(&app, "NOWHERE", &app.admin).await,
        404,
        "not_found",
    );
    let anonymous = app
        .send(
            app.client
                .get(app.url("/api/v1/departments/CUSTOMS/dashboard")),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_problem(
        &app.get(
            "/api/v1/departments/CUSTOMS/dashboard?year=3000",
            &app.viewer,
        )
        .await,
        422,
        "invalid_field",
    );

    // Admins and viewers read any department.
    for token in [&app.admin, &app.viewer] {
        let reply = dashboard(&app, "CUSTOMS", token).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(codes(&reply), CUSTOMS_INDICATORS);
    }

    // The list of pages: its own for a department token, every one for a viewer.
    let mine = app.get("/api/v1/departments", &app.customs).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert_eq!(
        mine.body["departments"],
        json!([{
            "code": "CUSTOMS",
            "name_vi": "Chi cục Hải quan khu vực II",
            "name_en": "Customs Sub-department Region II",
        }])
    );
    let all = app.get("/api/v1/departments", &app.viewer).await;
    assert!(
        all.body["departments"].as_array().unwrap().len() > 10,
        "{all:?}"
    );
    app.stop().await;
}

async fn the_page_shows_the_latest_figure_and_the_refused_rows_of_its_department_only(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sent = app
        .post_observations(
            &app.customs,
            &json!({"observations": [
                row("EXPORT_TURNOVER", "HCM", "2026-03", json!(4120.5)),
                row("EXPORT_TURNOVER", "HCM", "2026-04", json!(4_120_000.0)),
            ]}),
        )
        .await;
    assert_eq!(sent.body["accepted"], 1, "{sent:?}");
    let finance = app
        .post_observations(
            &app.finance,
            &json!({"observations": [row("PCI_SCORE", "HCM", "2025", json!(170.0))]}),
        )
        .await;
    assert_eq!(finance.body["rejected"][0]["code"], "value_out_of_range");

    let page = dashboard(&app, "CUSTOMS", &app.customs).await;
    let turnover = page.body["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "EXPORT_TURNOVER")
        .expect("EXPORT_TURNOVER")
        .clone();
    assert_eq!(turnover["latest"]["period"], "2026-03", "{turnover}");
    assert_eq!(turnover["latest"]["value"], 4120.5);
    assert_eq!(turnover["latest"]["revision"], 1);
    // The figure due last is not in.
    assert_eq!(turnover["expected_in"], false, "{turnover}");

    // The period after it, sent without it: no longer late, and still not in.
    let expected: ktxh::domain::Period = turnover["expected"]["period"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("a period due");
    let after = expected.next().expect("a next period").to_string();
    let expected = expected.to_string();
    let indicator = |page: &crate::helpers::Reply| {
        page.body["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == "EXPORT_TURNOVER")
            .cloned()
            .expect("EXPORT_TURNOVER")
    };
    let later = json!({"observations": [row("EXPORT_TURNOVER", "HCM", &after, json!(4300.0))]});
    assert_eq!(
        app.post_observations(&app.customs, &later).await.body["accepted"],
        1
    );
    let page_now = dashboard(&app, "CUSTOMS", &app.customs).await;
    let gap = indicator(&page_now);
    assert_eq!(gap["late"], false, "{gap}");
    assert_eq!(gap["expected_in"], false, "a gap is not in: {gap}");
    let due = json!({"observations": [row("EXPORT_TURNOVER", "HCM", &expected, json!(4200.0))]});
    assert_eq!(
        app.post_observations(&app.customs, &due).await.body["accepted"],
        1
    );
    let page_now = dashboard(&app, "CUSTOMS", &app.customs).await;
    assert_eq!(
        indicator(&page_now)["expected_in"],
        true,
        "{}",
        indicator(&page_now)
    );

    let rejections = page.body["rejections"].as_array().expect("rejections");
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0]["code"], "value_out_of_range");
    assert_eq!(rejections[0]["index"], 1);
    assert_eq!(rejections[0]["format"], "json");
    assert_eq!(rejections[0]["by"], "test-department");
    assert!(rejections[0]["message"]
        .as_str()
        .unwrap()
        .contains("4120000"));
    let pushes = page.body["pushes"].as_array().expect("pushes");
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(
        (
            &pushes[0]["accepted"],
            &pushes[0]["duplicates"],
            &pushes[0]["rejected"]
        ),
        (&json!(1), &json!(0), &json!(1))
    );

    let other = dashboard(&app, "FINANCE", &app.finance).await;
    let rejections = other.body["rejections"].as_array().expect("rejections");
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0]["code"], "value_out_of_range");
    assert!(rejections[0]["message"].as_str().unwrap().contains("170"));
    app.stop().await;
}

async fn post_observations_as(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: String,
    idempotency: Option<&str>,
) -> crate::helpers::Reply {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/observations{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = idempotency {
        request = request.header("idempotency-key", key);
    }
    app.send(request).await
}

async fn a_dry_run_stores_nothing_and_answers_as_a_push_would(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [
        row("EXPORT_TURNOVER", "HCM", "2026-05", json!(4100.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-06", json!(-3.0)),
        row("EXPORT_TURNOVER", "NOWHERE", "2026-06", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-Q2", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2200-01", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-07", json!("1,234")),
        row("NOT_AN_INDICATOR", "HCM", "2026-07", json!(1.0)),
        row("EXPORT_GROWTH", "HCM", "2026-05", json!("12.5")),
    ]})
    .to_string();
    let json = "application/json";

    // The dry run claims no Idempotency-Key: the real push under the same key is not a replay.
    let dry = post_observations_as(
        &app,
        &app.customs,
        "?dry_run=true",
        json,
        body.clone(),
        Some("k1"),
    )
    .await;
    assert_eq!(dry.status, 200, "{dry:?}");
    let codes: Vec<&str> = dry.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "value_out_of_range",
            "unknown_unit",
            "period_mismatch",
            "period_in_future",
            "ambiguous_number",
            "unknown_indicator"
        ]
    );
    assert_eq!(dry.body["accepted"], 2);
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-05")
        .await
        .is_empty());
    assert!(app
        .revisions("EXPORT_GROWTH", "HCM", "2026-05")
        .await
        .is_empty());
    // Nothing is filed as a push either.
    let page = dashboard(&app, "CUSTOMS", &app.customs).await;
    assert_eq!(page.body["pushes"], json!([]));
    assert_eq!(page.body["rejections"], json!([]));

    let real = post_observations_as(&app, &app.customs, "", json, body.clone(), Some("k1")).await;
    assert_eq!(real.status, 200, "{real:?}");
    assert_eq!(real.body["rejected"], dry.body["rejected"]);
    assert_eq!(real.body["accepted"], 2);
    assert_eq!(
        app.revisions("EXPORT_TURNOVER", "HCM", "2026-05")
            .await
            .len(),
        1
    );

    // Once stored, a dry run still names the same refused rows; the stored rows count as
    // accepted, since telling a duplicate needs the store.
    let again = post_observations_as(
        &app,
        &app.customs,
        "?dry_run=true",
        json,
        body.clone(),
        None,
    )
    .await;
    assert_eq!(again.body["rejected"], real.body["rejected"]);
    assert_eq!(again.body["accepted"], 2);
    let duplicate = post_observations_as(&app, &app.customs, "", json, body.clone(), None).await;
    assert_eq!(duplicate.body["rejected"], real.body["rejected"]);
    assert_eq!(duplicate.body["duplicates"], 2, "{duplicate:?}");

    // CSV, with the comma as the decimal mark, the same way.
    let csv = "indicator,unit,period,value\n\
               EXPORT_TURNOVER,HCM,2026-08,\"4.150,5\"\n\
               EXPORT_TURNOVER,HCM,2026-09,99999999\n"
        .to_owned();
    let dry = post_observations_as(
        &app,
        &app.customs,
        "?dry_run=true&decimal=comma",
        "text/csv",
        csv.clone(),
        None,
    )
    .await;
    assert_eq!(dry.status, 200, "{dry:?}");
    assert_eq!(dry.body["accepted"], 1);
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-08")
        .await
        .is_empty());
    let real =
        post_observations_as(&app, &app.customs, "?decimal=comma", "text/csv", csv, None).await;
    assert_eq!(real.body["rejected"], dry.body["rejected"]);
    assert_eq!(real.body["rejected"][0]["code"], "value_out_of_range");
    assert_eq!(
        app.series("EXPORT_TURNOVER", "HCM", "2026-08", "2026-08")
            .await,
        [("2026-08".to_owned(), 4150.5)]
    );

    // Refused as a whole exactly as a push is: another department's indicator, a viewer.
    let foreign =
        json!({"observations": [row("PCI_SCORE", "HCM", "2025", json!(60.0))]}).to_string();
    let dry = post_observations_as(
        &app,
        &app.customs,
        "?dry_run=true",
        json,
        foreign.clone(),
        None,
    )
    .await;
    assert_problem(&dry, 403, "foreign_indicators");
    let real = post_observations_as(&app, &app.customs, "", json, foreign.clone(), None).await;
    assert_problem(&real, 403, "foreign_indicators");
    assert_eq!(dry.body["detail"], real.body["detail"]);
    let viewer =
        post_observations_as(&app, &app.viewer, "?dry_run=true", json, foreign, None).await;
    assert_problem(&viewer, 403, "forbidden");
    let bad = post_observations_as(&app, &app.customs, "?dry_run=maybe", json, body, None).await;
    assert_problem(&bad, 422, "invalid_field");
    assert_eq!(bad.body["errors"][0]["pointer"], "dry_run", "{bad:?}");
    app.stop().await;
}

on_every_backend!(
    a_department_token_reads_only_its_own_page,
    the_page_shows_the_latest_figure_and_the_refused_rows_of_its_department_only,
    a_dry_run_stores_nothing_and_answers_as_a_push_would,
);
