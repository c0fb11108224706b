//! `ktxh import FILE`: back-fill history from a file straight into the store, without a running
//! service, through the same validation and department scoping as a push.
//!
//! A blocking thread parses and validates the file chunk by chunk while the writer stores the
//! previous chunk, so parsing and database work overlap and memory holds two chunks at most.
//! Each chunk is written in one transaction; after it commits, the position reached is saved in
//! the store's feed state under the file's identity (its size and the SHA-256 of its first MiB),
//! so an interrupted import continues where it stopped. A chunk that committed just before an
//! interruption, but without its position, is simply sent again: the store ignores identical
//! re-sends.
//!
//! A running service does not see the imported rows until it next loads the store (at start);
//! back-fills are history, not live data.
//!
//! History is known from when it was published, not from when it is imported: with
//! `--reported-at` every row gets a knowledge time (`reported_at`), one instant for the whole
//! file or, with `release-calendar`, the due date of each row's period under the configured
//! release calendar (the import's own time when that date is still ahead), so reports as of a
//! past date judge what was known then. A row's own `reported_at` always wins. An import is
//! run by an operator on the server, so it may back-date whoever it scopes rows as; a run that
//! does writes one `observations.backdated` audit row.

mod pipeline;
mod progress;
mod reader;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use crate::auth::{Principal, Role};
use crate::config::Settings;
use crate::domain::{Catalogue, Code};
use crate::ingest::{Backdating, Format, Mappings, Validator};
use crate::store::{DynStore, StoreError, WriteBatch};

use pipeline::{Batch, Failure, Source};
use progress::Progress;
pub use reader::{FileIdentity, Position, ReadError, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES};
pub use summary::{RejectionGroup, Summary, Tally, EXAMPLES_PER_CODE};

/// Rows per transaction. Past a few thousand, larger batches gain nothing measurable (the store
/// already writes multi-row statements); smaller ones repeat less after an interruption.
pub const DEFAULT_BATCH_ROWS: usize = 10_000;

/// Largest accepted `--batch-rows`, as large as the largest push.
pub const MAX_BATCH_ROWS: usize = 100_000;

/// When the imported figures became known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportedAt {
    /// When they are stored, unless a row says otherwise.
    #[default]
    Stored,
    /// At this instant, unless a row says otherwise.
    At(DateTime<Utc>),
    /// When each row's period was due under the release calendar (clamped to now), unless a
    /// row says otherwise.
    ReleaseCalendar,
}

impl ReportedAt {
    /// `--reported-at`: an RFC 3339 instant or `release-calendar`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim() == "release-calendar" {
            return Ok(Self::ReleaseCalendar);
        }
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|at| Self::At(at.with_timezone(&Utc)))
            .map_err(|_| {
                format!(
                    "`{raw}` is neither an RFC 3339 instant (2026-04-06T09:00:00+07:00) nor \
                     release-calendar"
                )
            })
    }

    fn describe(self) -> String {
        match self {
            Self::Stored => "stored".into(),
            Self::At(at) => at.to_rfc3339(),
            Self::ReleaseCalendar => "release-calendar".into(),
        }
    }
}

/// What `ktxh import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub file: PathBuf,
    pub format: Format,
    /// Scope rows as for this department's token; as admin when `None`.
    pub department: Option<Code>,
    /// Validate everything, store nothing, save no position.
    pub dry_run: bool,
    /// Ignore a saved position and start from the first row.
    pub restart: bool,
    pub batch_rows: usize,
    /// When the rows became known (`--reported-at`).
    pub reported_at: ReportedAt,
    /// Who runs the import, as the audit log names them (`cli:<user>`).
    pub actor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    // The reason is part of the message and not a `source`, so that `{:#}` says it once.
    #[error("cannot read {file}: {error}")]
    Read { file: String, error: ReadError },
    #[error("unknown department `{0}`; see config/catalogue/departments.toml")]
    UnknownDepartment(String),
    #[error(
        "{file}: {count} row(s) name indicators of departments other than {department} \
         ({indicators}), first at rows {rows}; nothing was imported"
    )]
    ForeignIndicators {
        file: String,
        department: String,
        count: usize,
        rows: String,
        indicators: String,
    },
    #[error("the saved position of {file} cannot be read ({detail}); run again with --restart")]
    CorruptState { file: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the reading thread failed: {0}")]
    Reader(String),
    #[error(
        "interrupted after row {rows} of {file}; everything before it is stored, and running \
         the same command again resumes there"
    )]
    Interrupted { file: String, rows: String },
    #[error("{file} holds no rows")]
    NothingRead { file: String },
    #[error("none of the {rows} rows of {file} is valid; nothing was imported")]
    NothingValid { file: String, rows: String },
}

