//! The OpenAPI document (`GET /api/openapi.json`) against the real server: it describes exactly
//! the routes served, its examples are accepted, its page is served, and schemathesis finds no
//! server error and no answer that breaks it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "the document needs no token");
    assert_eq!(
        crate::helpers::content_type(response.headers()),
        "application/json"
    );
    response.json().await.expect("the document is JSON")
}

/// `(method, path)` of every operation of a document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_string(), path.clone()))
        })
        .collect()
}

/// A concrete path for a templated one, from the examples of its path parameters.
fn concrete(path: &str, operation: &Value) -> String {
    let mut concrete = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().expect("parameter name");
        let example = match &parameter["example"] {
            Value::String(text) => text.clone(),
            Value::Null => "x".to_owned(),
            other => other.to_string(),
        };
        concrete = concrete.replace(&format!("{{{name}}}"), &example);
    }
    concrete
}

/// Route patterns and methods the server counted in `ktxh_http_requests_total`: what its router
/// matched, as opposed to the fallback (`unmatched`). A `405` names a pattern with a method it
/// does not serve, so those are left out.
async fn matched_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    text.lines()
        .filter(|line| line.starts_with("ktxh_http_requests_total{"))
        .filter(|line| label(line, "status").as_deref() != Some("405"))
        .filter_map(|line| Some((label(line, "method")?.to_lowercase(), label(line, "route")?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_exactly_the_routes_the_server_serves() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let document = document(&app).await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Each documented operation reaches its own handler: never 405, and the router matched
    // its pattern (a 404 from the fallback would count as `unmatched`).
    let documented = operations(&document);
    for (method, path) in &documented {
        let operation = &document["paths"][path][method];
        let url = app.url(&concrete(path, operation));
        let request = app
            .client
            .request(method.to_uppercase().parse().expect("method"), url)
            .bearer_auth(&app.viewer)
            .header("content-type", "application/json")
            .body("{}");
        let status = request.send().await.expect("sent").status().as_u16();
        assert_ne!(status, 405, "{method} {path}");
    }
    let matched = matched_routes(&app).await;
    for operation in &documented {
        assert!(matched.contains(operation), "{operation:?} was not routed");
    }
    for (method, route) in &matched {
        if route != "unmatched" {
            assert!(
                documented.contains(&(method.clone(), route.clone())),
                "{method} {route} is served but not documented"
            );
        }
    }
    app.stop().await;
}

/// Routes enter the router only through `routes!` in `src/http/mod.rs`, which takes them from
/// the handlers' `#[utoipa::path]`; any other way of adding one would leave it out of the
/// document, so none may appear in the HTTP layer.
#[test]
fn no_route_is_added_around_the_documented_ones() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![dir.join("mod.rs")];
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        files.push(entry.expect("entry").path());
    }
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let source = std::fs::read_to_string(file).expect("source");
        for bypass in [
            ".route(",
            ".route_service(",
            ".nest_service(",
            " Router::new()",
        ] {
            assert!(
                !source.contains(bypass),
                "{} adds a route with `{bypass}`: register it with `routes!` and describe it \
                 with #[utoipa::path]",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_served_self_contained_and_reads_the_document() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let response = app
        .client
        .get(app.url("/api/docs"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(crate::helpers::content_type(&headers).starts_with("text/html"));
    let policy = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("script-src 'sha256-"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = response.text().await.expect("html");
    assert!(
        html.contains("/api/openapi.json"),
        "the page fetches the document"
    );
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "nothing from outside"
    );
    let document = document(&app).await;
    assert!(
        document["paths"]["/api/docs"]["get"].is_object(),
        "the page is documented"
    );
    app.stop().await;
}

/// The request examples of the push endpoints are real: each one is accepted as it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_request_examples_are_accepted() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let document = document(&app).await;
    for (path, accepted) in [
        ("/api/v1/observations", &[200][..]),
        ("/api/dataValueSets", &[200]),
        ("/api/v2/write", &[204]),
        ("/write", &[204]),
    ] {
        let content = document["paths"][path]["post"]["requestBody"]["content"]
            .as_object()
            .expect("request body");
        for (media, body) in content {
            // A workbook's bytes have no text example; tests/api/xlsx_upload.rs pushes real ones.
            if media.contains("spreadsheetml") {
                continue;
            }
            let example = match &body["example"] {
                Value::String(text) => text.clone(),
                Value::Null => panic!("{path} {media}: no example"),
                document => document.to_string(),
            };
            let reply = app
                .send(
                    app.client
                        .post(app.url(path))
                        .bearer_auth(&app.admin)
                        .header("content-type", media)
                        .body(example),
                )
                .await;
            assert!(
                accepted.contains(&reply.status),
                "{path} {media}: {reply:?}"
            );
            if path == "/api/v1/observations" {
                let stored = reply.body["accepted"].as_u64().unwrap_or_default()
                    + reply.body["duplicates"].as_u64().unwrap_or_default();
                assert!(stored >= 1, "{path} {media}: {reply:?}");
                assert_eq!(reply.body["rejected"], serde_json::json!([]), "{media}");
            }
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// schemathesis
// ---------------------------------------------------------------------------------------------

fn python_with_schemathesis() -> Option<PathBuf> {
    crate::helpers::python_with("schemathesis", "schemathesis")
}

/// Examples per operation and phase: enough to reach every response of every operation,
/// few enough that a run stays well under two minutes on the 2-core machine.
const MAX_EXAMPLES: &str = "50";

fn support_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

async fn schemathesis_run(backend: Backend) {
    let Some(python) = python_with_schemathesis() else {
        return;
    };
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Its reports and example database go to a scratch directory, not the work tree.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let started = Instant::now();
    let run = tokio::process::Command::new(&python)
        .current_dir(scratch.path())
        // Serialisers for the text media types schemathesis does not know (SDMX-CSV, DHIS2's
        // application/csv).
        .env("PYTHONPATH", support_dir())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(app.url("/api/openapi.json"))
        // An admin token may call every operation, so the answers beyond 403 are reached.
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", app.admin))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,\
             status_code_conformance",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "20260301",
            // Stateful testing needs links between operations, which the document has none of.
            "--phases",
            "examples,coverage,fuzzing",
            // The security schemes name our token's header; generated values would replace it.
            "--generation-with-security-parameters",
            "false",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            // Python 3.11's parser is not thread-safe where hypothesis describes its strategies,
            // so one worker: the run then fails only on what it finds.
            "--workers",
            "1",
            "--no-color",
            // `GET /ws` upgrades to a websocket, which schemathesis cannot speak; its refusals
            // of plain requests are covered by tests/api/live.rs.
            "--exclude-path",
            "/ws",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within five minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "schemathesis on {backend:?} took {:.1} s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis failed on {backend:?} ({}):\n{stdout}\n{stderr}",
        output.status
    );
    app.stop().await;
}

// SQLite and PostgreSQL; TimescaleDB runs the same SQL as PostgreSQL for every write the run
// makes. PostgreSQL refuses some text SQLite keeps (a NUL), so both are worth the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document_sqlite() {
    schemathesis_run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document_postgres() {
    schemathesis_run(Backend::Postgres).await;
}
