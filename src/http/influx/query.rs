//! `GET|POST /query`: the InfluxQL statements InfluxDB 1.x clients send when they connect.
//!
//! Clients ask which databases, retention policies and measurements exist before they write:
//! influxdb-python's `get_list_database()` sends `SHOW DATABASES`,
//! `get_list_retention_policies()` sends `SHOW RETENTION POLICIES ON "db"` and
//! `get_list_measurements()` sends `SHOW MEASUREMENTS` (influxdb/client.py, v5.3.2), each as
//! `GET /query?q=…&db=…` with Basic credentials. These three are answered in InfluxDB 1.x's
//! results shape (`coordinator/statement_executor.go` on `master-1.x`). Reading values goes
//! through `/api/v1/observations`; every other statement is refused with `400` before any
//! statement runs, naming it, in InfluxDB's error shape (`{"error": …}`, `httpError` in
//! `services/httpd/handler.go`) with the members of problem details beside it.
//!
//! The write endpoints take any `db`, `bucket` and `rp` (the catalogue decides where a value
//! goes), so one database, [`DATABASE`], and one retention policy, `autogen`, are listed.

use axum::body::Bytes;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::health::version_headers;
use super::{Answer, Api, WriteError};
use crate::http::auth::CompatCaller;
use crate::http::{body, ApiError, AppState};

use super::statement;

use statement::{Show, StatementError};

/// The database `SHOW DATABASES` lists.
pub const DATABASE: &str = "ktxh";

/// The query of `GET|POST /query`; a `POST` may send the same in a form body
/// (`application/x-www-form-urlencoded`), as InfluxDB reads both.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // described, never built: the handler reads the raw query and form
pub struct QueryParams {
    /// InfluxQL: `SHOW DATABASES`, `SHOW RETENTION POLICIES [ON <db>]` or
    /// `SHOW MEASUREMENTS [ON <db>]`, several separated by `;`.
    #[param(example = "SHOW DATABASES")]
    q: String,
    /// The database of statements without `ON`; any name is accepted, as by the writes.
    db: Option<String>,
    /// Accepted and ignored: no answer holds timestamps.
    epoch: Option<String>,
    /// Accepted and ignored: every answer is one JSON object, one chunk.
    chunked: Option<String>,
    /// The user name of InfluxDB 1.x clients; ignored, the token says who calls.
    u: Option<String>,
}

/// One statement's answer: its rows, or why it failed.
#[derive(Serialize, ToSchema)]
pub struct StatementResult {
    statement_id: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    series: Vec<Series>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A table of rows, as InfluxDB 1.x writes one.
#[derive(Serialize, ToSchema)]
pub struct Series {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "databases")]
    name: Option<&'static str>,
    #[schema(example = json!(["name"]))]
    columns: Vec<&'static str>,
    #[schema(example = json!([["ktxh"]]))]
    values: Vec<Vec<Value>>,
}

/// InfluxDB 1.x's query answer: one result per statement.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"results": [{"statement_id": 0, "series": [
    {"name": "databases", "columns": ["name"], "values": [["ktxh"]]}
]}]}))]
pub struct QueryResults {
    results: Vec<StatementResult>,
}

/// What both `/query` operations answer besides the limits, statement errors in InfluxDB's
/// own error shape.
// Only described: the handlers build their answers themselves.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
enum QueryAnswers {
    #[response(
        status = 200,
        description = "Kết quả từng câu lệnh / One result per statement"
    )]
    Results(QueryResults),
    #[response(
        status = 400,
        description = "Câu lệnh không hỗ trợ hoặc sai / An unsupported or malformed statement"
    )]
    Refused(super::InfluxProblem),
    #[response(
        status = 401,
        description = "Thiếu hoặc sai token / A missing or bad token"
    )]
    Unauthorized(super::InfluxProblem),
    #[response(status = 413, description = "Quá lớn / Too large")]
    TooLarge(super::InfluxProblem),
    #[response(status = 429)]
    RateLimited(#[to_response] super::RateLimited),
}

