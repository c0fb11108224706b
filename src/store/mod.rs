//! Storage behind one trait. The URL picks the backend: `sqlite://…` (embedded default) or
//! `postgres://…` (TimescaleDB detected at run time, plain PostgreSQL otherwise).

pub mod activity;
pub mod audit;
pub mod backup;
mod plan;
pub mod postgres;
mod sequence;
pub mod sqlite;
pub mod tasks;
mod turn;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::alert::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::domain::approval::{ApprovalOutcome, ApprovedRevision, NewApproval};
use crate::domain::explanation::{Explanation, NewExplanation};
use crate::domain::token::TokenRecord;
use crate::domain::{NewObservation, StoredObservation, Target, TargetValue};

pub use audit::{AuditEntry, AuditEvent};
pub use plan::{bucket_points, Aggregate, Bucket, BucketPoint};
pub use turn::Turn;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyMismatch,
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
    Timescale,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Timescale => "timescaledb",
        }
    }
}

pub(crate) const RECORDED_MIGRATIONS: &str =
    "SELECT version, success, checksum FROM _sqlx_migrations";

/// This build's migrations against those recorded in the database's `_sqlx_migrations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct MigrationState {
    /// This build's migrations recorded as successful with the same checksum.
    pub applied: usize,
    /// This build's migrations.
    pub expected: usize,
}

impl MigrationState {
    /// A migration that failed half-way, was edited after it ran or has not run yet leaves the
    /// schema other than this build expects.
    pub fn complete(self) -> bool {
        self.applied == self.expected
    }

    /// `recorded` is the answer to [`RECORDED_MIGRATIONS`]; a database never migrated has no
    /// such table, which counts as no migration applied.
    pub(crate) fn from_recorded(
        migrator: &sqlx::migrate::Migrator,
        recorded: Result<Vec<(i64, bool, Vec<u8>)>, sqlx::Error>,
    ) -> StoreResult<Self> {
        let recorded = match recorded {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self::compare(migrator, &recorded))
    }

    fn compare(migrator: &sqlx::migrate::Migrator, recorded: &[(i64, bool, Vec<u8>)]) -> Self {
        let expected: Vec<_> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .collect();
        let applied = expected
            .iter()
            .filter(|m| {
                recorded.iter().any(|(version, success, checksum)| {
                    *version == m.version && *success && checksum[..] == m.checksum[..]
                })
            })
            .count();
        Self {
            applied,
            expected: expected.len(),
        }
    }
}

// Refused before the row reached the store; kept in idempotent receipts.
/// One refused row: where it was, a stable reason and a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    /// The row's position in the request, from 0.
    pub index: usize,
    /// A stable reason: `missing_field`, `unknown_indicator`, `unknown_unit`,
    /// `unit_not_reporting`, `invalid_period`, `period_mismatch`, `period_in_future`,
    /// `invalid_value`, `ambiguous_number`, `value_not_finite`, `value_out_of_range`,
    /// `value_not_whole`, `field_too_long`, `invalid_text`, `invalid_reported_at`, `reported_at_in_future`,
    /// `reported_at_before_period`, `reported_at_too_old` or `malformed_row`.
    #[schema(example = "value_out_of_range")]
    pub code: String,
    pub message: String,
    /// The same in Vietnamese, for a department's staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_vi: Option<String>,
}

