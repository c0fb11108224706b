//! Codes padded with white space or invisible characters, as spreadsheets and copy-paste leave
//! them: sent by another department they are refused whole and store nothing, in every format
//! that carries codes; sent by the owning department they are stored under the clean code. And
//! numbers sent as text with a comma, which are ambiguous unless the decimal mark is declared.

use std::sync::{Arc, Mutex};

use axum::http::header;
use axum::routing::get;
use axum::Router;
use ktxh::auth::Role;
use ktxh::collectors::pull::PullCollector;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::{
    allow_loopback, assert_problem, mint_token, spawn_app, spawn_app_with_feeds, Backend, Reply,
    TestApp,
};
use crate::pull::{eventually, feed_health, unique};

/// EXPORT_TURNOVER, of the customs office, padded the ways a sender's tooling pads it.
const PADDED: [(&str, &str); 5] = [
    ("a leading space", " EXPORT_TURNOVER"),
    ("a trailing space", "EXPORT_TURNOVER "),
    ("a tab", "\tEXPORT_TURNOVER"),
    ("no-break spaces", "\u{a0}EXPORT_TURNOVER\u{a0}"),
    ("a zero-width space", "\u{200b}EXPORT_TURNOVER"),
];

/// The SDMX dataflow of the finance department, whose indicator codes are the catalogue's own.
const SDMX_CSV: &str = "application/vnd.sdmx.data+csv; version=2.0.0";

/// The data element of EHR_COVERAGE (health) and the org unit of P_BEN_THANH.
const EHR: &str = "omnd7tBJRKP";
const BEN_THANH: &str = "xsMl4TaOBMv";

fn json_body(code: &str, period: &str, value: Value) -> Value {
    json!({"observations": [
        {"indicator": code, "unit": "HCM", "period": period, "value": value}
    ]})
}

async fn post(app: &TestApp, token: &str, path: &str, content_type: &str, body: String) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

async fn post_json(app: &TestApp, token: &str, query: &str, body: &Value) -> Reply {
    let path = format!("/api/v1/observations{query}");
    post(app, token, &path, "application/json", body.to_string()).await
}

fn csv_body(code: &str, period: &str) -> String {
    format!("indicator,unit,period,value\n{code},HCM,{period},4\n")
}

fn sdmx_csv_body(code: &str, period: &str) -> String {
    let period = period.replace('-', "-M");
    format!(
        "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\n\
         dataflow,VN_HCMSTC:DF_NGANSACH(1.0),I,{code},VN-SG,{period},4\n"
    )
}

/// A foreign refusal: 403 naming the clean code and the row.
fn assert_foreign(reply: &Reply, what: &str) {
    assert_problem(reply, 403, "foreign_indicators");
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("EXPORT_TURNOVER"), "{what}: {reply:?}");
}

/// Every revision EXPORT_TURNOVER of the city holds for one period, read from the store.
async fn stored(app: &TestApp, period: &str) -> Vec<f64> {
    app.store
        .revisions("EXPORT_TURNOVER", "HCM", period)
        .await
        .expect("revisions")
        .iter()
        .filter_map(|revision| revision.value)
        .collect()
}

async fn another_departments_padded_codes_are_refused_in_every_format(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let period = "2025-03";
    for (padding, code) in PADDED {
        let reply = post_json(&app, &app.finance, "", &json_body(code, period, json!(4))).await;
        assert_foreign(&reply, &format!("JSON with {padding}"));
        assert_eq!(
            reply.body["errors"][0]["pointer"],
            "/observations/0/indicator"
        );

        let path = "/api/v1/observations";
        let reply = post(&app, &app.finance, path, "text/csv", csv_body(code, period)).await;
        assert_foreign(&reply, &format!("CSV with {padding}"));
        // A CSV's row is named by its line, as its sender finds it (RFC 7111's fragment).
        assert_eq!(reply.body["errors"][0]["pointer"], "#row=2");
        assert_eq!(
            reply.body["errors"][0]["message"],
            "line 2: indicator of another department"
        );

        let body = sdmx_csv_body(code, period);
        let reply = post(&app, &app.finance, path, SDMX_CSV, body).await;
        assert_foreign(&reply, &format!("SDMX-CSV with {padding}"));
        assert_eq!(reply.body["errors"][0]["pointer"], "#row=2");
    }
    assert_eq!(stored(&app, period).await, [] as [f64; 0]);
    app.stop().await;
}

