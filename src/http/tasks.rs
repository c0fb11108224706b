//! Directives and tasks (chỉ đạo, nhiệm vụ): `GET /api/v1/tasks` with the counts by status,
//! department and group; `GET /api/v1/tasks/{code}` with every progress note, status change and
//! definition; `POST /api/v1/tasks` and `PUT /api/v1/tasks/{code}` for admins; and
//! `POST /api/v1/tasks/{code}/progress` for the owning department (or an admin). Every write is
//! audited and goes through the pipeline to the alerts and the screens (ARCHITECTURE §3, §5).

mod input;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
    Unprocessable, UnsupportedMediaType,
};
use super::targets::CallerIp;
use super::{body, ApiError, ApiQuery, AppState, NoQuery};
use crate::auth::Role;
use crate::domain::task::{
    ProgressNote, RecordedStatus, StatusRecord, Task, TaskDefinitionRecord, TaskStatus, TaskWrite,
};
use crate::domain::task_view::{self, TaskSummary, TaskView};
use crate::domain::Code;
use crate::pipeline::Change;
use crate::store::AuditEvent;

pub use input::{DirectiveBody, ProgressBody, TaskBody};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// Only the tasks this department owns.
    #[param(example = "CUSTOMS")]
    department: Option<String>,
    /// Only the tasks of this status: `not_started`, `in_progress`, `done`, `done_late` or
    /// `overdue`.
    status: Option<String>,
    /// Only the tasks counted under this sector group.
    group: Option<String>,
    /// Only the tasks linked to this indicator.
    indicator: Option<String>,
    /// `true`: only the overdue tasks.
    overdue: Option<bool>,
    /// The tasks as they were known at this instant (RFC 3339, or a period such as
    /// `2026-09-30` meaning its end), judged on the city's day at it:
    /// those stored by then, with the definition, status and progress recorded by then.
    as_of: Option<String>,
}

/// The tasks that match, and the counts over them.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// The instant the statuses were judged at.
    as_of: DateTime<Utc>,
    summary: TaskSummary,
    /// Overdue first, then by due date.
    tasks: Vec<TaskView>,
}

/// One task with every progress note, every change of its recorded status and every definition
/// it has had.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    task: TaskView,
    /// Oldest first.
    progress: Vec<ProgressNote>,
    /// The recorded status's changes, oldest first.
    history: Vec<StatusRecord>,
    /// Every definition it has had (due date, owner, group…), oldest first, each in force from
    /// its `at` until the next: a report cut off in the past reads the one in force then.
    definitions: Vec<TaskDefinitionRecord>,
    /// `config` (config/directives/) or `api`.
    origin: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
    as_of: DateTime<Utc>,
}

fn detail(task: &Task, now: DateTime<Utc>, today: NaiveDate) -> TaskDetail {
    TaskDetail {
        task: TaskView::of(task, today),
        progress: task.progress.clone(),
        history: task.history.clone(),
        definitions: task.definitions.clone(),
        origin: task.origin.clone(),
        updated_at: task.updated_at,
        updated_by: task.updated_by.clone(),
        as_of: now,
    }
}

fn today(state: &AppState, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&state.settings.zone()).date_naive()
}

async fn stored(state: &AppState, code: &str) -> Result<Task, ApiError> {
    state
        .store
        .tasks(Some(code))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("no task `{code}`")))
}

/// What an audit row keeps of a task.
fn audit_value(task: &Task) -> Option<serde_json::Value> {
    Some(serde_json::json!({
        "def": task.def,
        "directive": task.directive.number,
        "status": task.recorded,
        "completed_on": task.completed_on,
        "percent": task.percent,
    }))
}

/// Writes, then carries the task through the pipeline so the alerts and the screens follow.
async fn write(state: &AppState, write: &TaskWrite, event: &AuditEvent) -> Result<Task, ApiError> {
    let written = state.store.write_task(write, event).await?.ok_or_else(|| {
        if write.create {
            ApiError::Conflict(format!("a task `{}` exists already", write.def.code))
        } else {
            ApiError::NotFound(format!("no task `{}`", write.def.code))
        }
    })?;
    state
        .pipeline
        .apply(Change::Task(Box::new(written.clone())))
        .await;
    Ok(written)
}

