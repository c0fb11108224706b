//! `GET /ws`: the screens' live feed (ARCHITECTURE §9), and `POST /api/v1/ws/ticket`, which trades a
//! token for a one-time ticket so that browsers never put a token in a URL.
//!
//! Client → server: `{"subscribe": ["overview", "alerts"], "since": 41}` (`since`, the last
//! `seq` seen, resumes without a gap) and `{"unsubscribe": ["alerts"]}`. Server → client:
//! `welcome`, then the deltas the resumed topics missed, all topics together in `seq` order,
//! then a `snapshot` per topic that cannot resume (or is new), then `delta`s in `seq` order;
//! a `heartbeat` every interval; `error` for a bad message, which never closes the connection.
//!
//! A connection lives no longer than its token: it re-reads the token from the store every
//! `live.token_recheck_seconds` and closes with code 4401 once the token is revoked, and at the
//! token's expiry at the latest.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WireFrame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

// Resolved once: a label lookup per delivered frame would cost more than the delivery.
static FRAMES_DELTA: LazyLock<IntCounter> =
    LazyLock::new(|| METRICS.ws_frames.with_label_values(&["delta"]));
static FRAMES_REPLAY: LazyLock<IntCounter> =
    LazyLock::new(|| METRICS.ws_frames.with_label_values(&["replay"]));
static FRAMES_SNAPSHOT: LazyLock<IntCounter> =
    LazyLock::new(|| METRICS.ws_frames.with_label_values(&["snapshot"]));

/// Messages longer than this go out as several frames. The socket's write buffer keeps the
/// capacity of the largest frame it ever held, so a whole snapshot in one frame would stay
/// allocated on every connection for its lifetime.
const FRAGMENT_BYTES: usize = 4 * 1024;

use super::auth::{bearer, refuse_credentials_in_query, verify, Caller};
use super::error::ApiError;
use super::limits;
use super::openapi::{
    BadRequest, Forbidden, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
};
use super::AppState;
use crate::auth::Principal;
use crate::config::LiveSettings;
use crate::live::ticket::TicketError;
use crate::live::view::Publisher;
use crate::live::{Frame, Joined, SnapshotReason, Topic};
use crate::metrics::METRICS;
use crate::store::DynStore;

/// The close code for a connection whose token was revoked or expired: 4401 mirrors HTTP's
/// 401 in the range RFC 6455 leaves to applications, so a screen knows to ask for a new token
/// rather than reconnect with the old one.
const TOKEN_GONE: u16 = 4401;

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
    let watch = TokenWatch::start(&state, &principal).await?;
    let accept = handshake_key(&request)?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| ApiError::NotWebsocket("this connection cannot be upgraded".into()))?;
    let publisher = state.publisher.clone();
    let limits = Limits {
        heartbeat_seconds: live.heartbeat_seconds,
        max_topics: live.max_topics,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(live.max_message_bytes))
        .max_frame_size(Some(live.max_message_bytes))
        // Clients only send small control messages.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    tracing::debug!(caller = %principal.label(), "websocket opened");
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                return;
            }
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        Connection::new(publisher, limits, watch).run(socket).await;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    unsubscribe: Vec<String>,
    since: Option<u64>,
}

/// Why a connection ended, for the metrics.
#[derive(Debug, Clone, Copy)]
enum Closed {
    Client,
    DeadPeer,
    WriteTimeout,
    Shutdown,
    Error,
    TokenRevoked,
    TokenExpired,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::DeadPeer => "dead_peer",
            Self::WriteTimeout => "write_timeout",
            Self::Shutdown => "shutdown",
            Self::Error => "error",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
        }
    }

    /// The close frame the peer is sent, when it is still there to read one.
    fn frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Shutdown => (CloseCode::Away, "server shutting down"),
            Self::TokenRevoked => (CloseCode::from(TOKEN_GONE), "token revoked"),
            Self::TokenExpired => (CloseCode::from(TOKEN_GONE), "token expired"),
            Self::Client | Self::DeadPeer | Self::WriteTimeout | Self::Error => return None,
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// A token's standing, and when the store gave it.
type Answer = (Instant, Result<(), Closed>);

/// Whether the tokens of open websockets still stand, shared by every connection: each asks it
/// every half re-check interval, and it asks the store at most once per token and half
/// interval. Ten thousand screens on a handful of tokens would otherwise cost the store a query
/// per screen per interval; a revoked token's screens still close within one interval.
pub struct TokenStanding {
    store: DynStore,
    fresh_for: Duration,
    answers: std::sync::Mutex<HashMap<String, Answer>>,
}

