//! The five-year plan at a glance: `GET /api/v1/plan` judges every multi-year target of
//! `config/plan/` by Open SDG's progress measure from the observed yearly figures, and
//! `GET /api/v1/plan/summary` gives only its counts per category, overall and per group, for
//! the status panel of screens (ARCHITECTURE §4).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState};
use crate::domain::five_year_plan::{plan_for_year, FiveYearPlan};
use crate::domain::Code;
use crate::rules::plan_progress::{self, PlanAssessment};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// The plan, by its years; the one covering the current year when absent.
    #[param(example = "2026-2030")]
    plan: Option<String>,
}

/// The plan named, or the one covering the current year in the city.
fn chosen_plan<'a>(state: &'a AppState, code: Option<&str>) -> Result<&'a FiveYearPlan, ApiError> {
    let plans = &state.catalogue.plans;
    match code {
        Some(code) => plans
            .iter()
            .find(|plan| plan.code == code)
            .ok_or_else(|| ApiError::invalid("plan", format!("no plan `{code}` in config/plan/"))),
        None => {
            let year = Utc::now().with_timezone(&state.settings.zone()).year();
            plan_for_year(plans, year)
                .ok_or_else(|| ApiError::NotFound("no five-year plan is configured".into()))
        }
    }
}

async fn assessed(state: &AppState, plan: &FiveYearPlan) -> Result<PlanAssessment, ApiError> {
    let now = Utc::now();
    let zone = state.settings.zone();
    let figures =
        plan_progress::read_figures(&state.store, &state.catalogue, plan, zone, now).await?;
    Ok(plan_progress::assess_plan(plan, &state.catalogue, &figures))
}

/// A plan judged, as of when it was read.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    #[serde(flatten)]
    plan: PlanAssessment,
    /// Every yearly figure is read as known at this instant: per period the latest official
    /// revision, else the latest.
    read_at: DateTime<Utc>,
}

/// Kế hoạch 5 năm: mỗi chỉ tiêu với mức tiến bộ theo phương pháp Open SDG / The five-year plan,
/// each target judged by Open SDG's progress measure.
#[utoipa::path(
    get,
    path = "/plan",
    operation_id = "plan_get",
    tag = "plan",
    security(("bearer" = [])),
    params(PlanQuery),
    responses(
        (status = 200, description = "Kế hoạch 5 năm / The five-year plan", body = PlanView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<PlanQuery>,
) -> Result<Json<PlanView>, ApiError> {
    let plan = chosen_plan(&state, query.plan.as_deref())?;
    Ok(Json(PlanView {
        plan: assessed(&state, plan).await?,
        read_at: Utc::now(),
    }))
}

/// One group's counts.
#[derive(Serialize, ToSchema)]
pub struct PlanGroupCounts {
    code: Code,
    name_vi: String,
    name_en: String,
    /// Targets per category: `target_achieved`, `substantial`, `moderate`, `limited`,
    /// `deterioration`, `not_assessed`.
    counts: BTreeMap<String, usize>,
    /// The plan's indicators in the group, for a screen to know which figures move it.
    indicators: Vec<Code>,
}

/// The plan's counts without the targets' working.
#[derive(Serialize, ToSchema)]
pub struct PlanSummary {
    #[schema(example = "2026-2030")]
    code: String,
    name_vi: String,
    name_en: String,
    start_year: i32,
    end_year: i32,
    targets: usize,
    illustrative: usize,
    counts: BTreeMap<String, usize>,
    groups: Vec<PlanGroupCounts>,
    read_at: DateTime<Utc>,
}

/// Tóm tắt kế hoạch 5 năm: số chỉ tiêu theo mức tiến bộ / The five-year plan's counts per
/// progress category, overall and per group.
#[utoipa::path(
    get,
    path = "/plan/summary",
    operation_id = "plan_summary",
    tag = "plan",
    security(("bearer" = [])),
    params(PlanQuery),
    responses(
        (status = 200, description = "Tóm tắt kế hoạch 5 năm / The plan's counts", body = PlanSummary),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<PlanQuery>,
) -> Result<Json<PlanSummary>, ApiError> {
    let plan = chosen_plan(&state, query.plan.as_deref())?;
    let assessment = assessed(&state, plan).await?;
    Ok(Json(PlanSummary {
        code: assessment.code,
        name_vi: assessment.name_vi,
        name_en: assessment.name_en,
        start_year: assessment.start_year,
        end_year: assessment.end_year,
        targets: plan.targets.len(),
        illustrative: assessment.illustrative,
        counts: assessment.counts,
        groups: assessment
            .groups
            .into_iter()
            .map(|group| PlanGroupCounts {
                indicators: group
                    .targets
                    .iter()
                    .map(|t| t.target.indicator.clone())
                    .collect(),
                code: group.code,
                name_vi: group.name_vi,
                name_en: group.name_en,
                counts: group.counts,
            })
            .collect(),
        read_at: Utc::now(),
    }))
}
