//! Alerts, acknowledgements, silences and the notification outbox.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::targets::CallerIp;
use super::{body, ApiError, ApiQuery, AppState, NoQuery};
use crate::alerts::audience::{self, Audience};
use crate::auth::{Principal, Role};
use crate::domain::alert::{Ack, Alert, AlertState, Silence};
use crate::ingest::json::pointer_token;
use crate::live::view::Update;
use crate::store::AuditEvent;

/// Longest comment on an acknowledgement or a silence, in characters.
const MAX_COMMENT_CHARS: usize = 1000;
/// Most labels one silence may match, and the longest label name and value, in characters:
/// alert labels are short codes, so anything longer cannot match and only fills the store.
const MAX_MATCHERS: usize = 16;
const MAX_MATCHER_NAME_CHARS: usize = 64;
const MAX_MATCHER_VALUE_CHARS: usize = 256;
/// The longest silence, given as `duration_minutes` or as `ends_at`: 90 days.
const MAX_SILENCE_MINUTES: i64 = 60 * 24 * 90;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts in this state.
    #[param(value_type = Option<AlertState>)]
    state: Option<String>,
    /// Resolved alerts too (implied by `state=resolved`).
    include_resolved: Option<bool>,
    /// How many alerts at most (1 to 1000; 200 when absent).
    limit: Option<i64>,
    /// Only alerts for this audience (the `audience` label): `leadership` (the wall),
    /// `department` or `operators`.
    #[param(value_type = Option<Audience>)]
    audience: Option<String>,
    /// Only alerts of this department (the `department` label).
    #[param(example = "FINANCE")]
    department: Option<String>,
}

/// Most alerts read to answer a filtered list: every active alert (a few thousand at most),
/// and the newest resolved ones, before the filter picks and `limit` cuts.
const FILTERED_READ: i64 = 20_000;

#[derive(Serialize, ToSchema)]
pub struct Alerts {
    alerts: Vec<Alert>,
}

/// Alerts, newest first: pending and firing, and resolved ones on request.
#[utoipa::path(
    get,
    path = "/alerts",
    operation_id = "alerts_list",
    tag = "alerts",
    security(("bearer" = [])),
    params(AlertQuery),
    responses(
        (status = 200, description = "Cảnh báo / The alerts", body = Alerts),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Json<Alerts>, ApiError> {
    let limit = query.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "give 1 to 1000 alerts"));
    }
    let include_resolved =
        query.include_resolved.unwrap_or(false) || query.state.as_deref() == Some("resolved");
    if let Some(wanted) = query.state.as_deref() {
        if !["pending", "firing", "resolved"].contains(&wanted) {
            return Err(ApiError::invalid(
                "state",
                "use pending, firing or resolved",
            ));
        }
    }
    let audience = query
        .audience
        .as_deref()
        .map(|raw| {
            Audience::parse(raw).ok_or_else(|| {
                ApiError::invalid("audience", "use leadership, department or operators")
            })
        })
        .transpose()?;
    if let Some(department) = query.department.as_deref() {
        if state.catalogue.department(department).is_none() {
            return Err(ApiError::invalid(
                "department",
                format!("no department `{department}` in the catalogue"),
            ));
        }
    }
    let filtered = query.state.is_some() || audience.is_some() || query.department.is_some();
    // The store cuts at `limit` before a filter would; a filtered list reads more and cuts after.
    let read = if filtered { FILTERED_READ } else { limit };
    let alerts = state.store.alerts(include_resolved, read).await?;
    let city = state.catalogue.root_unit().map(|unit| unit.code.as_str());
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .filter(|a| query.state.as_deref().is_none_or(|s| a.state.as_str() == s))
        .filter(|a| audience.is_none_or(|wanted| Audience::of_labels(&a.labels, city) == wanted))
        .filter(|a| {
            query
                .department
                .as_deref()
                .is_none_or(|d| a.labels.get("department").map(String::as_str) == Some(d))
        })
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    Ok(Json(Alerts { alerts }))
}

/// Departments act on their own alerts; admins on all; viewers on none.
///
/// "Their own" is read from the `department` label alone: an alert's is set by the rules
/// engine from the indicator's owner, and a silence must match `department` to the token's,
/// so a department can neither acknowledge nor mute another's alerts, and a silence matching
/// no department (which would mute every department's alerts) is for admins.
fn may_act_on(principal: &Principal, labels: &BTreeMap<String, String>) -> bool {
    match principal.role {
        Role::Admin => true,
        Role::Department => principal
            .department
            .as_ref()
            .is_some_and(|d| labels.get("department").map(String::as_str) == Some(d.as_str())),
        Role::Viewer | Role::Approver | Role::Statistics => false,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"comment": "Sở đang làm việc với các phường để bổ sung số liệu"}))]
