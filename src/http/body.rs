//! Request bodies: the size limit and JSON parsing with the offending field located.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::ApiError;

/// The raw body, or the problem that explains why there is none.
pub fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::invalid("", rejection.body_text())
        }
    })
}

/// The media type of the request without parameters, lower-cased; JSON when absent.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_owned())
}

/// A parameter of the `Content-Type` header (`text/csv; decimal=comma`), lower-cased.
pub fn media_parameter(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').skip(1).find_map(|parameter| {
        let (key, value) = parameter.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Refuses free text that holds a NUL character (U+0000): PostgreSQL cannot keep it in a text
/// column, and no backend should hold what another refuses.
pub fn storable(text: &str, pointer: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        Err(ApiError::invalid(
            pointer,
            "must not contain a NUL character (U+0000)",
        ))
    } else {
        Ok(())
    }
}

/// Refuses a line break or another control character in a one-line field (a title, a number,
/// a name, a cited source): one would make fake lines of its own in an e-mail or a report.
/// The Unicode line and paragraph separators (U+2028, U+2029) break lines as well, though
/// they are not control characters.
pub fn one_line(text: &str, pointer: &str) -> Result<(), ApiError> {
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if text.chars().any(breaks) {
        Err(ApiError::invalid(
            pointer,
            "one line: no line break or other control character",
        ))
    } else {
        Ok(())
    }
}

/// Refuses a compressed body where none is read: without this a gzipped JSON body would be
/// answered as malformed JSON, which sends its sender looking in the wrong place.
pub fn require_identity(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(encoding) = headers.get(axum::http::header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = String::from_utf8_lossy(encoding.as_bytes())
        .trim()
        .to_ascii_lowercase();
    if encoding.is_empty() || encoding == "identity" {
        Ok(())
    } else {
        Err(ApiError::UnsupportedEncoding(encoding))
    }
}

/// Refuses JSON declared in another charset than UTF-8, the only one JSON is exchanged in
/// (RFC 8259 §8.1): its bytes would otherwise be read as UTF-8 all the same.
pub fn require_utf8(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_parameter(headers, "charset").as_deref() {
        None | Some("utf-8" | "utf8") => Ok(()),
        Some(other) => Err(ApiError::UnsupportedMediaType {
            sent: format!("{}; charset={other}", media_type(headers)),
            reads: "UTF-8 (charset=utf-8, or no charset)",
        }),
    }
}

pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    require_identity(headers)?;
    let media = media_type(headers);
    if media == "application/json" || media.ends_with("+json") {
        require_utf8(headers)
    } else {
        Err(ApiError::UnsupportedMediaType {
            sent: media,
            reads: "application/json",
        })
    }
}

/// Runs `work` (parsing or inflating a body of up to the body limit) on the blocking pool,
/// so that a large body does not hold up the async workers serving other requests.
pub async fn off_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Bodies up to this size are parsed on the request's own task: a few hundred rows take tens
/// of microseconds, less than the two thread hand-offs of the blocking pool (ARCHITECTURE §7).
pub const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Runs `work` on a body of `size` bytes as it is (`None`: unknown, an encoded body that may
/// inflate): inline when it is small, on the blocking pool otherwise.
pub async fn parse_sized<T: Send + 'static>(
    size: Option<usize>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    match size {
        Some(size) if size <= INLINE_PARSE_BYTES => Ok(work()),
        _ => off_worker(work).await,
    }
}

/// Parses a JSON body; errors carry a JSON pointer to the field at fault.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(crate::ingest::json::from_slice(bytes)?)
}
