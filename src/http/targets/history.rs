//! `GET /api/v1/targets/{year}/{indicator}/history`: every version a target has had, with when
//! it was in force, who set it and why (ARCHITECTURE §8), for anyone who may read targets.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::Code;
use crate::http::auth::Caller;
use crate::http::openapi::{BadRequest, NotFound, Unauthorized, Unavailable, Unprocessable};
use crate::http::status::{indicator_and_unit, no_target};
use crate::http::{ApiError, ApiQuery, AppState};
use crate::store::TargetVersion;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
}

/// Every version of one target, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetHistory {
    year: i32,
    indicator: Code,
    unit: Code,
    /// Oldest first; the last one has no `valid_to` while it is in force.
    versions: Vec<TargetVersion>,
}

/// The versions of one yearly target: each in force from `valid_from` until `valid_to`, set by
/// `set_by` (`config` or a token) for `reason`.
#[utoipa::path(
    get,
    path = "/targets/{year}/{indicator}/history",
    operation_id = "targets_history",
    tag = "targets",
    security(("bearer" = [])),
    params(
        ("year" = i32, Path, minimum = 1900, maximum = 2200, example = 2026),
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "Các phiên bản kế hoạch / Every version of the target", body = TargetHistory),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    _caller: Caller,
    Path((year, indicator)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<TargetHistory>, ApiError> {
    let year = super::parse_year(&year)?;
    let (indicator, unit) = indicator_and_unit(&state, &indicator, query.unit.as_deref())?;
    let versions = state
        .store
        .target_history(year, indicator.code.as_str(), unit.code.as_str())
        .await?;
    if versions.is_empty() {
        return Err(no_target(year, indicator, unit));
    }
    Ok(Json(TargetHistory {
        year,
        indicator: indicator.code.clone(),
        unit: unit.code.clone(),
        versions,
    }))
}
