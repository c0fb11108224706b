//! Push ingest over real HTTP: round trips, revisions, duplicates, idempotency and bad input.

use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_every_backend;

fn row(indicator: &str, unit: &str, period: &str, value: Value) -> Value {
    json!({"indicator": indicator, "unit": unit, "period": period, "value": value})
}

async fn round_trip_keeps_revisions_and_serves_the_latest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app
        .post_observations(
            &app.customs,
            &json!({"observations": [row("EXPORT_TURNOVER", "HCM", "2026-03", json!(4120.5))]}),
        )
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(
        first.body,
        json!({"accepted": 1, "duplicates": 0, "rejected": []})
    );

    let again = app
        .post_observations(
            &app.customs,
            &json!({"observations": [row("EXPORT_TURNOVER", "HCM", "2026-03", json!(4120.5))]}),
        )
        .await;
    assert_eq!(
        again.body,
        json!({"accepted": 0, "duplicates": 1, "rejected": []})
    );

    let mut revised = row("EXPORT_TURNOVER", "HCM", "2026-03", json!(4188.25));
    revised["revision"] = json!("official");
    let third = app
        .post_observations(&app.customs, &json!({"observations": [revised]}))
        .await;
    assert_eq!(third.body["accepted"], 1);

    let read = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from=2026-01&to=2026-12",
            &app.viewer,
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    let observations = read.body["observations"].as_array().expect("observations");
    assert_eq!(observations.len(), 1);
    assert_eq!(observations[0]["value"], 4188.25);
    assert_eq!(observations[0]["revision"], 2);
    assert_eq!(observations[0]["revision_label"], "official");
    assert_eq!(observations[0]["period"], "2026-03");

    let history = app.revisions("EXPORT_TURNOVER", "HCM", "2026-03").await;
    let values: Vec<_> = history
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![4120.5, 4188.25]);
    app.stop().await;
}

async fn a_retried_request_with_the_same_idempotency_key_stores_nothing_twice(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [
        row("EXPORT_TURNOVER", "HCM", "2026-04", json!(3900.0)),
        row("EXPORT_TURNOVER", "NOWHERE", "2026-04", json!(1.0)),
    ]});
    let send = |body: Value| {
        app.send(
            app.client
                .post(app.url("/api/v1/observations"))
                .bearer_auth(&app.customs)
                .header("Idempotency-Key", "batch-2026-04-a")
                .json(&body),
        )
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["accepted"], 1);
    // Someone else revises the value in between; the retry must not resurrect the old one.
    let other = app
        .post_observations(
            &app.customs,
            &json!({"observations": [row("EXPORT_TURNOVER", "HCM", "2026-04", json!(3950.0))]}),
        )
        .await;
    assert_eq!(other.body["accepted"], 1);

    let retry = send(body.clone()).await;
    assert_eq!(retry.status, 200);
    assert_eq!(
        retry.body, first.body,
        "a retry answers exactly as the first time"
    );
    assert_eq!(
        app.revisions("EXPORT_TURNOVER", "HCM", "2026-04")
            .await
            .len(),
        2
    );

    let reused =
        send(json!({"observations": [row("EXPORT_TURNOVER", "HCM", "2026-05", json!(1.0))]})).await;
    assert_problem(&reused, 422, "idempotency_key_reused");
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-05")
        .await
        .is_empty());
    app.stop().await;
}

/// Each bad row gets its own code; the good row beside them is stored.
async fn bad_rows_are_rejected_one_by_one_with_their_own_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [
        row("EXPORT_TURNOVER", "HCM", "2026-01", json!(3500.0)),
        row("NO_SUCH_INDICATOR", "HCM", "2026-01", json!(1.0)),
        row("EXPORT_TURNOVER", "NO_SUCH_UNIT", "2026-01", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-02", json!("NaN")),
        row("EXPORT_TURNOVER", "HCM", "2026-02", json!("Infinity")),
        row("EXPORT_TURNOVER", "HCM", "2026-02", json!(1.0e9)),
        row("EXPORT_TURNOVER", "HCM", "2026-Q1", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2027-06", json!(1.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-13", json!(1.0)),
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-02"}),
        row("EXPORT_TURNOVER", "P_SAI_GON", "2026-02", json!(1.0)),
        // PostgreSQL cannot store a NUL in text: refused on every backend, not a 500.
        json!({"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-02", "value": 1.0,
               "revision": "prelim\0inary"}),
    ]});
    let reply = app.post_observations(&app.customs, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1);
    let codes: Vec<(u64, String)> = reply.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (1, "unknown_indicator"),
        (2, "unknown_unit"),
        (3, "value_not_finite"),
        (4, "value_not_finite"),
        (5, "value_out_of_range"),
        (6, "period_mismatch"),
        (7, "period_in_future"),
        (8, "invalid_period"),
        (9, "missing_field"),
        (10, "unit_not_reporting"),
        (11, "invalid_text"),
    ]
    .iter()
    .map(|(i, c)| (*i, c.to_string()))
    .collect();
    assert_eq!(codes, expected);
    for rejection in reply.body["rejected"].as_array().unwrap() {
        assert!(
            rejection["message"].as_str().is_some_and(|m| m.len() > 10),
            "{rejection}"
        );
    }
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-02")
        .await
        .is_empty());
    assert_eq!(
        app.revisions("EXPORT_TURNOVER", "HCM", "2026-01")
            .await
            .len(),
        1
    );
    app.stop().await;
}

