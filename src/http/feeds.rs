//! `GET /api/v1/feeds`: the health of every configured collector (pull, MQTT, NATS). Any
//! token may read it, screens' viewer tokens included: it shows no endpoint or credential.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::openapi::{BadRequest, Unauthorized, Unavailable};
use super::{ApiError, AppState, NoQuery};
use crate::live::feeds::FeedHealth;

#[derive(Serialize, ToSchema)]
pub struct Feeds {
    /// When this view was taken.
    at: DateTime<Utc>,
    feeds: Vec<FeedHealth>,
}

/// Every collector's health: state, last success, last error, rows, failures, lag, next run.
#[utoipa::path(
    get,
    path = "/feeds",
    operation_id = "feeds_list",
    tag = "feeds",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tình trạng nguồn số liệu / The collectors' health", body = Feeds),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    _: NoQuery,
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Feeds>, ApiError> {
    let now = Utc::now();
    Ok(Json(Feeds {
        at: now,
        feeds: state.feeds.list(now),
    }))
}
