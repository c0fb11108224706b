//! `POST /api/v2/write` (InfluxDB 2.x) and `POST /write` (InfluxDB 1.x): line protocol as
//! Telegraf and the InfluxDB client libraries write it.
//!
//! Answers are InfluxDB's: `204 No Content` when every line was stored (duplicates included).
//! When lines are rejected the valid ones are stored anyway, as InfluxDB does with a partial
//! write, and the answer is `400` with `Content-Type: application/json` and a body that both
//! kinds of client read: InfluxDB's `code` and `message` (`error` too on `/write`, as 1.x
//! clients read that) next to the members of RFC 9457 problem details (`type`, `title`,
//! `status`, `detail`) and our own per-row `rejected` list with line numbers and stable codes.
//! Every other error has the same shape: `401` for a bad token, `403` for another department's
//! indicators (nothing stored), `413` for a body, decompressed or not, over the limit.
//!
//! `org`, `bucket`, `db` and `rp` are accepted and ignored: the catalogue decides where a value
//! goes. Tokens come as `Token`/`Bearer` or as the Basic password, never in the query string.
//!
//! Beside the writes, what clients call around them: `/ping` and `/health` ([`health`]) and the
//! `SHOW` statements of `/query` ([`query`]).

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use utoipa::{IntoParams, IntoResponses, ToResponse, ToSchema};

use super::auth::CompatCaller;
use super::{body, ApiError, AppState};
use crate::ingest::line::{self, LineBodyError, LineRow, Precision};
use crate::ingest::{Format, IngestError};
use crate::store::IngestReceipt;

pub mod health;
pub mod query;
mod statement;

/// Rejections named in `message`; the rest are in `rejected` only.
const REASONS_IN_MESSAGE: usize = 20;

/// Which write API a request came to; they differ in precision names and error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V1,
    V2,
}

/// One rejected row, located by its line.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedLine {
    /// The line of the body, from 1.
    line: usize,
    /// The row's position among the body's rows, from 0.
    index: usize,
    /// A stable reason, as in the receipt of `POST /api/v1/observations`.
    #[schema(example = "unknown_unit")]
    code: String,
    message: String,
}

/// An answer that is not 204.
#[derive(Debug)]
enum WriteError {
    Api(ApiError),
    Precision(String),
    Encoding(String),
    Gzip(String),
    NoPoints,
    Foreign {
        lines: Vec<usize>,
        indicators: Vec<String>,
    },
    Partial {
        receipt: IngestReceipt,
        lines: Vec<RejectedLine>,
    },
    /// Refused before anything ran (`/query`).
    Refused(Box<Answer>),
}

impl From<ApiError> for WriteError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// An InfluxDB error that is also RFC 9457 problem details, with our per-line reasons.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "code": "invalid", "message": "partial write: 1 of 3 values rejected, the others were stored; line 2: unknown unit `P_X`",
    "type": "urn:ktxh:problem:rejected_lines", "title": "Bad Request", "status": 400,
    "detail": "partial write: 1 of 3 values rejected, the others were stored; line 2: unknown unit `P_X`",
    "accepted": 2, "duplicates": 0,
    "rejected": [{"line": 2, "index": 1, "code": "unknown_unit", "message": "unknown unit `P_X`"}]
}))]
pub struct InfluxProblem {
    /// InfluxDB's error code, which its clients read: `invalid`, `unauthorized`,
    /// `forbidden`, `request too large`, `unsupported media type`, `unavailable`, …
    #[schema(value_type = String, example = "invalid")]
    code: &'static str,
    /// Equal to `detail`.
    message: String,
    /// `urn:ktxh:problem:<our code>`: as in the rest of the API, plus `rejected_lines`,
    /// `no_points` and `malformed_body`.
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = String)]
    title: &'static str,
    status: u16,
    detail: String,
    /// What InfluxDB 1.x clients read (`POST /write` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Rows stored, when some lines were rejected and the others stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicates: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rejected: Vec<RejectedLine>,
}

/// The query of `POST /api/v2/write`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // described, never built: the handler reads the raw query
pub struct WriteV2Query {
    /// Accepted and ignored: the catalogue decides where a value goes.
    org: Option<String>,
    /// Accepted and ignored.
    bucket: Option<String>,
    /// The unit of the timestamps: `ns` (default), `us`, `ms` or `s`.
    #[param(value_type = Option<PrecisionV2>)]
    precision: Option<String>,
}