/// The tasks that match the filters, overdue first then by due date, with the counts by
/// status, owning department and sector group.
#[utoipa::path(
    get,
    path = "/tasks",
    operation_id = "tasks_list",
    tag = "tasks",
    security(("bearer" = [])),
    params(TasksQuery),
    responses(
        (status = 200, description = "Nhiệm vụ và số lượng theo trạng thái / Tasks and their counts", body = TaskList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<TasksQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let catalogue = &state.catalogue;
    let as_of = ApiError::as_of(query.as_of.as_deref(), state.settings.zone())?;
    let now = as_of.unwrap_or_else(Utc::now);
    if let Some(code) = query.department.as_deref() {
        if catalogue.department(code).is_none() {
            return Err(ApiError::invalid(
                "department",
                format!("unknown department `{code}`"),
            ));
        }
    }
    if let Some(code) = query.group.as_deref() {
        if catalogue.group(code).is_none() {
            return Err(ApiError::invalid(
                "group",
                format!("unknown group `{code}`"),
            ));
        }
    }
    if let Some(code) = query.indicator.as_deref() {
        if catalogue.indicator(code).is_none() {
            return Err(ApiError::invalid(
                "indicator",
                format!("unknown indicator `{code}`"),
            ));
        }
    }
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            TaskStatus::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "not_started, in_progress, done, done_late or overdue",
                )
            })
        })
        .transpose()?;
    let mut tasks = state.store.tasks(None).await?;
    let day = today(&state, now);
    if let Some(at) = as_of {
        // As known then, as a report cut off at that instant reads them (ARCHITECTURE §8).
        tasks = tasks
            .iter()
            .filter_map(|t| t.as_known_at(at, day))
            .collect();
    }
    let views: Vec<TaskView> = task_view::views(&tasks, day)
        .into_iter()
        .filter(|v| {
            query
                .department
                .as_deref()
                .is_none_or(|d| v.owner.as_str() == d)
        })
        .filter(|v| query.group.as_deref().is_none_or(|g| v.group.as_str() == g))
        .filter(|v| {
            query
                .indicator
                .as_deref()
                .is_none_or(|i| v.indicators.iter().any(|c| c.as_str() == i))
        })
        .filter(|v| status.is_none_or(|s| v.status == s))
        .filter(|v| query.overdue != Some(true) || v.status == TaskStatus::Overdue)
        .collect();
    Ok(Json(TaskList {
        as_of: now,
        summary: task_view::summarize(&views, catalogue),
        tasks: views,
    }))
}

