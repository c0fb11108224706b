//! PostgreSQL, with observations in a TimescaleDB hypertable when the server has the extension.
//!
//! Observations are stored narrow (migration 0005): a series id, the period's bounds, the
//! revision and its times, with the indicator/unit text in `series` and the period text derived
//! from the bounds in the city's zone. Writes go through [`Store::write_group`] on a connection
//! of the store's own, so reads on the pool never wait behind a write.

mod activity;
mod approvals;
mod audit;
mod commits;
mod copy;
mod explanations;
mod outbox_list;
mod read;
mod reminders;
mod targets;
mod tasks;
mod write;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::plan::Aggregate;
use super::{
    AuditEntry, AuditEvent, Backend, Bucket, BucketPoint, CommitKind, MigrationState,
    ObservationQuery, OpTimer, RemoteCommit, Store, StoreError, StoreResult, TargetChange,
    TargetRow, TargetVersion, WriteBatch, WriteOutcome, RECORDED_MIGRATIONS,
};
use crate::domain::alert::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::domain::approval::{ApprovalOutcome, NewApproval};
use crate::domain::explanation::{Explanation, NewExplanation};
use crate::domain::token::{Role, TokenRecord};
use crate::domain::{StoredObservation, Target};

/// The schema this build expects, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Ids of series, recorders and sources by name. An id never changes once its row exists, so
/// what is cached stays true; only ids of committed rows are cached.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    series: HashMap<(String, String), i32>,
    recorders: HashMap<String, i32>,
    sources: HashMap<String, i32>,
}

/// Write groups a PostgreSQL store has in flight at once (ARCHITECTURE §7): while one
/// commits, or while its COPY is being taken in, the next one's rows go in on another
/// connection, and PostgreSQL works on both.
const WRITE_LANES: usize = 2;

pub struct PgStore {
    pool: PgPool,
    /// Where the write connection connects: the same server and database as the pool.
    connect_options: PgConnectOptions,
    acquire_timeout: Duration,
    /// The connection of each write lane and when it last committed; `None` until first used
    /// and after any error.
    writers: [tokio::sync::Mutex<Option<(PgConnection, std::time::Instant)>>; WRITE_LANES],
    ids: RwLock<Ids>,
    /// Held by an approval from before it takes its connections until it ends: approvals hold
    /// two connections each on TimescaleDB, and one at a time none waits for a connection
    /// another approval holds (see `approve_revisions`).
    approving: tokio::sync::Mutex<()>,
    zone: Tz,
    timescale: AtomicBool,
    /// This handle among the instances on the database, in the commits it records.
    instance: String,
}

impl PgStore {
    pub async fn connect(url: &str, zone: Tz, acquire_timeout: Duration) -> StoreResult<Self> {
        let connect_options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect_options.clone())
            .await?;
        Ok(Self {
            pool,
            connect_options,
            acquire_timeout,
            writers: std::array::from_fn(|_| tokio::sync::Mutex::new(None)),
            ids: RwLock::new(Ids::default()),
            approving: tokio::sync::Mutex::new(()),
            zone,
            timescale: AtomicBool::new(false),
            instance: super::new_instance_name(),
        })
    }

    /// Tells the other instances, at commit, that alerts changed (ARCHITECTURE §7).
    async fn record_alerts_changed(
        &self,
        tx: &mut PgConnection,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let group = commits::next_group(tx).await?;
        commits::record(tx, &self.instance, group, CommitKind::Alerts, None, at).await
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
        // SKIP LOCKED: a row another claimer's statement has locked is passed over rather than
        // waited for, so two claimers at once take different rows instead of the same one
        // twice (the inner SELECT would otherwise read a row the other is about to claim).
        // NOT EXISTS: an older notification of the same receiver and group still pending
        // (claimed, or waiting for its retry) holds the later ones back, so they never overtake
        // it; other groups flow (ARCHITECTURE §5).
        let rows = sqlx::query(
            "UPDATE notifications SET claimed_by = $1, claimed_until = $2 \
             WHERE id IN ( \
               SELECT id FROM notifications n \
               WHERE status = 'pending' AND next_attempt_at <= $3 \
                 AND (claimed_until IS NULL OR claimed_until < $3) \
                 AND ($5::text IS NULL OR receiver = $5) \
                 AND NOT EXISTS ( \
                   SELECT 1 FROM notifications older \
                   WHERE older.status = 'pending' AND older.receiver = n.receiver \
                     AND older.group_key = n.group_key AND older.id < n.id) \
               ORDER BY next_attempt_at, id LIMIT $4 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind(instance)
        .bind(until)
        .bind(now)
        .bind(limit)
        .bind(receiver)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // The update first: it locks the row, so the claim it checks cannot be taken over
        // (`release_notification_claims`) before this commits.
        let updated = sqlx::query(
            "UPDATE notifications SET status = $2, attempts = attempts + 1, last_error = $3, \
               next_attempt_at = coalesce($4, next_attempt_at), \
               delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END, \
               claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND ($6::text IS NULL OR claimed_by = $6)",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(at)
        .bind(claimant)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 && claimant.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO delivery_attempts (notification_id, at, ok, error) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(at)
            .bind(error.is_none())
            .bind(error)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The pool, for tools (such as the ingest benchmark) that need raw access.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn detect_timescale(&self) -> StoreResult<bool> {
        let hypertable: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') \
               AND to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        if !hypertable {
            return Ok(false);
        }
        let is_hypertable: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable WHERE table_name = 'observations')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(is_hypertable)
    }
}

