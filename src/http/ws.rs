//! `GET /ws`: the screens' live feed (ARCHITECTURE §9), and `POST /api/v1/ws/ticket`, which trades a
//! token for a one-time ticket so that browsers never put a token in a URL.
//!
//! This side checks the origin, the credential and the handshake, and upgrades; the protocol
//! spoken after the upgrade is [`crate::live::connection`]'s.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use utoipa::ToSchema;

use super::auth::{bearer, refuse_credentials_in_query, verify, Caller};
use super::error::ApiError;
use super::limits;
use super::openapi::{
    BadRequest, Forbidden, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
};
use super::AppState;
use super::NoQuery;
use crate::config::LiveSettings;
use crate::live::connection::Opening;
use crate::live::ticket::TicketError;

/// A one-time credential for `GET /ws?ticket=…`.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    ticket: String,
    /// Seconds the ticket stays valid.
    #[schema(example = 30)]
    expires_in: i64,
}

/// `POST /api/v1/ws/ticket`: any valid token may watch the screens.
///
/// Browsers cannot set a header on a websocket; they trade their token for a ticket, which
/// works once, and open `GET /ws?ticket=…`.
#[utoipa::path(
    post,
    path = "/ws/ticket",
    operation_id = "ws_ticket",
    tag = "live",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Vé dùng một lần / A one-time ticket", body = Ticket),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn ticket(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    let ticket = state
        .tickets
        .issue(principal, Utc::now())
        .map_err(|error| match error {
            TicketError::TokenFull { retry_after } => ApiError::TooManyTickets {
                retry_after: limits::seconds(retry_after),
            },
            TicketError::PoolFull { retry_after } => ApiError::TicketPoolFull {
                retry_after: limits::seconds(retry_after),
            },
        })?;
    let body = Ticket {
        ticket,
        expires_in: state.tickets.ttl().num_seconds(),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    ticket: Option<String>,
}

/// The screens' live feed over a websocket (ARCHITECTURE §9).
///
/// Checks the origin, the credential and the handshake, then upgrades. Client → server: `{"subscribe": ["overview", "alerts",
/// "feeds", "indicator:GRDP_GROWTH"], "since": 41}` and `{"unsubscribe": [...]}`. Server →
/// client: `welcome`, a `snapshot` per topic (or the deltas missed since `since`), then
/// `delta`s in `seq` order, a `heartbeat` every interval, and `error` for a bad message.
/// Topics: `overview`, `group:<code>`, `indicator:<code>`, `unit:<code>`, `alerts`, `feeds`.
/// Any valid token, as `Authorization: Bearer …` or a ticket from `POST /api/v1/ws/ticket`.
/// Refused: a call without the handshake (`400 not_websocket`), a browser page of another
/// origin (`403 foreign_origin`), a token beyond its rate (`429 rate_limited`) or holding
/// `[limits] max_websockets_per_token` open websockets (`429 too_many_websockets`).
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "ws_upgrade",
    tag = "live",
    security(("bearer" = []), ()),
    params(
        ("ticket" = Option<String>, Query, description = "Vé từ `POST /api/v1/ws/ticket` / A ticket from `POST /api/v1/ws/ticket`"),
    ),
    responses(
        (status = 101, description = "Đã chuyển sang websocket / Switched to the websocket protocol"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let live = &state.settings.live;
    let headers = request.headers();
    check_origin(live, headers)?;
    let query = request.uri().query();
    refuse_credentials_in_query(query)?;
    let params: WsParams = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| ApiError::invalid("ticket", e.to_string()))?;
    let principal = match params.ticket {
        Some(ticket) => state
            .tickets
            .redeem(&ticket, Utc::now())
            .ok_or(ApiError::InvalidToken)?,
        None => {
            let presented = bearer(headers).ok_or(ApiError::MissingToken)?;
            let principal = verify(&state, presented).await?;
            limits::credential_accepted(request.extensions());
            principal
        }
    };
    state.limits.check_token(&principal.token_id)?;
    // A screen that vanished without closing is found within two heartbeats, which gives its
    // place back.
    let place = state
        .limits
        .websocket_place(&principal.token_id, 2 * live.heartbeat_seconds)?;
    // A ticket may outlive its token by its few seconds; the connection must not.
    let watch = state
        .token_standing
        .watch(&principal.token_id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let accept = handshake_key(&request)?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| ApiError::NotWebsocket("this connection cannot be upgraded".into()))?;
    let opening = Opening::new(state.publisher.clone(), live, watch);
    tracing::debug!(caller = %principal.label(), "websocket opened");
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                return;
            }
        };
        opening.run(TokioIo::new(upgraded)).await;
        drop(place);
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
        .header(header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Checks an HTTP/1.1 websocket handshake (RFC 6455 §4.2.1) and returns the accept key.
fn handshake_key(request: &Request) -> Result<String, ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::NotWebsocket(format!(
            "not a websocket handshake: {what}"
        )))
    };
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if request.version() != Version::HTTP_11 {
        return refuse("HTTP/1.1 is required");
    }
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return refuse("send `Connection: Upgrade` and `Upgrade: websocket`");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return refuse("`Sec-WebSocket-Version: 13` is required");
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(derive_accept_key(key.as_bytes())),
        None => refuse("`Sec-WebSocket-Key` is missing"),
    }
}

/// A browser's `Origin` must be the service's own or an allowed one; clients that are not
/// browsers send none and are judged by their credential alone.
fn check_origin(live: &LiveSettings, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| ApiError::ForeignOrigin("(not text)".into()))?;
    let own = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
        });
    if own || live.allowed_origins.iter().any(|allowed| allowed == origin) {
        Ok(())
    } else {
        Err(ApiError::ForeignOrigin(origin.to_owned()))
    }
}
