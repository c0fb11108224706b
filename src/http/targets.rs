//! Yearly targets (read by anyone, set by admins with an audit row) and the audit log (read
//! by admins only: it names who holds which token and what they did).

pub mod history;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::limits::ClientIp;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::{body, ApiError, ApiQuery, AppState, NoQuery};
use crate::domain::number::Quoted;
use crate::domain::period::YEARS;
use crate::domain::{Direction, TargetValue};
use crate::pipeline::Change;
use crate::store::{AuditEntry, TargetChange, TargetRow};

/// The caller's address as the limits layer resolved it (after trusted proxies), for audit
/// rows; `None` when the request did not come through that layer.
pub struct CallerIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CallerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ClientIp>()
                .map(|ip| ip.0.to_string()),
        ))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct YearQuery {
    /// Only this year's targets; every year's when absent.
    #[param(example = 2026)]
    year: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct Targets {
    targets: Vec<TargetRow>,
}

/// Targets as in force, with their origin (`config` or `api`).
#[utoipa::path(
    get,
    path = "/targets",
    operation_id = "targets_list",
    tag = "targets",
    security(("bearer" = [])),
    params(YearQuery),
    responses(
        (status = 200, description = "Kế hoạch / The targets", body = Targets),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<YearQuery>,
) -> Result<Json<Targets>, ApiError> {
    let targets = state.store.targets(query.year).await?;
    Ok(Json(Targets { targets }))
}

/// A target set through the API: one `value`, or `lo` and `hi` for an indicator judged
/// `within` a band, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": 1200, "source": "Nghị quyết số 12/NQ-HĐND", "reason": "Nghị quyết HĐND điều chỉnh kế hoạch"}))]
pub struct TargetBody {
    value: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
    /// The unit the target is for; the city when absent.
    unit: Option<String>,
    /// The at-risk band, as a fraction between 0 and 1 (0.05 = 5 %).
    tolerance: Option<f64>,
    /// Where the value comes from, such as the resolution that set it (up to 500 characters).
    /// A new value set through the API is the city's own, no longer an illustrative one; without
    /// a source it cites none, and its reason stays in the audit log.
    source: Option<String>,
    /// Why the target changes (1 to 1000 characters); kept in the audit log.
    reason: String,
}

const MAX_REASON_LEN: usize = 1000;
const MAX_SOURCE_LEN: usize = 500;

/// Sets a yearly target and writes an audit row. **Admin only.**
///
/// Targets set through the API win over `config/targets/` from then on.
#[utoipa::path(
    put,
    path = "/targets/{year}/{indicator}",
    operation_id = "targets_put",
    tag = "targets",
    security(("bearer" = [])),
    params(
        ("year" = i32, Path, minimum = 1900, maximum = 2200, example = 2026),
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER"),
    ),
    request_body(content = TargetBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Kế hoạch mới / The target as now in force", body = TargetRow),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn put(
    _: NoQuery,
    State(state): State<AppState>,
    caller: Caller,
    CallerIp(client_ip): CallerIp,
    Path((year, indicator)): Path<(String, String)>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<TargetRow>, ApiError> {
    caller.require_admin()?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: TargetBody = body::json(&bytes)?;

    let year = parse_year(&year)?;
    let indicator = state
        .catalogue
        .indicator(&indicator)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{indicator}`")))?;
    let unit = match request.unit.as_deref() {
        Some(code) => state.catalogue.unit(code),
        None => state.catalogue.root_unit(),
    }
    .ok_or_else(|| ApiError::invalid("/unit", "unknown unit"))?;
    if !indicator.reported_at(unit) {
        return Err(ApiError::invalid(
            "/unit",
            format!(
                "`{}` is reported for the city alone: a target of `{}` would never be judged",
                indicator.code, unit.code
            ),
        ));
    }
    let units = &state.catalogue.units;
    let with_children = units.iter().any(|u| u.parent.as_ref() == Some(&unit.code));
    let (lowest, highest) = indicator.year_range(with_children, units.len());
    // A target the figures the service accepts can never reach, or never fall short of, is a
    // slip of the keyboard (a sign, a unit of measure), not a plan.
    let plausible = |v: f64, field: &str| {
        if !v.is_finite() {
            Err(ApiError::invalid(field, "must be a finite number"))
        } else if !(lowest..=highest).contains(&v) {
            Err(ApiError::invalid(
                field,
                format!(
                    "{} is outside what a year of `{}` at `{}` can be, [{}, {}] {}",
                    Quoted(v),
                    indicator.code,
                    unit.code,
                    Quoted(lowest),
                    Quoted(highest),
                    indicator.measure_en
                ),
            ))
        } else {
            Ok(v)
        }
    };
    let value = match (indicator.direction, request.value, request.lo, request.hi) {
        (Direction::Within, None, Some(lo), Some(hi)) => {
            let (lo, hi) = (plausible(lo, "/lo")?, plausible(hi, "/hi")?);
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
            value: plausible(value, "/value")?,
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
    body::storable(reason, "/reason")?;
    let source = match request.source.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(source) if source.chars().count() > MAX_SOURCE_LEN => {
            return Err(ApiError::invalid(
                "/source",
                format!("at most {MAX_SOURCE_LEN} characters"),
            ))
        }
        // One line: it is shown beside the target and quoted in e-mails.
        Some(source) => {
            body::one_line(source, "/source")?;
            body::storable(source, "/source")?;
            Some(source.to_owned())
        }
    };
    let change = TargetChange {
        year,
        indicator: indicator.code.to_string(),
        unit: unit.code.to_string(),
        value,
        tolerance: request.tolerance,
        source,
        reason: reason.to_owned(),
        actor: caller.0.label(),
        at: Utc::now(),
        client_ip,
    };
    let row = state.store.set_target(&change).await?;
    // The new value takes effect at once: re-judged, its alerts brought in line and the
    // screens told before the answer, not at the next tick.
    state
        .pipeline
        .apply(Change::TargetsChanged {
            targets: vec![row.target.clone()],
            at: change.at,
        })
        .await;
    tracing::info!(year, indicator = %indicator.code, unit = %unit.code, actor = %change.actor, "target set");
    Ok(Json(row))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// How many entries, newest first (1 to 1000; 100 when absent).
    limit: Option<i64>,
    /// Only entries older than this id: pass the previous page's `next_before`.
    before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Audit {
    entries: Vec<AuditEntry>,
    /// The `before` of the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// Every privileged act, newest first: who (`actor`), what (`action`), on what (`subject`),
/// from what to what (`old`, `new`), why, from where, and the row's link in the hash chain.
/// **Admin only.**
///
/// Actions: `target.set`, `targets.seed`, `token.create`, `token.revoke`, `silence.create`,
/// `silence.expire`, `alert.ack`, `explanation.add`, `config.check_failed`. Rows are never
/// updated or deleted.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "targets_audit",
    tag = "targets",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Nhật ký kiểm toán / The audit log", body = Audit),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Audit>, ApiError> {
    caller.require_admin()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if query.before.is_some_and(|before| before < 1) {
        return Err(ApiError::invalid("before", "an audit row id (1 or more)"));
    }
    let entries = state.store.audit_page(query.before, limit).await?;
    let next_before = match entries.last() {
        Some(oldest) if entries.len() as i64 == limit && oldest.id > 1 => Some(oldest.id),
        _ => None,
    };
    Ok(Json(Audit {
        entries,
        next_before,
    }))
}

/// A target year from the path, within the years the service works with.
pub(crate) fn parse_year(raw: &str) -> Result<i32, ApiError> {
    raw.parse()
        .ok()
        .filter(|y| YEARS.contains(y))
        .ok_or_else(|| {
            ApiError::invalid(
                "year",
                format!(
                    "the year must be a number between {} and {}",
                    YEARS.start(),
                    YEARS.end()
                ),
            )
        })
}
