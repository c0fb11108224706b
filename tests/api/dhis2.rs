//! `POST /api/dataValueSets` over real HTTP: DHIS2's data value sets, JSON and CSV, with the
//! mapping of `config/feeds.toml` (`[dhis2]`), answered with DHIS2 import summaries.

use ktxh::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, mint_token, spawn_app, spawn_app_with, Backend, Reply, TestApp,
};
use crate::on_every_backend;

const MONTHLY: &str = include_str!("../fixtures/dhis2/monthly.json");
const BULK: &str = include_str!("../fixtures/dhis2/bulk.json");
const CONFLICTS: &str = include_str!("../fixtures/dhis2/conflicts.json");
pub(crate) const VALUES_CSV: &str = include_str!("../fixtures/dhis2/values.csv");
const CODES_CSV: &str = include_str!("../fixtures/dhis2/codes.csv");

// Ids of config/feeds.toml.
pub(crate) const EHR: &str = "omnd7tBJRKP";
pub(crate) const BEN_THANH: &str = "xsMl4TaOBMv";

pub(crate) async fn health_token(app: &TestApp) -> String {
    mint_token(&app.store, Role::Department, Some("HEALTH"))
        .await
        .1
}

/// Posts a body with an `Authorization` header as DHIS2 clients send it.
async fn post(
    app: &TestApp,
    authorization: &str,
    query: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/dataValueSets{query}")))
            .header("authorization", authorization)
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

pub(crate) fn import_count(reply: &Reply) -> Value {
    reply.body["response"]["importCount"].clone()
}

fn count(imported: u64, ignored: u64, deleted: u64) -> Value {
    counts(imported, 0, ignored, deleted)
}

pub(crate) fn counts(imported: u64, updated: u64, ignored: u64, deleted: u64) -> Value {
    json!({"imported": imported, "updated": updated, "ignored": ignored, "deleted": deleted})
}

/// A DHIS2 web message refusing the request (`WebMessageUtils.unauthorized`, `.forbidden`,
/// `.notFound`): JSON, not problem+json, with DHIS2's fields.
#[track_caller]
pub(crate) fn assert_web_message(reply: &Reply, status: u16, reason: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.content_type, "application/json", "{reply:?}");
    assert_eq!(reply.body["httpStatus"], reason, "{reply:?}");
    assert_eq!(reply.body["httpStatusCode"], status, "{reply:?}");
    assert_eq!(reply.body["status"], "ERROR", "{reply:?}");
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{reply:?}"
    );
    assert!(
        reply.body.get("type").is_none(),
        "not problem+json: {reply:?}"
    );
}

async fn data_value_sets_are_imported_and_read_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = health_token(&app).await;

    // The manual's first form: period and org unit on the set; a personal access token.
    let first = post(
        &app,
        &format!("ApiToken {token}"),
        "",
        "application/json",
        MONTHLY,
    )
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.body["httpStatus"], "OK");
    assert_eq!(first.body["httpStatusCode"], 200);
    assert_eq!(first.body["status"], "OK");
    assert_eq!(first.body["response"]["responseType"], "ImportSummary");
    assert_eq!(first.body["response"]["status"], "SUCCESS");
    assert_eq!(import_count(&first), count(2, 0, 0));
    assert_eq!(first.body["response"]["conflicts"], json!([]));

    // The bulk form, each value with its own period and org unit; Basic auth with the token as
    // password, as `curl -u` sends it.
    let basic = app
        .send(
            app.client
                .post(app.url("/api/dataValueSets"))
                .basic_auth("yte.hcm", Some(&token))
                .header("content-type", "application/json;charset=UTF-8")
                .body(BULK),
        )
        .await;
    assert_eq!(basic.status, 200, "{basic:?}");
    assert_eq!(import_count(&basic), count(4, 0, 0));

    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-02")
            .await,
        [("2026-01".to_owned(), 82.5), ("2026-02".to_owned(), 83.1)]
    );
    assert_eq!(
        app.series("EHR_COVERAGE", "P_TAN_DINH", "2026-01", "2026-12")
            .await,
        [("2026-02".to_owned(), 79.0)]
    );
    assert_eq!(
        app.series(
            "FULL_IMMUNIZATION_RATE",
            "P_BEN_THANH",
            "2026-01",
            "2026-12"
        )
        .await,
        [("2026-01".to_owned(), 96.4)]
    );
    assert_eq!(
        app.series("HOSPITAL_BEDS_PER_10K", "HCM", "2025", "2025")
            .await,
        [("2025".to_owned(), 31.4)]
    );
    let revisions = app
        .get(
            "/api/v1/observations/EHR_COVERAGE/P_BEN_THANH/2026-01/revisions",
            &app.viewer,
        )
        .await;
    assert_eq!(
        revisions.body["revisions"][0]["source"], "yte.benthanh",
        "{revisions:?}"
    );

    // A retry changes nothing: DHIS2 counts unchanged values as ignored, without conflicts.
    let again = post(
        &app,
        &format!("ApiToken {token}"),
        "",
        "application/json",
        MONTHLY,
    )
    .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(import_count(&again), count(0, 2, 0));
    app.stop().await;
}