/// The answer to a push: rows stored, rows already stored, and every row refused with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"accepted": 1, "duplicates": 1, "rejected": [
    {"index": 2, "code": "value_out_of_range", "message": "4120000 is outside 0..=100000"}
]}))]
pub struct IngestReceipt {
    /// Rows stored as a new revision (or a withdrawal).
    pub accepted: usize,
    /// Rows identical to what was stored already: nothing changed.
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
    /// Of `accepted`, the rows that changed a value already stored (the others are first
    /// values of their period, values after a withdrawal, and `withdrawn`). Left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated: usize,
    /// Of `accepted`, the rows that withdrew a stored value. Left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub withdrawn: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// Remembers a request under its `Idempotency-Key` in the same transaction as its rows.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub token_id: String,
    pub key: String,
    pub request_digest: Vec<u8>,
    /// Keys older than this are forgotten and may be reused.
    pub not_before: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub rows: Vec<NewObservation>,
    pub recorded_by: String,
    pub received_at: DateTime<Utc>,
    /// Rows refused before the store, echoed in the receipt.
    pub rejected: Vec<Rejection>,
    pub idempotency: Option<IdempotencyClaim>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// The batch was written: `accepted` are indexes into `WriteBatch::rows`.
    Written {
        receipt: IngestReceipt,
        accepted: Vec<usize>,
    },
    /// The same request was seen before under its key; nothing was written this time.
    Replayed(IngestReceipt),
}

impl WriteOutcome {
    pub fn receipt(&self) -> &IngestReceipt {
        match self {
            Self::Written { receipt, .. } | Self::Replayed(receipt) => receipt,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ObservationQuery {
    pub indicator: String,
    pub unit: String,
    /// Inclusive lower bound on the period start.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the period start.
    pub to: Option<DateTime<Utc>>,
    /// Only revisions known (`reported_at`) at or before this instant count.
    pub as_of: Option<DateTime<Utc>>,
}

/// A target as in force, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TargetRow {
    #[serde(flatten)]
    pub target: Target,
    /// `config` (from `config/targets/`) or `api` (set with `PUT /api/v1/targets/…`).
    #[schema(example = "config")]
    pub origin: String,
    pub updated_at: DateTime<Utc>,
    /// Who set it: `config` or the token that did.
    pub updated_by: String,
}

/// One version of a target: in force from `valid_from` until `valid_to` (still in force when
/// `None`). A change closes the version in force and opens the next at the same instant
/// (ARCHITECTURE §8).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TargetVersion {
    #[serde(flatten)]
    pub target: Target,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    /// `config` or `api`.
    pub origin: String,
    /// Who opened this version: `config` or the token that did.
    pub set_by: String,
    /// Why, as given with the change.
    pub reason: Option<String>,
}

/// Which notifications a listing of the outbox shows (`GET /api/v1/notifications`); every
/// part given must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotificationFilter {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    pub receiver: Option<String>,
    /// Notifications that carry this alert.
    pub fingerprint: Option<String>,
    /// Queued at or after.
    pub from: Option<DateTime<Utc>>,
    /// Queued before.
    pub to: Option<DateTime<Utc>>,
    /// The keyset cursor: ids below this one.
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct TargetChange {
    pub year: i32,
    pub indicator: String,
    pub unit: String,
    pub value: TargetValue,
    pub tolerance: Option<f64>,
    /// Where the new value comes from (the resolution that set it), when the caller says.
    pub source: Option<String>,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// The caller's address, for the audit row.
    pub client_ip: Option<String>,
}

impl TargetChange {
    /// The source and illustrative mark of the target this change makes of `old`. A source
    /// given is the new one's. A new value is the city's decision, no longer an illustrative
    /// figure, and the source of the old value is not its own; a change of tolerance alone
    /// keeps where the value came from.
    pub fn provenance(&self, old: Option<&Target>) -> (Option<String>, bool) {
        match (&self.source, old) {
            (Some(source), _) => (Some(source.clone()), false),
            (None, Some(old)) if old.value == self.value => (old.source.clone(), old.illustrative),
            (None, _) => (None, false),
        }
    }
}

/// A name for one store handle among those on a database, recorded with its commits so that
/// it tells its own from the others' (ARCHITECTURE §7): the process id and a random part, so
/// that several handles in one process (tests, tools) differ too.
pub(crate) fn new_instance_name() -> String {
    use rand::Rng as _;
    format!("{}:{:08x}", std::process::id(), rand::rng().random::<u32>())
}

/// What a recorded commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    /// A write group; its rows carry its id.
    Observations,
    /// A target changed; the subject is `year/indicator/unit`.
    Target,
    /// A token was revoked; the subject is its id.
    Token,
    /// Alerts changed: states committed, an acknowledgement, a silence.
    Alerts,
    /// An explanation of a target was added; the subject is `year/indicator/unit`.
    Explanation,
    /// Revisions were approved; the approvals rows of the group name them.
    Approval,
    /// A task was created, redefined or moved on; the subject is its code.
    Task,
}

