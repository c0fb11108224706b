//! Read-only catalogue resources: groups, indicators, units.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{ApiError, ApiQuery, AppState};
use crate::domain::{Group, Indicator, OrgUnit};

#[derive(Serialize)]
pub struct GroupView<'a> {
    #[serde(flatten)]
    group: &'a Group,
    indicators: usize,
}

pub async fn groups(State(state): State<AppState>, _caller: Caller) -> Json<serde_json::Value> {
    let catalogue = &state.catalogue;
    let groups: Vec<GroupView> = catalogue
        .groups
        .iter()
        .map(|group| GroupView {
            group,
            indicators: catalogue
                .indicators
                .iter()
                .filter(|i| i.group == group.code)
                .count(),
        })
        .collect();
    Json(serde_json::json!({ "groups": groups }))
}

#[derive(Deserialize)]
pub struct IndicatorFilter {
    group: Option<String>,
    department: Option<String>,
}

pub async fn indicators(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(filter): ApiQuery<IndicatorFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let selected: Vec<&Indicator> = catalogue
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
        .collect();
    Ok(Json(serde_json::json!({ "indicators": selected })))
}

pub async fn indicator(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let catalogue = &state.catalogue;
    let indicator = catalogue
        .indicator(&code)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{code}`")))?;
    let targets = state.store.targets(None).await?;
    let targets: Vec<_> = targets
        .into_iter()
        .filter(|t| t.target.indicator == indicator.code)
        .collect();
    Ok(Json(serde_json::json!({
        "indicator": indicator,
        "group": catalogue.group(indicator.group.as_str()),
        "department": catalogue.department(indicator.department.as_str()),
        "targets": targets,
    })))
}

pub async fn units(State(state): State<AppState>, _caller: Caller) -> Json<serde_json::Value> {
    let units: &[OrgUnit] = &state.catalogue.units;
    Json(serde_json::json!({ "units": units, "departments": state.catalogue.departments }))
}