async fn csv_files_are_imported_line_by_line(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let auth = format!("ApiToken {}", health_token(&app).await);

    // Values refused: 200 with status WARNING, as DHIS2 answers since 2.43.
    let reply = post(&app, &auth, "", "application/csv", VALUES_CSV).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["httpStatus"], "OK");
    assert_eq!(reply.body["httpStatusCode"], 200);
    assert_eq!(reply.body["status"], "WARNING");
    assert_eq!(
        reply.body["message"],
        "Import completed with warnings, please check import summary."
    );
    assert_eq!(reply.body["response"]["status"], "WARNING");
    assert_eq!(import_count(&reply), count(3, 2, 0));
    assert_eq!(reply.body["response"]["rejectedIndexes"], json!([2, 3]));
    let conflicts = reply.body["response"]["conflicts"]
        .as_array()
        .expect("conflicts");
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert_eq!(conflicts[0]["errorCode"], "E7611");
    assert_eq!(conflicts[0]["object"], "2026W12");
    assert_eq!(conflicts[0]["indexes"], json!([2]));
    let weekly = conflicts[0]["value"].as_str().unwrap_or_default();
    assert!(
        weekly.starts_with("line 4: `2026W12` is a weekly period"),
        "{weekly}"
    );
    let short = conflicts[1]["value"].as_str().unwrap_or_default();
    assert!(
        short.starts_with("line 5: a data value line needs"),
        "{short}"
    );

    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-03", "2026-03")
            .await,
        [("2026-03".to_owned(), 84.0)]
    );
    // The Vietnamese decimal comma in a quoted cell.
    assert_eq!(
        app.series("EHR_COVERAGE", "P_SAI_GON", "2026-03", "2026-03")
            .await,
        [("2026-03".to_owned(), 80.5)]
    );

    // Codes instead of uids, no header line, text/csv.
    let codes = post(&app, &auth, "?idScheme=CODE", "text/csv", CODES_CSV).await;
    assert_eq!(codes.status, 200, "{codes:?}");
    assert_eq!(import_count(&codes), count(2, 0, 0));
    assert_eq!(
        codes.body["response"]["importOptions"]["idSchemes"]["orgUnitIdScheme"]["type"],
        "CODE"
    );
    assert_eq!(
        app.series("DOCTORS_PER_10K", "HCM", "2025", "2025").await,
        [("2025".to_owned(), 15.3)]
    );
    // The same file read by uid maps nothing: still WARNING, as DHIS2 says of every import
    // with conflicts.
    let by_uid = post(&app, &auth, "", "text/csv", CODES_CSV).await;
    assert_eq!(by_uid.status, 200, "{by_uid:?}");
    assert_eq!(by_uid.body["status"], "WARNING");
    assert_eq!(by_uid.body["response"]["status"], "WARNING");
    assert_eq!(import_count(&by_uid), count(0, 2, 0));
    app.stop().await;
}

async fn conflicts_name_each_problem_with_its_dhis2_error_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let auth = format!("ApiToken {}", health_token(&app).await);
    let reply = post(&app, &auth, "", "application/json", CONFLICTS).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "WARNING");
    assert_eq!(reply.body["response"]["status"], "WARNING");
    assert_eq!(import_count(&reply), count(1, 11, 0));
    assert_eq!(
        reply.body["response"]["rejectedIndexes"],
        json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    );
    let conflicts: Vec<(String, String, Value)> = reply.body["response"]["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| {
            (
                c["errorCode"].as_str().unwrap_or_default().to_owned(),
                c["object"].as_str().unwrap_or_default().to_owned(),
                c["indexes"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Value)> = [
        ("E7610", "zzzzzzzzzzz", json!([1, 2])),
        ("E7612", "yyyyyyyyyyy", json!([3])),
        ("E7611", "2026W20", json!([4])),
        ("E7632", "2026", json!([5])),
        ("E7641", "202712", json!([6])),
        ("E7619", "140", json!([7])),
        ("E7619", "nhiều", json!([8])),
        ("E7618", EHR, json!([9])),
        ("E7613", "Nu5Gioi1Tin", json!([10])),
        ("E7636", BEN_THANH, json!([11])),
    ]
    .into_iter()
    .map(|(code, object, indexes)| (code.to_owned(), object.to_owned(), indexes))
    .collect();
    assert_eq!(conflicts, expected);

    // Our own reasons travel in `value`, with the objects of the data value.
    let unmapped = &reply.body["response"]["conflicts"][0];
    assert!(
        unmapped["value"]
            .as_str()
            .unwrap_or_default()
            .contains("zzzzzzzzzzz` is not mapped"),
        "{unmapped}"
    );
    assert_eq!(unmapped["property"], "dataElement");
    assert_eq!(unmapped["objects"]["orgUnit"], BEN_THANH);
    let range = &reply.body["response"]["conflicts"][5];
    assert!(
        range["value"]
            .as_str()
            .unwrap_or_default()
            .contains("plausible range"),
        "{range}"
    );

    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-04", "2026-06")
            .await,
        [("2026-05".to_owned(), 86.0)]
    );
    app.stop().await;
}