impl CommitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observations => "observations",
            Self::Target => "target",
            Self::Token => "token",
            Self::Alerts => "alerts",
            Self::Explanation => "explanation",
            Self::Approval => "approval",
            Self::Task => "task",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "observations" => Some(Self::Observations),
            "target" => Some(Self::Target),
            "token" => Some(Self::Token),
            "alerts" => Some(Self::Alerts),
            "explanation" => Some(Self::Explanation),
            "approval" => Some(Self::Approval),
            "task" => Some(Self::Task),
            _ => None,
        }
    }
}

/// A commit of another instance, as a follower reads it.
#[derive(Debug, Clone)]
pub struct RemoteCommit {
    pub group_id: i64,
    pub instance: String,
    pub kind: CommitKind,
    pub subject: Option<String>,
    /// The instant the commit was stamped with (a write group's `received_at`).
    pub at: DateTime<Utc>,
    /// A write group's rows.
    pub rows: Vec<StoredObservation>,
    /// The revisions an approval moved.
    pub approvals: Vec<ApprovedRevision>,
}

/// What an approval's audit row says it did; the approvals rows of `group` name each revision.
/// The period a stored row's bounds name in the city's zone, as text; a row whose bounds name
/// none is corrupt.
pub(crate) fn period_text(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    zone: chrono_tz::Tz,
) -> StoreResult<String> {
    crate::domain::Period::from_bounds(start, end, zone)
        .map(|p| p.to_string())
        .ok_or_else(|| StoreError::Corrupt {
            table: "observations",
            detail: format!("[{start}, {end}) is no period in {zone}"),
        })
}

pub(crate) fn approval_audit(
    approval: &NewApproval,
    approved: usize,
    unchanged: usize,
    group: i64,
) -> serde_json::Value {
    serde_json::json!({
        "state": approval.state,
        "approved": approved,
        "unchanged": unchanged,
        "group": group,
        "note": approval.note,
        "published_before": approval.published_before,
    })
}

/// A reminder to a department about one figure: sent once per (indicator, unit, period, kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRecord {
    pub indicator: String,
    pub unit: String,
    /// The period's text, as the API spells it.
    pub period: String,
    /// `due` (the due date is near) or `late` (it passed without the figure).
    pub kind: String,
    pub due_at: DateTime<Utc>,
}