/// The query of `POST /write`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // described, never built: the handler reads the raw query
pub struct WriteV1Query {
    /// Accepted and ignored: the catalogue decides where a value goes.
    db: Option<String>,
    /// Accepted and ignored.
    rp: Option<String>,
    /// The unit of the timestamps: `n` (default), `u`, `ms`, `s`, `m` or `h`.
    #[param(value_type = Option<PrecisionV1>)]
    precision: Option<String>,
}

/// Timestamp units of the InfluxDB 2.x write API.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // described, never built
pub enum PrecisionV2 {
    Ns,
    Us,
    Ms,
    S,
}

/// Timestamp units of the InfluxDB 1.x write API.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // described, never built
pub enum PrecisionV1 {
    N,
    U,
    Ms,
    S,
    M,
    H,
}

const LINE_EXAMPLE: &str =
    "traffic,ward=P_TAN_DINH accidents=3i,deaths=1i,injured=4i 1767225600000000000\n";

/// InfluxDB's name for an HTTP status.
fn influx_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not found",
        StatusCode::PAYLOAD_TOO_LARGE => "request too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable entity",
        StatusCode::TOO_MANY_REQUESTS => "too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal error",
    }
}

/// What an error answer says, before it takes its InfluxDB shape.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    /// Our stable code, in `type`.
    code: &'static str,
    detail: String,
    receipt: Option<IngestReceipt>,
    rejected: Vec<RejectedLine>,
}

impl Answer {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            receipt: None,
            rejected: Vec::new(),
        }
    }
}

/// `message` of a partial write: the counts, then the first reasons with their lines.
fn partial_detail(receipt: &IngestReceipt, lines: &[RejectedLine]) -> String {
    let kept = receipt.accepted + receipt.duplicates;
    let mut detail = if kept == 0 {
        format!("all {} values rejected, nothing was stored", lines.len())
    } else {
        format!(
            "partial write: {} of {} values rejected, the others were stored",
            lines.len(),
            kept + lines.len()
        )
    };
    for rejected in lines.iter().take(REASONS_IN_MESSAGE) {
        detail.push_str(&format!("; line {}: {}", rejected.line, rejected.message));
    }
    if lines.len() > REASONS_IN_MESSAGE {
        let more = lines.len() - REASONS_IN_MESSAGE;
        detail.push_str(&format!("; and {more} more (see `rejected`)"));
    }
    detail
}

impl WriteError {
    fn answer(self) -> Answer {
        match self {
            Self::Api(error) => {
                if let ApiError::Internal(source) = &error {
                    tracing::error!(error = ?source, "write failed");
                }
                Answer::new(error.status(), error.code(), error.to_string())
            }
            Self::Precision(message) => {
                Answer::new(StatusCode::BAD_REQUEST, "invalid_field", message)
            }
            Self::Encoding(encoding) => Answer::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Encoding `{encoding}` is not supported; send gzip or identity"),
            ),
            Self::Gzip(message) => Answer::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("the gzip body cannot be read: {message}"),
            ),
            Self::NoPoints => Answer::new(
                StatusCode::BAD_REQUEST,
                "no_points",
                "writing requires points",
            ),
            Self::Foreign { lines, indicators } => Answer::new(
                StatusCode::FORBIDDEN,
                "foreign_indicators",
                format!(
                    "lines {lines:?} write indicators of other departments ({}); \
                     nothing was stored",
                    indicators.join(", ")
                ),
            ),
            Self::Partial { receipt, lines } => Answer {
                status: StatusCode::BAD_REQUEST,
                code: "rejected_lines",
                detail: partial_detail(&receipt, &lines),
                receipt: Some(receipt),
                rejected: lines,
            },
            Self::Refused(answer) => *answer,
        }
    }

    fn respond(self, api: Api) -> Response {
        let retry_after = match &self {
            Self::Api(error) => error.retry_after(),
            _ => None,
        };
        let answer = self.answer();
        let status = answer.status;
        let problem = InfluxProblem {
            code: influx_code(status),
            message: answer.detail.clone(),
            kind: format!("urn:ktxh:problem:{}", answer.code),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            error: (api == Api::V1).then(|| answer.detail.clone()),
            detail: answer.detail,
            accepted: answer.receipt.as_ref().map(|r| r.accepted),
            duplicates: answer.receipt.as_ref().map(|r| r.duplicates),
            rejected: answer.rejected,
        };
        // InfluxDB 1.x repeats an error's first 1024 bytes in `X-InfluxDB-Error` for clients
        // that read no body (`httpError`, services/httpd/handler.go), except on a 401.
        let error_header = (api == Api::V1 && status != StatusCode::UNAUTHORIZED)
            .then(|| header::HeaderValue::from_str(prefix(&problem.detail, 1024)).ok())
            .flatten();
        // Json sets `Content-Type: application/json`, which InfluxDB clients expect.
        let mut response = (status, Json(problem)).into_response();
        if let Some(value) = error_header {
            response.headers_mut().insert("x-influxdb-error", value);
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// At most `limit` bytes of `text`, cut at a character boundary.
fn prefix(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What both write endpoints answer, in InfluxDB's own error shape.
// Only described: the handlers build their answers themselves.
#[allow(dead_code)]
#[derive(IntoResponses)]
enum WriteAnswers {
    #[response(status = 204, description = "Đã lưu mọi dòng / Every line stored")]
    Stored,
    #[response(
        status = 400,
        description = "Có dòng bị từ chối, hoặc tham số sai / Rejected lines, or a bad parameter"
    )]
    Rejected(InfluxProblem),
    #[response(
        status = 401,
        description = "Thiếu hoặc sai token / A missing or bad token"
    )]
    Unauthorized(InfluxProblem),
    #[response(
        status = 403,
        description = "Không có quyền / Not allowed (nothing stored)"
    )]
    Forbidden(InfluxProblem),
    #[response(status = 413, description = "Quá lớn / Too large")]
    TooLarge(InfluxProblem),
    #[response(
        status = 415,
        description = "Nén không hỗ trợ / Unsupported Content-Encoding"
    )]
    UnsupportedEncoding(InfluxProblem),
    #[response(
        status = 422,
        description = "Không đọc được thân yêu cầu / The body cannot be read"
    )]
    Unreadable(InfluxProblem),
    #[response(status = 429)]
    RateLimited(#[to_response] RateLimited),
    #[response(
        status = 503,
        description = "Kho dữ liệu không phản hồi / The store is unreachable"
    )]
    Unavailable(InfluxProblem),
}

