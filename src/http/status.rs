//! Target status: `GET /api/v1/status` and `GET /api/v1/status/{indicator}`, live or `as_of` a
//! past instant, each showing its working.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState};
use crate::domain::period::YEARS;
use crate::domain::{Code, Indicator, Kind, OrgUnit, Status, Target};
use crate::rules::engine::{plan_profile, TargetStatus};
use crate::rules::path::{expected_path, PathPoint};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// The target year; the current year in the city when absent.
    #[param(minimum = 1900, maximum = 2200, example = 2026)]
    year: Option<i32>,
    /// Judge from the revisions known at this instant: RFC 3339, or a period whose end is
    /// meant (`2026-03-31`, `2026-03`).
    #[param(example = "2026-03-31")]
    as_of: Option<String>,
    /// Only the targets of this sector group.
    #[param(example = "ECONOMY")]
    group: Option<String>,
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
}

/// `as_of` is an RFC 3339 instant, or a period whose end is meant (`2026-03-31` = the end of
/// that day, `2026-03` = the end of March).
fn parse_as_of(raw: Option<&str>, state: &AppState) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(instant) = ApiError::as_of(raw, state.settings.zone())? else {
        return Ok(None);
    };
    if instant > Utc::now() {
        return Err(ApiError::invalid("as_of", "must not be in the future"));
    }
    Ok(Some(instant))
}

