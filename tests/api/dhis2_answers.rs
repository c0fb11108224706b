//! DHIS2's counts, versioned paths and clients over real HTTP: a changed value is `updated`,
//! `/api/38`–`/api/41` answer as those versions do, and dhis2-client (the HISP Centre's Python
//! client) posts and reads its answers as it does from DHIS2.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::dhis2::{
    assert_web_message, counts, health_token, import_count, BEN_THANH, EHR, VALUES_CSV,
};
use crate::helpers::{spawn_app, Backend, Reply, TestApp};
use crate::on_every_backend;

/// Posts a JSON body to `path` with a DHIS2 personal access token.
async fn post_to(app: &TestApp, path: &str, token: &str, body: &Value) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .header("authorization", format!("ApiToken {token}"))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn one_value(period: &str, value: &str) -> Value {
    json!({"dataValues": [
        {"dataElement": EHR, "period": period, "orgUnit": BEN_THANH, "value": value}
    ]})
}

async fn values_are_counted_as_dhis2_counts_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = health_token(&app).await;
    let path = "/api/dataValueSets";

    let first = post_to(&app, path, &token, &one_value("202601", "80.0")).await;
    assert_eq!(import_count(&first), counts(1, 0, 0, 0), "{first:?}");
    // A different value for the same period: a new revision, counted as DHIS2 counts it.
    let changed = post_to(&app, path, &token, &one_value("202601", "81.5")).await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(import_count(&changed), counts(0, 1, 0, 0), "{changed:?}");
    // The same value again changes nothing.
    let same = post_to(&app, path, &token, &one_value("202601", "81.5")).await;
    assert_eq!(import_count(&same), counts(0, 0, 1, 0), "{same:?}");

    // One set of every kind: a new period, a change, a repeat, a deletion, a refused value.
    let mixed = json!({"orgUnit": BEN_THANH, "dataValues": [
        {"dataElement": EHR, "period": "202602", "value": "82"},
        {"dataElement": EHR, "period": "202601", "value": "83"},
        {"dataElement": EHR, "period": "202602", "value": "82"},
        {"dataElement": EHR, "period": "202601", "deleted": true},
        {"dataElement": EHR, "period": "202603", "deleted": true},
        {"dataElement": "zzzzzzzzzzz", "period": "202601", "value": "1"},
    ]});
    let reply = post_to(&app, path, &token, &mixed).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "WARNING", "{reply:?}");
    // 202602 new; 202601 changed then deleted; the repeat, the deletion of nothing and the
    // unmapped element ignored.
    assert_eq!(import_count(&reply), counts(1, 1, 3, 1), "{reply:?}");
    // A value for a period whose value was deleted is imported anew (DHIS2: soft-deleted).
    let again = post_to(&app, path, &token, &one_value("202601", "84")).await;
    assert_eq!(import_count(&again), counts(1, 0, 0, 0), "{again:?}");

    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-02")
            .await,
        [("2026-01".to_owned(), 84.0), ("2026-02".to_owned(), 82.0)]
    );
    let revisions = app
        .get(
            "/api/v1/observations/EHR_COVERAGE/P_BEN_THANH/2026-01/revisions",
            &app.viewer,
        )
        .await;
    assert_eq!(
        revisions.body["revisions"].as_array().map(Vec::len),
        Some(5),
        "{revisions:?}"
    );

    // The native receipt says the same of a change, and leaves the new counts out when 0.
    let native = app
        .post_observations(
            &token,
            &json!({"observations": [{"indicator": "EHR_COVERAGE", "unit": "P_BEN_THANH",
                "period": "2026-02", "value": 82.5}]}),
        )
        .await;
    assert_eq!(
        native.body,
        json!({"accepted": 1, "duplicates": 0, "rejected": [], "updated": 1}),
        "{native:?}"
    );
    app.stop().await;
}

async fn versioned_paths_answer_as_their_dhis2_version(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = health_token(&app).await;
    for version in ["38", "39", "40", "41"] {
        let path = format!("/api/{version}/dataValueSets");
        let reply = post_to(&app, &path, &token, &one_value("202601", version)).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(reply.body["status"], "OK", "{path}: {reply:?}");
        let expected = if version == "38" {
            counts(1, 0, 0, 0)
        } else {
            counts(0, 1, 0, 0)
        };
        assert_eq!(import_count(&reply), expected, "{path}: {reply:?}");
    }
    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-01")
            .await,
        [("2026-01".to_owned(), 41.0)]
    );

    // Up to 2.42 DHIS2 answers an import with conflicts 409 Conflict, status WARNING.
    let auth = format!("ApiToken {token}");
    let csv = app
        .send(
            app.client
                .post(app.url("/api/40/dataValueSets"))
                .header("authorization", &auth)
                .header("content-type", "application/csv")
                .body(VALUES_CSV),
        )
        .await;
    assert_eq!(csv.status, 409, "{csv:?}");
    assert_eq!(csv.body["httpStatus"], "Conflict");
    assert_eq!(csv.body["httpStatusCode"], 409);
    assert_eq!(csv.body["status"], "WARNING");
    assert_eq!(
        csv.body["message"],
        "One more conflicts encountered, please check import summary."
    );
    assert_eq!(csv.body["response"]["status"], "WARNING");
    assert_eq!(csv.body["response"]["rejectedIndexes"], json!([2, 3]));
    assert_eq!(
        csv.body["response"]["conflicts"][0]["errorCode"], "E7611",
        "{csv:?}"
    );

    // Versions not served are DHIS2's 404, before anything else is looked at.
    for path in [
        "/api/37/dataValueSets",
        "/api/42/dataValueSets",
        "/api/040/dataValueSets",
        "/api/latest/dataValueSets",
    ] {
        let reply = post_to(&app, path, &token, &one_value("202602", "1")).await;
        assert_web_message(&reply, 404, "Not Found");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("38, 39, 40, 41"), "{path}: {message}");
    }
    assert!(app
        .series("EHR_COVERAGE", "P_BEN_THANH", "2026-02", "2026-02")
        .await
        .is_empty());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// dhis2-client
// ---------------------------------------------------------------------------------------------

fn python_with_dhis2_client() -> Option<PathBuf> {
    crate::helpers::python_with("dhis2_client", "dhis2-client")
}

async fn dhis2_client_posts_a_changed_value_and_reads_updated(backend: Backend) {
    let Some(python) = python_with_dhis2_client() else {
        return;
    };
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = health_token(&app).await;
    // The client joins its paths to the base URL, as to a DHIS2 server's.
    let base = app.url("");
    crate::helpers::run_client_script(
        &python,
        "dhis2_post.py",
        &[base.trim_end_matches('/'), &token, &app.viewer],
    )
    .await;

    // What the client was told is what is stored: the changed value, and the valid one of the
    // set with a conflict.
    assert_eq!(
        app.series("EHR_COVERAGE", "P_BEN_THANH", "2026-01", "2026-02")
            .await,
        [("2026-01".to_owned(), 81.25), ("2026-02".to_owned(), 82.0)]
    );
    assert_eq!(
        app.revisions("EHR_COVERAGE", "P_BEN_THANH", "2026-01")
            .await
            .len(),
        2
    );
    app.stop().await;
}

on_every_backend!(
    values_are_counted_as_dhis2_counts_them,
    versioned_paths_answer_as_their_dhis2_version,
    dhis2_client_posts_a_changed_value_and_reads_updated,
);
