//! One error type for the HTTP layer: every error is RFC 9457 problem+json with a stable `code`;
//! 5xx are logged once and masked.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ingest::{FormatError, IngestError};
use crate::store::StoreError;

/// One offending field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer (body), parameter name (query, path, header) or `line N` (CSV) of the
    /// offending field.
    #[schema(example = "/observations/1/indicator")]
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed Authorization header: send `Authorization: Bearer <token>`")]
    MissingToken,
    #[error("the token is unknown, revoked or expired")]
    InvalidToken,
    #[error("tokens are never accepted in a URL; send `Authorization: Bearer <token>`")]
    TokenInUrl,
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "{} indicators of other departments ({indicators}); nothing was stored",
        foreign_rows(rows, cells)
    )]
    ForeignIndicators {
        rows: Vec<usize>,
        indicators: String,
        /// Each row's indicator cell, for a body whose rows the sender sees as cells (a
        /// workbook); empty otherwise, and the rows are named by their JSON pointer.
        cells: Vec<ForeignCell>,
    },
    #[error("{0}")]
    NotFound(String),
    /// What a create names exists already.
    #[error("{0}")]
    Conflict(String),
    #[error("the body is not valid JSON: {message}")]
    MalformedJson { pointer: String, message: String },
    #[error("{message}")]
    InvalidField { pointer: String, message: String },
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{count} rows exceed the limit of {limit} per request; split the batch")]
    TooManyRows { count: usize, limit: usize },
    /// A spreadsheet that unpacks, or holds cells or rows, past what one request may.
    #[error("{0}")]
    WorkbookTooLarge(String),
    /// A body whose `Content-Type` the operation does not read: what was sent, and what the
    /// operation reads.
    #[error("unsupported Content-Type `{sent}`; send {reads}")]
    UnsupportedMediaType { sent: String, reads: &'static str },
    #[error("Content-Encoding `{0}` is not read here; send the body uncompressed")]
    UnsupportedEncoding(String),
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyMismatch,
    #[error("the origin {0} may not open a websocket here")]
    ForeignOrigin(String),
    #[error("{0}")]
    NotWebsocket(String),
    #[error(
        "this token holds too many outstanding websocket tickets; try again in {retry_after} s"
    )]
    TooManyTickets { retry_after: u64 },
    #[error(
        "the service holds too many outstanding websocket tickets; try again in {retry_after} s"
    )]
    TicketPoolFull { retry_after: u64 },
    #[error(
        "this token holds {limit} open websockets, its limit; close one or try again in \
         {retry_after} s"
    )]
    TooManyWebsockets { limit: usize, retry_after: u64 },
    #[error("too many requests; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("too many failed authentications from this address; try again in {retry_after} s")]
    AuthThrottled { retry_after: u64 },
    #[error("the request body did not arrive within {limit} s")]
    RequestTimeout { limit: u64 },
    #[error(
        "the answer took longer than {limit} s; the request may still complete, \
         so retry it with the same Idempotency-Key"
    )]
    HandlerTimeout { limit: u64 },
    #[error("{0} is not allowed on this resource; the Allow header lists the methods that are")]
    MethodNotAllowed(String),
    #[error("the store is not reachable")]
    Unavailable,
    #[error(
        "the service is taking in more than it can store right now; nothing was stored, \
         send the same request again in {retry_after} s"
    )]
    WriteQueueFull { retry_after: u64 },
    #[error(
        "the database holds {applied} of this build's {expected} migrations; \
         run this version's `ktxh serve` or `ktxh migrate` against it"
    )]
    MigrationsMissing { applied: usize, expected: usize },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::TokenInUrl | Self::MalformedJson { .. } => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) | Self::ForeignIndicators { .. } | Self::ForeignOrigin(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NotWebsocket(_) => StatusCode::BAD_REQUEST,
            Self::TooManyTickets { .. } | Self::RateLimited { .. } | Self::AuthThrottled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::TicketPoolFull { .. } | Self::TooManyWebsockets { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::HandlerTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::InvalidField { .. } | Self::IdempotencyMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } | Self::WorkbookTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable | Self::MigrationsMissing { .. } | Self::WriteQueueFull { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable, documented identifiers; clients match on these, never on the text.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenInUrl => "token_in_url",
            Self::Forbidden(_) => "forbidden",
            Self::ForeignIndicators { .. } => "foreign_indicators",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::MalformedJson { .. } => "malformed_json",
            Self::InvalidField { .. } => "invalid_field",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::WorkbookTooLarge(_) => "workbook_too_large",
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding(_) => {
                "unsupported_media_type"
            }
            Self::IdempotencyMismatch => "idempotency_key_reused",
            Self::ForeignOrigin(_) => "foreign_origin",
            Self::NotWebsocket(_) => "not_websocket",
            Self::TooManyTickets { .. } | Self::TicketPoolFull { .. } => "too_many_tickets",
            Self::TooManyWebsockets { .. } => "too_many_websockets",
            Self::RateLimited { .. } => "rate_limited",
            Self::AuthThrottled { .. } => "auth_throttled",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::HandlerTimeout { .. } => "handler_timeout",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unavailable => "unavailable",
            Self::WriteQueueFull { .. } => "write_queue_full",
            Self::MigrationsMissing { .. } => "migrations_missing",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken => "Unauthorized",
            Self::TokenInUrl => "Token in URL",
            Self::Forbidden(_) | Self::ForeignIndicators { .. } => "Forbidden",
            Self::NotFound(_) => "Not found",
            Self::Conflict(_) => "Conflict",
            Self::MalformedJson { .. } => "Malformed JSON",
            Self::InvalidField { .. } => "Invalid field",
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } | Self::WorkbookTooLarge(_) => {
                "Payload too large"
            }
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding(_) => {
                "Unsupported media type"
            }
            Self::IdempotencyMismatch => "Idempotency key reused",
            Self::ForeignOrigin(_) => "Foreign origin",
            Self::NotWebsocket(_) => "Not a websocket request",
            Self::TooManyTickets { .. } | Self::TicketPoolFull { .. } => "Too many tickets",
            Self::TooManyWebsockets { .. } => "Too many websockets",
            Self::RateLimited { .. } | Self::AuthThrottled { .. } => "Too many requests",
            Self::RequestTimeout { .. } => "Request timeout",
            Self::HandlerTimeout { .. } => "Service unavailable",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::Unavailable | Self::MigrationsMissing { .. } | Self::WriteQueueFull { .. } => {
                "Service unavailable"
            }
            Self::Internal(_) => "Internal error",
        }
    }

    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The query's `as_of`, when given: an RFC 3339 instant, or a period whose end is meant in
    /// the city's zone (`2026-03-31` = the end of that day, `2026-03` = the end of March).
    pub fn as_of(raw: Option<&str>, zone: chrono_tz::Tz) -> Result<Option<DateTime<Utc>>, Self> {
        raw.map(|raw| match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => Ok(t.with_timezone(&Utc)),
            Err(_) => crate::domain::Period::parse(raw)
                .map(|period| period.end(zone))
                .map_err(|_| {
                    Self::invalid(
                        "as_of",
                        "use an RFC 3339 instant or a period such as 2026-03-31",
                    )
                }),
        })
        .transpose()
    }

    fn errors(&self) -> Vec<FieldError> {
        match self {
            Self::MalformedJson { pointer, message } | Self::InvalidField { pointer, message } => {
                vec![FieldError {
                    pointer: pointer.clone(),
                    message: message.clone(),
                }]
            }
            Self::ForeignIndicators { rows, cells, .. } if cells.is_empty() => rows
                .iter()
                .map(|row| FieldError {
                    pointer: format!("/observations/{row}/indicator"),
                    message: "indicator of another department".into(),
                })
                .collect(),
            Self::ForeignIndicators { cells, .. } => cells
                .iter()
                .map(|cell| FieldError {
                    pointer: cell.pointer.clone(),
                    message: format!("{}: indicator of another department", cell.place),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Where a refused row's indicator is in a body its sender sees as cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCell {
    /// `observations!A5`.
    pub pointer: String,
    /// "sheet `observations` row 5, column A (indicator)".
    pub place: String,
}

/// The refused rows, by where their sender will look for them.
/// Where the foreign rows are, with the verb that agrees: `rows [0, 2] name`, `line 3 names`.
fn foreign_rows(rows: &[usize], cells: &[ForeignCell]) -> String {
    if cells.is_empty() {
        return match rows {
            [row] => format!("row {row} names"),
            _ => format!("rows {rows:?} name"),
        };
    }
    let places: Vec<&str> = cells.iter().map(|c| c.place.as_str()).collect();
    let verb = if places.len() == 1 { "names" } else { "name" };
    format!("{} {verb}", places.join("; "))
}

/// RFC 9457 problem details, with the stable `code` and the offending fields as extension
/// members.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:ktxh:problem:invalid_field", "title": "Invalid field", "status": 422,
    "detail": "invalid type: integer `7`, expected a string", "code": "invalid_field",
    "errors": [{"pointer": "/observations/1/indicator", "message": "invalid type: integer `7`, expected a string"}]
}))]
pub struct Problem<'a> {
    /// `urn:ktxh:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:ktxh:problem:invalid_field")]
    pub(super) kind: String,
    pub(super) title: &'a str,
    /// The HTTP status, repeated.
    pub(super) status: u16,
    /// What went wrong, for a person.
    pub(super) detail: String,
    /// A stable code that clients match on: `missing_token`, `invalid_token`,
    /// `token_in_url`, `forbidden`, `foreign_indicators`, `not_found`, `malformed_json`,
    /// `invalid_field`, `payload_too_large`, `too_many_rows`, `workbook_too_large`,
    /// `unsupported_media_type`,
    /// `idempotency_key_reused`, `foreign_origin`, `not_websocket`, `too_many_tickets`,
    /// `too_many_websockets`, `rate_limited`, `auth_throttled`, `request_timeout`,
    /// `handler_timeout`, `write_queue_full`,
    /// `unavailable` or `internal`.
    #[schema(example = "invalid_field")]
    pub(super) code: &'a str,
    /// The fields at fault, when the problem is caused by fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) errors: Vec<FieldError>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = self.outage_as_unavailable();
        let status = this.status();
        let retry_after = this.retry_after();
        let mut response = this.problem_response(status);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