/// What a request over a rate is answered on the InfluxDB paths: over the token's rate in
/// InfluxDB's shape, which its clients read, and over the address's in problem details, as
/// everywhere else (the address is limited before the caller is known).
// Only described, as `WriteAnswers`.
#[allow(dead_code)]
#[derive(ToResponse)]
#[response(
    description = "Quá nhiều yêu cầu / Too many requests: over the token's rate (InfluxDB's shape) or the address's (problem details)",
    headers(("Retry-After" = u64, description = "Giây chờ trước khi gửi lại / Seconds to wait before trying again"))
)]
enum RateLimited {
    Token(#[content("application/json")] InfluxProblem),
    Address(#[content("application/problem+json")] super::error::Problem<'static>),
}

/// InfluxDB 2.x line protocol, as Telegraf and the InfluxDB client libraries write it.
/// **Department tokens (their own department's indicators) and admins.**
///
/// Measurements, fields and the unit tag map to indicators and units by `config/feeds.toml`.
/// `204` when every line was stored (duplicates included). When lines are rejected the valid
/// ones are stored anyway, as InfluxDB does, and the answer is `400` naming the lines. Bodies
/// may be gzipped (`Content-Encoding: gzip`). Authenticate as with InfluxDB:
/// `Token <token>`, `Bearer`, or Basic with the token as password.
#[utoipa::path(
    post,
    path = "/api/v2/write",
    operation_id = "influx_write_v2",
    tag = "compatibility",
    security(("influx_token" = []), ("bearer" = []), ("basic" = [])),
    params(WriteV2Query),
    request_body(
        content = String,
        description = "InfluxDB line protocol",
        content_type = "text/plain",
        example = json!(LINE_EXAMPLE),
    ),
    responses(WriteAnswers)
)]
pub async fn write_v2(
    state: State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    query: RawQuery,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    write(Api::V2, state, caller, query, headers, payload).await
}

/// InfluxDB 1.x line protocol (`/write`), as older Telegraf outputs and client libraries
/// write it. **Department tokens and admins.** As `POST /api/v2/write`, with 1.x precisions;
/// error bodies also carry `error`. Credentials are never accepted in the query (`u`, `p`).
#[utoipa::path(
    post,
    path = "/write",
    operation_id = "influx_write_v1",
    tag = "compatibility",
    security(("influx_token" = []), ("bearer" = []), ("basic" = [])),
    params(WriteV1Query),
    request_body(
        content = String,
        description = "InfluxDB line protocol",
        content_type = "text/plain",
        example = json!(LINE_EXAMPLE),
    ),
    responses(WriteAnswers)
)]
pub async fn write_v1(
    state: State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    query: RawQuery,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    write(Api::V1, state, caller, query, headers, payload).await
}

