//! One error type for the HTTP layer: every error is RFC 9457 problem+json with a stable `code`;
//! 5xx are logged once and masked.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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
        "rows {rows:?} name indicators of other departments ({indicators}); nothing was stored"
    )]
    ForeignIndicators {
        rows: Vec<usize>,
        indicators: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("the body is not valid JSON: {message}")]
    MalformedJson { pointer: String, message: String },
    #[error("{message}")]
    InvalidField { pointer: String, message: String },
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{count} rows exceed the limit of {limit} per request; split the batch")]
    TooManyRows { count: usize, limit: usize },
    #[error(
        "unsupported Content-Type `{0}`; send application/json, text/csv, \
         application/vnd.sdmx.data+csv;version=2.0.0 or application/vnd.sdmx.data+json;version=2.0.0"
    )]
    UnsupportedMediaType(String),
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyMismatch,
    #[error("the origin {0} may not open a websocket here")]
    ForeignOrigin(String),
    #[error("{0}")]
    NotWebsocket(String),
    #[error("too many websocket tickets are outstanding; try again in a few seconds")]
    TooManyTickets,
    #[error("{0} is not allowed on this resource; the Allow header lists the methods that are")]
    MethodNotAllowed(String),
    #[error("the store is not reachable")]
    Unavailable,
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
            Self::TooManyTickets => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidField { .. } | Self::IdempotencyMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable | Self::MigrationsMissing { .. } => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::MalformedJson { .. } => "malformed_json",
            Self::InvalidField { .. } => "invalid_field",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::IdempotencyMismatch => "idempotency_key_reused",
            Self::ForeignOrigin(_) => "foreign_origin",
            Self::NotWebsocket(_) => "not_websocket",
            Self::TooManyTickets => "too_many_tickets",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unavailable => "unavailable",
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
            Self::MalformedJson { .. } => "Malformed JSON",
            Self::InvalidField { .. } => "Invalid field",
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => "Payload too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::IdempotencyMismatch => "Idempotency key reused",
            Self::ForeignOrigin(_) => "Foreign origin",
            Self::NotWebsocket(_) => "Not a websocket request",
            Self::TooManyTickets => "Too many tickets",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::Unavailable | Self::MigrationsMissing { .. } => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    fn errors(&self) -> Vec<FieldError> {
        match self {
            Self::MalformedJson { pointer, message } | Self::InvalidField { pointer, message } => {
                vec![FieldError {
                    pointer: pointer.clone(),
                    message: message.clone(),
                }]
            }
            Self::ForeignIndicators { rows, .. } => rows
                .iter()
                .map(|row| FieldError {
                    pointer: format!("/observations/{row}/indicator"),
                    message: "indicator of another department".into(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
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
    /// `invalid_field`, `payload_too_large`, `too_many_rows`, `unsupported_media_type`,
    /// `idempotency_key_reused`, `foreign_origin`, `not_websocket`, `too_many_tickets`,
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
        let status = self.status();
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
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
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
            IngestError::ForeignIndicators { rows, indicators } => Self::ForeignIndicators {
                rows,
                indicators: indicators.join(", "),
            },
            IngestError::TooManyRows { count, limit } => Self::TooManyRows { count, limit },
            IngestError::Store(store) => store.into(),
        }
    }
}
