//! Streaming feeds: MQTT topics and NATS subjects.
//!
//! Every message is one body in the feed's format, ingested as a push of the feed's department.
//! A message that cannot be read is logged with its topic, counted and dropped; it never stops
//! the feed. Connections are retried with exponential backoff for as long as the service runs.
//!
//! MQTT subscriptions use a persistent session (`clean_session = false`) and acknowledge a
//! QoS 1 message only after it was handled, so the broker keeps what arrives while the service
//! is down and redelivers what it had not finished.

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::ConnectOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, SubscribeFilter, SubscribeReasonCode,
    TlsConfiguration, Transport,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use config::{MqttFeed, MqttTls, MqttTopic, NatsFeed};

use super::{backoff_delay, feed_principal, pause, secret_from_env, FeedContext, FeedFormat};
use crate::auth::Principal;
use crate::domain::Code;
use crate::ingest::{IngestError, RawRow};
use crate::live::feeds::{FeedError, FeedHealth, MessageCounts, RowCounts};
use crate::metrics;
use crate::store::IngestReceipt;

/// Store failures a message survives before it is given up: a brief outage should not lose
/// data, a long one must not stall the connection.
const STORE_ATTEMPTS: u32 = 3;

/// Requests (acknowledgements, subscriptions) queued for the MQTT event loop. The broker stops
/// sending at its in-flight limit, far below this, so an acknowledgement never waits.
const MQTT_REQUEST_CAPACITY: usize = 1024;

/// Ingests the messages of one feed.
struct Messages {
    name: String,
    format: FeedFormat,
    principal: Principal,
    context: FeedContext,
}

impl Messages {
    fn new(name: &str, format: FeedFormat, department: &Code, context: FeedContext) -> Self {
        Self {
            name: name.to_owned(),
            format,
            principal: feed_principal(name, department),
            context,
        }
    }

    /// Handles one message from `origin` (its topic or subject); never fails the feed.
    async fn handle(&self, origin: &str, payload: &[u8]) {
        let limit = self.context.settings.server.body_limit_bytes;
        if payload.len() > limit {
            return self.invalid(origin, format!("the message is larger than {limit} bytes"));
        }
        let format = self.format.0;
        let rows = match format.parse(payload, &self.context.feeds.mappings) {
            Ok(rows) => rows,
            Err(error) => {
                let reason = format!("not valid {format}: {}: {}", error.pointer, error.message);
                return self.invalid(origin, reason);
            }
        };
        let now = Utc::now();
        match self.ingest(rows).await {
            Ok(receipt) => {
                let rows = RowCounts::of(&receipt);
                if let Some(first) = receipt.rejected.first() {
                    tracing::warn!(
                        topic = origin,
                        rejected = rows.rejected,
                        reason = %first.message,
                        "rows of a message rejected"
                    );
                }
                metrics::feed_message(&self.name, "ingested");
                self.context
                    .succeeded(&self.name, now, Some(rows), count_message(now, false));
            }
            Err(
                error @ (IngestError::Store(_)
                | IngestError::Busy { .. }
                | IngestError::Unavailable(_)),
            ) => {
                tracing::error!(topic = origin, %error, "message lost: the store failed");
                metrics::feed_message(&self.name, "failed");
                let message = format!("{origin}: the store failed: {error}");
                self.context
                    .failed(&self.name, now, message, count_message(now, false));
            }
            Err(refused) => {
                let reason = match refused {
                    IngestError::ForeignIndicators { indicators, .. } => format!(
                        "names indicators of other departments ({})",
                        indicators.join(", ")
                    ),
                    other => other.to_string(),
                };
                self.invalid(origin, reason);
            }
        }
    }

