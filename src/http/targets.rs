//! Yearly targets (read by anyone, set by admins with an audit row) and the audit log.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::{body, ApiError, ApiQuery, AppState};
use crate::domain::{Direction, TargetValue};
use crate::hub::view::Update;
use crate::store::{TargetChange, TargetRow};

#[derive(Deserialize)]
pub struct YearQuery {
    year: Option<i32>,
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<YearQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let targets = state.store.targets(query.year).await?;
    Ok(Json(json!({ "targets": targets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    value: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
    unit: Option<String>,
    tolerance: Option<f64>,
    reason: String,
}

const MAX_REASON_LEN: usize = 1000;

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((year, indicator)): Path<(String, String)>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<TargetRow>, ApiError> {
    caller.require_admin()?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: TargetBody = body::json(&bytes)?;

    let year: i32 = year
        .parse()
        .ok()
        .filter(|y| (1900..=2200).contains(y))
        .ok_or_else(|| {
            ApiError::invalid("year", "the year must be a number between 1900 and 2200")
        })?;
    let indicator = state
        .catalogue
        .indicator(&indicator)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{indicator}`")))?;
    let unit = match request.unit.as_deref() {
        Some(code) => state.catalogue.unit(code),
        None => state.catalogue.root_unit(),
    }
    .ok_or_else(|| ApiError::invalid("/unit", "unknown unit"))?;
    let finite = |v: f64, field: &str| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ApiError::invalid(field, "must be a finite number"))
        }
    };
    let value = match (indicator.direction, request.value, request.lo, request.hi) {
        (Direction::Within, None, Some(lo), Some(hi)) => {
            let (lo, hi) = (finite(lo, "/lo")?, finite(hi, "/hi")?);
            if lo > hi {
                return Err(ApiError::invalid("/lo", "`lo` must not exceed `hi`"));
            }
            TargetValue::Band { lo, hi }
        }
        (Direction::Within, ..) => {
            return Err(ApiError::invalid(
                "/lo",
                format!(
                    "`{}` is judged within a band: send `lo` and `hi`",
                    indicator.code
                ),
            ))
        }
        (_, Some(value), None, None) => TargetValue::Point {
            value: finite(value, "/value")?,
        },
        _ => {
            return Err(ApiError::invalid(
                "/value",
                format!("`{}` takes one `value` (no band)", indicator.code),
            ))
        }
    };
    if let Some(tolerance) = request.tolerance {
        if !(tolerance > 0.0 && tolerance < 1.0) {
            return Err(ApiError::invalid(
                "/tolerance",
                "a fraction between 0 and 1 (0.05 = 5 %)",
            ));
        }
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_LEN {
        return Err(ApiError::invalid(
            "/reason",
            format!("say why, in 1 to {MAX_REASON_LEN} characters"),
        ));
    }
    let change = TargetChange {
        year,
        indicator: indicator.code.to_string(),
        unit: unit.code.to_string(),
        value,
        tolerance: request.tolerance,
        reason: reason.to_owned(),
        actor: caller.0.label(),
        at: Utc::now(),
    };
    let row = state.store.set_target(&change).await?;
    let changes = state.engine.set_target(row.target.clone(), change.at);
    let key = (
        row.target.year,
        row.target.indicator.clone(),
        row.target.unit.clone(),
    );
    state.publisher.publish(
        Update {
            targets: std::slice::from_ref(&key),
            changes: &changes,
            ..Update::default()
        },
        change.at,
    );
    tracing::info!(year, indicator = %indicator.code, unit = %unit.code, actor = %change.actor, "target set");
    Ok(Json(row))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state.store.audit(limit).await?;
    Ok(Json(json!({ "entries": entries })))
}