async fn requests_that_cannot_be_read_are_refused_whole(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.server.body_limit_bytes = 4096).await else {
        return;
    };
    let post_raw = |body: String, content_type: &'static str| {
        app.send(
            app.client
                .post(app.url("/api/v1/observations"))
                .bearer_auth(&app.customs)
                .header("content-type", content_type)
                .body(body),
        )
    };
    let malformed = post_raw("{\"observations\": [".into(), "application/json").await;
    assert_problem(&malformed, 400, "malformed_json");

    let overflow = post_raw(
        r#"{"observations":[{"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-06","value":1e999}]}"#.into(),
        "application/json",
    )
    .await;
    assert_problem(&overflow, 400, "malformed_json");

    let wrong_type = post_raw(
        r#"{"observations":[{"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-06","value":1},{"indicator":7}]}"#.into(),
        "application/json",
    )
    .await;
    assert_problem(&wrong_type, 422, "invalid_field");
    assert_eq!(
        wrong_type.body["errors"][0]["pointer"],
        "/observations/1/indicator"
    );

    let rows: Vec<Value> = (1..=200)
        .map(|_| row("EXPORT_TURNOVER", "HCM", "2026-06", json!(1.0)))
        .collect();
    let oversized = post_raw(
        json!({"observations": rows}).to_string(),
        "application/json",
    )
    .await;
    assert_problem(&oversized, 413, "payload_too_large");

    let xml = post_raw("<observations/>".into(), "application/xml").await;
    assert_problem(&xml, 415, "unsupported_media_type");

    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-06")
        .await
        .is_empty());
    app.stop().await;
}

async fn callers_without_the_right_token_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [row("EXPORT_TURNOVER", "HCM", "2026-07", json!(10.0))]});

    let anonymous = app
        .send(app.client.post(app.url("/api/v1/observations")).json(&body))
        .await;
    assert_problem(&anonymous, 401, "missing_token");

    let garbage = app
        .post_observations("ktxh_0000000000000000_00", &body)
        .await;
    assert_problem(&garbage, 401, "invalid_token");

    let viewer = app.post_observations(&app.viewer, &body).await;
    assert_problem(&viewer, 403, "forbidden");

    // Finance may not write customs' indicator, even beside a row of its own.
    let mixed = json!({"observations": [
        row("NEW_ENTERPRISES", "HCM", "2026-07", json!(4000.0)),
        row("EXPORT_TURNOVER", "HCM", "2026-07", json!(10.0)),
    ]});
    let foreign = app.post_observations(&app.finance, &mixed).await;
    assert_problem(&foreign, 403, "foreign_indicators");
    assert_eq!(
        foreign.body["errors"][0]["pointer"],
        "/observations/1/indicator"
    );
    assert!(app
        .revisions("NEW_ENTERPRISES", "HCM", "2026-07")
        .await
        .is_empty());

    let in_url = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/observations?token={}", app.customs)))
                .json(&body),
        )
        .await;
    assert_problem(&in_url, 400, "token_in_url");

    assert!(app
        .store
        .revoke_token(&app.customs_id, Utc::now())
        .await
        .unwrap());
    let revoked = app.post_observations(&app.customs, &body).await;
    assert_problem(&revoked, 401, "invalid_token");

    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2026-07")
        .await
        .is_empty());
    app.stop().await;
}