async fn a_dry_run_validates_everything_and_stores_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = health_token(&app).await;
    let auth = format!("ApiToken {token}");
    let dry = post(&app, &auth, "?dryRun=true", "application/json", BULK).await;
    assert_eq!(dry.status, 200, "{dry:?}");
    assert_eq!(import_count(&dry), count(4, 0, 0));
    assert_eq!(dry.body["response"]["importOptions"]["dryRun"], true);
    let description = dry.body["response"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(description.contains("dry run"), "{description}");

    // The payload's own dryRun counts too, and conflicts are reported as in a real import.
    let with_conflicts = CONFLICTS.replacen('{', "{\"dryRun\": true,", 1);
    let dry_conflicts = post(&app, &auth, "", "application/json", &with_conflicts).await;
    assert_eq!(dry_conflicts.status, 200, "{dry_conflicts:?}");
    assert_eq!(dry_conflicts.body["status"], "WARNING");
    assert_eq!(import_count(&dry_conflicts), count(1, 11, 0));

    // Scope is checked as in a real import.
    let foreign = post(
        &app,
        &format!("ApiToken {}", app.finance),
        "?dryRun=true",
        "application/json",
        BULK,
    )
    .await;
    assert_web_message(&foreign, 403, "Forbidden");

    assert!(app
        .series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-12")
        .await
        .is_empty());
    assert!(app
        .series("HOSPITAL_BEDS_PER_10K", "HCM", "2025", "2025")
        .await
        .is_empty());
    app.stop().await;
}