/// The position saved after every committed batch, under [`state_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedState {
    file: String,
    format: String,
    size: u64,
    head_sha256: String,
    offset: u64,
    rows: u64,
    #[serde(default)]
    lines: u64,
    complete: bool,
    tally: Tally,
}

/// The feed-state name of a file: the same file read as the same format resumes, anything else
/// starts afresh.
pub fn state_key(identity: &FileIdentity, format: Format) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format.name().as_bytes());
    hasher.update([0]);
    hasher.update(identity.size.to_le_bytes());
    hasher.update(identity.head_sha256.as_bytes());
    format!("import:{}", hex::encode(hasher.finalize()))
}

/// Imports `options.file` into `store`, or only validates it when `store` is `None` or
/// `options.dry_run` is set. Stops between two batches when `shutdown` is cancelled; the summary
/// then says so and [`verdict`] turns it into [`ImportError::Interrupted`].
#[instrument(skip_all, fields(file = %options.file.display(), format = %options.format))]
pub async fn run(
    options: &ImportOptions,
    settings: &Settings,
    mappings: &Mappings,
    catalogue: Arc<Catalogue>,
    store: Option<DynStore>,
    shutdown: CancellationToken,
) -> Result<Summary, ImportError> {
    let name = display_name(&options.file);
    let principal = principal(options.department.as_ref(), &catalogue, &name)?;
    let identity = FileIdentity::of(&options.file).map_err(|e| ImportError::Read {
        file: options.file.display().to_string(),
        error: e.into(),
    })?;
    let source = Arc::new(Source {
        path: options.file.clone(),
        name: name.clone(),
        format: options.format,
        mappings: mappings.clone(),
        batch_rows: options.batch_rows.clamp(1, MAX_BATCH_ROWS),
        validator: Validator::new(catalogue.clone(), settings.zone(), settings.ingest.clone()),
        principal,
        reported_at: options.reported_at,
        calendar: settings.release_calendar.clone(),
        zone: settings.zone(),
    });
    if source.principal.role != Role::Admin {
        eprintln!(
            "checking that every row of {name} belongs to department {}",
            source
                .principal
                .department
                .as_ref()
                .map_or("", Code::as_str)
        );
        let (source, shutdown) = (source.clone(), shutdown.clone());
        tokio::task::spawn_blocking(move || pipeline::scan_scope(&source, &shutdown))
            .await
            .map_err(|e| ImportError::Reader(e.to_string()))??;
    }

    let writer = Writer {
        store: store.filter(|_| !options.dry_run),
        key: state_key(&identity, options.format),
        identity,
        recorded_by: format!("import:{name}"),
        actor: options.actor.clone(),
        source,
    };
    let saved = match &writer.store {
        Some(store) if !options.restart => writer.load_state(store).await?,
        _ => None,
    };
    match saved {
        Some(saved) if saved.complete => {
            eprintln!(
                "{name} was imported completely before; nothing to do (--restart imports it again)"
            );
            Ok(Summary {
                file: name,
                format: options.format.name(),
                dry_run: false,
                total: saved.tally,
                this_run_rows: 0,
                this_run_seconds: 0.0,
                resumed_at: None,
                complete: true,
            })
        }
        Some(saved) => {
            eprintln!(
                "resuming the import of {name} after row {} (byte {} of {}); --restart starts over",
                summary::grouped(saved.rows),
                summary::grouped(saved.offset),
                summary::grouped(writer.identity.size),
            );
            let start = Position {
                offset: saved.offset,
                rows: saved.rows,
                lines: saved.lines,
            };
            writer.write_all(start, saved.tally, true, shutdown).await
        }
        None => {
            writer
                .write_all(Position::default(), Tally::default(), false, shutdown)
                .await
        }
    }
}

/// Whether a run succeeded: it read the whole file, and the file held something valid.
pub fn verdict(summary: &Summary) -> Result<(), ImportError> {
    let file = summary.file.clone();
    let rows = summary::grouped(summary.total.rows);
    if !summary.complete {
        return Err(ImportError::Interrupted { file, rows });
    }
    if summary.total.rows == 0 {
        return Err(ImportError::NothingRead { file });
    }
    if summary.total.valid() == 0 {
        return Err(ImportError::NothingValid { file, rows });
    }
    Ok(())
}

