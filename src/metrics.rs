//! The Prometheus registry and the service's named metrics (`ktxh_<name>_<unit>[_total]`).
//! Label values come from bounded sets: route patterns, backends, formats, the catalogue's
//! department codes.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

mod alerts;
mod rules;

pub use alerts::{
    active_alerts, alert_transition, outbox_backlog, outbox_delivery, outbox_receiver,
    AlertMetrics, DeliveryOutcome, OutboxMetrics, OutboxStage, UNKNOWN_RECEIVER,
};
pub use rules::{evaluation_pass, Pass, RuleMetrics, StatusTally};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Open HTTP connections, upgraded websockets included.
    pub http_connections: IntGauge,
    pub ingest_rows: IntCounterVec,
    pub ingest_duration: HistogramVec,
    pub store_duration: HistogramVec,
    pub ws_connections: IntGauge,
    pub ws_frames: IntCounterVec,
    pub ws_overflows: IntCounter,
    pub ws_closed: IntCounterVec,
    pub feeds: FeedMetrics,
    pub rules: RuleMetrics,
    pub alerts: AlertMetrics,
    pub outbox: OutboxMetrics,
    pub build_info: IntGaugeVec,
    /// Whether this instance leads, labelled by its name (one value per process).
    pub leader: IntGaugeVec,
}

/// Collector health, labelled by feed name (bounded: the feeds of `feeds.toml`).
pub struct FeedMetrics {
    pub up: IntGaugeVec,
    pub last_success: GaugeVec,
    pub consecutive_failures: IntGaugeVec,
    pub fetches: IntCounterVec,
    pub rows: IntCounterVec,
    pub messages: IntCounterVec,
}

fn build_feed_metrics(registry: &Registry) -> Result<FeedMetrics, prometheus::Error> {
    let up = IntGaugeVec::new(
        Opts::new(
            "ktxh_feed_up",
            "1 when a collector's last run (pull) or connection (stream) succeeded, else 0.",
        ),
        &["feed"],
    )?;
    let last_success = GaugeVec::new(
        Opts::new(
            "ktxh_feed_last_success_timestamp_seconds",
            "Unix time of a collector's last successful fetch or ingested message.",
        ),
        &["feed"],
    )?;
    let consecutive_failures = IntGaugeVec::new(
        Opts::new(
            "ktxh_feed_consecutive_failures",
            "Failed runs or connection attempts of a collector since its last success.",
        ),
        &["feed"],
    )?;
    let fetches = IntCounterVec::new(
        Opts::new(
            "ktxh_feed_fetches_total",
            "HTTP requests of pull collectors, by outcome (ok, not_modified, error).",
        ),
        &["feed", "outcome"],
    )?;
    let rows = IntCounterVec::new(
        Opts::new(
            "ktxh_feed_rows_total",
            "Rows collectors delivered, by outcome (accepted, duplicate, rejected).",
        ),
        &["feed", "outcome"],
    )?;
    let messages = IntCounterVec::new(
        Opts::new(
            "ktxh_feed_messages_total",
            "Messages of stream feeds, by outcome (ingested, invalid, failed).",
        ),
        &["feed", "outcome"],
    )?;
    registry.register(Box::new(up.clone()))?;
    registry.register(Box::new(last_success.clone()))?;
    registry.register(Box::new(consecutive_failures.clone()))?;
    registry.register(Box::new(fetches.clone()))?;
    registry.register(Box::new(rows.clone()))?;
    registry.register(Box::new(messages.clone()))?;
    Ok(FeedMetrics {
        up,
        last_success,
        consecutive_failures,
        fetches,
        rows,
        messages,
    })
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let http_requests = IntCounterVec::new(
        Opts::new(
            "ktxh_http_requests_total",
            "HTTP requests answered, by method, route pattern and status code.",
        ),
        &["method", "route", "status"],
    )?;
    let http_duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_http_request_duration_seconds",
            "Time to answer an HTTP request.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["method", "route"],
    )?;
    let ingest_rows = IntCounterVec::new(
        Opts::new(
            "ktxh_ingest_rows_total",
            "Observation rows received, by format, department and outcome (accepted, duplicate, rejected).",
        ),
        &["format", "department", "outcome"],
    )?;
    let ingest_duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_ingest_batch_duration_seconds",
            "Time to validate and store one ingest batch.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["format"],
    )?;
    let store_duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_store_operation_duration_seconds",
            "Time spent in one store operation.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["backend", "operation"],
    )?;
    let ws_connections = IntGauge::new("ktxh_ws_connections", "Open websocket connections.")?;
    let http_connections = IntGauge::new(
        "ktxh_http_connections",
        "Open HTTP connections, websockets included; at [limits] max_connections new ones wait.",
    )?;
    registry.register(Box::new(http_connections.clone()))?;
    let ws_frames = IntCounterVec::new(
        Opts::new(
            "ktxh_ws_frames_total",
            "Frames sent to websocket clients, by kind (delta, replay, snapshot).",
        ),
        &["kind"],
    )?;
    let ws_overflows = IntCounter::new(
        "ktxh_ws_overflows_total",
        "Times a slow websocket client fell a whole queue behind and got a snapshot instead.",
    )?;
    let ws_closed = IntCounterVec::new(
        Opts::new(
            "ktxh_ws_closed_total",
            "Websocket connections closed, by reason (client, dead_peer, write_timeout, shutdown, error).",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(ws_connections.clone()))?;
    registry.register(Box::new(ws_frames.clone()))?;
    registry.register(Box::new(ws_overflows.clone()))?;
    registry.register(Box::new(ws_closed.clone()))?;
    registry.register(Box::new(http_requests.clone()))?;
    registry.register(Box::new(http_duration.clone()))?;
    registry.register(Box::new(ingest_rows.clone()))?;
    registry.register(Box::new(ingest_duration.clone()))?;
    registry.register(Box::new(store_duration.clone()))?;
    let feeds = build_feed_metrics(&registry)?;
    // Fixed label sets are created up front: a counter that reads zero is an answer to "how
    // many so far", a missing series is not (rates, alerts and dashboards need it to exist).
    for kind in ["delta", "replay", "snapshot"] {
        ws_frames.with_label_values(&[kind]);
    }
    for reason in ["client", "dead_peer", "write_timeout", "shutdown", "error"] {
        ws_closed.with_label_values(&[reason]);
    }
    let build_info = IntGaugeVec::new(
        Opts::new(
            "ktxh_build_info",
            "Always 1; the labels say which version of the service runs.",
        ),
        &["version"],
    )?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    registry.register(Box::new(build_info.clone()))?;
    // `instance_name`, not `instance`: Prometheus sets `instance` to the scraped address.
    let leader = IntGaugeVec::new(
        Opts::new(
            "ktxh_leader",
            "1 when this instance leads (commits alerts, delivers, mails reports, runs the collectors), else 0.",
        ),
        &["instance_name"],
    )?;
    registry.register(Box::new(leader.clone()))?;
    let rules = rules::build(&registry)?;
    let alerts = alerts::build_alerts(&registry)?;
    let outbox = alerts::build_outbox(&registry)?;
    Ok(Metrics {
        registry,
        http_requests,
        http_duration,
        http_connections,
        ingest_rows,
        ingest_duration,
        store_duration,
        ws_connections,
        ws_frames,
        ws_overflows,
        ws_closed,
        feeds,
        rules,
        alerts,
        outbox,
        build_info,
        leader,
    })
}

