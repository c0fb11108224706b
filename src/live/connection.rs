//! One screen's websocket after the upgrade (ARCHITECTURE §9): the protocol, the delivery of
//! resumes, snapshots and deltas, heartbeats and the token's watch. The HTTP layer
//! authenticates and upgrades, then hands the socket to an [`Opening`].
//!
//! Client → server: `{"subscribe": ["overview", "alerts"], "since": 41}` (`since`, the last
//! `seq` seen, resumes without a gap) and `{"unsubscribe": ["alerts"]}`. Server → client:
//! `welcome`, then the deltas the resumed topics missed, all topics together in `seq` order,
//! then a `snapshot` per topic that cannot resume (or is new), then `delta`s in `seq` order;
//! a `heartbeat` every interval; `error` for a bad message, which never closes the connection.
//!
//! A connection lives no longer than its token: it re-reads the token from the store every
//! `live.token_recheck_seconds` and closes with code 4401 once the token is revoked, and at the
//! token's expiry at the latest ([`token`]).

mod protocol;
pub mod token;

use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use prometheus::IntCounter;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WireFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use self::protocol::{error_message, ClientMessage, Closed};
pub use self::token::{TokenStanding, TokenWatch};
use super::view::Publisher;
use super::{Frame, Joined, SnapshotReason, Topic};
use crate::config::LiveSettings;
use crate::metrics::METRICS;

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

/// Deltas a connection counts on its own before adding them to the metric.
const COUNT_BATCH: u64 = 256;

/// What the socket under a websocket must be: the upgraded HTTP connection in the service.
pub trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// An accepted connection, waiting for its upgrade to complete. Made while the request is
/// still at hand, so the task that runs the connection holds only what the connection needs.
pub struct Opening {
    publisher: Arc<Publisher>,
    limits: Limits,
    config: WebSocketConfig,
    watch: TokenWatch,
}

impl Opening {
    pub fn new(publisher: Arc<Publisher>, live: &LiveSettings, watch: TokenWatch) -> Self {
        let config = WebSocketConfig::default()
            .max_message_size(Some(live.max_message_bytes))
            .max_frame_size(Some(live.max_message_bytes))
            // Clients only send small control messages.
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0);
        Self {
            publisher,
            limits: Limits {
                heartbeat_seconds: live.heartbeat_seconds,
                max_topics: live.max_topics,
            },
            config,
            watch,
        }
    }

    /// Speaks the protocol on the upgraded connection `io` until either side ends it.
    pub async fn run<S: Io>(self, io: S) {
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(self.config)).await;
        Connection::new(self.publisher, self.limits, self.watch)
            .run(socket)
            .await;
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

    async fn run<S: Io>(mut self, mut socket: WebSocketStream<S>) {
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

    async fn serve<S: Io>(
        &mut self,
        socket: &mut WebSocketStream<S>,
        closing: &CancellationToken,
    ) -> Closed {
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

    async fn handle<S: Io>(
        &mut self,
        socket: &mut WebSocketStream<S>,
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
    async fn resnapshot<S: Io>(&mut self, socket: &mut WebSocketStream<S>) -> Result<(), Closed> {
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

    async fn snapshot<S: Io>(
        &self,
        socket: &mut WebSocketStream<S>,
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
    async fn send<S: Io>(
        &self,
        socket: &mut WebSocketStream<S>,
        message: Message,
    ) -> Result<(), Closed> {
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
    async fn send_text<S: Io>(
        &self,
        socket: &mut WebSocketStream<S>,
        text: Utf8Bytes,
    ) -> Result<(), Closed> {
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