async fn the_owners_padded_codes_are_stored_under_the_clean_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/api/v1/observations";
    for (month, (padding, code)) in (1..).zip(PADDED) {
        let json_period = format!("2024-{month:02}");
        let reply = post_json(
            &app,
            &app.customs,
            "",
            &json_body(code, &json_period, json!(7)),
        )
        .await;
        assert_eq!(reply.status, 200, "JSON with {padding}: {reply:?}");
        assert_eq!(reply.body["accepted"], 1, "JSON with {padding}: {reply:?}");
        assert_eq!(
            stored(&app, &json_period).await,
            [7.0],
            "JSON with {padding}"
        );

        let csv_period = format!("2024-{:02}", month + 5);
        let reply = post(
            &app,
            &app.customs,
            path,
            "text/csv",
            csv_body(code, &csv_period),
        )
        .await;
        assert_eq!(reply.body["accepted"], 1, "CSV with {padding}: {reply:?}");
        assert_eq!(stored(&app, &csv_period).await, [4.0], "CSV with {padding}");
    }
    let reply = post(
        &app,
        &app.customs,
        path,
        SDMX_CSV,
        sdmx_csv_body("\u{200b}EXPORT_TURNOVER", "2023-11"),
    )
    .await;
    assert_eq!(reply.body["accepted"], 1, "SDMX-CSV: {reply:?}");
    assert_eq!(stored(&app, "2023-11").await, [4.0]);
    // The reads name the clean code only.
    let series = app
        .series("EXPORT_TURNOVER", "HCM", "2024-01", "2024-12")
        .await;
    assert_eq!(series.len(), 10, "{series:?}");
    app.stop().await;
}

async fn a_code_in_another_case_is_an_unknown_indicator(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for token in [&app.customs, &app.finance] {
        let body = json_body("export_turnover", "2025-04", json!(4));
        let reply = post_json(&app, token, "", &body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["accepted"], 0, "{reply:?}");
        assert_eq!(reply.body["rejected"][0]["code"], "unknown_indicator");
        let message = reply.body["rejected"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("export_turnover"), "{reply:?}");
    }
    assert_eq!(stored(&app, "2025-04").await, [] as [f64; 0]);
    app.stop().await;
}

fn dhis2_body(data_element: &str, value: Value) -> String {
    json!({
        "period": "202603",
        "orgUnit": BEN_THANH,
        "dataValues": [{"dataElement": data_element, "value": value}]
    })
    .to_string()
}

async fn ehr_coverage(app: &TestApp) -> Vec<(String, f64)> {
    app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-03", "2026-03")
        .await
}

async fn padded_dhis2_data_elements_are_mapped_and_scoped_as_clean_ones(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/api/dataValueSets";
    let paddings = [
        format!(" {EHR}"),
        format!("{EHR}\t"),
        format!("\u{a0}{EHR}"),
        format!("\u{200b}{EHR}\u{feff}"),
    ];
    for padded in &paddings {
        let body = dhis2_body(padded, json!("84.5"));
        let reply = post(&app, &app.customs, path, "application/json", body).await;
        // A DHIS2 web message, as DHIS2 clients read a refusal.
        assert_eq!(reply.status, 403, "{reply:?}");
        assert_eq!(reply.body["httpStatus"], "Forbidden", "{reply:?}");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("/dataValues/0/dataElement"),
            "{reply:?}"
        );
    }
    assert_eq!(ehr_coverage(&app).await, []);

    let health = mint_token(&app.store, Role::Department, Some("HEALTH"))
        .await
        .1;
    let body = dhis2_body(&paddings[3], json!("84.5"));
    let reply = post(&app, &health, path, "application/json", body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(ehr_coverage(&app).await, [("2026-03".to_owned(), 84.5)]);
    app.stop().await;
}