async fn post_csv(app: &TestApp, content_type: &str, body: &str) -> crate::helpers::Reply {
    app.send(
        app.client
            .post(app.url("/api/v1/observations"))
            .bearer_auth(&app.customs)
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

async fn a_csv_file_is_ingested_row_by_row_and_reads_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // A byte-order mark, columns in another order, a quoted source with a comma, a short line
    // and a value out of range: the good rows land, the others are answered one by one.
    // Each refused row is named by its line, the blank one counted.
    let body = "\u{feff}period,indicator,unit,value,source\r\n\
                2025-01,EXPORT_TURNOVER,HCM,4120.5,\"Hải quan, khu vực II\"\r\n\
                2025-02,EXPORT_TURNOVER,HCM\r\n\
                \r\n\
                2025-03,EXPORT_TURNOVER,HCM,99999999,\r\n\
                2025-04,EXPORT_TURNOVER,HCM,4300,\r\n";
    let reply = post_csv(&app, "text/csv; charset=utf-8", body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    let rejected = reply.body["rejected"].as_array().expect("rejected");
    let codes: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(codes, vec![(1, "malformed_row"), (2, "value_out_of_range")]);
    let messages: Vec<&str> = rejected
        .iter()
        .map(|r| r["message"].as_str().unwrap_or(""))
        .collect();
    assert!(
        messages[0].starts_with("line 3: the line has 3 fields"),
        "{messages:?}"
    );
    assert!(messages[1].starts_with("line 5: "), "{messages:?}");

    // Vietnamese numbers, declared: `;` between fields and `1.234,5`.
    let vietnamese = "indicator;unit;period;value\nEXPORT_TURNOVER;HCM;2025-05;4.410,25\n";
    let reply = post_csv(&app, "text/csv; decimal=comma", vietnamese).await;
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");

    let read = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from=2025-01&to=2025-12",
            &app.viewer,
        )
        .await;
    let values: Vec<(String, f64)> = read.body["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| {
            (
                o["period"].as_str().unwrap_or("").to_owned(),
                o["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("2025-01".to_owned(), 4120.5),
            ("2025-04".to_owned(), 4300.0),
            ("2025-05".to_owned(), 4410.25),
        ]
    );
    let sourced = &read.body["observations"][0];
    assert_eq!(sourced["source"], "Hải quan, khu vực II");

    // A file that is not this format at all is refused whole, naming what is wrong.
    let headerless = post_csv(&app, "text/csv", "EXPORT_TURNOVER,HCM,2025-06,1\n").await;
    assert_problem(&headerless, 422, "invalid_field");
    assert_eq!(headerless.body["errors"][0]["pointer"], "body");
    let bad_decimal = post_csv(
        &app,
        "text/csv; decimal=dot",
        "indicator,unit,period,value\n",
    )
    .await;
    assert_problem(&bad_decimal, 422, "invalid_field");
    app.stop().await;
}

async fn a_withdrawn_value_leaves_the_reads_and_the_judgement(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let months: Vec<_> = [
        ("2026-01", 4000.0),
        ("2026-02", 4100.0),
        ("2026-03", 4200.0),
    ]
    .iter()
    .map(|(period, value)| row("EXPORT_TURNOVER", "HCM", period, json!(value)))
    .collect();
    let sent = app
        .post_observations(&app.customs, &json!({ "observations": months }))
        .await;
    assert_eq!(sent.body["accepted"], 3, "{sent:?}");
    let actual = |reply: crate::helpers::Reply| reply.body["actual"].as_f64();
    let status = app
        .get("/api/v1/status/EXPORT_TURNOVER?year=2026", &app.viewer)
        .await;
    assert_eq!(actual(status), Some(12300.0));

    let withdraw = json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2026-03", "retract": true}
    ]});
    let withdrawn = app.post_observations(&app.customs, &withdraw).await;
    assert_eq!(
        withdrawn.body,
        json!({"accepted": 1, "duplicates": 0, "rejected": [], "withdrawn": 1})
    );
    let retried = app.post_observations(&app.customs, &withdraw).await;
    assert_eq!(retried.body["duplicates"], 1);

    let read = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from=2026-01&to=2026-12",
            &app.viewer,
        )
        .await;
    let periods: Vec<_> = read.body["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| o["period"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(periods, ["2026-01", "2026-02"]);
    let status = app
        .get("/api/v1/status/EXPORT_TURNOVER?year=2026", &app.viewer)
        .await;
    assert_eq!(actual(status), Some(8100.0), "the engine forgot March");
    let history = app.revisions("EXPORT_TURNOVER", "HCM", "2026-03").await;
    let values: Vec<_> = history.iter().map(|r| r["value"].clone()).collect();
    assert_eq!(values, vec![json!(4200.0), Value::Null]);
    app.stop().await;
}

on_every_backend!(
    a_withdrawn_value_leaves_the_reads_and_the_judgement,
    a_csv_file_is_ingested_row_by_row_and_reads_back,
    round_trip_keeps_revisions_and_serves_the_latest,
    a_retried_request_with_the_same_idempotency_key_stores_nothing_twice,
    bad_rows_are_rejected_one_by_one_with_their_own_code,
    requests_that_cannot_be_read_are_refused_whole,
    callers_without_the_right_token_store_nothing,
);
