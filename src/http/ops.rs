//! Operations endpoints: liveness, readiness and Prometheus metrics (unauthenticated, as
//! scrapers and probes expect; they reveal no data or secrets).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::NotReady;
use super::{ApiError, AppState};
use crate::metrics;
use crate::store::{Backend, MigrationState};

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /readyz`: the store answers and holds every migration of this build.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    backend: Backend,
    migrations: MigrationState,
    /// This instance's name (`[server] instance_name`, or `host:pid:random`).
    #[schema(example = "web-1:4242:9f3a")]
    instance: String,
    /// Whether this instance leads: it alone commits alerts, delivers notifications, mails
    /// reports and runs the collectors. Always true on SQLite.
    leader: bool,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "ops_healthz",
    tag = "operations",
    responses((status = 200, description = "Dịch vụ đang chạy / The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when the store answers and holds every migration of this build as written. Start-up
/// migrates before binding the listener, but the database may since have been restored from an
/// older backup or migrated by another version sharing it.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ops_readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Sẵn sàng phục vụ / Ready to serve", body = Readiness),
        (status = 503, response = NotReady),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let migrations = state.store.migrations().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness: the store does not answer");
        ApiError::Unavailable
    })?;
    if !migrations.complete() {
        tracing::warn!(
            applied = migrations.applied,
            expected = migrations.expected,
            "readiness: the database lacks migrations of this build"
        );
        return Err(ApiError::MigrationsMissing {
            applied: migrations.applied,
            expected: migrations.expected,
        });
    }
    Ok(Json(Readiness {
        status: "ready",
        backend: state.store.backend(),
        migrations,
        instance: state.leadership.instance().to_owned(),
        leader: state.leadership.is_leader(),
    }))
}

/// Prometheus metrics (`ktxh_*`), in the text exposition format 0.0.4.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "ops_metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Số đo Prometheus / Prometheus metrics", content_type = "text/plain", body = String,
         example = "# TYPE ktxh_build_info gauge\nktxh_build_info{version=\"0.1.0\"} 1\n"),
    )
)]
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