/// A department's JSON endpoint serving one fixed body.
async fn serve_json(body: String) -> String {
    let body = Arc::new(Mutex::new(body));
    let router = Router::new().route(
        "/feed.json",
        get(move || {
            let body = body.lock().expect("body").clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/feed.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn json_collector(name: &str, url: &str, department: &str) -> PullCollector {
    toml::from_str(&format!(
        "name = \"{name}\"\nurl = \"{url}\"\nformat = \"json\"\ndepartment = \"{department}\"\n\
         every = \"1h\""
    ))
    .expect("a valid [[pull]] entry")
}

async fn a_pulled_body_with_padded_codes_is_scoped_like_a_push(backend: Backend) {
    let rows: Vec<Value> = PADDED
        .iter()
        .zip(1..)
        .map(|((_, code), month)| {
            json!({"indicator": code, "unit": "HCM", "period": format!("2024-{month:02}"), "value": 5})
        })
        .collect();
    let url = serve_json(json!({ "observations": rows }).to_string()).await;
    let foreign = unique("padded-foreign");
    let owner = unique("padded-owner");
    let Some(app) = spawn_app_with_feeds(backend, |s, feeds| {
        allow_loopback(s);
        feeds.pull = vec![
            json_collector(&foreign, &url, "FINANCE"),
            json_collector(&owner, &url, "CUSTOMS"),
        ];
    })
    .await
    else {
        return;
    };
    // Both feeds fetch the same body as soon as they start; the owner's stores it.
    let health = eventually("the foreign feed refused", async || {
        let health = feed_health(&app, &foreign).await;
        (health["state"] == "failing").then_some(health)
    })
    .await;
    let error = health["last_error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("EXPORT_TURNOVER"), "{health}");
    assert!(error.contains("nothing was stored"), "{health}");
    let health = eventually("the owner's feed stored", async || {
        let health = feed_health(&app, &owner).await;
        (health["total"]["accepted"] == 5).then_some(health)
    })
    .await;
    assert_eq!(health["state"], "ok", "{health}");
    // Each period once: the foreign feed stored none of its own.
    for month in 1..=5 {
        let period = format!("2024-{month:02}");
        assert_eq!(stored(&app, &period).await, [5.0], "{period}");
    }
    app.stop().await;
}

async fn a_number_as_text_with_a_comma_needs_the_decimal_mark_declared(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-01", "value": "1,234"},
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-02", "value": "1234.5"},
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-03", "value": 1234.5}
    ]});
    let reply = post_json(&app, &app.customs, "", &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    let rejected = &reply.body["rejected"][0];
    assert_eq!(rejected["index"], 0, "{reply:?}");
    assert_eq!(rejected["code"], "ambiguous_number", "{reply:?}");
    let message = rejected["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1,234") && message.contains("decimal=comma"),
        "{message}"
    );
    assert_eq!(stored(&app, "2025-01").await, [] as [f64; 0]);
    assert_eq!(stored(&app, "2025-02").await, [1234.5]);

    // Declared, the comma is the decimal mark and points group thousands.
    let declared = json!({"observations": [
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-01", "value": "1,234"},
        {"indicator": "EXPORT_TURNOVER", "unit": "HCM", "period": "2025-04", "value": "4.410,25"}
    ]});
    let reply = post_json(&app, &app.customs, "?decimal=comma", &declared).await;
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    assert_eq!(stored(&app, "2025-01").await, [1.234]);
    assert_eq!(stored(&app, "2025-04").await, [4410.25]);

    let unknown = post_json(&app, &app.customs, "?decimal=dot", &declared).await;
    assert_problem(&unknown, 422, "invalid_field");
    assert_eq!(
        unknown.body["errors"][0]["pointer"], "decimal",
        "{unknown:?}"
    );
    let path = "/api/v1/observations?decimal=point";
    let csv = "indicator,unit,period,value\nEXPORT_TURNOVER,HCM,2025-05,\"1,5\"\n";
    let disagree = post(
        &app,
        &app.customs,
        path,
        "text/csv; decimal=comma",
        csv.into(),
    )
    .await;
    assert_problem(&disagree, 422, "invalid_field");

    // Undeclared, a CSV's lone comma is the decimal mark only where it cannot group thousands:
    // `8,558` may be 8558, and is refused rather than stored a thousand times too small.
    let csv = "indicator,unit,period,value\n\
               EXPORT_TURNOVER,HCM,2025-06,\"8,558\"\n\
               EXPORT_TURNOVER,HCM,2025-07,\"4120,5\"\n";
    let path = "/api/v1/observations";
    let reply = post(&app, &app.customs, path, "text/csv", csv.into()).await;
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    assert_eq!(reply.body["rejected"][0]["code"], "ambiguous_number");
    assert_eq!(stored(&app, "2025-06").await, [] as [f64; 0]);
    assert_eq!(stored(&app, "2025-07").await, [4120.5]);

    // A file saved by a spreadsheet set to Vietnamese (`;`, CRLF) writes its points to group
    // thousands: `4.512` is 4512 there, refused rather than stored as 4.512.
    let csv = "indicator;unit;period;value\r\n\
               EXPORT_TURNOVER;HCM;2025-08;4.398,2\r\n\
               EXPORT_TURNOVER;HCM;2025-09;4.512\r\n\
               EXPORT_TURNOVER;HCM;2025-10;4612,3\r\n";
    let reply = post(&app, &app.customs, path, "text/csv", csv.into()).await;
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    let codes: Vec<&str> = reply.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert_eq!(codes, ["ambiguous_number", "ambiguous_number"], "{reply:?}");
    assert!(
        reply.body["rejected"][1]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("line 3: `4.512` is ambiguous")),
        "{reply:?}"
    );
    // And in Vietnamese, for the department's staff.
    assert!(
        reply.body["rejected"][1]["message_vi"]
            .as_str()
            .is_some_and(|m| m.starts_with("dòng 3: `4.512` không rõ nghĩa")),
        "{reply:?}"
    );
    assert_eq!(stored(&app, "2025-09").await, [] as [f64; 0]);
    assert_eq!(stored(&app, "2025-10").await, [4612.3]);
    // Declared, the same file is read whole (October again, a duplicate).
    let declared = "text/csv; decimal=comma";
    let reply = post(&app, &app.customs, path, declared, csv.into()).await;
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    assert_eq!(reply.body["duplicates"], 1, "{reply:?}");
    assert_eq!(stored(&app, "2025-09").await, [4512.0]);

    // DHIS2 values are text: the same rule, and the same declaration.
    let health = mint_token(&app.store, Role::Department, Some("HEALTH"))
        .await
        .1;
    let path = "/api/dataValueSets";
    let body = dhis2_body(EHR, json!("84,5"));
    let reply = post(&app, &health, path, "application/json", body.clone()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "WARNING", "{reply:?}");
    let conflict = &reply.body["response"]["conflicts"][0];
    assert_eq!(conflict["errorCode"], "E7619", "{reply:?}");
    assert!(
        conflict["value"]
            .as_str()
            .unwrap_or_default()
            .contains("ambiguous"),
        "{reply:?}"
    );
    assert_eq!(ehr_coverage(&app).await, []);
    let path = "/api/dataValueSets?decimal=comma";
    let reply = post(&app, &health, path, "application/json", body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(ehr_coverage(&app).await, [("2026-03".to_owned(), 84.5)]);
    app.stop().await;
}

/// A count written with a thousands dot, as Vietnamese write it, reads as a fraction: refused
/// by its line, never stored a thousand times too small; the count itself is stored.
async fn a_count_with_a_thousands_dot_is_refused_as_not_whole(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let csv = "indicator,unit,period,value\n\
               NEW_ENTERPRISES,HCM,2025-06,1.234\n\
               NEW_ENTERPRISES,HCM,2025-07,1234\n";
    let reply = post(
        &app,
        &app.finance,
        "/api/v1/observations",
        "text/csv",
        csv.into(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    let refused = &reply.body["rejected"][0];
    assert_eq!(refused["code"], "value_not_whole", "{reply:?}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("line 2: value 1.234 is not a whole number"),
        "{message}"
    );
    let counts = |period: &'static str| {
        let store = app.store.clone();
        async move {
            store
                .revisions("NEW_ENTERPRISES", "HCM", period)
                .await
                .expect("revisions")
                .iter()
                .filter_map(|revision| revision.value)
                .collect::<Vec<f64>>()
        }
    };
    assert_eq!(counts("2025-06").await, [] as [f64; 0]);
    assert_eq!(counts("2025-07").await, [1234.0]);
    let json = json!({"observations": [
        {"indicator": "NEW_ENTERPRISES", "unit": "HCM", "period": "2025-08", "value": 1.5}
    ]});
    let reply = post_json(&app, &app.finance, "", &json).await;
    assert_eq!(
        reply.body["rejected"][0]["code"], "value_not_whole",
        "{reply:?}"
    );
    app.stop().await;
}

crate::on_every_backend!(
    another_departments_padded_codes_are_refused_in_every_format,
    the_owners_padded_codes_are_stored_under_the_clean_code,
    a_code_in_another_case_is_an_unknown_indicator,
    padded_dhis2_data_elements_are_mapped_and_scoped_as_clean_ones,
    a_pulled_body_with_padded_codes_is_scoped_like_a_push,
    a_number_as_text_with_a_comma_needs_the_decimal_mark_declared,
    a_count_with_a_thousands_dot_is_refused_as_not_whole,
);
