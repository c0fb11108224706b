//! The HTTP API: one file per resource, the problem+json error type, the auth extractor and
//! the OpenAPI document (`openapi.rs`) with its docs page (`docs.rs`).

pub mod activity;
pub mod alerts;
pub mod approvals;
pub mod auth;
pub mod body;
pub mod catalogue;
pub mod departments;
pub mod dhis2;
mod docs;
pub mod error;
pub mod explanations;
pub mod feeds;
pub mod influx;
pub mod limits;
pub mod notifications;
pub mod observations;
pub mod openapi;
pub mod ops;
pub mod plan;
pub mod reports;
pub mod screens;
pub mod serve;
pub mod status;
pub mod targets;
pub mod tasks;
pub mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerts::manager::AlertManager;
use crate::collectors::feeds::FeedsConfig;
use crate::config::Settings;
use crate::domain::Catalogue;
use crate::ingest::Ingestor;
use crate::live::connection::TokenStanding;
use crate::live::feeds::FeedHealthRegistry;
use crate::live::ticket::Tickets;
use crate::live::view::Publisher;
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
    /// What follows a change: engine, alerts, screens ([`crate::pipeline`]).
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    pub tickets: Arc<Tickets>,
    /// The collectors' health.
    pub feeds: Arc<FeedHealthRegistry>,
    /// `feeds.toml`: the collectors, and the mappings pushes in SDMX, DHIS2 and line protocol
    /// are read with.
    pub feed_config: Arc<FeedsConfig>,
    /// This instance's name and whether it leads ([`crate::leader`]).
    pub leadership: Arc<crate::leader::Leadership>,
    /// Rate limits and timeouts ([`limits`]).
    pub limits: Arc<limits::Limits>,
    /// Whether open websockets' tokens still stand ([`TokenStanding`]).
    pub token_standing: Arc<TokenStanding>,
}

/// Every route of the API. Each is registered through `routes!`, which takes its path and
/// method from the handler's `#[utoipa::path]`, so a route cannot be served without being in
/// the OpenAPI document. Paths under `/api/v1` are written relative to it in the handlers.
fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(catalogue::groups))
        .routes(routes!(catalogue::indicators))
        .routes(routes!(catalogue::indicator))
        .routes(routes!(catalogue::units))
        .routes(routes!(targets::list))
        .routes(routes!(targets::put))
        .routes(routes!(targets::history::history))
        .routes(routes!(explanations::list, explanations::post))
        .routes(routes!(explanations::current))
        .routes(routes!(targets::audit))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::ack))
        .routes(routes!(alerts::silences, alerts::create_silence))
        .routes(routes!(alerts::expire_silence))
        .routes(routes!(notifications::list))
        .routes(routes!(ws::ticket))
        .routes(routes!(feeds::list))
        .routes(routes!(reports::get))
        .routes(routes!(status::list))
        .routes(routes!(status::one))
        .routes(routes!(status::path))
        .routes(routes!(plan::get))
        .routes(routes!(plan::summary))
        .routes(routes!(observations::list, observations::post))
        .routes(routes!(observations::revisions))
        .routes(routes!(approvals::post))
        .routes(routes!(departments::list))
        .routes(routes!(departments::dashboard))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::one, tasks::put))
        .routes(routes!(tasks::progress))
        .routes(routes!(activity::activity));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api)
        .routes(routes!(ws::upgrade))
        // Compatibility endpoints: DHIS2 and InfluxDB clients post where their servers listen.
        .routes(routes!(dhis2::post))
        .routes(routes!(dhis2::post_versioned))
        .routes(routes!(influx::write_v2))
        .routes(routes!(influx::write_v1))
        .routes(routes!(influx::health::ping, influx::health::ping_head))
        .routes(routes!(influx::health::health))
        .routes(routes!(influx::query::query, influx::query::query_post))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(openapi::page))
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    openapi::add_limit_responses(&mut document);
    document
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.server.body_limit_bytes;
    let (routes, _) = routes().split_for_parts();
    routes
        .fallback(screens::asset)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::enforce,
        ))
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Whether `path` is of the native API, whose requests [`refuse_nul`] screens; the
/// compatibility endpoints (DHIS2, InfluxDB) answer in their own servers' shapes and read only
/// what they know.
pub(crate) fn refuses_nul(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/ws"
}

/// A NUL (U+0000) in the path or the query of the native API is refused before any handler
/// sees it: no store can hold or compare it (PostgreSQL refuses it in text), and no code or
/// name contains one.
async fn refuse_nul(request: Request, next: Next) -> Response {
    if !refuses_nul(request.uri().path()) {
        return next.run(request).await;
    }
    match nul_in(request.uri()) {
        Some(pointer) => axum::response::IntoResponse::into_response(ApiError::invalid(
            pointer,
            "contains a NUL character (U+0000)",
        )),
        None => next.run(request).await,
    }
}

/// Where `uri` holds a NUL once decoded: `path`, or the name of the query parameter.
fn nul_in(uri: &axum::http::Uri) -> Option<String> {
    if percent_encoding::percent_decode_str(uri.path()).any(|byte| byte == 0) {
        return Some("path".to_owned());
    }
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| name.replace('\0', "\\0"))
}

/// A known path asked with a method it does not serve: the same problem+json as every other
/// error (axum keeps its `Allow` header on the answer).
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Counts requests by route pattern and method, each from a closed set: a raw path or a
/// made-up method as a label would let any client grow `/metrics` without end.
async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    METRICS
        .http_requests
        .with_label_values(&[method, &route, &status])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The methods of RFC 9110 and PATCH by name; any other is `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// `Query` with problem+json errors that name the offending parameter.
pub struct ApiQuery<T>(pub T);

/// The query of an operation that reads none: any parameter is refused, naming it, as
/// [`ApiQuery`] refuses one it does not know (`POST …/approvals?dry_run=true` must not approve).
pub struct NoQuery;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // A credential in the URL is told as such wherever it is sent (it is in logs now).
        auth::refuse_credentials_in_query(parts.uri.query())?;
        let query = parts.uri.query().unwrap_or_default();
        match form_urlencoded::parse(query.as_bytes()).next() {
            None => Ok(Self),
            Some((name, _)) => Err(ApiError::invalid(
                name.to_string(),
                format!("unknown parameter `{name}`: this operation takes no query parameters"),
            )),
        }
    }
}

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
        auth::refuse_credentials_in_query(parts.uri.query())?;
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let message = e.inner().to_string();
                // A parameter no operation reads (a misspelt `dryrun`) is refused rather than
                // ignored, so a preview can never store; the error names it.
                let parameter = crate::ingest::json::named_field(&message)
                    .map_or_else(|| e.path().to_string(), str::to_owned);
                ApiError::invalid(parameter, message)
            })
    }
}