fn token_from(row: &PgRow) -> StoreResult<TokenRecord> {
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
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        if self.timescale.load(Ordering::Relaxed) {
            Backend::Timescale
        } else {
            Backend::Postgres
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        let timescale = self.detect_timescale().await?;
        self.timescale.store(timescale, Ordering::Relaxed);
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
        let mut conn = self.pool.acquire().await?;
        audit::insert_token(&mut conn, token).await
    }

    async fn create_token(&self, token: &TokenRecord, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        if !audit::revoke_token(&mut tx, id, at).await? {
            return Ok(false);
        }
        audit::append(&mut tx, event).await?;
        // Other instances forget the token in their caches at once.
        let group = commits::next_group(&mut tx).await?;
        commits::record(
            &mut tx,
            &self.instance,
            group,
            CommitKind::Token,
            Some(id),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let _timer = OpTimer::start(self.backend(), "token");
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
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
        let mut conn = self.pool.acquire().await?;
        audit::revoke_token(&mut conn, id, at).await
    }

    async fn write_batch(&self, batch: &WriteBatch) -> StoreResult<WriteOutcome> {
        let mut outcomes = self.write_group(std::slice::from_ref(batch)).await?;
        outcomes.pop().unwrap_or_else(|| {
            Err(StoreError::Corrupt {
                table: "observations",
                detail: "a write group answered no outcome for its batch".into(),
            })
        })
    }

    async fn write_group(
        &self,
        batches: &[WriteBatch],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let _timer = OpTimer::start(self.backend(), "write_batch");
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.group(batches, &[], 0, None).await
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
        self.group(batches, notes, 0, None).await
    }

    fn write_lanes(&self) -> usize {
        WRITE_LANES
    }

    async fn write_group_in_turn(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<crate::store::activity::PushNote>],
        lane: usize,
        turn: &mut crate::store::Turn,
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let _timer = OpTimer::start(self.backend(), "write_batch");
        if batches.is_empty() {
            turn.wait().await;
            return Ok(Vec::new());
        }
        self.group(batches, notes, lane % WRITE_LANES, Some(turn))
            .await
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
        let _timer = OpTimer::start(self.backend(), "bucketed");
        self.buckets(query, bucket, aggregate).await
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
        self.commit_horizon().await.map(Some)
    }

    async fn commits_from(&self, from: u64) -> StoreResult<(Vec<RemoteCommit>, u64)> {
        self.commits_from(from).await
    }

    async fn listen_commits(&self) -> StoreResult<Option<sqlx::postgres::PgListener>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(commits::CHANNEL).await?;
        Ok(Some(listener))
    }

    async fn revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        self.revisions_of(indicator, unit, period).await
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
            "SELECT doc FROM alerts WHERE ($1 OR state <> 'resolved') ORDER BY updated_at DESC LIMIT $2",
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
        let mut tx = self.pool.begin().await?;
        for alert in alerts {
            audit::upsert_alert(&mut tx, alert).await?;
        }
        for event in events {
            sqlx::query("INSERT INTO alert_events (receiver, group_key, fingerprint, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&event.receiver)
                .bind(&event.group_key)
                .bind(&event.fingerprint)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        if !alerts.is_empty() {
            self.record_alerts_changed(&mut tx, at).await?;
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
                    created_at: row.try_get("created_at")?,
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
                    row.try_get("last")?,
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
        sqlx::query(
            "UPDATE alert_events SET dispatched_at = $1 WHERE id = ANY($2) AND dispatched_at IS NULL",
        )
        .bind(at)
        .bind(event_ids)
        .execute(&self.pool)
        .await?;
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
        let mut tx = self.pool.begin().await?;
        // The numbers first: their rows stay locked until this commits, so a second enqueuer of
        // the same alert at once (two leaders in a hand-over) takes its numbers, and then its
        // notification id, only after this one; ids and numbers of one alert rise together.
        let mut numbers = std::collections::HashMap::new();
        let firing = super::sequence::firing(payload);
        for fingerprint in super::sequence::fingerprints(payload) {
            let number: i64 = sqlx::query_scalar(super::sequence::NEXT_SEQUENCE_POSTGRES)
                .bind(receiver)
                .bind(&fingerprint)
                .bind(firing.contains(&fingerprint))
                .fetch_one(&mut *tx)
                .await?;
            numbers.insert(fingerprint, number);
        }
        let mut payload = payload.clone();
        super::sequence::stamp(&mut payload, &numbers);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (receiver, group_key, payload, status, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id",
        )
        .bind(receiver)
        .bind(group_key)
        .bind(&payload)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        // The payload names its own outbox id, so receivers can pass it on as an idempotency key.
        sqlx::query("UPDATE notifications SET payload = jsonb_set(payload, '{id}', to_jsonb(id)) WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE alert_events SET dispatched_at = $1 WHERE id = ANY($2)")
            .bind(at)
            .bind(event_ids)
            .execute(&mut *tx)
            .await?;
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
             WHERE status = 'pending' AND next_attempt_at <= $1 \
               AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY receiver",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(receivers)
    }

    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)> {
        let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((count.try_into().unwrap_or(0), oldest))
    }

    async fn release_notification_claims(&self) -> StoreResult<Vec<(i64, String)>> {
        // FOR UPDATE without SKIP LOCKED: a record of the former holder's still committing
        // is waited for, and the row read again after it (delivered, or its claim ended).
        let released: Vec<(i64, String)> = sqlx::query_as(
            "WITH held AS ( \
               SELECT id, claimed_by FROM notifications \
               WHERE status = 'pending' AND claimed_until IS NOT NULL \
               FOR UPDATE) \
             UPDATE notifications n SET claimed_by = NULL, claimed_until = NULL \
             FROM held WHERE n.id = held.id \
             RETURNING n.id, coalesce(held.claimed_by, '')",
        )
        .fetch_all(&self.pool)
        .await?;
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
        let rows = sqlx::query("SELECT * FROM notifications ORDER BY id DESC LIMIT $1")
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
        let mut conn = self.pool.acquire().await?;
        audit::upsert_silence(&mut conn, silence).await
    }

    async fn save_silence(&self, silence: &Silence, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        audit::upsert_silence(&mut tx, silence).await?;
        audit::append(&mut tx, event).await?;
        self.record_alerts_changed(&mut tx, silence.starts_at)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_ack(&self, alert: &Alert, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        audit::upsert_alert(&mut tx, alert).await?;
        audit::append(&mut tx, event).await?;
        self.record_alerts_changed(&mut tx, alert.updated_at)
            .await?;
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
        let row = sqlx::query("SELECT state FROM feed_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("state")).transpose()?)
    }

    async fn put_feed_state(
        &self,
        name: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO feed_state (name, state, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(state)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn notification_from(row: &PgRow) -> StoreResult<OutboxNotification> {
    Ok(OutboxNotification {
        id: row.try_get("id")?,
        receiver: row.try_get("receiver")?,
        group_key: row.try_get("group_key")?,
        payload: row.try_get("payload")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        last_error: row.try_get("last_error")?,
    })
}

/// Decodes a row's `doc` column (JSONB) into `T`.
fn from_doc<T: serde::de::DeserializeOwned>(row: &PgRow, table: &'static str) -> StoreResult<T> {
    let doc: serde_json::Value = row.try_get("doc")?;
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}
