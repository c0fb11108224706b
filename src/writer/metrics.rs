//! The writer's metrics, registered in the process registry the first time a writer starts.
//! Labels come from closed sets: the backend, `ok`/`error`, `full`/`closed`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::store::Backend;

pub struct WriterMetrics {
    /// Batches and rows waiting for the writer.
    pub queued: IntGaugeVec,
    pub group_batches: Histogram,
    pub group_rows: Histogram,
    pub commit_duration: HistogramVec,
    pub refused: IntCounterVec,
}

/// From one batch to the most a group may hold by default.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

const ROW_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0, 500_000.0,
];

/// A small group commits in a millisecond on SQLite, a large back-fill in seconds.
const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn build(registry: &Registry) -> Result<WriterMetrics, prometheus::Error> {
    let queued = IntGaugeVec::new(
        Opts::new(
            "ktxh_writer_queued",
            "What waits for the writer, by what is counted (batches, rows).",
        ),
        &["what"],
    )?;
    let group_batches = Histogram::with_opts(
        HistogramOpts::new(
            "ktxh_writer_group_batches",
            "Batches (requests) written in one group commit.",
        )
        .buckets(BATCH_BUCKETS.to_vec()),
    )?;
    let group_rows = Histogram::with_opts(
        HistogramOpts::new(
            "ktxh_writer_group_rows",
            "Rows written in one group commit.",
        )
        .buckets(ROW_BUCKETS.to_vec()),
    )?;
    let commit_duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_writer_commit_duration_seconds",
            "Time to write and commit one group, by backend and outcome (ok, error).",
        )
        .buckets(COMMIT_BUCKETS.to_vec()),
        &["backend", "outcome"],
    )?;
    let refused = IntCounterVec::new(
        Opts::new(
            "ktxh_writer_refused_total",
            "Batches refused before the queue, by reason (full, closed).",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(queued.clone()))?;
    registry.register(Box::new(group_batches.clone()))?;
    registry.register(Box::new(group_rows.clone()))?;
    registry.register(Box::new(commit_duration.clone()))?;
    registry.register(Box::new(refused.clone()))?;
    for what in ["batches", "rows"] {
        queued.with_label_values(&[what]);
    }
    for reason in ["full", "closed"] {
        refused.with_label_values(&[reason]);
    }
    Ok(WriterMetrics {
        queued,
        group_batches,
        group_rows,
        commit_duration,
        refused,
    })
}

pub(super) static METRICS: LazyLock<WriterMetrics> = LazyLock::new(|| {
    build(&crate::metrics::METRICS.registry).expect("metric definitions are static and valid")
});

impl WriterMetrics {
    /// Creates the series of `backend` at zero, so they exist before the first write.
    pub(super) fn init(&self, backend: Backend) {
        for outcome in ["ok", "error"] {
            self.commit_duration
                .with_label_values(&[backend.as_str(), outcome]);
        }
    }

    pub(super) fn queued(&self, batches: usize, rows: usize) {
        self.queued
            .with_label_values(&["batches"])
            .add(batches as i64);
        self.queued.with_label_values(&["rows"]).add(rows as i64);
    }

    pub(super) fn dequeued(&self, batches: usize, rows: usize) {
        self.queued
            .with_label_values(&["batches"])
            .sub(batches as i64);
        self.queued.with_label_values(&["rows"]).sub(rows as i64);
    }

    pub(super) fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    pub(super) fn group(
        &self,
        backend: Backend,
        batches: usize,
        rows: usize,
        elapsed: Duration,
        ok: bool,
    ) {
        self.group_batches.observe(batches as f64);
        self.group_rows.observe(rows as f64);
        self.commit_duration
            .with_label_values(&[backend.as_str(), if ok { "ok" } else { "error" }])
            .observe(elapsed.as_secs_f64());
    }
}
