//! Ingest: every format is parsed into [`RawRow`]s, each row's codes are resolved once against
//! the catalogue, the request is scoped to the caller's department on the resolved indicators,
//! the rows are validated one by one and handed to the instance's [`Writer`] as one batch, which
//! commits it with whatever else is queued and carries it on through the pipeline.

pub mod activity;
pub mod code;
pub mod csv;
pub mod decimal;
pub mod dhis2;
pub mod format;
pub mod json;
pub mod line;
pub mod sdmx;
pub mod validate;
mod validator;
pub mod xlsx;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use tracing::instrument;

use crate::auth::Principal;
use crate::config::IngestSettings;
use crate::domain::Catalogue;
use crate::metrics;
use crate::store::{
    DynStore, IdempotencyClaim, IngestReceipt, StoreError, WriteBatch, WriteOutcome,
};
use crate::writer::{Origin, WriteError, Writer};

pub use decimal::Decimal;
pub use format::{Format, FormatError, Mappings};
pub use validate::{Line, RawRow, RawValue, Resolved};
pub use validator::{Backdate, Backdating, ForeignRows, Validator};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("this token may not write observations")]
    ReadOnly,
    #[error("rows {rows:?} belong to indicators of other departments")]
    ForeignIndicators {
        rows: Vec<usize>,
        indicators: Vec<String>,
        /// Where the rows are in a body sent as lines of text (CSV); empty otherwise.
        lines: Vec<Line>,
    },
    #[error("{count} rows exceed the limit of {limit} per request")]
    TooManyRows { count: usize, limit: usize },
    /// The writer's queue is full: the service is taking in more than it can commit.
    #[error("the write queue is full; try again in {retry_after} s")]
    Busy { retry_after: u64 },
    /// The writer has stopped (the service is shutting down) or the store cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IngestError {
    /// Logs a refused ingest at the level its cause deserves: a caller's mistake is not an
    /// error of the service, and an operator's error log should hold only what they must act on.
    fn log(&self) {
        match self {
            // Another department's indicators: a misconfigured or misused token.
            Self::ForeignIndicators { .. } | Self::ReadOnly => {
                tracing::warn!(error = %self, "ingest refused");
            }
            Self::TooManyRows { .. } | Self::Store(StoreError::IdempotencyMismatch) => {
                tracing::info!(error = %self, "ingest refused");
            }
            Self::Busy { .. } => tracing::warn!(error = %self, "ingest deferred"),
            Self::Unavailable(_) | Self::Store(_) => {
                tracing::error!(error = %self, "ingest failed")
            }
        }
    }
}

impl From<WriteError> for IngestError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::QueueFull { retry_after } => Self::Busy { retry_after },
            WriteError::Closed => Self::Unavailable("the service is shutting down".into()),
            WriteError::Lost => Self::Unavailable(
                "the writer could not answer; the batch may be stored, send it again".into(),
            ),
            WriteError::Unavailable(message) => Self::Unavailable(message),
            WriteError::Store(store) => Self::Store(store),
        }
    }
}

/// An `Idempotency-Key` with the digest of the request it was first used for.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_digest: Vec<u8>,
}

/// Validates batches and hands them to the writer; shared by every push format, the
/// collectors and the demo feeds.
pub struct Ingestor {
    validator: Validator,
    store: DynStore,
    writer: Arc<Writer>,
    settings: IngestSettings,
    max_rows: usize,
}

impl Ingestor {
    pub fn new(
        catalogue: Arc<Catalogue>,
        store: DynStore,
        writer: Arc<Writer>,
        zone: Tz,
        settings: IngestSettings,
        max_rows: usize,
    ) -> Self {
        Self {
            validator: Validator::new(catalogue, zone, settings.clone()),
            store,
            writer,
            settings,
            max_rows,
        }
    }

    /// The writer batches go through.
    pub fn writer(&self) -> &Arc<Writer> {
        &self.writer
    }

