//! Explanations of targets (giải trình): `POST /api/v1/targets/{year}/{indicator}/explanations`
//! by the indicator's owning department (or an admin), and the current one with its history for
//! anyone who may read targets. A new explanation supersedes the previous one for display and
//! every earlier one stays readable; each is audited and reaches the screens through the
//! pipeline (ARCHITECTURE §3, §6).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::status::{indicator_and_unit, no_target};
use super::targets::{parse_year, CallerIp};
use super::{body, ApiError, ApiQuery, AppState};
use crate::auth::Role;
use crate::domain::explanation::{Explanation, ExplanationAction, NewExplanation};
use crate::domain::period::YEARS;
use crate::domain::{Code, Indicator, OrgUnit};
use crate::pipeline::Change;
use crate::store::AuditEvent;

/// Longest explanation, in characters: a page of text, not a report.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most actions one explanation lists.
pub const MAX_ACTIONS: usize = 20;
/// Longest action, in characters.
pub const MAX_ACTION_CHARS: usize = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnitQuery {
    /// The unit; the city when absent (or the body's `unit` on a post).
    #[param(example = "HCM")]
    unit: Option<String>,
}

/// One action as posted: what is done, by when, and when it was done if it was.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// What is done (1 to 500 characters).
    #[schema(
        required = true,
        example = "Làm việc với doanh nghiệp xuất khẩu lớn để tháo gỡ vướng mắc"
    )]
    text: Option<String>,
    /// When it is due: a date, `YYYY-MM-DD`.
    #[schema(required = true, example = "2026-12-15")]
    due: Option<String>,
    /// When it was done: a date, `YYYY-MM-DD`, not in the future.
    #[schema(example = json!(null))]
    done: Option<String>,
}

/// An explanation as posted.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "text": "Kim ngạch xuất khẩu quý III giảm do đơn hàng dệt may sụt giảm.",
    "actions": [
        {"text": "Làm việc với doanh nghiệp xuất khẩu lớn để tháo gỡ vướng mắc", "due": "2026-12-15"}
    ]
}))]
pub struct ExplanationBody {
    /// Why the target slips (1 to 4000 characters).
    #[schema(required = true)]
    text: Option<String>,
    /// The actions taken (giải pháp), at most 20.
    #[serde(default)]
    actions: Vec<ActionBody>,
    /// The unit the target is for; the city when absent. Also accepted as the `unit` query
    /// parameter; both must then agree.
    unit: Option<String>,
}

/// A target's current explanation and every earlier one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanations {
    year: i32,
    indicator: Code,
    unit: Code,
    /// The newest explanation, shown beside the target; `null` when none was given.
    current: Option<Explanation>,
    /// Every explanation, newest first (the first is `current`).
    history: Vec<Explanation>,
}

/// A date of the body, or a problem naming its field.
fn date(raw: &str, pointer: &str) -> Result<NaiveDate, ApiError> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(pointer, "a date as YYYY-MM-DD, e.g. 2026-12-15"))?;
    if !YEARS.contains(&date.year()) {
        return Err(ApiError::invalid(
            pointer,
            format!("a date between {} and {}", YEARS.start(), YEARS.end()),
        ));
    }
    Ok(date)
}

/// A field the body must carry; serde would name only the object it is missing from.
fn required<'a>(value: Option<&'a String>, pointer: &str) -> Result<&'a str, ApiError> {
    value
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid(pointer, "required"))
}

/// Trimmed free text of 1 to `max` characters that every backend can store.
fn text(raw: &str, max: usize, pointer: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(ApiError::invalid(
            pointer,
            format!("required, 1 to {max} characters"),
        ));
    }
    body::storable(trimmed, pointer)?;
    Ok(trimmed.to_owned())
}

fn actions(posted: &[ActionBody], today: NaiveDate) -> Result<Vec<ExplanationAction>, ApiError> {
    if posted.len() > MAX_ACTIONS {
        return Err(ApiError::invalid(
            "/actions",
            format!("at most {MAX_ACTIONS} actions"),
        ));
    }
    posted
        .iter()
        .enumerate()
        .map(|(i, action)| {
            let done = action
                .done
                .as_deref()
                .map(|raw| date(raw, &format!("/actions/{i}/done")))
                .transpose()?;
            if done.is_some_and(|done| done > today) {
                return Err(ApiError::invalid(
                    format!("/actions/{i}/done"),
                    "an action cannot be done in the future",
                ));
            }
            let (text_at, due_at) = (format!("/actions/{i}/text"), format!("/actions/{i}/due"));
            Ok(ExplanationAction {
                text: text(
                    required(action.text.as_ref(), &text_at)?,
                    MAX_ACTION_CHARS,
                    &text_at,
                )?,
                due: date(required(action.due.as_ref(), &due_at)?, &due_at)?,
                done,
            })
        })
        .collect()
}

/// Refuses a caller who may not explain `indicator`'s targets: only its owning department's
/// tokens and admins may.
fn require_owner(caller: &Caller, indicator: &Indicator) -> Result<(), ApiError> {
    if caller.0.may_write_department(&indicator.department) {
        return Ok(());
    }
    Err(ApiError::Forbidden(match caller.0.role {
        Role::Viewer => "a viewer token reads explanations but may not write them".to_owned(),
        _ => format!(
            "`{}` is explained by its owning department `{}` only",
            indicator.code, indicator.department
        ),
    }))
}

