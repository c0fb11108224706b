//! The Prometheus registry and the service's named metrics (`ktxh_<name>_<unit>[_total]`).
//! Label values come from bounded sets: route patterns, backends, formats, the catalogue's
//! department codes.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::store::Backend;

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ingest_rows: IntCounterVec,
    pub ingest_duration: HistogramVec,
    pub store_duration: HistogramVec,
    pub ws_connections: IntGauge,
    pub ws_frames: IntCounterVec,
    pub ws_overflows: IntCounter,
    pub ws_closed: IntCounterVec,
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
    Ok(Metrics {
        registry,
        http_requests,
        http_duration,
        ingest_rows,
        ingest_duration,
        store_duration,
        ws_connections,
        ws_frames,
        ws_overflows,
        ws_closed,
    })
}

/// Process-wide: metric names are fixed, so one registry serves every server in the process.
pub static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("metric definitions are static and valid"));

pub fn store_operation(backend: Backend, operation: &'static str, elapsed: Duration) {
    METRICS
        .store_duration
        .with_label_values(&[backend.as_str(), operation])
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

/// The text exposition of every registered metric.
pub fn render() -> Result<String, prometheus::Error> {
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&METRICS.registry.gather(), &mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}