    /// Validates `rows` and writes the valid ones in one transaction.
    ///
    /// Scoping is decided for the whole request: if any row names an indicator of another
    /// department, nothing is written ([`Validator::validate`]).
    #[instrument(skip_all, fields(format = format, caller = %principal.label(), rows = rows.len()))]
    pub async fn ingest(
        &self,
        principal: &Principal,
        format: &'static str,
        rows: Vec<RawRow>,
        idempotency: Option<IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> Result<IngestReceipt, IngestError> {
        let received = self
            .ingest_received(principal, format, rows, idempotency, now, now)
            .await;
        if let Err(error) = &received {
            error.log();
        }
        received
    }

    /// Refuses rows of indicators `principal` may not write, as every ingest does first; for
    /// callers that split one body into several ingests and must refuse it whole.
    pub fn check_scope(&self, principal: &Principal, rows: &[RawRow]) -> Result<(), IngestError> {
        Ok(self.validator.check_scope(principal, rows)?)
    }

    /// What an ingest would answer, storing nothing: a dry run. Rows that would be stored count
    /// as accepted, since telling duplicates apart needs the store.
    pub fn dry_run(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
    ) -> Result<IngestReceipt, IngestError> {
        let (valid, rejected, _) = self.prepare(principal, rows, now)?;
        Ok(IngestReceipt {
            accepted: valid.len(),
            duplicates: 0,
            rejected,
            updated: 0,
            withdrawn: 0,
        })
    }

    /// What every ingest does before the store: refuse read-only callers, requests over the
    /// row limit and rows of other departments' indicators, then validate row by row.
    fn prepare(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
    ) -> Result<activity::NotedRows, IngestError> {
        if !principal.role.pushes() {
            return Err(IngestError::ReadOnly);
        }
        if rows.len() > self.max_rows {
            return Err(IngestError::TooManyRows {
                count: rows.len(),
                limit: self.max_rows,
            });
        }
        Ok(self.validator.validate_noted(principal, rows, now)?)
    }

    /// As [`Self::ingest`], with the revisions stored as received at `received_at`: the demo's
    /// history arrives as it would have, each period when its figures were released, so that
    /// `as_of` reads and past reports see what was known then.
    pub async fn ingest_received(
        &self,
        principal: &Principal,
        format: &'static str,
        rows: Vec<RawRow>,
        idempotency: Option<IdempotencyKey>,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IngestReceipt, IngestError> {
        let started = Instant::now();
        let (valid, rejected, refused) = self.prepare(principal, rows, now)?;
        // Filed under the departments of its rows with them, on every instance's page.
        let note = activity::note(
            self.validator.catalogue(),
            principal,
            format,
            &valid,
            refused,
            activity::limits(&self.settings),
        );

        let batch = WriteBatch {
            rows: valid,
            recorded_by: principal.label(),
            received_at,
            rejected,
            idempotency: idempotency.map(|key| IdempotencyClaim {
                token_id: principal.token_id.clone(),
                key: key.key,
                request_digest: key.request_digest,
                not_before: now - Duration::hours(self.settings.idempotency_ttl_hours),
            }),
        };
        // Known before the rows go to the writer, which keeps them.
        let backdating = self.validator.backdating(&batch.rows, now);
        let department = principal
            .department
            .as_ref()
            .map_or("admin", |code| code.as_str());
        let origin = Origin {
            source: department.to_owned(),
            format: format.to_owned(),
        };
        let outcome = self.writer.submit_noted(batch, origin, Some(note)).await?;
        if let WriteOutcome::Written { receipt, .. } = &outcome {
            if let Some(backdating) = backdating {
                let detail = serde_json::json!({ "format": format });
                self.store
                    .record_audit(&backdating.audit(principal.label(), now, detail))
                    .await?;
            }
            metrics::ingest_rows(format, department, "accepted", receipt.accepted);
            metrics::ingest_rows(format, department, "duplicate", receipt.duplicates);
            metrics::ingest_rows(format, department, "rejected", receipt.rejected.len());
        }
        metrics::METRICS
            .ingest_duration
            .with_label_values(&[format])
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome.receipt().clone())
    }
}

#[cfg(test)]
#[path = "validator_tests.rs"]
mod tests;