/// Fails with 404 unless the target has at least one version.
async fn require_target(
    state: &AppState,
    year: i32,
    indicator: &Indicator,
    unit: &OrgUnit,
) -> Result<(), ApiError> {
    let versions = state
        .store
        .target_history(year, indicator.code.as_str(), unit.code.as_str())
        .await?;
    if versions.is_empty() {
        return Err(no_target(year, indicator, unit));
    }
    Ok(())
}

/// Explains a slipping target: why, and the actions taken with their due dates. **The
/// indicator's owning department or an admin.**
///
/// The new explanation supersedes the previous one on the screens at once; earlier ones stay
/// in the history. Every explanation is an `explanation.add` row of the audit log.
#[utoipa::path(
    post,
    path = "/targets/{year}/{indicator}/explanations",
    operation_id = "explanations_post",
    tag = "targets",
    security(("bearer" = [])),
    params(
        ("year" = i32, Path, minimum = 1900, maximum = 2200, example = 2026),
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER"),
        UnitQuery,
    ),
    request_body(content = ExplanationBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Giải trình đã lưu / The explanation as stored", body = Explanation),
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
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    CallerIp(client_ip): CallerIp,
    Path((year, code)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<UnitQuery>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Explanation>), ApiError> {
    let year = parse_year(&year)?;
    let indicator = state
        .catalogue
        .indicator(&code)
        .ok_or_else(|| ApiError::NotFound(format!("unknown indicator `{code}`")))?;
    require_owner(&caller, indicator)?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: ExplanationBody = body::json(&bytes)?;
    let unit = match (query.unit.as_deref(), request.unit.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid(
                "/unit",
                format!("the body names unit `{b}` and the query `{a}`"),
            ))
        }
        (Some(code), _) | (None, Some(code)) => state
            .catalogue
            .unit(code)
            .ok_or_else(|| ApiError::invalid("/unit", format!("unknown unit `{code}`")))?,
        (None, None) => state
            .catalogue
            .root_unit()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no root unit")))?,
    };
    let now = Utc::now();
    let today = now.with_timezone(&state.settings.zone()).date_naive();
    let new = NewExplanation {
        year,
        indicator: indicator.code.clone(),
        unit: unit.code.clone(),
        text: text(
            required(request.text.as_ref(), "/text")?,
            MAX_TEXT_CHARS,
            "/text",
        )?,
        actions: actions(&request.actions, today)?,
        author: caller.0.name.clone(),
        department: indicator.department.clone(),
        created_at: now,
    };
    require_target(&state, year, indicator, unit).await?;

    let previous = state
        .store
        .explanations(year, indicator.code.as_str(), unit.code.as_str())
        .await?
        .into_iter()
        .next();
    let mut event = AuditEvent::new(now, caller.0.label(), "explanation.add", new.subject());
    event.before = previous.and_then(|e| serde_json::to_value(e).ok());
    event.after = serde_json::to_value(new.stored(0)).ok().map(|mut value| {
        // The row's id is the store's to give; the audit row keeps what was said.
        if let Some(object) = value.as_object_mut() {
            object.remove("id");
        }
        value
    });
    event.client_ip = client_ip;
    let stored = state.store.add_explanation(&new, &event).await?;
    // On the screens at once, not at the next tick.
    state
        .pipeline
        .apply(Change::Explained(stored.clone()))
        .await;
    tracing::info!(year, indicator = %indicator.code, unit = %unit.code, actor = %event.actor, "target explained");
    Ok((StatusCode::CREATED, Json(stored)))
}

/// A target's current explanation and every earlier one, newest first.
#[utoipa::path(
    get,
    path = "/targets/{year}/{indicator}/explanations",
    operation_id = "explanations_list",
    tag = "targets",
    security(("bearer" = [])),
    params(
        ("year" = i32, Path, minimum = 1900, maximum = 2200, example = 2026),
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER"),
        UnitQuery,
    ),
    responses(
        (status = 200, description = "Giải trình hiện hành và lịch sử / The current explanation and the history", body = Explanations),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path((year, code)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<UnitQuery>,
) -> Result<Json<Explanations>, ApiError> {
    let year = parse_year(&year)?;
    let (indicator, unit) = indicator_and_unit(&state, &code, query.unit.as_deref())?;
    let history = state
        .store
        .explanations(year, indicator.code.as_str(), unit.code.as_str())
        .await?;
    if history.is_empty() {
        require_target(&state, year, indicator, unit).await?;
    }
    Ok(Json(Explanations {
        year,
        indicator: indicator.code.clone(),
        unit: unit.code.clone(),
        current: history.first().cloned(),
        history,
    }))
}

/// A target's current explanation alone: the one the screens show.
#[utoipa::path(
    get,
    path = "/targets/{year}/{indicator}/explanations/current",
    operation_id = "explanations_current",
    tag = "targets",
    security(("bearer" = [])),
    params(
        ("year" = i32, Path, minimum = 1900, maximum = 2200, example = 2026),
        ("indicator" = String, Path, description = "Mã chỉ tiêu / Indicator code", example = "EXPORT_TURNOVER"),
        UnitQuery,
    ),
    responses(
        (status = 200, description = "Giải trình hiện hành / The current explanation", body = Explanation),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn current(
    State(state): State<AppState>,
    _caller: Caller,
    Path((year, code)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<UnitQuery>,
) -> Result<Json<Explanation>, ApiError> {
    let year = parse_year(&year)?;
    let (indicator, unit) = indicator_and_unit(&state, &code, query.unit.as_deref())?;
    state
        .store
        .explanations(year, indicator.code.as_str(), unit.code.as_str())
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no explanation of the {year} target of `{}` in `{}`",
                indicator.code, unit.code
            ))
        })
}
