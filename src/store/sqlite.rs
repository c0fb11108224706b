//! The embedded default: one SQLite file in WAL mode.

mod activity;
mod approvals;
mod audit;
mod explanations;
mod instance;
mod outbox_list;
mod read;
mod reminders;
mod targets;
mod tasks;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

pub use instance::{InstanceLock, InstanceLockError};

use super::plan::{self, Aggregate};
use super::{
    AuditEntry, AuditEvent, Backend, Bucket, BucketPoint, MigrationState, ObservationQuery,
    OpTimer, RemoteCommit, Store, StoreError, StoreResult, TargetChange, TargetRow, TargetVersion,
    WriteBatch, WriteOutcome, RECORDED_MIGRATIONS,
};
use crate::domain::alert::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::domain::approval::{ApprovalOutcome, NewApproval};
use crate::domain::explanation::{Explanation, NewExplanation};
use crate::domain::token::{Role, TokenRecord};
use crate::domain::{StoredObservation, Target};

/// The schema this build expects, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite allows 32,766 bound parameters per statement; chunks of this many rows of at most
/// twelve columns stay well below.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Ids of series, recorders and sources: they never change once committed.
#[derive(Default)]
struct Ids {
    series: HashMap<(String, String), i64>,
    recorders: HashMap<String, i64>,
    sources: HashMap<String, i64>,
}

pub struct SqliteStore {
    /// Reads; in WAL mode they never wait for the writer.
    pool: SqlitePool,
    options: SqliteConnectOptions,
    zone: Tz,
    /// SQLite has one writer: every write of this store queues here for the one connection
    /// reserved for writing (opened on first use, and again after a failed write group), which
    /// also avoids SQLITE_BUSY on lock upgrades.
    writer: Mutex<Option<SqliteConnection>>,
    ids: RwLock<Ids>,
}

/// The write connection, held by one writer at a time.
pub(super) struct Writer<'a> {
    slot: MutexGuard<'a, Option<SqliteConnection>>,
}

impl Writer<'_> {
    fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        self.slot
            .as_mut()
            .ok_or(StoreError::Database(sqlx::Error::PoolClosed))
    }

    /// A transaction holding SQLite's write lock from its first statement.
    pub(super) async fn begin(&mut self) -> StoreResult<Transaction<'_, Sqlite>> {
        Ok(self.conn()?.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Drops the connection; the next writer opens a fresh one.
    pub(super) fn discard(&mut self) {
        *self.slot = None;
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_secs(value: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(value, 0).single().unwrap_or_default()
}

fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

impl SqliteStore {
    pub async fn connect(url: &str, zone: Tz, acquire_timeout: Duration) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(acquire_timeout)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            options,
            zone,
            writer: Mutex::new(None),
            ids: RwLock::new(Ids::default()),
        })
    }

    /// Records one delivery attempt (see [`Store::record_attempt`]); with `claimant`, only
    /// while that instance still holds the notification's claim. False when it does not, and
    /// then nothing is written.
    /// [`Store::claim_notifications`], of one receiver's notifications when `receiver` is
    /// given.
    async fn claim_in_order(
        &self,
        instance: &str,
        receiver: Option<&str>,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        let until = chrono::Duration::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // One statement on the one write connection: SQLite runs it whole under its write
        // lock, so no other claimer reads the rows between their choice and their claim. An
        // older notification of the same receiver and group still pending holds the later ones
        // back (ARCHITECTURE §5).
        let mut writer = self.writer().await?;
        let rows = sqlx::query(
            "UPDATE notifications SET claimed_by = ?1, claimed_until = ?2 \
             WHERE id IN ( \
               SELECT id FROM notifications n \
               WHERE status = 'pending' AND next_attempt_at <= ?3 \
                 AND (claimed_until IS NULL OR claimed_until < ?3) \
                 AND (?5 IS NULL OR receiver = ?5) \
                 AND NOT EXISTS ( \
                   SELECT 1 FROM notifications older \
                   WHERE older.status = 'pending' AND older.receiver = n.receiver \
                     AND older.group_key = n.group_key AND older.id < n.id) \
               ORDER BY next_attempt_at, id LIMIT ?4) \
             RETURNING *",
        )
        .bind(instance)
        .bind(micros(until))
        .bind(micros(now))
        .bind(limit)
        .bind(receiver)
        .fetch_all(writer.conn()?)
        .await?;
        let mut claimed = rows
            .iter()
            .map(notification_from)
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING follows no ORDER BY.
        claimed.sort_by_key(|n| (n.next_attempt_at, n.id));
        Ok(claimed)
    }

    async fn record_attempt_as(
        &self,
        id: i64,
        claimant: Option<&str>,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let status = match (error, retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE notifications SET status = ?2, attempts = attempts + 1, last_error = ?3, \
               next_attempt_at = coalesce(?4, next_attempt_at), \
               delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END, \
               claimed_by = NULL, claimed_until = NULL \
             WHERE id = ?1 AND (?6 IS NULL OR claimed_by = ?6)",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(retry_at.map(micros))
        .bind(micros(at))
        .bind(claimant)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 && claimant.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (notification_id, at, ok, error) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(micros(at))
        .bind(error.is_none())
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Waits for the write connection, opening it if needed.
    pub(super) async fn writer(&self) -> StoreResult<Writer<'_>> {
        let mut slot = self.writer.lock().await;
        if slot.is_none() {
            *slot = Some(self.options.connect().await?);
        }
        Ok(Writer { slot })
    }
}