async fn deleted_values_are_withdrawn(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let auth = format!("ApiToken {}", health_token(&app).await);
    let stored = post(&app, &auth, "", "application/json", BULK).await;
    assert_eq!(import_count(&stored), count(4, 0, 0), "{stored:?}");

    let deleted = json!({"dataValues": [
        {"dataElement": EHR, "period": "202602", "orgUnit": BEN_THANH, "deleted": true}
    ]});
    let reply = post(&app, &auth, "", "application/json", &deleted.to_string()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(import_count(&reply), count(0, 0, 1));
    assert!(app
        .series("EHR_COVERAGE", "P_BEN_THANH", "2026-02", "2026-02")
        .await
        .is_empty());

    // importStrategy=DELETE withdraws every value of the request, value or not.
    let csv = "Wq8qe5BSbW0,2025,q9jeqySujvj,,,31.4\n";
    let reply = post(
        &app,
        &auth,
        "?importStrategy=DELETE",
        "application/csv",
        csv,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(import_count(&reply), count(0, 0, 1));
    assert_eq!(
        reply.body["response"]["importOptions"]["importStrategy"],
        "DELETE"
    );
    assert!(app
        .series("HOSPITAL_BEDS_PER_10K", "HCM", "2025", "2025")
        .await
        .is_empty());
    // The other values are untouched.
    assert_eq!(
        app.series("EHR_COVERAGE", "P_TAN_DINH", "2026-02", "2026-02")
            .await,
        [("2026-02".to_owned(), 79.0)]
    );
    app.stop().await;
}

async fn callers_without_the_right_token_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let json_post = |authorization: String, query: &'static str| {
        let app = &app;
        async move { post(app, &authorization, query, "application/json", MONTHLY).await }
    };
    let anonymous = app
        .send(
            app.client
                .post(app.url("/api/dataValueSets"))
                .header("content-type", "application/json")
                .body(MONTHLY),
        )
        .await;
    // Refusals of the caller are DHIS2 web messages, which DHIS2 clients read.
    assert_web_message(&anonymous, 401, "Unauthorized");
    assert_web_message(
        &json_post("ApiToken d2pat_notoursatall".into(), "").await,
        401,
        "Unauthorized",
    );
    assert_web_message(
        &json_post("Basic bm8tY29sb24=".into(), "").await,
        401,
        "Unauthorized",
    );
    let viewer = json_post(format!("ApiToken {}", app.viewer), "").await;
    assert_web_message(&viewer, 403, "Forbidden");
    assert!(
        viewer.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("may not write"),
        "{viewer:?}"
    );
    // The same on a versioned path.
    let versioned = app
        .send(
            app.client
                .post(app.url("/api/40/dataValueSets"))
                .header("authorization", format!("ApiToken {}", app.viewer))
                .header("content-type", "application/json")
                .body(MONTHLY),
        )
        .await;
    assert_web_message(&versioned, 403, "Forbidden");

    // Finance may not write health's indicators: the whole set is refused, naming each value.
    let foreign = json_post(format!("ApiToken {}", app.finance), "").await;
    assert_web_message(&foreign, 403, "Forbidden");
    let detail = foreign.body["message"].as_str().unwrap_or_default();
    assert!(
        detail.contains("/dataValues/0/dataElement, /dataValues/1/dataElement")
            && detail.contains("FULL_IMMUNIZATION_RATE")
            && detail.contains("EHR_COVERAGE"),
        "{detail}"
    );
    let foreign_csv = post(
        &app,
        &format!("ApiToken {}", app.finance),
        "",
        "text/csv",
        VALUES_CSV,
    )
    .await;
    assert_web_message(&foreign_csv, 403, "Forbidden");
    let detail = foreign_csv.body["message"].as_str().unwrap_or_default();
    assert!(detail.contains("line 2"), "{detail}");

    let token = health_token(&app).await;
    let in_url = json_post(format!("ApiToken {token}"), "?token=abc").await;
    assert_problem(&in_url, 400, "token_in_url");

    assert!(app
        .series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-12")
        .await
        .is_empty());
    assert!(app
        .series(
            "FULL_IMMUNIZATION_RATE",
            "P_BEN_THANH",
            "2026-01",
            "2026-12"
        )
        .await
        .is_empty());
    app.stop().await;
}

async fn requests_that_are_not_data_value_sets_are_refused_whole(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.server.max_rows_per_request = 3).await else {
        return;
    };
    let auth = format!("ApiToken {}", health_token(&app).await);
    let malformed = post(&app, &auth, "", "application/json", "{\"dataValues\": [").await;
    assert_problem(&malformed, 400, "malformed_json");
    let wrong_type = post(
        &app,
        &auth,
        "",
        "application/json",
        r#"{"dataValues": [{"dataElement": 7}]}"#,
    )
    .await;
    assert_problem(&wrong_type, 422, "invalid_field");
    assert_eq!(
        wrong_type.body["errors"][0]["pointer"],
        "/dataValues/0/dataElement"
    );
    let xml = post(&app, &auth, "", "application/xml", "<dataValueSet/>").await;
    assert_problem(&xml, 415, "unsupported_media_type");

    for (query, parameter) in [
        ("?idScheme=NAME", "idScheme"),
        ("?orgUnitIdScheme=ATTRIBUTE:DnrLSdo4hMl", "orgUnitIdScheme"),
        ("?importStrategy=UPDATE", "importStrategy"),
        ("?dryRun=maybe", "dryRun"),
        ("?async=true", "async"),
    ] {
        let reply = post(&app, &auth, query, "application/json", MONTHLY).await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(
            reply.body["errors"][0]["pointer"], parameter,
            "{query}: {reply:?}"
        );
    }
    let payload_scheme = post(
        &app,
        &auth,
        "",
        "application/json",
        r#"{"idScheme": "NAME", "dataValues": []}"#,
    )
    .await;
    assert_problem(&payload_scheme, 422, "invalid_field");
    assert_eq!(payload_scheme.body["errors"][0]["pointer"], "/idScheme");

    let too_many = post(&app, &auth, "", "application/json", CONFLICTS).await;
    assert_problem(&too_many, 413, "too_many_rows");
    let detail = too_many.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("12 rows exceed the limit of 3"),
        "{detail}"
    );

    assert!(app
        .series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-12")
        .await
        .is_empty());
    app.stop().await;
}

on_every_backend!(
    data_value_sets_are_imported_and_read_back,
    csv_files_are_imported_line_by_line,
    conflicts_name_each_problem_with_its_dhis2_error_code,
    a_dry_run_validates_everything_and_stores_nothing,
    deleted_values_are_withdrawn,
    callers_without_the_right_token_store_nothing,
    requests_that_are_not_data_value_sets_are_refused_whole,
);
