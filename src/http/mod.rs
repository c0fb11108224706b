//! The HTTP API: one file per resource, the problem+json error type and the auth extractor.

pub mod alerts;
pub mod auth;
pub mod body;
pub mod catalogue;
pub mod dhis2;
pub mod error;
pub mod feeds;
pub mod influx;
pub mod observations;
pub mod ops;
pub mod reports;
pub mod screens;
pub mod status;
pub mod targets;
pub mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::alerts::manager::AlertManager;
use crate::collectors::FeedHealthRegistry;
use crate::config::Settings;
use crate::domain::Catalogue;
use crate::hub::ticket::Tickets;
use crate::hub::view::Publisher;
use crate::ingest::Ingestor;
use crate::metrics::METRICS;
use crate::rules::engine::Engine;
use crate::store::DynStore;

pub use error::ApiError;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub catalogue: Arc<Catalogue>,
    pub store: DynStore,
    pub ingestor: Arc<Ingestor>,
    pub engine: Arc<Engine>,
    pub alerts: Arc<AlertManager>,
    pub publisher: Arc<Publisher>,
    pub tickets: Arc<Tickets>,
    /// The collectors' health.
    pub feeds: Arc<FeedHealthRegistry>,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.server.body_limit_bytes;
    let api = Router::new()
        .route("/groups", get(catalogue::groups))
        .route("/indicators", get(catalogue::indicators))
        .route("/indicators/{code}", get(catalogue::indicator))
        .route("/units", get(catalogue::units))
        .route("/targets", get(targets::list))
        .route("/targets/{year}/{indicator}", put(targets::put))
        .route("/audit", get(targets::audit))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route(
            "/silences",
            get(alerts::silences).post(alerts::create_silence),
        )
        .route("/silences/{id}", delete(alerts::expire_silence))
        .route("/notifications", get(alerts::notifications))
        .route("/ws/ticket", post(ws::ticket))
        .route("/feeds", get(feeds::list))
        .route("/reports/{period}", get(reports::get))
        .route("/status", get(status::list))
        .route("/status/{indicator}", get(status::one))
        .route("/status/{indicator}/path", get(status::path))
        .route(
            "/observations",
            get(observations::list).post(observations::post),
        )
        .route(
            "/observations/{indicator}/{unit}/{period}/revisions",
            get(observations::revisions),
        );
    Router::new()
        .nest("/api/v1", api)
        .route("/ws", get(ws::upgrade))
        // Compatibility endpoints: DHIS2 and InfluxDB clients post where their servers listen.
        .route("/api/dataValueSets", post(dhis2::post))
        .route("/api/v2/write", post(influx::write_v2))
        .route("/write", post(influx::write_v1))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(screens::asset)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Counts requests by route pattern (never the raw path, which would be unbounded).
async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    METRICS
        .http_requests
        .with_label_values(&[&method, &route, &status])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `Query` with problem+json errors that name the offending parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let parameter = e.path().to_string();
                ApiError::invalid(parameter, e.into_inner().to_string())
            })
    }
}
