//! `POST /api/v1/observations` (push ingest) and the observation read API.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::{body, ApiError, ApiQuery, AppState};
use crate::auth::Role;
use crate::domain::{Indicator, Period};
use crate::ingest::csv::Decimal;
use crate::ingest::{sdmx, Format, FormatError, IdempotencyKey};
use crate::store::{Aggregate, Bucket, IngestReceipt, ObservationQuery};

const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fn idempotency_key(
    headers: &HeaderMap,
    media: &str,
    bytes: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(media.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_digest: hasher.finalize().to_vec(),
    }))
}

/// The push format of `POST /api/v1/observations`, chosen by `Content-Type`.
fn push_format(media: &str, headers: &HeaderMap) -> Result<Format, ApiError> {
    match media {
        "text/csv" => {
            let decimal = match body::media_parameter(headers, "decimal").as_deref() {
                None | Some("point") => Decimal::Point,
                Some("comma") => Decimal::Comma,
                Some(other) => {
                    return Err(ApiError::invalid(
                        "Content-Type",
                        format!("decimal={other}: expected decimal=point or decimal=comma"),
                    ))
                }
            };
            Ok(Format::Csv(decimal))
        }
        "application/vnd.sdmx.data+csv" | "application/vnd.sdmx.data+json" => {
            let format = if media.ends_with("+csv") {
                Format::SdmxCsv
            } else {
                Format::SdmxJson
            };
            sdmx::check_media_parameters(format, |name| body::media_parameter(headers, name))
                .map_err(|message| ApiError::invalid("Content-Type", message))?;
            Ok(format)
        }
        json if json == "application/json" || json.ends_with("+json") => Ok(Format::Json),
        other => Err(ApiError::UnsupportedMediaType(other.to_owned())),
    }
}

/// A body a format cannot read as a whole, as problem+json naming where.
pub fn format_error(error: FormatError) -> ApiError {
    if error.syntax {
        ApiError::MalformedJson {
            pointer: error.pointer,
            message: error.message,
        }
    } else {
        ApiError::invalid(error.pointer, error.message)
    }
}

pub async fn post(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReceipt>, ApiError> {
    // Refuse read-only callers before reading their body: the answer must not depend on it.
    if principal.role == Role::Viewer {
        return Err(ApiError::Forbidden(
            "a viewer token may not write observations".into(),
        ));
    }
    let media = body::media_type(&headers);
    let format = push_format(&media, &headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let idempotency = idempotency_key(&headers, &media, &bytes)?;
    let rows = format
        .parse(&bytes, &state.settings.feeds)
        .map_err(format_error)?;
    let receipt = state
        .ingestor
        .ingest(&principal, format.name(), rows, idempotency, Utc::now())
        .await?;
    Ok(Json(receipt))
}

#[derive(Deserialize)]
pub struct ListQuery {
    indicator: Option<String>,
    unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    as_of: Option<String>,
}

/// Reads `from`/`to` as a period (`2026-03`: its start, or its end for `to`) or an instant.
fn bound(
    raw: Option<&str>,
    name: &str,
    state: &AppState,
    end: bool,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let period: Period = raw
        .parse()
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid(name, e.to_string()))?;
    let zone = state.settings.zone();
    Ok(Some(if end {
        period.end(zone)
    } else {
        period.start(zone)
    }))
}

fn resolve_indicator<'a>(
    state: &'a AppState,
    code: Option<&str>,
) -> Result<&'a Indicator, ApiError> {
    let code = code.ok_or_else(|| ApiError::invalid("indicator", "`indicator` is required"))?;
    state
        .catalogue
        .indicator(code)
        .ok_or_else(|| ApiError::invalid("indicator", format!("unknown indicator `{code}`")))
}

fn resolve_unit(state: &AppState, code: Option<&str>) -> Result<String, ApiError> {
    match code {
        Some(code) => state
            .catalogue
            .unit(code)
            .map(|u| u.code.to_string())
            .ok_or_else(|| ApiError::invalid("unit", format!("unknown unit `{code}`"))),
        None => state
            .catalogue
            .root_unit()
            .map(|u| u.code.to_string())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("catalogue has no root unit"))),
    }
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let indicator = resolve_indicator(&state, params.indicator.as_deref())?;
    let unit = resolve_unit(&state, params.unit.as_deref())?;
    let as_of = match params.as_of.as_deref() {
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw)
                .map_err(|_| ApiError::invalid("as_of", "use an RFC 3339 timestamp"))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let query = ObservationQuery {
        indicator: indicator.code.to_string(),
        unit: unit.clone(),
        from: bound(params.from.as_deref(), "from", &state, false)?,
        to: bound(params.to.as_deref(), "to", &state, true)?,
        as_of,
    };
    if let Some(raw) = params.bucket.as_deref() {
        let bucket = Bucket::parse(raw)
            .ok_or_else(|| ApiError::invalid("bucket", "use day, week, month, quarter or year"))?;
        let aggregate = Aggregate::for_kind(indicator.kind);
        let points = state.store.bucketed(&query, bucket, aggregate).await?;
        return Ok(Json(json!({
            "indicator": indicator.code, "unit": unit, "bucket": bucket,
            "aggregate": aggregate, "points": points,
        })));
    }
    let observations = state.store.observations(&query).await?;
    Ok(Json(json!({
        "indicator": indicator.code, "unit": unit, "observations": observations,
    })))
}

pub async fn revisions(
    State(state): State<AppState>,
    _caller: Caller,
    Path((indicator, unit, period)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let indicator = resolve_indicator(&state, Some(&indicator))?;
    let unit = resolve_unit(&state, Some(&unit))?;
    let period: Period = period
        .parse()
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid("period", e.to_string()))?;
    let revisions = state
        .store
        .revisions(indicator.code.as_str(), &unit, &period.to_string())
        .await?;
    if revisions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no observation of `{}` for `{unit}` in {period}",
            indicator.code
        )));
    }
    Ok(Json(json!({
        "indicator": indicator.code, "unit": unit, "period": period.to_string(),
        "revisions": revisions,
    })))
}