/// A notification to queue in the outbox as it is, outside the alerts' grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedNotification {
    pub receiver: String,
    pub group_key: String,
    /// The [`crate::alerts::message::Notification`] it is, as JSON; its `id` is set to the
    /// outbox row's on the way in.
    pub payload: serde_json::Value,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations; idempotent.
    async fn migrate(&self) -> StoreResult<()>;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// How many of this build's migrations the database holds, applied as written.
    async fn migrations(&self) -> StoreResult<MigrationState>;

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Returns false when no such usable token exists.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Inserts a token and its audit row in one transaction.
    async fn create_token(&self, token: &TokenRecord, audit: &AuditEvent) -> StoreResult<()>;
    /// Revokes a token and writes its audit row in one transaction; false (and no row) when
    /// no such unrevoked token exists.
    async fn revoke_token_audited(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Writes a batch in one transaction: new keys get revision 1, changed values the next
    /// revision, identical re-sends nothing.
    async fn write_batch(&self, batch: &WriteBatch) -> StoreResult<WriteOutcome>;

    /// Writes several batches in one transaction and one commit, in order, each answered on its
    /// own: a later batch sees the revisions and idempotency keys of earlier ones. An error of
    /// one batch (a reused key) refuses that batch alone; an error of the store fails them all
    /// and writes nothing.
    async fn write_group(
        &self,
        batches: &[WriteBatch],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>>;

    /// [`Store::write_group`], filing each written batch's push under its departments in the
    /// same transaction ([`activity`]): `notes` stand beside `batches`, one each (`None` for a
    /// batch without one).
    async fn write_group_noted(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<activity::PushNote>],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>>;

    /// How many write groups the store can have in flight at once, each on a connection of
    /// its own (ARCHITECTURE §7): a group commits only after the one before it has ended.
    fn write_lanes(&self) -> usize {
        1
    }

    /// [`Store::write_group_noted`] on write lane `lane` (below [`Store::write_lanes`]),
    /// committing only once the group before it, `turn`, has ended: the store may write the
    /// group meanwhile, but no commit overtakes an earlier one. A store of one lane waits for
    /// its turn first.
    async fn write_group_in_turn(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<activity::PushNote>],
        lane: usize,
        turn: &mut Turn,
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let _ = lane;
        turn.wait().await;
        self.write_group_noted(batches, notes).await
    }

    /// A department's (or [`activity::UNASSIGNED`]'s) newest pushes and refused rows, at most
    /// `pushes` and `rejections` of them, newest first.
    async fn department_activity(
        &self,
        department: &str,
        pushes: i64,
        rejections: i64,
    ) -> StoreResult<activity::DepartmentActivity>;

    /// Rows pushed from the minute holding `since` on, per department and feed (of one
    /// department or feed when given), from the per-minute counts every push adds to.
    async fn activity_counts(
        &self,
        department: Option<&str>,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<activity::ActivityCount>>;

    /// How often each reason refused the rows of `department` (of one feed when given) since
    /// `since`, among those it still keeps; most frequent first.
    async fn refusal_reasons(
        &self,
        department: &str,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<activity::ReasonCount>>;

    /// The latest revision (as of `query.as_of`) of every period in range, oldest first.
    async fn observations(&self, query: &ObservationQuery) -> StoreResult<Vec<StoredObservation>>;

    /// The latest revisions aggregated per calendar bucket in the city's zone.
    async fn bucketed(
        &self,
        query: &ObservationQuery,
        bucket: Bucket,
        aggregate: plan::Aggregate,
    ) -> StoreResult<Vec<BucketPoint>>;

    /// The latest revision (as of `as_of`) of every series' periods starting in `[from, to)`,
    /// ordered by indicator, unit and period start: what the rules engine loads.
    async fn latest_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>>;

    /// Every revision (withdrawals included) of the periods starting in `[from, to)` that was
    /// known by `known_by`, of every series or of the given indicators', in the order they became
    /// known (`reported_at`, then series, period and revision): what a replay of the engine
    /// reads (ARCHITECTURE §8).
    async fn known_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>>;

    /// [`Store::known_between`] for the official figures (ARCHITECTURE §8): every revision
    /// that had become official by `known_by`, counted from the moment it did (the later of its
    /// `reported_at` and its official approval), in that order.
    async fn official_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>>;

    /// Moves the revisions `approval` names up to its state (those already there or above stay
    /// as they are) and appends each step to the approvals, with the audit row (its `after` says
    /// what was done) and, on a database several instances share, the commit they follow, in one
    /// transaction.
    async fn approve(
        &self,
        approval: &NewApproval,
        audit: &AuditEvent,
    ) -> StoreResult<ApprovalOutcome>;

    /// Where following other instances' commits starts now: every commit below it has ended.
    /// `None` for a backend that serves one instance only (SQLite).
    async fn commit_horizon(&self) -> StoreResult<Option<u64>>;

    /// Other instances' commits from `from` on, up to a bound where every commit has ended,
    /// with their rows, in transaction order; and that bound (ARCHITECTURE §7).
    async fn commits_from(&self, from: u64) -> StoreResult<(Vec<RemoteCommit>, u64)>;

    /// Drops whatever this handle remembers of a token, after another instance revoked it.
    fn forget_token(&self, _id: &str) {}

    /// A connection that hears about other instances' commits as they happen; `None` for a
    /// backend that serves one instance only.
    async fn listen_commits(&self) -> StoreResult<Option<sqlx::postgres::PgListener>>;

    /// Every revision of one observation, oldest first.
    async fn revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>>;

    /// Writes the configured targets, leaving alone the ones an admin has set through the API;
    /// the targets this changes are recorded in one `targets.seed` audit row.
    async fn seed_targets(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()>;
    async fn targets(&self, year: Option<i32>) -> StoreResult<Vec<TargetRow>>;
    /// The targets in force at `at`: what a judgement as of `at` uses.
    async fn targets_as_of(
        &self,
        year: Option<i32>,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<TargetRow>>;
    /// Every version of one target, oldest first.
    async fn target_history(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<TargetVersion>>;
    /// Every version of every target of `year`, by indicator, unit and `valid_from`.
    async fn target_versions(&self, year: i32) -> StoreResult<Vec<TargetVersion>>;
    /// Sets one target and writes its audit row in the same transaction.
    async fn set_target(&self, change: &TargetChange) -> StoreResult<TargetRow>;
    /// Appends an explanation of a target with its audit row (and, on a database several
    /// instances share, its commit) in one transaction.
    async fn add_explanation(
        &self,
        explanation: &NewExplanation,
        audit: &AuditEvent,
    ) -> StoreResult<Explanation>;
    /// Every explanation of one target, newest first: the first is the current one.
    async fn explanations(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<Explanation>>;
    /// The current explanation of every target of `year` (of every year when `None`): the
    /// newest created by `as_of` (by now when `None`), ordered by year, indicator and unit.
    async fn current_explanations(
        &self,
        year: Option<i32>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<Explanation>>;
    /// Writes a task (created, redefined or moved on by a progress note) with its directive,
    /// its note and status record when given, its audit row and, on a database several
    /// instances share, its commit, in one transaction; returns it as stored. `None`, writing
    /// nothing, when `write.create` and the code is taken, or not `create` and it is absent.
    async fn write_task(
        &self,
        write: &crate::domain::task::TaskWrite,
        audit: &AuditEvent,
    ) -> StoreResult<Option<crate::domain::task::Task>>;
    /// [`Store::write_task`] for several tasks with one audit row (the configured tasks at
    /// start); each is `None` when left out, and nothing is written when every one is.
    async fn write_tasks(
        &self,
        writes: &[crate::domain::task::TaskWrite],
        audit: &AuditEvent,
    ) -> StoreResult<Vec<Option<crate::domain::task::Task>>>;
    /// Every task (or the one `code` names) with its directive, progress notes and status
    /// records, by due date and code.
    async fn tasks(&self, code: Option<&str>) -> StoreResult<Vec<crate::domain::task::Task>>;
    /// The newest audit rows first.
    async fn audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.audit_page(None, limit).await
    }
    /// The newest audit rows first, only those with an id below `before` when given.
    async fn audit_page(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// Audit rows with an id above `after`, oldest first: what `ktxh audit verify` walks.
    async fn audit_chain(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// Appends one row to the audit log, chained to the last one.
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<AuditEntry>;

    /// Alerts not yet resolved, or all of them (newest first) with `include_resolved`.
    async fn alerts(&self, include_resolved: bool, limit: i64) -> StoreResult<Vec<Alert>>;
    /// Writes alert changes and the outbox events they cause in one transaction.
    async fn commit_alerts(
        &self,
        alerts: &[Alert],
        events: &[NewAlertEvent],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn undispatched_events(&self) -> StoreResult<Vec<AlertEvent>>;
    /// The latest notification's creation time per (receiver, group).
    async fn last_notifications(&self) -> StoreResult<Vec<(String, String, DateTime<Utc>)>>;
    /// The (receiver, alert fingerprint) pairs whose last notification told the alert fires:
    /// the receivers that would hear of its end (ARCHITECTURE §5).
    async fn told_firing(&self) -> StoreResult<std::collections::HashSet<(String, String)>>;
    /// Marks events as dispatched without a notification: they tell their receiver nothing
    /// it needs (an alert that resolved before it was ever announced).
    async fn settle_events(&self, event_ids: &[i64], at: DateTime<Utc>) -> StoreResult<()>;
    /// Queues one notification and marks the events it covers as dispatched, atomically.
    /// Each alert of the payload's `alerts` gets `sequence`, the next number of that alert at
    /// `receiver` (1, 2, 3…), taken in the same transaction (ARCHITECTURE §5).
    async fn dispatch(
        &self,
        receiver: &str,
        group_key: &str,
        payload: &serde_json::Value,
        event_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Claims for `instance`, until `now + lease`, up to `limit` pending notifications due at
    /// `now` that nobody holds (never claimed, or their claim's lease ended), oldest due first,
    /// and returns them. Two claimers at once never get the same notification; a claim ends
    /// with [`Store::record_attempt`] or its lease (ARCHITECTURE §5). A notification is
    /// claimable only when no older one of its receiver and group is still pending (waiting for
    /// a retry, or claimed): a receiver gets a group's notifications in the order they were
    /// queued.
    async fn claim_notifications(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>>;
    /// [`Store::claim_notifications`] of one receiver's notifications only: each receiver is
    /// delivered to on its own, so a slow one does not hold up the others.
    async fn claim_receiver_notifications(
        &self,
        instance: &str,
        receiver: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>>;
    /// The receivers with a pending notification due at `now` that nobody holds.
    async fn due_receivers(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>>;
    /// Ends every claim on a pending notification, whoever holds it, and returns each one's id
    /// and former holder. For an instance that has just come to lead, before it delivers: the
    /// holders no longer lead (the instance that held the leadership lock lost it, which is how
    /// this one got it) and stopped delivering as they stepped down or died, so their claims
    /// wait for nobody and would otherwise hold their notifications until the lease ends
    /// (ARCHITECTURE §5, §7). Waits for a record of a former holder's still committing.
    async fn release_notification_claims(&self) -> StoreResult<Vec<(i64, String)>>;
    /// Notifications not yet delivered nor given up, whenever their next attempt: how many, and
    /// when the oldest was queued.
    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)>;
    /// Logs one delivery attempt and updates the notification: delivered on success, retried
    /// at `retry_at`, or failed for good when `retry_at` is `None`. Clears its claim.
    async fn record_attempt(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// [`Store::record_attempt`] for a notification `instance` claimed, written only while
    /// `instance` still holds the claim; false, with nothing written, when it no longer does
    /// (the claim was released to a new leader, [`Store::release_notification_claims`]), so an
    /// instance that stepped down never records over its successor's delivery.
    async fn record_claimed_attempt(
        &self,
        id: i64,
        instance: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    async fn notifications(&self, limit: i64) -> StoreResult<Vec<OutboxNotification>>;
    /// A page of the outbox, newest first (by id, so a notification queued while an operator
    /// pages never shifts the pages already read): those `filter` keeps, older than its cursor.
    async fn notification_page(
        &self,
        filter: &NotificationFilter,
    ) -> StoreResult<Vec<OutboxNotification>>;
    /// The service's first start: `now` on the first call against a new database (or the
    /// earliest figure or audit row of one that held data before migration 0015), the same
    /// instant on every call after. Lateness is judged from it (ARCHITECTURE §4).
    async fn first_start(&self, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>>;
    /// Records `reminder` and queues its notifications in one transaction; `false`, queuing
    /// nothing, when the same reminder (indicator, unit, period, kind) was recorded before, by
    /// this instance or another (ARCHITECTURE §5).
    async fn record_reminder(
        &self,
        reminder: &ReminderRecord,
        notifications: &[QueuedNotification],
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn upsert_silence(&self, silence: &Silence) -> StoreResult<()>;
    /// Writes a silence (created or expired) and its audit row in one transaction.
    async fn save_silence(&self, silence: &Silence, audit: &AuditEvent) -> StoreResult<()>;
    /// Writes an acknowledged alert and its audit row in one transaction.
    async fn commit_ack(&self, alert: &Alert, audit: &AuditEvent) -> StoreResult<()>;
    async fn silences(&self) -> StoreResult<Vec<Silence>>;

    /// What the feed or import `name` has read so far, as it last saved it.
    async fn feed_state(&self, name: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_feed_state(
        &self,
        name: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

pub type DynStore = Arc<dyn Store>;

/// How long a caller waits for a pooled connection unless configured otherwise
/// (`[limits] db_acquire_timeout_seconds`): an outage is answered in seconds, not half a minute.
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the store named by `url`, creating an SQLite file when missing, and migrates it.
pub async fn connect(url: &str, zone: chrono_tz::Tz) -> StoreResult<DynStore> {
    connect_with(url, zone, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// [`connect`] with the time a caller waits for a pooled connection before `PoolTimedOut`.
pub async fn connect_with(
    url: &str,
    zone: chrono_tz::Tz,
    acquire_timeout: std::time::Duration,
) -> StoreResult<DynStore> {
    let store: DynStore = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url, zone, acquire_timeout).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::PgStore::connect(url, zone, acquire_timeout).await?)
    } else {
        return Err(StoreError::UnsupportedUrl(redact_url(url)));
    };
    store.migrate().await?;
    Ok(store)
}

/// Errors that say the database cannot be reached or cannot take more work now.
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (class 08), too many connections, a database
            // closed to connections, shutdown and start-up. SQLite: busy beyond its timeout.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "53300" | "55000" | "57P01" | "57P02" | "57P03" | "5" | "261" | "517" | "773"
                )
        }),
        _ => false,
    }
}

/// A target version's row as the target it sets; both backends store the same columns.
pub(crate) fn target_from_row<'r, R>(row: &'r R) -> StoreResult<Target>
where
    R: sqlx::Row,
    &'r str: sqlx::ColumnIndex<R>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "target_versions",
        detail,
    };
    let indicator: String = row.try_get("indicator")?;
    let unit: String = row.try_get("unit")?;
    let value: Option<f64> = row.try_get("value")?;
    let lo: Option<f64> = row.try_get("lo")?;
    let hi: Option<f64> = row.try_get("hi")?;
    let value = match (value, lo, hi) {
        (Some(value), _, _) => TargetValue::Point { value },
        (None, Some(lo), Some(hi)) => TargetValue::Band { lo, hi },
        _ => return Err(corrupt(format!("{indicator}: neither value nor band"))),
    };
    Ok(Target {
        year: row.try_get("year")?,
        indicator: crate::domain::Code::parse(&indicator).map_err(corrupt)?,
        unit: crate::domain::Code::parse(&unit).map_err(corrupt)?,
        value,
        tolerance: row.try_get("tolerance")?,
        source: row.try_get("source")?,
        illustrative: row.try_get("illustrative")?,
    })
}

/// A target's value as the `value`, `lo`, `hi` columns both backends store.
pub(crate) fn split_value(value: &TargetValue) -> (Option<f64>, Option<f64>, Option<f64>) {
    match *value {
        TargetValue::Point { value } => (Some(value), None, None),
        TargetValue::Band { lo, hi } => (None, Some(lo), Some(hi)),
    }
}

/// Hides a password in a database URL before it reaches a log or an error.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Times a store call into `ktxh_store_operation_duration_seconds`.
pub(crate) struct OpTimer {
    operation: &'static str,
    backend: Backend,
    started: Instant,
}

impl OpTimer {
    pub(crate) fn start(backend: Backend, operation: &'static str) -> Self {
        Self {
            operation,
            backend,
            started: Instant::now(),
        }
    }
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        crate::metrics::store_operation(
            self.backend.as_str(),
            self.operation,
            self.started.elapsed(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_leave_the_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/ktxh"),
            "postgres://app:***@db:5432/ktxh"
        );
        assert_eq!(redact_url("sqlite://data/ktxh.db"), "sqlite://data/ktxh.db");
    }
}
