//! Operations endpoints: liveness, readiness and Prometheus metrics (unauthenticated, as
//! scrapers and probes expect; they reveal no data or secrets).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::{ApiError, AppState};
use crate::metrics;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers; migrations ran before the listener was bound.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(
        json!({"status": "ready", "backend": state.store.backend()}),
    ))
}

pub async fn metrics() -> Result<impl IntoResponse, ApiError> {
    let text = metrics::render().map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
