//! `GET|HEAD /ping` and `GET /health`: how InfluxDB clients and agents tell that the server is
//! up before they write.
//!
//! Both are open, as in InfluxDB (influxdata/influxdb `services/httpd/handler.go` on
//! `master-1.x`: the `/ping` and `/health` routes are registered without authentication).
//! Every answer carries `X-Influxdb-Version` and `X-Influxdb-Build`, which InfluxDB sets on all
//! its answers (`ServeHTTP`) and which clients read: influxdb-python's `ping()` returns
//! `X-Influxdb-Version` and expects `204`; influxdb-client-python's `ping()` is true on any 2xx,
//! and its `build()` reads `X-Influxdb-Build` to tell InfluxDB Cloud (`Cloud`) from a
//! self-hosted server (`OSS`) before calling Cloud-only APIs.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;

/// This server's version as InfluxDB clients read it: ours, named as ours, so that nobody
/// mistakes the service for an InfluxDB release.
pub const VERSION: &str = concat!("ktxh-", env!("CARGO_PKG_VERSION"));

/// `OSS`: the self-hosted API, whose write and health endpoints these are. Clients compare
/// the build with `Cloud` only, to decide whether Cloud-only APIs exist.
pub const BUILD: &str = "OSS";

/// The commit this binary was built from, when the build set `KTXH_COMMIT`.
pub const COMMIT: &str = match option_env!("KTXH_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The headers InfluxDB puts on every answer.
pub fn version_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (
            HeaderName::from_static("x-influxdb-version"),
            HeaderValue::from_static(VERSION),
        ),
        (
            HeaderName::from_static("x-influxdb-build"),
            HeaderValue::from_static(BUILD),
        ),
    ]
}

/// The query of `GET /ping`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // described, never built: the handler reads the raw query
pub struct PingQuery {
    /// Anything but empty, `0` or `false` asks for `200` with the version in a JSON body
    /// instead of `204`.
    verbose: Option<String>,
}

/// The body of `GET /ping?verbose=true`, as InfluxDB 1.x writes it.
#[derive(Serialize, ToSchema)]
pub struct PingVersion {
    #[schema(example = "ktxh-0.1.0")]
    version: &'static str,
}

/// InfluxDB's verbose test: `verbose != "" && verbose != "0" && verbose != "false"`
/// (`servePing`).
fn verbose(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "verbose")
        .last()
        .is_some_and(|(_, value)| !value.is_empty() && value != "0" && value != "false")
}

/// Whether the service is up, as InfluxDB answers it. **No token.**
///
/// `204` with `X-Influxdb-Version` and `X-Influxdb-Build`; `?verbose=true` gives `200` with
/// the version in a JSON body. `HEAD` answers the same without a body. Like InfluxDB's, this
/// says the process answers; `GET /health` also asks the store.
#[utoipa::path(
    get,
    path = "/ping",
    operation_id = "influx_ping",
    tag = "compatibility",
    params(PingQuery),
    responses(
        (status = 204, description = "Dịch vụ đang chạy / The service is up",
         headers(
            ("X-Influxdb-Version" = String, description = "`ktxh-<version>`"),
            ("X-Influxdb-Build" = String, description = "`OSS`"),
         )),
        (status = 200, description = "Dịch vụ đang chạy, kèm phiên bản / Up, with the version (`verbose`)",
         body = PingVersion,
         headers(
            ("X-Influxdb-Version" = String, description = "`ktxh-<version>`"),
            ("X-Influxdb-Build" = String, description = "`OSS`"),
         )),
    )
)]
pub async fn ping(RawQuery(query): RawQuery) -> Response {
    if verbose(query.as_deref()) {
        (
            version_headers(),
            axum::Json(PingVersion { version: VERSION }),
        )
            .into_response()
    } else {
        (StatusCode::NO_CONTENT, version_headers()).into_response()
    }
}

