//! What InfluxDB tools call around their writes, over real HTTP: `/ping` and `/health`, which
//! agents poll, and the `SHOW` statements of `/query` that 1.x clients send on connect; then
//! both official Python clients connecting as they do (tests/support/influx_connect.py).

use std::path::PathBuf;

use ktxh::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{execute_sql, mint_token, spawn_app, Backend, Reply, TestApp};
use crate::on_every_backend;

const VERSION: &str = concat!("ktxh-", env!("CARGO_PKG_VERSION"));

/// Forgets the newest migration, as a database restored from a backup taken before it ran.
const FORGET_NEWEST_MIGRATION: &str =
    "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn assert_version_headers(response: &reqwest::Response) {
    assert_eq!(header(response, "x-influxdb-version"), Some(VERSION));
    assert_eq!(header(response, "x-influxdb-build"), Some("OSS"));
}

/// `GET /query` with the token as InfluxDB 1.x clients send it: the Basic password.
async fn query(app: &TestApp, token: &str, params: &[(&str, &str)]) -> Reply {
    app.send(
        app.client
            .get(app.url("/query"))
            .query(params)
            .basic_auth("so-nnmt", Some(token)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_204_with_the_version_headers_without_a_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let response = app
            .client
            .request(method.clone(), app.url("/ping"))
            .send()
            .await
            .expect("ping");
        assert_eq!(response.status(), 204, "{method}");
        assert_version_headers(&response);
        assert_eq!(response.text().await.expect("body"), "", "{method}");
    }

    // `verbose` as InfluxDB reads it: anything but empty, `0` or `false`.
    let verbose = app
        .client
        .get(app.url("/ping?verbose=true"))
        .send()
        .await
        .expect("ping");
    assert_eq!(verbose.status(), 200);
    assert_version_headers(&verbose);
    let body: Value = verbose.json().await.expect("JSON");
    assert_eq!(body, json!({"version": VERSION}));
    for quiet in ["false", "0", ""] {
        let response = app
            .client
            .get(app.url(&format!("/ping?verbose={quiet}")))
            .send()
            .await
            .expect("ping");
        assert_eq!(response.status(), 204, "verbose={quiet}");
    }

    // A wrong token does not make the service look down.
    let response = app
        .client
        .get(app.url("/ping"))
        .header("authorization", "Token wrong")
        .send()
        .await
        .expect("ping");
    assert_eq!(response.status(), 204);
    app.stop().await;
}

/// `/health` in InfluxDB 2.x's shape, following the store's readiness as `/readyz` does.
async fn health_passes_in_the_v2_shape_and_fails_with_the_store(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(response.status(), 200);
    assert_version_headers(&response);
    assert_eq!(
        header(&response, "content-type"),
        Some("application/json; charset=utf-8")
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({
            "name": "influxdb", "message": "ready for queries and writes", "status": "pass",
            "checks": [], "version": VERSION, "commit": body["commit"],
        })
    );
    assert!(
        body["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );

    // A database lacking a migration of this build is not ready for writes.
    execute_sql(app.database_url(), FORGET_NEWEST_MIGRATION).await;
    let unready = app.send(app.client.get(app.url("/health"))).await;
    assert_eq!(unready.status, 503, "{unready:?}");
    assert_eq!(unready.body["name"], "influxdb", "{unready:?}");
    assert_eq!(unready.body["status"], "fail", "{unready:?}");
    assert_eq!(unready.body["checks"][0]["name"], "store", "{unready:?}");
    assert_eq!(unready.body["checks"][0]["status"], "fail", "{unready:?}");
    let message = unready.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("migrations"), "{unready:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_show_statements_of_a_connecting_client_are_answered_in_the_1x_shape() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (_, token) = mint_token(&app.store, Role::Department, Some("AGRI_ENV")).await;
    let reply = query(&app, &token, &[("q", "SHOW DATABASES")]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.content_type, "application/json", "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"results": [{"statement_id": 0, "series": [
            {"name": "databases", "columns": ["name"], "values": [["ktxh"]]}
        ]}]})
    );

    // Several statements, one result each; a statement's own error stays in its result.
    let reply = query(
        &app,
        &app.viewer,
        &[(
            "q",
            "show retention policies on \"quan-trac\"; SHOW MEASUREMENTS",
        )],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let results = &reply.body["results"];
    assert_eq!(results[0]["statement_id"], 0);
    assert_eq!(
        results[0]["series"][0]["values"],
        json!([["autogen", "0s", "168h0m0s", 1, "0s", "0s", true]]),
        "{reply:?}"
    );
    assert_eq!(
        results[1],
        json!({"statement_id": 1, "error": "database name required"})
    );

    // The measurements `config/feeds.toml` maps, from a `POST` form as InfluxDB also reads.
    let reply = app
        .send(
            app.client
                .post(app.url("/query?db=telegraf"))
                .header("authorization", format!("Token {token}"))
                .form(&[("q", "SHOW MEASUREMENTS")]),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let series = &reply.body["results"][0]["series"][0];
    assert_eq!(series["name"], "measurements", "{reply:?}");
    let names: Vec<&str> = series["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|row| row[0].as_str())
        .collect();
    let mut expected: Vec<String> = crate::helpers::shipped_feeds()
        .mappings
        .line
        .measurements
        .into_iter()
        .map(|m| m.measurement)
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(names, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_statements_and_missing_tokens_are_refused_in_influx_error_shape() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (_, token) = mint_token(&app.store, Role::Department, Some("POLICE")).await;

    // Nothing runs when one statement is not answered, not even the SHOW before it.
    for q in [
        "SHOW DATABASES; DROP DATABASE ktxh",
        "SELECT mean(\"accidents\") FROM \"traffic\" WHERE time > now() - 1d",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /traffic/",
        "CREATE DATABASE quan_trac",
    ] {
        let response = app
            .client
            .get(app.url("/query"))
            .query(&[("q", q), ("db", "ktxh")])
            .basic_auth("x", Some(&token))
            .send()
            .await
            .expect("query");
        assert_eq!(response.status(), 400, "{q}");
        assert_version_headers(&response);
        let error_header = header(&response, "x-influxdb-error")
            .expect("X-InfluxDB-Error")
            .to_owned();
        let body: Value = response.json().await.expect("JSON");
        let refused = if q.starts_with("SHOW DATABASES;") {
            "DROP DATABASE ktxh"
        } else {
            q
        };
        let error = body["error"].as_str().expect("error");
        assert!(error.contains(&format!("`{refused}`")), "{q}: {body}");
        assert!(error.contains("not supported"), "{body}");
        assert_eq!(error_header, error);
        assert_eq!(body["code"], "invalid", "{body}");
        assert_eq!(body["type"], "urn:ktxh:problem:unsupported_statement");
        assert_eq!(body["status"], 400);
        assert_eq!(body["detail"], body["error"]);
    }

    let reply = query(&app, &token, &[("db", "ktxh")]).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body["error"], r#"missing required parameter "q""#);
    let reply = query(&app, &token, &[("q", "SHOW RETENTION POLICIES ON \"x")]).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let error = reply.body["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("error parsing query"), "{reply:?}");

    // A token as for the writes: none, or a wrong one, is a 401 before any statement is read.
    let anonymous = app
        .send(
            app.client
                .get(app.url("/query"))
                .query(&[("q", "SHOW DATABASES")]),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(anonymous.body["code"], "unauthorized", "{anonymous:?}");
    assert!(anonymous.body["error"].is_string(), "{anonymous:?}");
    let wrong = query(
        &app,
        &format!("ktxh_0000000000000000_{}", "0".repeat(64)),
        &[("q", "SHOW DATABASES")],
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    // Credentials stay out of URLs here as on `/write`: a password in `p` is refused.
    let in_url = app
        .send(app.client.get(app.url("/query")).query(&[
            ("q", "SHOW DATABASES"),
            ("u", "x"),
            ("p", token.as_str()),
        ]))
        .await;
    assert_eq!(in_url.status, 400, "{in_url:?}");
    assert_eq!(
        in_url.body["type"], "urn:ktxh:problem:token_in_url",
        "{in_url:?}"
    );
    app.stop().await;
}

fn python_with_influx_clients() -> Option<PathBuf> {
    crate::helpers::python_with("influxdb_client, influxdb", "influxdb-client and influxdb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_official_python_clients_see_the_service_up_and_list_its_database() {
    let Some(python) = python_with_influx_clients() else {
        return;
    };
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (_, token) = mint_token(&app.store, Role::Department, Some("AGRI_ENV")).await;
    crate::helpers::run_client_script(&python, "influx_connect.py", &[&app.url(""), &token]).await;
    app.stop().await;
}

on_every_backend!(health_passes_in_the_v2_shape_and_fails_with_the_store);