    /// Ingests `rows`, trying again while the store fails.
    async fn ingest(&self, rows: Vec<RawRow>) -> Result<IngestReceipt, IngestError> {
        let format = self.format.0.name();
        let ingestor = &self.context.ingestor;
        let mut attempt = 1;
        while attempt < STORE_ATTEMPTS {
            let result = ingestor
                .ingest(&self.principal, format, rows.clone(), None, Utc::now())
                .await;
            match result {
                // A full write queue passes like a store that fails for a moment.
                Err(
                    error @ (IngestError::Store(_)
                    | IngestError::Busy { .. }
                    | IngestError::Unavailable(_)),
                ) => {
                    tracing::warn!(%error, attempt, "the store failed; trying the message again");
                    let base = Duration::from_millis(100);
                    tokio::time::sleep(backoff_delay(attempt, base, base * 4)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
        ingestor
            .ingest(&self.principal, format, rows, None, Utc::now())
            .await
    }

    fn invalid(&self, origin: &str, reason: String) {
        tracing::warn!(topic = origin, %reason, "invalid message dropped");
        metrics::feed_message(&self.name, "invalid");
        let now = Utc::now();
        let count = count_message(now, true);
        self.context.report(&self.name, now, |health| {
            health.last_error = Some(FeedError::new(now, format!("{origin}: {reason}")));
            count(health);
        });
    }
}

/// Counts one received message in a feed's health.
fn count_message(at: DateTime<Utc>, invalid: bool) -> impl FnOnce(&mut FeedHealth) {
    move |health| {
        health.last_attempt_at = Some(at);
        let counts = health.messages.get_or_insert_with(MessageCounts::default);
        counts.received += 1;
        if invalid {
            counts.invalid += 1;
        }
    }
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// Runs one MQTT feed until `shutdown`.
pub async fn run_mqtt(feed: MqttFeed, context: FeedContext, shutdown: CancellationToken) {
    let span = tracing::info_span!("mqtt", feed = %feed.name);
    run_mqtt_inner(feed, context, shutdown)
        .instrument(span)
        .await
}

async fn run_mqtt_inner(feed: MqttFeed, context: FeedContext, shutdown: CancellationToken) {
    let password = match feed
        .password_env
        .as_deref()
        .map(secret_from_env)
        .transpose()
    {
        Ok(password) => password,
        Err(message) => {
            tracing::error!(error = %message, "mqtt feed cannot start");
            return context.connection(&feed.name, Err(message));
        }
    };
    let mut options = MqttOptions::new(&feed.client_id, &feed.host, feed.port);
    if let Some(tls) = &feed.tls {
        match tls.client_config() {
            Ok(config) => {
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
            }
            Err(message) => {
                tracing::error!(error = %message, "mqtt feed cannot start");
                return context.connection(&feed.name, Err(message));
            }
        }
    }
    let limit = context.settings.server.body_limit_bytes;
    options
        .set_keep_alive(feed.keep_alive)
        .set_clean_session(feed.clean_session)
        .set_manual_acks(true)
        // Room for the topic and headers around a body of the largest accepted size.
        .set_max_packet_size(limit.saturating_add(64 * 1024), 64 * 1024);
    if let Some(username) = &feed.username {
        options.set_credentials(username, password.unwrap_or_default());
    }
    let (client, mut events) = AsyncClient::new(options, MQTT_REQUEST_CAPACITY);
    let messages = Messages::new(&feed.name, feed.format, &feed.department, context.clone());
    let filters: Vec<SubscribeFilter> = feed
        .topics
        .iter()
        .map(|topic| SubscribeFilter::new(topic.filter.clone(), qos(topic.qos)))
        .collect();
    let mut failures = 0u32;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                // Subscribing again on a resumed session is harmless; on a new one, needed.
                if let Err(error) = client.try_subscribe_many(filters.clone()) {
                    tracing::error!(%error, "cannot subscribe");
                }
                tracing::info!(host = %feed.host, port = feed.port, "connected");
            }
            // Connected means receiving: reported once the broker holds the subscriptions.
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    let message = "the broker refused a subscription".to_owned();
                    tracing::error!(%message);
                    context.connection(&feed.name, Err(message));
                } else {
                    context.connection(&feed.name, Ok(()));
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                messages.handle(&publish.topic, &publish.payload).await;
                if let Err(error) = client.try_ack(&publish) {
                    tracing::warn!(%error, "cannot acknowledge; the broker will redeliver");
                }
            }
            Ok(_) => {}
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = backoff_delay(failures, feed.reconnect, feed.max_reconnect);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "mqtt connection lost");
                context.connection(&feed.name, Err(format!("mqtt: {error}")));
                if !pause(delay, &shutdown).await {
                    break;
                }
            }
        }
    }
    // A clean goodbye, so the broker does not wait out the keep-alive; bounded, since the
    // broker may be gone.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// Runs one NATS feed until `shutdown`.