impl TokenStanding {
    pub fn new(store: DynStore, recheck: Duration) -> Self {
        Self {
            store,
            fresh_for: recheck / 2,
            answers: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn remembered(&self, token_id: &str) -> Option<Result<(), Closed>> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let (asked_at, answer) = answers.get(token_id)?;
        (asked_at.elapsed() < self.fresh_for).then_some(*answer)
    }

    /// A store that cannot answer keeps the connection: an outage must not blank every
    /// screen, and the next re-check asks again.
    async fn check(&self, token_id: &str) -> Result<(), Closed> {
        if let Some(answer) = self.remembered(token_id) {
            return answer;
        }
        let answer = match self.store.token(token_id).await {
            Ok(Some(record)) if record.is_usable(Utc::now()) => Ok(()),
            Ok(Some(record)) if record.revoked_at.is_none() => Err(Closed::TokenExpired),
            Ok(_) => Err(Closed::TokenRevoked),
            Err(error) => {
                tracing::warn!(%error, "cannot re-check a websocket's token; kept open");
                return Ok(());
            }
        };
        // Std mutex: held for a map operation only, never across an await.
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the tokens asked about within one half interval.
        let fresh_for = self.fresh_for;
        answers.retain(|_, (asked_at, _)| asked_at.elapsed() < fresh_for);
        answers.insert(token_id.to_owned(), (Instant::now(), answer));
        answer
    }
}

/// What a connection needs to outlive its token by no more than one re-check.
struct TokenWatch {
    standing: Arc<TokenStanding>,
    token_id: String,
    expires_at: Option<chrono::DateTime<Utc>>,
    recheck: Duration,
}

impl TokenWatch {
    /// Reads the token behind `principal` as the connection opens; refused when it is no
    /// longer usable.
    async fn start(state: &AppState, principal: &Principal) -> Result<Self, ApiError> {
        let record = state
            .store
            .token(&principal.token_id)
            .await?
            .filter(|record| record.is_usable(Utc::now()))
            .ok_or(ApiError::InvalidToken)?;
        Ok(Self {
            standing: state.token_standing.clone(),
            token_id: record.id,
            expires_at: record.expires_at,
            // Half the interval, as the shared answers may be half an interval old.
            recheck: Duration::from_secs(state.settings.live.token_recheck_seconds) / 2,
        })
    }

    async fn still_valid(&self) -> Result<(), Closed> {
        self.standing.check(&self.token_id).await
    }

    /// When the token expires, on the runtime's clock.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        let expires_at = self.expires_at?;
        let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }
}

/// What a connection needs of the `[live]` settings, copied so that each connection stays
/// small.
#[derive(Debug, Clone, Copy)]
struct Limits {
    heartbeat_seconds: u64,
    max_topics: usize,
}

/// One screen's connection: the topics it joined, each with the `seq` its start covers.
struct Connection {
    publisher: Arc<Publisher>,
    limits: Limits,
    watch: TokenWatch,
    joined: Vec<(Topic, u64)>,
    /// Deltas sent and not yet added to the shared counter: adding each one would make every
    /// connection write the same cache line on every delivery.
    uncounted: u64,
}

/// Deltas a connection counts on its own before adding them to the metric.
const COUNT_BATCH: u64 = 256;

impl Drop for Connection {
    fn drop(&mut self) {
        // Also runs when the task is cancelled, so the hub's watch counts stay right.
        let topics: Vec<Topic> = self.joined.drain(..).map(|(topic, _)| topic).collect();
        self.publisher.hub().leave(&topics);
        FRAMES_DELTA.inc_by(self.uncounted);
        METRICS.ws_connections.dec();
    }
}