/// Adds a batch's back-dated rows to the run's.
fn merge(run: &mut Option<Backdating>, batch: Option<Backdating>) {
    let Some(batch) = batch else { return };
    match run {
        Some(run) => {
            run.rows += batch.rows;
            run.earliest = run.earliest.min(batch.earliest);
        }
        None => *run = Some(batch),
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The caller an import writes as: a department's token with `--department`, an admin without.
fn principal(
    department: Option<&Code>,
    catalogue: &Catalogue,
    file: &str,
) -> Result<Principal, ImportError> {
    let (role, department) = match department {
        Some(code) if catalogue.department(code.as_str()).is_none() => {
            return Err(ImportError::UnknownDepartment(code.to_string()))
        }
        Some(code) => (Role::Department, Some(code.clone())),
        None => (Role::Admin, None),
    };
    Ok(Principal {
        token_id: "import".into(),
        name: format!("import:{file}"),
        role,
        department,
    })
}

/// The writing side: stores batches (unless a dry run) and saves the position after each.
struct Writer {
    /// `None` in a dry run.
    store: Option<DynStore>,
    key: String,
    identity: FileIdentity,
    recorded_by: String,
    actor: String,
    source: Arc<Source>,
}

impl Writer {
    async fn write_all(
        &self,
        start: Position,
        mut tally: Tally,
        resumed: bool,
        shutdown: CancellationToken,
    ) -> Result<Summary, ImportError> {
        let (sender, mut batches) = mpsc::channel(2);
        let source = self.source.clone();
        let reading =
            tokio::task::spawn_blocking(move || pipeline::produce(&source, start, &sender));
        let started = Instant::now();
        let seconds_before = tally.seconds;
        let mut progress = Progress::new(self.identity.size, start);
        let mut position = start;
        let mut backdated: Option<Backdating> = None;
        let complete = loop {
            // A batch already received is always written: stopping between batches loses
            // nothing and leaves nothing half done.
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break false,
                next = batches.recv() => next,
            };
            let batch = match next {
                None => break true,
                Some(Ok(batch)) => batch,
                Some(Err(failure)) => {
                    progress.finish();
                    return Err(match failure {
                        Failure::Read(error) => ImportError::Read {
                            file: self.source.path.display().to_string(),
                            error,
                        },
                        Failure::Import(error) => error,
                    });
                }
            };
            position = batch.end;
            let batch_backdating = batch.backdating.clone();
            let written = self.write(batch, &mut tally).await;
            // What was committed before a failure is back-dated all the same.
            if written.is_ok() || self.store.is_none() {
                merge(&mut backdated, batch_backdating);
            }
            if let Err(error) = written {
                self.audit_backdating(backdated.as_ref()).await?;
                return Err(error);
            }
            tally.seconds = seconds_before + started.elapsed().as_secs_f64();
            self.save_state(position, false, &tally).await?;
            progress.update(position, &tally);
        };
        // The reading thread stops at its next chunk once nobody receives.
        drop(batches);
        reading
            .await
            .map_err(|e| ImportError::Reader(e.to_string()))?;
        progress.finish();
        self.audit_backdating(backdated.as_ref()).await?;
        tally.seconds = seconds_before + started.elapsed().as_secs_f64();
        if complete {
            self.save_state(position, true, &tally).await?;
        }
        tracing::info!(
            rows = tally.rows,
            accepted = tally.accepted,
            duplicates = tally.duplicates,
            rejected = tally.rejected,
            complete,
            "import ended"
        );
        Ok(Summary {
            file: self.source.name.clone(),
            format: self.source.format.name(),
            dry_run: self.store.is_none(),
            total: tally,
            this_run_rows: position.rows - start.rows,
            this_run_seconds: started.elapsed().as_secs_f64(),
            resumed_at: resumed.then_some(start.rows),
            complete,
        })
    }

    /// Stores one batch in one transaction and counts it.
    async fn write(&self, batch: Batch, tally: &mut Tally) -> Result<(), ImportError> {
        tally.rows += batch.rows();
        tally.reject(batch.first_row, &batch.rejected);
        let Some(store) = &self.store else {
            tally.accepted += batch.valid.len() as u64;
            return Ok(());
        };
        if batch.valid.is_empty() {
            return Ok(());
        }
        let outcome = store
            .write_batch(&WriteBatch {
                rows: batch.valid,
                recorded_by: self.recorded_by.clone(),
                received_at: Utc::now(),
                // Rejections are counted here; the store only echoes them.
                rejected: Vec::new(),
                idempotency: None,
            })
            .await?;
        let receipt = outcome.receipt();
        tally.accepted += receipt.accepted as u64;
        tally.duplicates += receipt.duplicates as u64;
        Ok(())
    }

    /// One `observations.backdated` audit row for what this run stored known long ago.
    async fn audit_backdating(&self, backdating: Option<&Backdating>) -> Result<(), ImportError> {
        let (Some(store), Some(backdating)) = (&self.store, backdating) else {
            return Ok(());
        };
        let detail = serde_json::json!({
            "file": self.source.name,
            "format": self.source.format.name(),
            "reported_at": self.source.reported_at.describe(),
        });
        let mut event = backdating.audit(self.actor.clone(), Utc::now(), detail);
        event.reason = Some(format!("ktxh import {}", self.source.name));
        store.record_audit(&event).await?;
        Ok(())
    }

    async fn load_state(&self, store: &DynStore) -> Result<Option<SavedState>, ImportError> {
        let Some(json) = store.feed_state(&self.key).await? else {
            return Ok(None);
        };
        let saved: SavedState =
            serde_json::from_value(json).map_err(|e| self.corrupt(e.to_string()))?;
        // The key already covers these; a mismatch means the state was written by hand.
        if saved.size != self.identity.size || saved.head_sha256 != self.identity.head_sha256 {
            return Err(self.corrupt("it belongs to another file".into()));
        }
        Ok(Some(saved))
    }

    async fn save_state(
        &self,
        position: Position,
        complete: bool,
        tally: &Tally,
    ) -> Result<(), ImportError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = SavedState {
            file: self.source.name.clone(),
            format: self.source.format.name().to_owned(),
            size: self.identity.size,
            head_sha256: self.identity.head_sha256.clone(),
            offset: position.offset,
            rows: position.rows,
            lines: position.lines,
            complete,
            tally: tally.clone(),
        };
        let json = serde_json::to_value(&state).map_err(|e| self.corrupt(e.to_string()))?;
        store.put_feed_state(&self.key, &json, Utc::now()).await?;
        Ok(())
    }

    fn corrupt(&self, detail: String) -> ImportError {
        ImportError::CorruptState {
            file: self.source.name.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rows: u64, accepted: u64, duplicates: u64, complete: bool) -> Summary {
        Summary {
            file: "f.csv".into(),
            format: "csv",
            dry_run: false,
            total: Tally {
                rows,
                accepted,
                duplicates,
                rejected: rows - accepted - duplicates,
                ..Tally::default()
            },
            this_run_rows: rows,
            this_run_seconds: 1.0,
            resumed_at: None,
            complete,
        }
    }

    #[test]
    fn a_run_fails_when_it_stopped_read_nothing_or_found_nothing_valid() {
        assert!(verdict(&summary(10, 9, 0, true)).is_ok());
        assert!(verdict(&summary(10, 0, 10, true)).is_ok());
        assert!(matches!(
            verdict(&summary(10, 9, 0, false)),
            Err(ImportError::Interrupted { .. })
        ));
        assert!(matches!(
            verdict(&summary(0, 0, 0, true)),
            Err(ImportError::NothingRead { .. })
        ));
        assert!(matches!(
            verdict(&summary(10, 0, 0, true)),
            Err(ImportError::NothingValid { .. })
        ));
    }

    #[test]
    fn reported_at_reads_an_instant_or_the_release_calendar() {
        assert_eq!(
            ReportedAt::parse("release-calendar"),
            Ok(ReportedAt::ReleaseCalendar)
        );
        assert_eq!(
            ReportedAt::parse("2026-04-06T09:00:00+07:00"),
            Ok(ReportedAt::At("2026-04-06T02:00:00Z".parse().unwrap()))
        );
        assert!(ReportedAt::parse("2026-04-06").is_err());
    }

    #[test]
    fn the_state_key_tells_files_and_formats_apart() {
        let identity = FileIdentity {
            size: 10,
            head_sha256: "ab".into(),
        };
        let csv = Format::from_name("csv").unwrap();
        let line = Format::from_name("line").unwrap();
        let key = state_key(&identity, csv);
        assert!(key.starts_with("import:") && key.len() == "import:".len() + 64);
        assert_eq!(key, state_key(&identity.clone(), csv));
        assert_ne!(key, state_key(&identity, line));
        let grown = FileIdentity {
            size: 11,
            ..identity
        };
        assert_ne!(key, state_key(&grown, csv));
    }
}