pub async fn run_nats(feed: NatsFeed, context: FeedContext, shutdown: CancellationToken) {
    let span = tracing::info_span!("nats", feed = %feed.name);
    run_nats_inner(feed, context, shutdown)
        .instrument(span)
        .await
}

/// `subscribed` is set once the server holds the first subscriptions; until then a connection
/// is not yet reported, since a message published meanwhile would not arrive.
fn nats_options(
    feed: &NatsFeed,
    context: &FeedContext,
    subscribed: Arc<AtomicBool>,
) -> Result<ConnectOptions, String> {
    let (base, max) = (feed.reconnect, feed.max_reconnect);
    let name = feed.name.clone();
    let events = context.clone();
    let mut options = ConnectOptions::new()
        .name(format!("ktxh-{}", feed.name))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| {
            let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
            backoff_delay(attempt, base, max)
        })
        .event_callback(move |event| {
            let context = events.clone();
            let name = name.clone();
            let subscribed = subscribed.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(feed = %name, "connected");
                        // A reconnection re-subscribes before it reads anything.
                        if subscribed.load(Ordering::Acquire) {
                            context.connection(&name, Ok(()));
                        }
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(feed = %name, "nats connection lost");
                        context.connection(&name, Err("nats: disconnected".into()));
                    }
                    other => {
                        tracing::warn!(feed = %name, event = %other, "nats");
                        let now = Utc::now();
                        context.report(&name, now, |health| {
                            health.last_error = Some(FeedError::new(now, format!("nats: {other}")));
                        });
                    }
                }
            }
        });
    if let Some(variable) = &feed.token_env {
        options = options.token(secret_from_env(variable)?);
    }
    if let (Some(username), Some(variable)) = (&feed.username, &feed.password_env) {
        options = options.user_and_password(username.clone(), secret_from_env(variable)?);
    }
    Ok(options)
}

async fn run_nats_inner(feed: NatsFeed, context: FeedContext, shutdown: CancellationToken) {
    let failed = |message: String| {
        tracing::error!(error = %message, "nats feed cannot start");
        context.connection(&feed.name, Err(message));
    };
    let subscribed = Arc::new(AtomicBool::new(false));
    let options = match nats_options(&feed, &context, subscribed.clone()) {
        Ok(options) => options,
        Err(message) => return failed(message),
    };
    // With retry_on_initial_connect this returns at once and connects in the background.
    let client = match options.connect(feed.url.as_str()).await {
        Ok(client) => client,
        Err(error) => return failed(format!("nats: {error}")),
    };
    let mut subscribers = Vec::with_capacity(feed.subjects.len());
    for subject in &feed.subjects {
        let subscribed = match &feed.queue_group {
            Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
            None => client.subscribe(subject.clone()).await,
        };
        match subscribed {
            Ok(subscriber) => subscribers.push(subscriber),
            Err(error) => return failed(format!("nats: cannot subscribe to {subject}: {error}")),
        }
    }
    // The server answers a flush after it has processed the subscriptions sent before it.
    let mut attempt = 0u32;
    loop {
        let flushed = tokio::select! {
            () = shutdown.cancelled() => return,
            flushed = client.flush() => flushed,
        };
        match flushed {
            Ok(()) => break,
            Err(error) => {
                attempt = attempt.saturating_add(1);
                context.connection(&feed.name, Err(format!("nats: {error}")));
                let delay = backoff_delay(attempt, feed.reconnect, feed.max_reconnect);
                if !pause(delay, &shutdown).await {
                    return;
                }
            }
        }
    }
    subscribed.store(true, Ordering::Release);
    context.connection(&feed.name, Ok(()));
    let messages = Messages::new(&feed.name, feed.format, &feed.department, context.clone());
    let mut incoming = futures::stream::select_all(subscribers);
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = incoming.next() => message,
        };
        let Some(message) = message else {
            context.connection(&feed.name, Err("nats: the connection closed".into()));
            break;
        };
        messages
            .handle(message.subject.as_str(), &message.payload)
            .await;
    }
    drop(incoming);
    // Unsubscribe and flush, bounded: the server may be gone.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.drain()).await;
}