async fn write(
    api: Api,
    State(state): State<AppState>,
    caller: Result<CompatCaller, ApiError>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(api, &state, caller, query.as_deref(), &headers, payload).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.respond(api),
    }
}

fn precision(api: Api, query: Option<&str>) -> Result<Precision, WriteError> {
    let requested = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "precision")
        .map(|(_, value)| value.into_owned());
    let Some(raw) = requested else {
        return Ok(Precision::default());
    };
    let parsed = match api {
        Api::V1 => Precision::parse_v1(&raw),
        Api::V2 => Precision::parse_v2(&raw),
    };
    parsed.ok_or_else(|| {
        WriteError::Precision(match api {
            Api::V1 => format!("precision `{raw}` is not one of n, u, ms, s, m, h"),
            Api::V2 => format!("precision `{raw}` is not one of ns, us, ms, s"),
        })
    })
}

/// The body as sent, or gunzipped; either way no more than `limit` bytes.
fn decode(headers: &HeaderMap, bytes: Bytes, limit: usize) -> Result<Bytes, WriteError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(bytes),
        "gzip" | "x-gzip" => {
            let mut decoded = Vec::new();
            // One byte past the limit tells a body at the limit from one over it, without
            // inflating a bomb any further.
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(bytes.as_ref())
                .take(cap)
                .read_to_end(&mut decoded)
                .map_err(|e| WriteError::Gzip(e.to_string()))?;
            if decoded.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit }.into());
            }
            Ok(Bytes::from(decoded))
        }
        other => Err(WriteError::Encoding(other.to_owned())),
    }
}

async fn accept(
    api: Api,
    state: &AppState,
    caller: Result<CompatCaller, ApiError>,
    query: Option<&str>,
    headers: &HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<(), WriteError> {
    let CompatCaller(principal) = caller?;
    if !principal.role.pushes() {
        return Err(ApiError::Forbidden(format!(
            "{} tokens may not write observations",
            principal.role.as_str()
        ))
        .into());
    }
    let precision = precision(api, query)?;
    let limit = state.settings.server.body_limit_bytes;
    let bytes = body::bytes(payload, limit)?;
    let received_at = Utc::now();
    let settings = state.settings.clone();
    let feeds = state.feed_config.clone();
    let headers = headers.clone();
    // Inflating and parsing a large batch is CPU work; keep it off the async workers. An
    // encoded body's size says nothing of what it inflates to.
    let size = headers
        .get(header::CONTENT_ENCODING)
        .is_none()
        .then_some(bytes.len());
    let rows = body::parse_sized(size, move || -> Result<Vec<LineRow>, WriteError> {
        let decoded = decode(&headers, bytes, limit)?;
        let rows = line::parse_lines(
            &decoded,
            precision,
            &feeds.mappings.line,
            received_at,
            settings.server.max_rows_per_request,
        )
        .map_err(
            |LineBodyError::TooManyRows { count, limit }| ApiError::TooManyRows { count, limit },
        )?;
        Ok(rows)
    })
    .await??;
    if rows.is_empty() {
        return Err(WriteError::NoPoints);
    }

    let line_of: Vec<usize> = rows.iter().map(|r| r.line).collect();
    let raw = rows.into_iter().map(|r| r.row).collect();
    let format = Format::Line(precision).name();
    let receipt = match state
        .ingestor
        .ingest(&principal, format, raw, None, received_at)
        .await
    {
        Ok(receipt) => receipt,
        Err(IngestError::ForeignIndicators {
            rows, indicators, ..
        }) => {
            let mut lines: Vec<usize> = rows
                .iter()
                .filter_map(|&i| line_of.get(i).copied())
                .collect();
            lines.dedup();
            return Err(WriteError::Foreign { lines, indicators });
        }
        Err(other) => return Err(ApiError::from(other).into()),
    };
    if receipt.rejected.is_empty() {
        return Ok(());
    }
    let lines = receipt
        .rejected
        .iter()
        .map(|rejection| RejectedLine {
            line: line_of.get(rejection.index).copied().unwrap_or_default(),
            index: rejection.index,
            code: rejection.code.clone(),
            message: rejection.message.clone(),
        })
        .collect();
    Err(WriteError::Partial { receipt, lines })
}