/// One task with all its progress notes, the changes of its recorded status and its definitions.
#[utoipa::path(
    get,
    path = "/tasks/{code}",
    operation_id = "tasks_one",
    tag = "tasks",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Mã nhiệm vụ / Task code", example = "CT2026_EXPORT_MARKETS")),
    responses(
        (status = 200, description = "Nhiệm vụ / The task", body = TaskDetail),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn one(
    _: NoQuery,
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let task = stored(&state, &code).await?;
    let now = Utc::now();
    Ok(Json(detail(&task, now, today(&state, now))))
}

/// Creates a task of a directive (the directive too, when its number is new). **Admin.**
#[utoipa::path(
    post,
    path = "/tasks",
    operation_id = "tasks_create",
    tag = "tasks",
    security(("bearer" = [])),
    request_body(content = TaskBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Nhiệm vụ đã tạo / The task as stored", body = TaskDetail),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create(
    _: NoQuery,
    State(state): State<AppState>,
    caller: Caller,
    CallerIp(client_ip): CallerIp,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TaskDetail>), ApiError> {
    caller.require_admin()?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: TaskBody = body::json(&bytes)?;
    let code = input::new_code(&request)?;
    let tasks = state.store.tasks(None).await?;
    let directives: Vec<_> = tasks.iter().map(|t| t.directive.clone()).collect();
    let directive = input::directive(request.directive.as_ref(), &directives)?;
    let def = input::definition(code, &request, &directive, &state.catalogue)?;
    let now = Utc::now();
    let task_write = TaskWrite {
        def,
        directive,
        recorded: RecordedStatus::NotStarted,
        completed_on: None,
        percent: None,
        origin: "api".into(),
        at: now,
        by: caller.0.name.clone(),
        create: true,
        note: None,
        history: None,
    };
    let mut event = AuditEvent::new(
        now,
        caller.0.label(),
        "task.create",
        task_write.def.code.as_str(),
    );
    event.after = Some(serde_json::json!({
        "def": task_write.def,
        "directive": task_write.directive,
    }));
    event.client_ip = client_ip;
    let written = write(&state, &task_write, &event).await?;
    tracing::info!(task = %written.def.code, actor = %event.actor, "task created");
    Ok((
        StatusCode::CREATED,
        Json(detail(&written, now, today(&state, now))),
    ))
}

/// Redefines a task (title, directive, owner, co-operating units, due date, indicators, group);
/// its progress stays. **Admin.**
#[utoipa::path(
    put,
    path = "/tasks/{code}",
    operation_id = "tasks_put",
    tag = "tasks",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Mã nhiệm vụ / Task code", example = "CT2026_EXPORT_MARKETS")),
    request_body(content = TaskBody, content_type = "application/json", example = json!({
        "title_vi": "Hỗ trợ doanh nghiệp mở rộng thị trường xuất khẩu, tận dụng các FTA",
        "title_en": "Help enterprises open new export markets under the free-trade agreements",
        "directive": {"number": "01/CT-UBND (minh họa)"},
        "owner": "CUSTOMS",
        "cooperating": ["INDUSTRY_TRADE"],
        "due": "2026-10-31",
        "indicators": ["EXPORT_TURNOVER", "EXPORT_GROWTH"]
    })),
    responses(
        (status = 200, description = "Nhiệm vụ đã sửa / The task as stored", body = TaskDetail),
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
    Path(code): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<TaskDetail>, ApiError> {
    caller.require_admin()?;
    let before = stored(&state, &code).await?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: TaskBody = body::json(&bytes)?;
    if request.code.as_deref().is_some_and(|c| c != code) {
        return Err(ApiError::invalid("/code", "differs from the path's"));
    }
    let tasks = state.store.tasks(None).await?;
    let directives: Vec<_> = tasks.iter().map(|t| t.directive.clone()).collect();
    let directive = input::directive(request.directive.as_ref(), &directives)?;
    let def = input::definition(
        before.def.code.clone(),
        &request,
        &directive,
        &state.catalogue,
    )?;
    let now = Utc::now();
    let task_write = TaskWrite {
        def,
        directive,
        recorded: before.recorded,
        completed_on: before.completed_on,
        percent: before.percent,
        origin: "api".into(),
        at: now,
        by: caller.0.name.clone(),
        create: false,
        note: None,
        history: None,
    };
    let mut event = AuditEvent::new(now, caller.0.label(), "task.update", code.as_str());
    event.before = audit_value(&before);
    event.after = Some(serde_json::json!({
        "def": task_write.def,
        "directive": task_write.directive.number,
    }));
    event.client_ip = client_ip;
    let written = write(&state, &task_write, &event).await?;
    tracing::info!(task = %written.def.code, actor = %event.actor, "task redefined");
    Ok(Json(detail(&written, now, today(&state, now))))
}

/// Records progress on a task: a note, how far it is, and optionally that it is in progress or
/// done (on a date). **The owning department or an admin.**
#[utoipa::path(
    post,
    path = "/tasks/{code}/progress",
    operation_id = "tasks_progress",
    tag = "tasks",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Mã nhiệm vụ / Task code", example = "CT2026_EXPORT_MARKETS")),
    request_body(content = ProgressBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Tiến độ đã ghi / The task with the note", body = TaskDetail),
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
pub async fn progress(
    _: NoQuery,
    State(state): State<AppState>,
    caller: Caller,
    CallerIp(client_ip): CallerIp,
    Path(code): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TaskDetail>), ApiError> {
    let before = stored(&state, &code).await?;
    require_owner(&caller, &before.def.owner, &code)?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: ProgressBody = body::json(&bytes)?;
    let now = Utc::now();
    let backdate =
        (caller.0.role != Role::Admin).then_some(state.settings.ingest.reported_at_backdate_days);
    let progress = input::progress(&request, &before.directive, today(&state, now), backdate)?;
    let (recorded, completed_on) = match progress.status {
        Some(set) => set,
        // A first note on a task not started starts it.
        None if before.recorded == RecordedStatus::NotStarted => (RecordedStatus::InProgress, None),
        None => (before.recorded, before.completed_on),
    };
    let by = caller.0.name.clone();
    let changed = (recorded, completed_on) != (before.recorded, before.completed_on);
    let task_write = TaskWrite {
        def: before.def.clone(),
        directive: before.directive.clone(),
        recorded,
        completed_on,
        percent: progress.percent.or(before.percent),
        origin: before.origin.clone(),
        at: now,
        by: by.clone(),
        create: false,
        note: Some(ProgressNote {
            at: now,
            by: by.clone(),
            note: progress.note,
            percent: progress.percent,
            status: progress.status.map(|(s, _)| s),
        }),
        history: changed.then_some(StatusRecord {
            at: now,
            by,
            status: recorded,
            completed_on,
        }),
    };
    let mut event = AuditEvent::new(now, caller.0.label(), "task.progress", code.as_str());
    event.before = audit_value(&before);
    event.after = Some(serde_json::json!({
        "status": recorded,
        "completed_on": completed_on,
        "percent": task_write.percent,
        "note": task_write.note.as_ref().map(|n| &n.note),
    }));
    event.client_ip = client_ip;
    let written = write(&state, &task_write, &event).await?;
    tracing::info!(task = %written.def.code, status = %written.recorded.as_str(), actor = %event.actor, "task progress recorded");
    Ok((
        StatusCode::CREATED,
        Json(detail(&written, now, today(&state, now))),
    ))
}

/// Refuses a caller who may not record progress on a task of `owner`: only that department's
/// tokens and admins may.
fn require_owner(caller: &Caller, owner: &Code, code: &str) -> Result<(), ApiError> {
    if caller.0.may_write_department(owner) {
        return Ok(());
    }
    Err(ApiError::Forbidden(match caller.0.role {
        Role::Viewer => "a viewer token reads tasks but may not record their progress".to_owned(),
        _ => format!("task `{code}` is reported on by its owning department `{owner}` only"),
    }))
}