/// The read-only InfluxQL statements InfluxDB 1.x clients send on connect.
/// **Any token**, sent as to `POST /write`.
///
/// `SHOW DATABASES` lists `ktxh`; `SHOW RETENTION POLICIES` lists `autogen` (kept forever);
/// `SHOW MEASUREMENTS` lists the measurements `config/feeds.toml` maps to indicators. The
/// latter two need a database (`db` or `ON`), any name. `200` in InfluxDB 1.x's results shape,
/// a statement's own error in its result as InfluxDB does; any other statement is refused with
/// `400` naming it, and nothing runs.
#[utoipa::path(
    get,
    path = "/query",
    operation_id = "influx_query",
    tag = "compatibility",
    security(("influx_token" = []), ("bearer" = []), ("basic" = [])),
    params(QueryParams),
    responses(QueryAnswers)
)]
pub async fn query(
    State(state): State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Response {
    // Read here rather than by a `Bytes` extractor, which would describe a body in the document
    // of `GET` too: only a `POST` form carries one. The body limit applies all the same.
    let payload = Bytes::from_request(request, &state).await;
    let answer = answer(&state, caller, query.as_deref(), &headers, payload);
    let mut response = match answer {
        Ok(results) => Json(results).into_response(),
        Err(error) => error.respond(Api::V1),
    };
    response.headers_mut().extend(version_headers());
    response
}

/// The same statements as `GET /query`, sent as a form body (`q=…&db=…`), as the v1 clients
/// send them. A separate operation because an OpenAPI operation id names one method.
#[utoipa::path(
    post,
    path = "/query",
    operation_id = "influx_query_post",
    tag = "compatibility",
    security(("influx_token" = []), ("bearer" = []), ("basic" = [])),
    params(QueryParams),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`q` (and `db`) as a form"),
    responses(QueryAnswers)
)]
pub async fn query_post(
    state: State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    raw: RawQuery,
    headers: HeaderMap,
    request: Request,
) -> Response {
    query(state, caller, raw, headers, request).await
}

/// `q` and `db`: from a form body first, then the URL, as Go's `Request.FormValue` looks.
fn parameters(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let mut pairs: Vec<(String, String)> = Vec::new();
    if is_form {
        pairs.extend(form_urlencoded::parse(body).into_owned());
    }
    pairs.extend(form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned());
    let find = |wanted: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    (find("q"), find("db"))
}

fn answer(
    state: &AppState,
    caller: Result<CompatCaller, ApiError>,
    query: Option<&str>,
    headers: &HeaderMap,
    payload: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<QueryResults, WriteError> {
    // Any role may list what exists: nothing here reads a value.
    let CompatCaller(_principal) = caller?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let (q, db) = parameters(query, headers, &bytes);
    let q = q.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        WriteError::Refused(Box::new(Answer::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            r#"missing required parameter "q""#,
        )))
    })?;
    let statements = statement::parse(&q).map_err(|error| {
        let code = match error {
            StatementError::Unsupported(_) => "unsupported_statement",
            StatementError::Malformed(_) => "invalid_field",
        };
        WriteError::Refused(Box::new(Answer::new(
            StatusCode::BAD_REQUEST,
            code,
            error.to_string(),
        )))
    })?;
    let db = db.filter(|db| !db.is_empty());
    let results = statements
        .into_iter()
        .enumerate()
        .map(|(statement_id, statement)| run(state, statement_id, statement, db.as_deref()))
        .collect();
    Ok(QueryResults { results })
}

fn run(
    state: &AppState,
    statement_id: usize,
    statement: Show,
    db: Option<&str>,
) -> StatementResult {
    let rows = |series: Series| StatementResult {
        statement_id,
        series: vec![series],
        error: None,
    };
    // `ErrDatabaseNameRequired` of InfluxDB, in the statement's own result.
    let no_database = || StatementResult {
        statement_id,
        series: Vec::new(),
        error: Some("database name required".to_owned()),
    };
    match statement {
        Show::Databases => rows(Series {
            name: Some("databases"),
            columns: vec!["name"],
            values: vec![vec![json!(DATABASE)]],
        }),
        Show::RetentionPolicies { on } => {
            if on.as_deref().or(db).is_none() {
                return no_database();
            }
            // Values are kept forever: InfluxDB writes an infinite duration as `0s`.
            rows(Series {
                name: None,
                columns: vec![
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "futureWriteLimit",
                    "pastWriteLimit",
                    "default",
                ],
                values: vec![vec![
                    json!("autogen"),
                    json!("0s"),
                    json!("168h0m0s"),
                    json!(1),
                    json!("0s"),
                    json!("0s"),
                    json!(true),
                ]],
            })
        }
        Show::Measurements { on } => {
            if on.as_deref().or(db).is_none() {
                return no_database();
            }
            let mut names: Vec<&str> = state
                .feed_config
                .mappings
                .line
                .measurements
                .iter()
                .map(|mapping| mapping.measurement.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                // InfluxDB answers a database without measurements with no series.
                return StatementResult {
                    statement_id,
                    series: Vec::new(),
                    error: None,
                };
            }
            rows(Series {
                name: Some("measurements"),
                columns: vec!["name"],
                values: names.into_iter().map(|name| vec![json!(name)]).collect(),
            })
        }
    }
}