impl Connection {
    fn new(publisher: Arc<Publisher>, limits: Limits, watch: TokenWatch) -> Self {
        METRICS.ws_connections.inc();
        Self {
            publisher,
            limits,
            watch,
            joined: Vec::new(),
            uncounted: 0,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let closing = self.publisher.closing().clone();
        let closed = self.serve(&mut socket, &closing).await;
        METRICS
            .ws_closed
            .with_label_values(&[closed.as_str()])
            .inc();
        if let Some(frame) = closed.frame() {
            let _ = self.send(&mut socket, Message::Close(Some(frame))).await;
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket, closing: &CancellationToken) -> Closed {
        // Subscribed before the welcome: every delta from here on reaches this connection.
        let mut frames = self.publisher.hub().receiver();
        let heartbeat = Duration::from_secs(self.limits.heartbeat_seconds);
        if let Err(closed) = self.send(socket, self.welcome()).await {
            return closed;
        }
        let mut ping = tokio::time::interval(heartbeat);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut recheck = tokio::time::interval(self.watch.recheck);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.tick().await;
        let expiry = self.watch.deadline();
        let mut expired = std::pin::pin!(async move {
            match expiry {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        });
        // Made once: each new `cancelled()` future would register with the token, whose lock
        // every connection shares, on every delivery.
        let mut closing = std::pin::pin!(closing.cancelled());
        loop {
            let step = tokio::select! {
                () = &mut closing => return Closed::Shutdown,
                () = &mut expired => return Closed::TokenExpired,
                _ = recheck.tick() => self.watch.still_valid().await,
                incoming = socket.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => self.handle(socket, &mut frames, text.as_str()).await,
                        Some(Ok(Message::Binary(_))) => {
                            self.send(socket, error_message("bad_message", "send JSON text messages", None)).await
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
                        Some(Ok(Message::Close(_))) | None => return Closed::Client,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket read failed");
                            return Closed::Error;
                        }
                    }
                }
                frame = frames.recv() => match frame {
                    Ok(frame) => match self.wants(&frame) {
                        true => {
                            self.count_delta();
                            self.send_text(socket, frame.text.clone()).await
                        }
                        false => Ok(()),
                    },
                    Err(RecvError::Lagged(missed)) => {
                        METRICS.ws_overflows.inc();
                        tracing::debug!(missed, "slow websocket client gets a snapshot");
                        self.resnapshot(socket).await
                    }
                    Err(RecvError::Closed) => return Closed::Shutdown,
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > 2 * heartbeat {
                        return Closed::DeadPeer;
                    }
                    // The ping finds dead peers here; the heartbeat message lets a browser,
                    // which never sees pings, find a half-open connection on its side.
                    match self.send(socket, Message::Ping(Default::default())).await {
                        Ok(()) => self.send(socket, self.heartbeat()).await,
                        Err(closed) => Err(closed),
                    }
                }
            };
            if let Err(closed) = step {
                return closed;
            }
        }
    }

    fn welcome(&self) -> Message {
        let publisher = &self.publisher;
        let catalogue = publisher.catalogue();
        let city = publisher.city();
        let unit = catalogue.unit(city.as_str());
        let body = json!({
            "type": "welcome",
            "seq": publisher.hub().seq(),
            "year": publisher.year(Utc::now()),
            "city": {
                "code": city,
                "name_vi": unit.map(|u| u.name_vi.as_str()),
                "name_en": unit.map(|u| u.name_en.as_str()),
                "timezone": publisher.zone().name(),
            },
            "heartbeat_seconds": self.limits.heartbeat_seconds,
            "max_topics": self.limits.max_topics,
        });
        Message::text(body.to_string())
    }

    fn heartbeat(&self) -> Message {
        let body = json!({
            "type": "heartbeat",
            "seq": self.publisher.hub().seq(),
            "at": Utc::now(),
        });
        Message::text(body.to_string())
    }

    fn count_delta(&mut self) {
        self.uncounted += 1;
        if self.uncounted == COUNT_BATCH {
            FRAMES_DELTA.inc_by(COUNT_BATCH);
            self.uncounted = 0;
        }
    }

    fn wants(&self, frame: &Frame) -> bool {
        self.joined
            .iter()
            .any(|(topic, from)| *topic == frame.topic && frame.seq > *from)
    }

    async fn handle(
        &mut self,
        socket: &mut WebSocket,
        frames: &mut broadcast::Receiver<Arc<Frame>>,
        text: &str,
    ) -> Result<(), Closed> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(error) => {
                let detail = format!(
                    "expected {{\"subscribe\": [topics], \"since\": seq}} or {{\"unsubscribe\": [topics]}}: {error}"
                );
                return self
                    .send(socket, error_message("bad_message", &detail, None))
                    .await;
            }
        };
        if !message.unsubscribe.is_empty() {
            let leaving: Vec<Topic> = self
                .joined
                .iter()
                .filter(|(topic, _)| {
                    message
                        .unsubscribe
                        .iter()
                        .any(|raw| topic.to_string() == *raw)
                })
                .map(|(topic, _)| topic.clone())
                .collect();
            self.joined.retain(|(topic, _)| !leaving.contains(topic));
            self.publisher.hub().leave(&leaving);
        }
        let mut topics: Vec<Topic> = Vec::new();
        for raw in &message.subscribe {
            match Topic::parse(raw, self.publisher.catalogue()) {
                Ok(topic) => {
                    let known = topics.contains(&topic)
                        || self.joined.iter().any(|(joined, _)| *joined == topic);
                    if !known {
                        topics.push(topic);
                    }
                }
                Err(error) => {
                    let error = error_message("unknown_topic", &error.to_string(), Some(raw));
                    self.send(socket, error).await?;
                }
            }
        }
        if self.joined.len() + topics.len() > self.limits.max_topics {
            let detail = format!(
                "a connection may join at most {} topics",
                self.limits.max_topics
            );
            return self
                .send(socket, error_message("too_many_topics", &detail, None))
                .await;
        }
        if topics.is_empty() {
            return Ok(());
        }
        let Joined {
            from,
            replay,
            snapshots,
        } = self.publisher.hub().join(&topics, message.since);
        // Every delta up to `from` is already queued on `frames`; those of topics joined
        // earlier go out with the replay, in one `seq` order, so that `seq` never goes back.
        let mut queued = Vec::new();
        loop {
            match frames.try_recv() {
                Ok(frame) => queued.push(frame),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(missed)) => {
                    self.joined
                        .extend(topics.iter().map(|topic| (topic.clone(), from)));
                    METRICS.ws_overflows.inc();
                    tracing::debug!(missed, "slow websocket client gets a snapshot");
                    return self.resnapshot(socket).await;
                }
                Err(TryRecvError::Closed) => return Err(Closed::Shutdown),
            }
        }
        self.joined
            .extend(topics.iter().map(|topic| (topic.clone(), from)));
        queued.retain(|frame| self.wants(frame));
        let later = queued.split_off(queued.partition_point(|frame| frame.seq <= from));
        let mut earlier: Vec<(Arc<Frame>, bool)> = replay
            .into_iter()
            .map(|frame| (frame, true))
            .chain(queued.into_iter().map(|frame| (frame, false)))
            .collect();
        earlier.sort_by_key(|(frame, _)| frame.seq);
        for (frame, replayed) in earlier {
            if replayed {
                FRAMES_REPLAY.inc();
            } else {
                self.count_delta();
            }
            self.send_text(socket, frame.text.clone()).await?;
        }
        for (topic, reason) in snapshots {
            self.snapshot(socket, &topic, from, reason).await?;
        }
        for frame in later {
            self.count_delta();
            self.send_text(socket, frame.text.clone()).await?;
        }
        Ok(())
    }

    /// After an overflow, every joined topic starts again from a snapshot.
    async fn resnapshot(&mut self, socket: &mut WebSocket) -> Result<(), Closed> {
        let seq = self.publisher.hub().seq();
        let topics: Vec<Topic> = self.joined.iter().map(|(topic, _)| topic.clone()).collect();
        for (_, from) in &mut self.joined {
            *from = seq;
        }
        for topic in topics {
            self.snapshot(socket, &topic, seq, SnapshotReason::Overflow)
                .await?;
        }
        Ok(())
    }

    async fn snapshot(
        &self,
        socket: &mut WebSocket,
        topic: &Topic,
        seq: u64,
        reason: SnapshotReason,
    ) -> Result<(), Closed> {
        match self
            .publisher
            .snapshot(topic, seq, reason, Utc::now())
            .await
        {
            Ok(text) => {
                FRAMES_SNAPSHOT.inc();
                self.send_text(socket, text).await
            }
            Err(error) => {
                tracing::error!(%error, %topic, "cannot build a snapshot");
                Err(Closed::Error)
            }
        }
    }

    /// Sends one message; a peer that does not take it within two heartbeats is given up.
    async fn send(&self, socket: &mut WebSocket, message: Message) -> Result<(), Closed> {
        let mut sending = std::pin::pin!(socket.send(message));
        // Most sends fit in the socket's buffer at once; only one that has to wait arms a
        // timer, which would otherwise cost more than the send itself.
        let sent = match futures::poll!(sending.as_mut()) {
            Poll::Ready(sent) => sent,
            Poll::Pending => {
                let limit = Duration::from_secs(2 * self.limits.heartbeat_seconds);
                tokio::time::timeout(limit, sending)
                    .await
                    .map_err(|_| Closed::WriteTimeout)?
            }
        };
        sent.map_err(|_| Closed::Client)
    }

    /// Sends a text message, in fragments of [`FRAGMENT_BYTES`] when it is longer; the
    /// fragments share the message's buffer.
    async fn send_text(&self, socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), Closed> {
        if text.len() <= FRAGMENT_BYTES {
            return self.send(socket, Message::Text(text)).await;
        }
        let bytes = Bytes::from(text);
        let mut start = 0;
        while start < bytes.len() {
            let end = (start + FRAGMENT_BYTES).min(bytes.len());
            let opcode = if start == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let fragment = WireFrame::message(bytes.slice(start..end), opcode, end == bytes.len());
            self.send(socket, Message::Frame(fragment)).await?;
            start = end;
        }
        Ok(())
    }
}

fn error_message(code: &str, message: &str, topic: Option<&str>) -> Message {
    let body = json!({
        "type": "error",
        "code": code,
        "message": message,
        "topic": topic,
    });
    Message::text(body.to_string())
}