fn token_from(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            table: "api_tokens",
            detail: format!("role `{role}`"),
        })?,
        department: row.try_get("department")?,
        digest: row.try_get("digest")?,
        created_at: from_secs(row.try_get("created_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(from_secs),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(from_secs),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        self.seal_audit().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrations(&self) -> StoreResult<MigrationState> {
        let recorded = sqlx::query_as(RECORDED_MIGRATIONS)
            .fetch_all(&self.pool)
            .await;
        MigrationState::from_recorded(&MIGRATOR, recorded)
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        audit::insert_token(writer.conn()?, token).await
    }

    async fn create_token(&self, token: &TokenRecord, event: &AuditEvent) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        audit::insert_token(&mut tx, token).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token_audited(
        &self,
        id: &str,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        if !audit::revoke_token(&mut tx, id, at).await? {
            return Ok(false);
        }
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let _timer = OpTimer::start(self.backend(), "token");
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from).transpose()
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from).collect()
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        audit::revoke_token(writer.conn()?, id, at).await
    }

    async fn write_batch(&self, batch: &WriteBatch) -> StoreResult<WriteOutcome> {
        let _timer = OpTimer::start(self.backend(), "write_batch");
        let mut outcomes = self.group(std::slice::from_ref(batch), &[]).await?;
        // A group answers each of its batches, so a group of one answers once.
        outcomes.pop().unwrap_or_else(|| {
            Err(StoreError::Corrupt {
                table: "observations",
                detail: "a write group of one batch gave no answer".into(),
            })
        })
    }

    async fn write_group(
        &self,
        batches: &[WriteBatch],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        // One operation label for one write path, whatever the group's size, as on PostgreSQL.
        let _timer = OpTimer::start(self.backend(), "write_batch");
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.group(batches, &[]).await
    }

    async fn write_group_noted(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<crate::store::activity::PushNote>],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let _timer = OpTimer::start(self.backend(), "write_batch");
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.group(batches, notes).await
    }

    async fn department_activity(
        &self,
        department: &str,
        pushes: i64,
        rejections: i64,
    ) -> StoreResult<crate::store::activity::DepartmentActivity> {
        let _timer = OpTimer::start(self.backend(), "department_activity");
        self.read_activity(department, pushes, rejections).await
    }

    async fn activity_counts(
        &self,
        department: Option<&str>,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::store::activity::ActivityCount>> {
        let _timer = OpTimer::start(self.backend(), "activity_counts");
        self.read_activity_counts(department, feed, since).await
    }

    async fn refusal_reasons(
        &self,
        department: &str,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::store::activity::ReasonCount>> {
        let _timer = OpTimer::start(self.backend(), "refusal_reasons");
        self.read_refusal_reasons(department, feed, since).await
    }

    async fn observations(&self, query: &ObservationQuery) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "observations");
        self.latest_of_series(query).await
    }

    async fn bucketed(
        &self,
        query: &ObservationQuery,
        bucket: Bucket,
        aggregate: Aggregate,
    ) -> StoreResult<Vec<BucketPoint>> {
        // SQLite has no calendar bucketing in the city's zone; the shared Rust code does the
        // same as time_bucket/date_trunc on PostgreSQL.
        let rows = self.observations(query).await?;
        Ok(plan::bucket_points(&rows, bucket, aggregate, self.zone))
    }

    async fn latest_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "latest_between");
        self.latest_of_all(from, to, as_of).await
    }

    async fn known_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "known_between");
        self.known_between(from, to, known_by, indicators).await
    }

    async fn official_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "official_between");
        self.official_between(from, to, known_by, indicators).await
    }

    async fn approve(
        &self,
        approval: &NewApproval,
        event: &AuditEvent,
    ) -> StoreResult<ApprovalOutcome> {
        let _timer = OpTimer::start(self.backend(), "approve");
        self.approve_revisions(approval, event).await
    }

    async fn commit_horizon(&self) -> StoreResult<Option<u64>> {
        Ok(None) // one instance per file: nothing to follow
    }

    async fn commits_from(&self, from: u64) -> StoreResult<(Vec<RemoteCommit>, u64)> {
        Ok((Vec::new(), from))
    }

    async fn listen_commits(&self) -> StoreResult<Option<sqlx::postgres::PgListener>> {
        Ok(None)
    }

    async fn revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.all_revisions(indicator, unit, period).await
    }

    async fn seed_targets(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        self.seed(targets, at).await
    }

    async fn targets(&self, year: Option<i32>) -> StoreResult<Vec<TargetRow>> {
        self.in_force(year, None).await
    }

    async fn targets_as_of(
        &self,
        year: Option<i32>,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<TargetRow>> {
        self.in_force(year, Some(at)).await
    }

    async fn target_history(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<TargetVersion>> {
        self.history(year, indicator, unit).await
    }

    async fn target_versions(&self, year: i32) -> StoreResult<Vec<TargetVersion>> {
        self.versions_of_year(year).await
    }

    async fn set_target(&self, change: &TargetChange) -> StoreResult<TargetRow> {
        self.change_target(change).await
    }

    async fn add_explanation(
        &self,
        explanation: &NewExplanation,
        audit: &AuditEvent,
    ) -> StoreResult<Explanation> {
        self.append_explanation(explanation, audit).await
    }

    async fn explanations(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<Explanation>> {
        self.explanations_of(year, indicator, unit).await
    }

    async fn current_explanations(
        &self,
        year: Option<i32>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<Explanation>> {
        self.explanations_current(year, as_of).await
    }

    async fn write_task(
        &self,
        write: &crate::domain::task::TaskWrite,
        audit: &AuditEvent,
    ) -> StoreResult<Option<crate::domain::task::Task>> {
        let _timer = OpTimer::start(self.backend(), "write_task");
        self.write_task_tx(write, audit).await
    }

    async fn write_tasks(
        &self,
        writes: &[crate::domain::task::TaskWrite],
        audit: &AuditEvent,
    ) -> StoreResult<Vec<Option<crate::domain::task::Task>>> {
        let _timer = OpTimer::start(self.backend(), "write_tasks");
        self.write_tasks_tx(writes, audit).await
    }

    async fn tasks(&self, code: Option<&str>) -> StoreResult<Vec<crate::domain::task::Task>> {
        let _timer = OpTimer::start(self.backend(), "tasks");
        self.read_tasks(code).await
    }

    async fn audit_page(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.audit_newest(before, limit).await
    }

    async fn audit_chain(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.audit_after(after, limit).await
    }

    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        self.record(event).await
    }

    async fn alerts(&self, include_resolved: bool, limit: i64) -> StoreResult<Vec<Alert>> {
        let rows = sqlx::query(
            "SELECT doc FROM alerts WHERE (?1 OR state <> 'resolved') ORDER BY updated_at DESC LIMIT ?2",
        )
        .bind(include_resolved)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| from_doc(row, "alerts")).collect()
    }

    async fn commit_alerts(
        &self,
        alerts: &[Alert],
        events: &[NewAlertEvent],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        for alert in alerts {
            audit::upsert_alert(&mut tx, alert).await?;
        }
        for event in events {
            sqlx::query("INSERT INTO alert_events (receiver, group_key, fingerprint, created_at) VALUES (?, ?, ?, ?)")
                .bind(&event.receiver)
                .bind(&event.group_key)
                .bind(&event.fingerprint)
                .bind(micros(at))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn undispatched_events(&self) -> StoreResult<Vec<AlertEvent>> {
        let rows =
            sqlx::query("SELECT * FROM alert_events WHERE dispatched_at IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertEvent {
                    id: row.try_get("id")?,
                    receiver: row.try_get("receiver")?,
                    group_key: row.try_get("group_key")?,
                    fingerprint: row.try_get("fingerprint")?,
                    created_at: from_micros(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn last_notifications(&self) -> StoreResult<Vec<(String, String, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT receiver, group_key, max(created_at) AS last FROM notifications GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("receiver")?,
                    row.try_get("group_key")?,
                    from_micros(row.try_get("last")?),
                ))
            })
            .collect()
    }

    async fn told_firing(&self) -> StoreResult<std::collections::HashSet<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(super::sequence::TOLD_FIRING)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn settle_events(&self, event_ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        for event_id in event_ids {
            sqlx::query(
                "UPDATE alert_events SET dispatched_at = ? WHERE id = ? AND dispatched_at IS NULL",
            )
            .bind(micros(at))
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dispatch(
        &self,
        receiver: &str,
        group_key: &str,
        payload: &serde_json::Value,
        event_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        // Each alert's next number at this receiver, in the transaction that queues it.
        let mut numbers = std::collections::HashMap::new();
        let firing = super::sequence::firing(payload);
        for fingerprint in super::sequence::fingerprints(payload) {
            let number: i64 = sqlx::query_scalar(super::sequence::NEXT_SEQUENCE_SQLITE)
                .bind(receiver)
                .bind(&fingerprint)
                .bind(firing.contains(&fingerprint))
                .fetch_one(&mut *tx)
                .await?;
            numbers.insert(fingerprint, number);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (receiver, group_key, payload, status, next_attempt_at, created_at) \
             VALUES (?1, ?2, '{}', 'pending', ?3, ?3) RETURNING id",
        )
        .bind(receiver)
        .bind(group_key)
        .bind(micros(at))
        .fetch_one(&mut *tx)
        .await?;
        // The payload names its own outbox id, so receivers can pass it on as an idempotency key.
        let mut payload = payload.clone();
        super::sequence::stamp(&mut payload, &numbers);
        payload["id"] = serde_json::json!(id);
        sqlx::query("UPDATE notifications SET payload = ? WHERE id = ?")
            .bind(payload.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for event_id in event_ids {
            sqlx::query("UPDATE alert_events SET dispatched_at = ? WHERE id = ?")
                .bind(micros(at))
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    async fn record_reminder(
        &self,
        reminder: &super::ReminderRecord,
        notifications: &[super::QueuedNotification],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.insert_reminder(reminder, notifications, at).await
    }

    async fn claim_notifications(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.claim_in_order(instance, None, now, lease, limit).await
    }

    async fn claim_receiver_notifications(
        &self,
        instance: &str,
        receiver: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.claim_in_order(instance, Some(receiver), now, lease, limit)
            .await
    }

    async fn due_receivers(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        let receivers: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT receiver FROM notifications \
             WHERE status = 'pending' AND next_attempt_at <= ?1 \
               AND (claimed_until IS NULL OR claimed_until < ?1) \
             ORDER BY receiver",
        )
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(receivers)
    }

    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((count.try_into().unwrap_or(0), oldest.map(from_micros)))
    }

    async fn release_notification_claims(&self) -> StoreResult<Vec<(i64, String)>> {
        // RETURNING gives the new values: the holders are read first, in the same
        // transaction on the one write connection.
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let released: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, coalesce(claimed_by, '') FROM notifications \
             WHERE status = 'pending' AND claimed_until IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claimed_until = NULL \
             WHERE status = 'pending' AND claimed_until IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn record_attempt(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.record_attempt_as(id, None, at, error, retry_at)
            .await
            .map(|_| ())
    }

    async fn record_claimed_attempt(
        &self,
        id: i64,
        instance: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        self.record_attempt_as(id, Some(instance), at, error, retry_at)
            .await
    }

    async fn notifications(&self, limit: i64) -> StoreResult<Vec<OutboxNotification>> {
        let rows = sqlx::query("SELECT * FROM notifications ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn notification_page(
        &self,
        filter: &super::NotificationFilter,
    ) -> StoreResult<Vec<OutboxNotification>> {
        self.list_notifications(filter).await
    }

    async fn first_start(&self, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        self.record_first_start(now).await
    }

    async fn upsert_silence(&self, silence: &Silence) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        audit::upsert_silence(writer.conn()?, silence).await
    }

    async fn save_silence(&self, silence: &Silence, event: &AuditEvent) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        audit::upsert_silence(&mut tx, silence).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_ack(&self, alert: &Alert, event: &AuditEvent) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        audit::upsert_alert(&mut tx, alert).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn silences(&self) -> StoreResult<Vec<Silence>> {
        let rows = sqlx::query("SELECT doc FROM silences ORDER BY ends_at DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| from_doc(row, "silences")).collect()
    }

    async fn feed_state(&self, name: &str) -> StoreResult<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT state FROM feed_state WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let text: String = row.try_get("state")?;
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                table: "feed_state",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    async fn put_feed_state(
        &self,
        name: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO feed_state (name, state, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(state.to_string())
        .bind(micros(at))
        .execute(self.writer().await?.conn()?)
        .await?;
        Ok(())
    }
}

fn notification_from(row: &SqliteRow) -> StoreResult<OutboxNotification> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxNotification {
        id: row.try_get("id")?,
        receiver: row.try_get("receiver")?,
        group_key: row.try_get("group_key")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
            table: "notifications",
            detail: e.to_string(),
        })?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: from_micros(row.try_get("next_attempt_at")?),
        created_at: from_micros(row.try_get("created_at")?),
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(from_micros),
        last_error: row.try_get("last_error")?,
    })
}

/// Decodes a row's `doc` column (JSON text) into `T`.
fn from_doc<T: serde::de::DeserializeOwned>(
    row: &SqliteRow,
    table: &'static str,
) -> StoreResult<T> {
    let doc: String = row.try_get("doc")?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}