/// The indicator named in the path and the unit named in the query (the city when none).
pub(crate) fn indicator_and_unit<'a>(
    state: &'a AppState,
    code: &str,
    unit: Option<&str>,
) -> Result<(&'a Indicator, &'a OrgUnit), ApiError> {
    let indicator = state
        .catalogue
        .indicator(code)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{code}`")))?;
    Ok((indicator, unit_or_city(state, unit)?))
}

pub(crate) fn no_target(year: i32, indicator: &Indicator, unit: &OrgUnit) -> ApiError {
    ApiError::NotFound(format!(
        "no {year} target for `{}` in `{}`",
        indicator.code, unit.code
    ))
}

/// The named unit, or the city when none is named.
fn unit_or_city<'a>(state: &'a AppState, code: Option<&str>) -> Result<&'a OrgUnit, ApiError> {
    match code {
        Some(code) => state
            .catalogue
            .unit(code)
            .ok_or_else(|| ApiError::invalid("unit", format!("unknown unit `{code}`"))),
        None => state
            .catalogue
            .root_unit()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no root unit"))),
    }
}

/// The year asked for, or the current year in the city.
fn target_year(requested: Option<i32>, state: &AppState) -> Result<i32, ApiError> {
    match requested {
        Some(year) if YEARS.contains(&year) => Ok(year),
        Some(_) => Err(ApiError::invalid(
            "year",
            format!("use a year between {} and {}", YEARS.start(), YEARS.end()),
        )),
        None => Ok(Utc::now().with_timezone(&state.settings.zone()).year()),
    }
}

fn summary(statuses: &[TargetStatus]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for status in statuses {
        *counts.entry(status.evaluation.status.as_str()).or_insert(0) += 1;
    }
    counts
}

/// How every target of one year and unit stands.
#[derive(Serialize, ToSchema)]
pub struct StatusList {
    year: i32,
    unit: Code,
    /// The instant judged at, when `as_of` was given.
    as_of: Option<DateTime<Utc>>,
    /// Targets per official status.
    #[schema(value_type = BTreeMap<Status, usize>)]
    summary: BTreeMap<&'static str, usize>,
    statuses: Vec<TargetStatus>,
}

/// Every target of a year and unit, judged, with its working (ARCHITECTURE §4).
#[utoipa::path(
    get,
    path = "/status",
    operation_id = "status_list",
    tag = "status",
    security(("bearer" = [])),
    params(StatusQuery),
    responses(
        (status = 200, description = "Đánh giá các chỉ tiêu / How the targets stand", body = StatusList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<Json<StatusList>, ApiError> {
    let year = target_year(query.year, &state)?;
    if let Some(group) = &query.group {
        state
            .catalogue
            .group(group)
            .ok_or_else(|| ApiError::invalid("group", format!("unknown group `{group}`")))?;
    }
    let unit = unit_or_city(&state, query.unit.as_deref())?;
    let as_of = parse_as_of(query.as_of.as_deref(), &state)?;
    let in_group = |indicator: &str| {
        query.group.as_deref().is_none_or(|g| {
            state
                .catalogue
                .indicator(indicator)
                .is_some_and(|i| i.group.as_str() == g)
        })
    };
    let statuses = match as_of {
        Some(as_of) => {
            state
                .engine
                .evaluate_as_of(&state.store, year, as_of, |t| {
                    t.unit == unit.code && in_group(t.indicator.as_str())
                })
                .await?
        }
        None => state
            .engine
            .statuses(|s| s.year == year && s.unit == unit.code && in_group(s.indicator.as_str())),
    };
    Ok(Json(StatusList {
        year,
        unit: unit.code.clone(),
        as_of,
        summary: summary(&statuses),
        statuses,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OneQuery {
    /// The target year; the current year in the city when absent.
    #[param(minimum = 1900, maximum = 2200, example = 2026)]
    year: Option<i32>,
    /// Judge from the revisions known at this instant (RFC 3339, or a period's end).
    #[param(example = "2026-03-31")]
    as_of: Option<String>,
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
}

/// One target, judged, with its working.
#[utoipa::path(
    get,
    path = "/status/{indicator}",
    operation_id = "status_one",
    tag = "status",
    security(("bearer" = [])),
    params(
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "GRDP_GROWTH"),
        OneQuery,
    ),
    responses(
        (status = 200, description = "Đánh giá chỉ tiêu / How the target stands", body = TargetStatus),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
    ApiQuery(query): ApiQuery<OneQuery>,
) -> Result<Json<TargetStatus>, ApiError> {
    let (indicator, unit) = indicator_and_unit(&state, &code, query.unit.as_deref())?;
    let year = target_year(query.year, &state)?;
    let not_found = || no_target(year, indicator, unit);
    match parse_as_of(query.as_of.as_deref(), &state)? {
        Some(as_of) => state
            .engine
            .evaluate_as_of(&state.store, year, as_of, |t| {
                t.indicator == indicator.code && t.unit == unit.code
            })
            .await?
            .into_iter()
            .next()
            .map(Json)
            .ok_or_else(not_found),
        None => state
            .engine
            .status(&(year, indicator.code.clone(), unit.code.clone()))
            .map(Json)
            .ok_or_else(not_found),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    /// The target year; the current year in the city when absent.
    #[param(minimum = 1900, maximum = 2200, example = 2026)]
    year: Option<i32>,
    /// The unit; the city when absent.
    #[param(example = "HCM")]
    unit: Option<String>,
}

/// The path the plan expects through a year.
#[derive(Serialize, ToSchema)]
pub struct ExpectedPath {
    indicator: Code,
    unit: Code,
    year: i32,
    kind: Kind,
    /// The plan profile used: `linear`, `configured` or `previous_year`.
    #[schema(example = "linear")]
    plan: &'static str,
    target: Target,
    /// The value due at the start of the year and at the end of each month.
    path: Vec<PathPoint>,
}

/// `GET /api/v1/status/{indicator}/path`: what the plan expects at the start of the year and
/// at the end of each month, with the plan profile the status uses, for the indicator chart.
#[utoipa::path(
    get,
    path = "/status/{indicator}/path",
    operation_id = "status_path",
    tag = "status",
    security(("bearer" = [])),
    params(
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "BUDGET_REVENUE"),
        PathQuery,
    ),
    responses(
        (status = 200, description = "Lộ trình kế hoạch / The expected path", body = ExpectedPath),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn path(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Json<ExpectedPath>, ApiError> {
    let (indicator, unit) = indicator_and_unit(&state, &code, query.unit.as_deref())?;
    let year = target_year(query.year, &state)?;
    let status = state
        .engine
        .status(&(year, indicator.code.clone(), unit.code.clone()))
        .ok_or_else(|| no_target(year, indicator, unit))?;
    let previous_year = state
        .engine
        .year_points(&indicator.code, &unit.code, year - 1);
    let (profile, plan) = plan_profile(indicator, &previous_year);
    let path = expected_path(
        indicator.kind,
        status.target.value,
        &profile,
        year,
        state.settings.zone(),
    );
    Ok(Json(ExpectedPath {
        indicator: indicator.code.clone(),
        unit: unit.code.clone(),
        year,
        kind: indicator.kind,
        plan,
        target: status.target,
        path,
    }))
}