/// Seconds a client is told to wait after a 503: long enough for a database failover or a
/// restart, short enough that feeds catch up soon after.
const UNAVAILABLE_RETRY_SECONDS: u64 = 5;

/// Missing migrations need an operator; clients need not come back every few seconds.
const MIGRATIONS_RETRY_SECONDS: u64 = 60;

impl ApiError {
    /// `Retry-After` of the answer: every 429 and 503 says when to come back.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyTickets { retry_after }
            | Self::TicketPoolFull { retry_after }
            | Self::TooManyWebsockets { retry_after, .. }
            | Self::RateLimited { retry_after }
            | Self::AuthThrottled { retry_after }
            | Self::WriteQueueFull { retry_after } => Some(*retry_after),
            Self::Unavailable | Self::HandlerTimeout { .. } => Some(UNAVAILABLE_RETRY_SECONDS),
            Self::MigrationsMissing { .. } => Some(MIGRATIONS_RETRY_SECONDS),
            _ => None,
        }
    }

    /// An internal error caused by an unreachable or overloaded database is an outage, which
    /// clients should retry, not a fault of the service.
    fn outage_as_unavailable(self) -> Self {
        match &self {
            Self::Internal(source)
                if source.chain().any(|cause| {
                    cause
                        .downcast_ref::<sqlx::Error>()
                        .is_some_and(crate::store::is_outage)
                }) =>
            {
                tracing::error!(error = %source, "store unreachable");
                Self::Unavailable
            }
            _ => self,
        }
    }

    fn problem_response(self, status: StatusCode) -> Response {
        if let Self::Internal(source) = &self {
            tracing::error!(error = ?source, "request failed");
        }
        let problem = Problem {
            kind: format!("urn:ktxh:problem:{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code(),
            errors: self.errors(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if matches!(self, Self::MissingToken | Self::InvalidToken) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"ktxh\""),
            );
        }
        if matches!(self, Self::RequestTimeout { .. }) {
            // The rest of the body is still on the wire; the connection cannot carry another
            // request.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// A body a format cannot read as a whole, as problem+json naming where.
impl From<FormatError> for ApiError {
    fn from(error: FormatError) -> Self {
        if error.syntax {
            Self::MalformedJson {
                pointer: error.pointer,
                message: error.message,
            }
        } else {
            Self::invalid(error.pointer, error.message)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyMismatch => Self::IdempotencyMismatch,
            StoreError::Database(ref database) if crate::store::is_outage(database) => {
                tracing::error!(%error, "store unreachable");
                Self::Unavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::ReadOnly => {
                Self::Forbidden("this token may not write observations".into())
            }
            IngestError::ForeignIndicators {
                rows,
                indicators,
                lines,
            } => Self::ForeignIndicators {
                rows,
                indicators: indicators.join(", "),
                // A CSV's sender looks for lines; each is named by its RFC 7111 fragment.
                cells: lines
                    .into_iter()
                    .map(|line| ForeignCell {
                        pointer: line.pointer(),
                        place: line.to_string(),
                    })
                    .collect(),
            },
            IngestError::TooManyRows { count, limit } => Self::TooManyRows { count, limit },
            IngestError::Busy { retry_after } => Self::WriteQueueFull { retry_after },
            IngestError::Unavailable(reason) => {
                tracing::warn!(%reason, "a batch was not stored");
                Self::Unavailable
            }
            IngestError::Store(store) => store.into(),
        }
    }
}
