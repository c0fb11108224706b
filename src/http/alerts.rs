//! Alerts, acknowledgements, silences and the notification outbox.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::{body, ApiError, ApiQuery, AppState};
use crate::alerts::model::{Ack, Alert, Silence};
use crate::auth::{Principal, Role};
use crate::hub::view::Update;

#[derive(Deserialize)]
pub struct AlertQuery {
    state: Option<String>,
    include_resolved: Option<bool>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let include_resolved =
        query.include_resolved.unwrap_or(false) || query.state.as_deref() == Some("resolved");
    let alerts = state.store.alerts(include_resolved, limit).await?;
    if let Some(wanted) = query.state.as_deref() {
        if !["pending", "firing", "resolved"].contains(&wanted) {
            return Err(ApiError::invalid(
                "state",
                "use pending, firing or resolved",
            ));
        }
    }
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .filter(|a| query.state.as_deref().is_none_or(|s| a.state.as_str() == s))
        .collect();
    Ok(Json(json!({ "alerts": alerts })))
}

/// Departments act on their own alerts; admins on all; viewers on none.
fn may_act_on(principal: &Principal, labels: &BTreeMap<String, String>) -> bool {
    match principal.role {
        Role::Admin => true,
        Role::Department => principal
            .department
            .as_ref()
            .is_some_and(|d| labels.get("department").map(String::as_str) == Some(d.as_str())),
        Role::Viewer => false,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    comment: String,
}

pub async fn ack(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<Alert>, ApiError> {
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: AckBody = body::json(&bytes)?;
    let comment = request.comment.trim();
    if comment.is_empty() || comment.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "/comment",
            "say what is being done, in 1 to 1000 characters",
        ));
    }
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
    let alert = state
        .alerts
        .acknowledge(&id, ack)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    matchers: BTreeMap<String, String>,
    ends_at: Option<DateTime<Utc>>,
    duration_minutes: Option<i64>,
    comment: String,
}

pub async fn create_silence(
    State(state): State<AppState>,
    Caller(principal): Caller,
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
    if !may_act_on(&principal, &request.matchers) {
        return Err(ApiError::Forbidden(
            "a department may silence only its own alerts: match `department` to it".into(),
        ));
    }
    let now = Utc::now();
    let ends_at = match (request.ends_at, request.duration_minutes) {
        (Some(ends_at), None) => ends_at,
        (None, Some(minutes)) if (1..=60 * 24 * 90).contains(&minutes) => {
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
    if comment.is_empty() {
        return Err(ApiError::invalid(
            "/comment",
            "say why the alerts are silenced",
        ));
    }
    let silence = Silence {
        id: crate::auth::mint().id,
        matchers: request.matchers,
        starts_at: now,
        ends_at,
        created_by: principal.label(),
        comment: comment.to_owned(),
        expired_at: None,
    };
    state.store.upsert_silence(&silence).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

pub async fn silences(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = Utc::now();
    let silences: Vec<_> = state
        .store
        .silences()
        .await?
        .into_iter()
        .map(|s| {
            let active = s.is_active(now);
            json!({ "silence": s, "active": active })
        })
        .collect();
    Ok(Json(json!({ "silences": silences })))
}

pub async fn expire_silence(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut silence = state
        .store
        .silences()
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no silence `{id}`")))?;
    if !may_act_on(&principal, &silence.matchers) {
        return Err(ApiError::Forbidden(
            "this token may not expire this silence".into(),
        ));
    }
    if silence.expired_at.is_none() {
        silence.expired_at = Some(Utc::now());
        state.store.upsert_silence(&silence).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    let notifications = state.store.notifications(200).await?;
    Ok(Json(json!({ "notifications": notifications })))
}