/// Process-wide: metric names are fixed, so one registry serves every server in the process.
pub static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("metric definitions are static and valid"));

/// `backend` is the store's name for itself (`sqlite`, `postgres`, `timescaledb`): a closed set.
pub fn store_operation(backend: &'static str, operation: &'static str, elapsed: Duration) {
    METRICS
        .store_duration
        .with_label_values(&[backend, operation])
        .observe(elapsed.as_secs_f64());
}

pub fn ingest_rows(format: &str, department: &str, outcome: &str, count: usize) {
    if count > 0 {
        METRICS
            .ingest_rows
            .with_label_values(&[format, department, outcome])
            .inc_by(count as u64);
    }
}

pub fn feed_up(feed: &str, up: bool) {
    METRICS
        .feeds
        .up
        .with_label_values(&[feed])
        .set(i64::from(up));
}

pub fn feed_last_success(feed: &str, at: chrono::DateTime<chrono::Utc>) {
    METRICS
        .feeds
        .last_success
        .with_label_values(&[feed])
        .set(at.timestamp_millis() as f64 / 1000.0);
}

pub fn feed_consecutive_failures(feed: &str, failures: u32) {
    METRICS
        .feeds
        .consecutive_failures
        .with_label_values(&[feed])
        .set(i64::from(failures));
}

pub fn feed_fetch(feed: &str, outcome: &str) {
    METRICS
        .feeds
        .fetches
        .with_label_values(&[feed, outcome])
        .inc();
}

pub fn feed_rows(feed: &str, outcome: &str, count: usize) {
    if count > 0 {
        METRICS
            .feeds
            .rows
            .with_label_values(&[feed, outcome])
            .inc_by(count as u64);
    }
}

pub fn feed_message(feed: &str, outcome: &str) {
    METRICS
        .feeds
        .messages
        .with_label_values(&[feed, outcome])
        .inc();
}

/// Whether `instance` leads. Only the latest instance of the process is shown: a process runs
/// one server, and tests that build several in turn must not grow the label set.
pub fn leader(instance: &str, leads: bool) {
    let gauge = &METRICS.leader;
    if !has_only(gauge, instance) {
        gauge.reset();
    }
    gauge.with_label_values(&[instance]).set(i64::from(leads));
}

/// Whether `gauge`'s only series, if any, is the one of `instance`.
fn has_only(gauge: &IntGaugeVec, instance: &str) -> bool {
    use prometheus::core::Collector as _;
    gauge.collect().iter().all(|family| {
        family.get_metric().iter().all(|metric| {
            metric
                .get_label()
                .iter()
                .all(|label| label.value() == instance)
        })
    })
}

/// The text exposition of every registered metric.
pub fn render() -> Result<String, prometheus::Error> {
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&METRICS.registry.gather(), &mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}