pub struct AckBody {
    /// What is being done about it (1 to 1000 characters).
    comment: String,
}

/// Acknowledges an active alert. **Admins, or the department the alert is about.**
#[utoipa::path(
    post,
    path = "/alerts/{fingerprint}/ack",
    operation_id = "alerts_ack",
    tag = "alerts",
    security(("bearer" = [])),
    params(("fingerprint" = String, Path, description = "Dấu nhận dạng cảnh báo / The alert's fingerprint")),
    request_body(content = AckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Cảnh báo đã xác nhận / The acknowledged alert", body = Alert),
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
pub async fn ack(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
    CallerIp(client_ip): CallerIp,
    Path(id): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<Alert>, ApiError> {
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: AckBody = body::json(&bytes)?;
    let comment = request.comment.trim();
    if comment.is_empty() || comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::invalid(
            "/comment",
            format!("say what is being done, in 1 to {MAX_COMMENT_CHARS} characters"),
        ));
    }
    body::storable(comment, "/comment")?;
    let active = state.alerts.active().await;
    let alert = active
        .iter()
        .find(|a| a.fingerprint == id)
        .ok_or_else(|| ApiError::NotFound(format!("no active alert `{id}`")))?;
    if !may_act_on(&principal, &alert.labels) {
        return Err(ApiError::Forbidden(
            "this token may not acknowledge this alert".into(),
        ));
    }
    let ack = Ack {
        by: principal.label(),
        at: Utc::now(),
        comment: comment.to_owned(),
    };
    let mut audit = AuditEvent::new(ack.at, principal.label(), "alert.ack", id.clone());
    audit.before = alert
        .ack
        .as_ref()
        .and_then(|a| serde_json::to_value(a).ok());
    audit.after = serde_json::to_value(&ack).ok();
    audit.reason = Some(comment.to_owned());
    audit.client_ip = client_ip;
    let alert = state
        .alerts
        .acknowledge(&id, ack, &audit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no active alert `{id}`")))?;
    state.publisher.publish(
        Update {
            alerts: std::slice::from_ref(&alert),
            ..Update::default()
        },
        Utc::now(),
    );
    Ok(Json(alert))
}

/// Mutes notifications of the alerts whose labels all match, for `duration_minutes` or until
/// `ends_at` (give one of them).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 120, "comment": "Bảo trì hệ thống báo cáo"}))]
pub struct SilenceBody {
    /// Label name → value, every one to match (1 to 16 labels; names up to 64 characters,
    /// values up to 256); a department must match its own `department`.
    matchers: BTreeMap<String, String>,
    /// At most 90 days from now.
    ends_at: Option<DateTime<Utc>>,
    /// 1 minute to 90 days.
    duration_minutes: Option<i64>,
    /// Why the alerts are silenced (1 to 1000 characters).
    comment: String,
}

/// Creates a silence. **Admins, or a department for its own alerts.**
#[utoipa::path(
    post,
    path = "/silences",
    operation_id = "alerts_create_silence",
    tag = "alerts",
    security(("bearer" = [])),
    request_body(content = SilenceBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Tạm tắt đã tạo / The silence", body = Silence),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create_silence(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
    CallerIp(client_ip): CallerIp,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: SilenceBody = body::json(&bytes)?;
    if request.matchers.is_empty() {
        return Err(ApiError::invalid(
            "/matchers",
            "at least one label must be matched",
        ));
    }
    if request.matchers.len() > MAX_MATCHERS {
        return Err(ApiError::invalid(
            "/matchers",
            format!("at most {MAX_MATCHERS} labels may be matched"),
        ));
    }
    for (name, value) in &request.matchers {
        let pointer = format!("/matchers/{}", pointer_token(name));
        let name_chars = name.chars().count();
        if name_chars == 0 || name_chars > MAX_MATCHER_NAME_CHARS {
            return Err(ApiError::invalid(
                "/matchers",
                format!("a label name has 1 to {MAX_MATCHER_NAME_CHARS} characters"),
            ));
        }
        if value.chars().count() > MAX_MATCHER_VALUE_CHARS {
            return Err(ApiError::invalid(
                pointer,
                format!("a label value has at most {MAX_MATCHER_VALUE_CHARS} characters"),
            ));
        }
        body::storable(name, "/matchers")?;
        body::storable(value, &pointer)?;
    }
    if !may_act_on(&principal, &request.matchers) {
        return Err(ApiError::Forbidden(
            "a department may silence only its own alerts: match `department` to it".into(),
        ));
    }
    let mut matchers = request.matchers;
    if principal.role == Role::Department {
        // A department's silence mutes the notices meant for it; what the leadership hears
        // about the department is not the department's to mute (ARCHITECTURE §5).
        let own = Audience::Department.as_str();
        match matchers.get(audience::LABEL) {
            None => {
                matchers.insert(audience::LABEL.to_owned(), own.to_owned());
            }
            Some(value) if value == own => {}
            Some(_) => {
                return Err(ApiError::Forbidden(
                    "a department may silence only the notices meant for it (`audience` \
                     `department`); the leadership's and the operators' go on"
                        .into(),
                ))
            }
        }
    }
    let now = Utc::now();
    let longest = Duration::minutes(MAX_SILENCE_MINUTES);
    let ends_at = match (request.ends_at, request.duration_minutes) {
        (Some(ends_at), None) if ends_at > now + longest => {
            return Err(ApiError::invalid(
                "/ends_at",
                "at most 90 days from now, as `duration_minutes`",
            ))
        }
        (Some(ends_at), None) => ends_at,
        (None, Some(minutes)) if (1..=MAX_SILENCE_MINUTES).contains(&minutes) => {
            now + Duration::minutes(minutes)
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "/duration_minutes",
                "between 1 minute and 90 days",
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                "/ends_at",
                "give either `ends_at` or `duration_minutes`",
            ))
        }
    };
    if ends_at <= now {
        return Err(ApiError::invalid("/ends_at", "must be in the future"));
    }
    let comment = request.comment.trim();
    if comment.is_empty() || comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::invalid(
            "/comment",
            format!("say why the alerts are silenced, in 1 to {MAX_COMMENT_CHARS} characters"),
        ));
    }
    body::storable(comment, "/comment")?;
    let silence = Silence {
        id: crate::auth::mint().id,
        matchers,
        starts_at: now,
        ends_at,
        created_by: principal.label(),
        comment: comment.to_owned(),
        expired_at: None,
    };
    let mut audit = AuditEvent::new(now, principal.label(), "silence.create", silence.id.clone());
    audit.after = serde_json::to_value(&silence).ok();
    audit.reason = Some(silence.comment.clone());
    audit.client_ip = client_ip;
    state.store.save_silence(&silence, &audit).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// A silence and whether it mutes alerts now.
