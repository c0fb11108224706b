//! Read-only catalogue resources: groups, indicators, units.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState, NoQuery};
use crate::domain::{Department, Group, Indicator, OrgUnit};
use crate::store::TargetRow;

/// A sector group with the number of its indicators.
#[derive(Serialize, ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    group: Group,
    indicators: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Groups {
    groups: Vec<GroupView>,
}

/// The 20 sector groups with their indicator counts.
#[utoipa::path(
    get,
    path = "/groups",
    operation_id = "catalogue_groups",
    tag = "catalogue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Các nhóm lĩnh vực / The sector groups", body = Groups),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn groups(_: NoQuery, State(state): State<AppState>, _caller: Caller) -> Json<Groups> {
    let catalogue = &state.catalogue;
    let groups = catalogue
        .groups
        .iter()
        .map(|group| GroupView {
            group: group.clone(),
            indicators: catalogue
                .indicators
                .iter()
                .filter(|i| i.group == group.code)
                .count(),
        })
        .collect();
    Json(Groups { groups })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IndicatorFilter {
    /// Only the indicators of this sector group.
    #[param(example = "ECONOMY")]
    group: Option<String>,
    /// Only the indicators this department owns.
    #[param(example = "CUSTOMS")]
    department: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Indicators {
    indicators: Vec<Indicator>,
}

/// The indicator catalogue, filtered by group or department.
#[utoipa::path(
    get,
    path = "/indicators",
    operation_id = "catalogue_indicators",
    tag = "catalogue",
    security(("bearer" = [])),
    params(IndicatorFilter),
    responses(
        (status = 200, description = "Danh mục chỉ tiêu / The indicators", body = Indicators),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn indicators(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(filter): ApiQuery<IndicatorFilter>,
) -> Result<Json<Indicators>, ApiError> {
    let catalogue = &state.catalogue;
    if let Some(group) = &filter.group {
        catalogue
            .group(group)
            .ok_or_else(|| ApiError::invalid("group", format!("unknown group `{group}`")))?;
    }
    if let Some(department) = &filter.department {
        catalogue.department(department).ok_or_else(|| {
            ApiError::invalid("department", format!("unknown department `{department}`"))
        })?;
    }
    let indicators = catalogue
        .indicators
        .iter()
        .filter(|i| {
            filter
                .group
                .as_deref()
                .is_none_or(|g| i.group.as_str() == g)
        })
        .filter(|i| {
            filter
                .department
                .as_deref()
                .is_none_or(|d| i.department.as_str() == d)
        })
        .cloned()
        .collect();
    Ok(Json(Indicators { indicators }))
}

/// One indicator with its group, its department and its targets of every year.
#[derive(Serialize, ToSchema)]
pub struct IndicatorDetail {
    indicator: Indicator,
    group: Option<Group>,
    department: Option<Department>,
    targets: Vec<TargetRow>,
}

/// One indicator, its group, department and targets.
#[utoipa::path(
    get,
    path = "/indicators/{code}",
    operation_id = "catalogue_indicator",
    tag = "catalogue",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER")),
    responses(
        (status = 200, description = "Chỉ tiêu / The indicator", body = IndicatorDetail),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn indicator(
    _: NoQuery,
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<IndicatorDetail>, ApiError> {
    let catalogue = &state.catalogue;
    let indicator = catalogue
        .indicator(&code)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{code}`")))?;
    let targets = state
        .store
        .targets(None)
        .await?
        .into_iter()
        .filter(|t| t.target.indicator == indicator.code)
        .collect();
    Ok(Json(IndicatorDetail {
        indicator: indicator.clone(),
        group: catalogue.group(indicator.group.as_str()).cloned(),
        department: catalogue.department(indicator.department.as_str()).cloned(),
        targets,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Units {
    /// The unit tree, flattened: each unit names its `parent` (none for the city).
    units: Vec<OrgUnit>,
    departments: Vec<Department>,
}

/// The unit tree (any depth) and the departments.
#[utoipa::path(
    get,
    path = "/units",
    operation_id = "catalogue_units",
    tag = "catalogue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Đơn vị và cơ quan / Units and departments", body = Units),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn units(_: NoQuery, State(state): State<AppState>, _caller: Caller) -> Json<Units> {
    Json(Units {
        units: state.catalogue.units.clone(),
        departments: state.catalogue.departments.clone(),
    })
}