/// `HEAD /ping`, as agents send it: the same answer without a body. A separate operation
/// because an OpenAPI operation id names one method.
#[utoipa::path(
    head,
    path = "/ping",
    operation_id = "influx_ping_head",
    tag = "compatibility",
    params(PingQuery),
    responses(
        (status = 204, description = "Dịch vụ đang chạy / The service is up",
         headers(
            ("X-Influxdb-Version" = String, description = "`ktxh-<version>`"),
            ("X-Influxdb-Build" = String, description = "`OSS`"),
         )),
        (status = 200, description = "Dịch vụ đang chạy (`verbose`) / Up (`verbose`)",
         headers(
            ("X-Influxdb-Version" = String, description = "`ktxh-<version>`"),
            ("X-Influxdb-Build" = String, description = "`OSS`"),
         )),
    )
)]
pub async fn ping_head(query: RawQuery) -> Response {
    ping(query).await
}

/// One check of `GET /health`, present only when it fails.
#[derive(Serialize, ToSchema)]
pub struct HealthCheck {
    #[schema(example = "store")]
    name: &'static str,
    #[schema(example = "fail")]
    status: &'static str,
    #[schema(example = "the store does not answer")]
    message: String,
}

/// InfluxDB 2.x's health body (influxdata/influxdb `HEALTH_READY.md` on `main-2.x`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "name": "influxdb", "message": "ready for queries and writes", "status": "pass",
    "checks": [], "version": "ktxh-0.1.0", "commit": "unknown"
}))]
pub struct InfluxHealth {
    /// Always `influxdb`: clients check it.
    name: &'static str,
    message: String,
    /// `pass` or `fail`.
    status: &'static str,
    /// Empty when the service passes; the failing check otherwise.
    checks: Vec<HealthCheck>,
    version: &'static str,
    /// The build's commit (`KTXH_COMMIT` at build time), or `unknown`.
    commit: &'static str,
}

/// Whether the service can take writes, in InfluxDB 2.x's shape. **No token.**
///
/// Ready as `GET /readyz` is: the store answers and holds every migration of this build.
/// `200` with `status: pass`; `503` with `status: fail` and the failing check otherwise, as
/// InfluxDB answers when one of its checks fails.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "influx_health",
    tag = "compatibility",
    responses(
        (status = 200, description = "Sẵn sàng nhận số liệu / Ready for writes", body = InfluxHealth,
         content_type = "application/json; charset=utf-8"),
        (status = 503, description = "Kho dữ liệu chưa sẵn sàng / The store is not ready", body = InfluxHealth,
         content_type = "application/json; charset=utf-8"),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let failure = match state.store.migrations().await {
        Ok(migrations) if migrations.complete() => None,
        Ok(migrations) => Some(format!(
            "the database holds {} of the {} migrations of this build",
            migrations.applied, migrations.expected
        )),
        Err(error) => {
            tracing::warn!(error = %error, "health: the store does not answer");
            Some("the store does not answer".to_owned())
        }
    };
    let (status, body) = match failure {
        None => (
            StatusCode::OK,
            InfluxHealth {
                name: "influxdb",
                message: "ready for queries and writes".to_owned(),
                status: "pass",
                checks: Vec::new(),
                version: VERSION,
                commit: COMMIT,
            },
        ),
        Some(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            InfluxHealth {
                name: "influxdb",
                message: message.clone(),
                status: "fail",
                checks: vec![HealthCheck {
                    name: "store",
                    status: "fail",
                    message,
                }],
                version: VERSION,
                commit: COMMIT,
            },
        ),
    };
    let json = match serde_json::to_vec(&body) {
        Ok(json) => json,
        Err(error) => {
            tracing::error!(error = %error, "health: the body cannot be written");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (
        status,
        version_headers(),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        json,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::verbose;

    #[test]
    fn verbose_is_any_value_but_empty_zero_or_false() {
        assert!(verbose(Some("verbose=true")));
        assert!(verbose(Some("verbose=1")));
        assert!(verbose(Some("verbose=yes")));
        assert!(!verbose(Some("verbose=false")));
        assert!(!verbose(Some("verbose=0")));
        assert!(!verbose(Some("verbose=")));
        assert!(!verbose(None));
        assert!(!verbose(Some("u=someone")));
    }
}