#[derive(Serialize, ToSchema)]
pub struct SilenceView {
    silence: Silence,
    active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Silences {
    silences: Vec<SilenceView>,
}

/// Every silence, active or not.
#[utoipa::path(
    get,
    path = "/silences",
    operation_id = "alerts_silences",
    tag = "alerts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Các lần tạm tắt / The silences", body = Silences),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn silences(
    _: NoQuery,
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Silences>, ApiError> {
    let now = Utc::now();
    let silences = state
        .store
        .silences()
        .await?
        .into_iter()
        .map(|silence| SilenceView {
            active: silence.is_active(now),
            silence,
        })
        .collect();
    Ok(Json(Silences { silences }))
}

/// Expires a silence. **Admins, or the department it matches.**
#[utoipa::path(
    delete,
    path = "/silences/{id}",
    operation_id = "alerts_expire_silence",
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Mã tạm tắt / The silence's id")),
    responses(
        (status = 204, description = "Đã hết hiệu lực / Expired"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn expire_silence(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
    CallerIp(client_ip): CallerIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut silence = state
        .store
        .silences()
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no silence `{id}`")))?;
    // A department lifts its own silences only: one an admin set over what the leadership
    // hears about it is not the department's to lift (one from before silences carried an
    // audience is its own).
    let leadership_muted = principal.role == Role::Department
        && silence
            .matchers
            .get(audience::LABEL)
            .is_some_and(|value| value != Audience::Department.as_str());
    if !may_act_on(&principal, &silence.matchers) || leadership_muted {
        return Err(ApiError::Forbidden(
            "this token may not expire this silence".into(),
        ));
    }
    if silence.expired_at.is_none() {
        let now = Utc::now();
        let mut audit = AuditEvent::new(now, principal.label(), "silence.expire", id.clone());
        audit.before = serde_json::to_value(&silence).ok();
        silence.expired_at = Some(now);
        audit.after = serde_json::to_value(&silence).ok();
        audit.client_ip = client_ip;
        state.store.save_silence(&silence, &audit).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
