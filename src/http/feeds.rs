//! `GET /api/v1/feeds`: the health of every configured collector (pull, MQTT, NATS). Any
//! token may read it, screens' viewer tokens included: it shows no endpoint or credential.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::auth::Caller;
use super::{ApiError, AppState};

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    Ok(Json(json!({
        "at": now,
        "feeds": state.feeds.list(now),
    })))
}
