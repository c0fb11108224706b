//! The embedded default: one SQLite file in WAL mode.

mod audit;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::Mutex;

use super::plan::{self, Aggregate, Key, Latest};
use super::{
    AuditEntry, AuditEvent, Backend, Bucket, BucketPoint, IdempotencyClaim, IngestReceipt,
    MigrationState, ObservationQuery, OpTimer, Store, StoreError, StoreResult, TargetChange,
    TargetRow, WriteBatch, WriteOutcome, RECORDED_MIGRATIONS,
};
use crate::alerts::model::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::auth::{Role, TokenRecord};
use crate::domain::{Code, StoredObservation, Target, TargetValue};

/// The schema this build expects, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite allows 32,766 bound parameters per statement; chunks stay well below.
const ROWS_PER_STATEMENT: usize = 1_000;

pub struct SqliteStore {
    pool: SqlitePool,
    zone: Tz,
    /// SQLite has one writer; queueing writers here avoids SQLITE_BUSY on lock upgrades.
    write_lock: Mutex<()>,
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
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
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            zone,
            write_lock: Mutex::new(()),
        })
    }

    async fn replay(
        tx: &mut Transaction<'_, Sqlite>,
        claim: &IdempotencyClaim,
    ) -> StoreResult<Option<IngestReceipt>> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE token_id = ? AND key = ? AND created_at < ?",
        )
        .bind(&claim.token_id)
        .bind(&claim.key)
        .bind(micros(claim.not_before))
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(
            "SELECT request_digest, receipt FROM idempotency_keys WHERE token_id = ? AND key = ?",
        )
        .bind(&claim.token_id)
        .bind(&claim.key)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let digest: Vec<u8> = row.try_get("request_digest")?;
        if digest != claim.request_digest {
            return Err(StoreError::IdempotencyMismatch);
        }
        let receipt: String = row.try_get("receipt")?;
        serde_json::from_str(&receipt)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table: "idempotency_keys",
                detail: e.to_string(),
            })
    }

    async fn latest_of(
        tx: &mut Transaction<'_, Sqlite>,
        batch: &WriteBatch,
    ) -> StoreResult<HashMap<Key, Latest>> {
        let mut seen = HashSet::new();
        let keys: Vec<_> = batch
            .rows
            .iter()
            .filter(|row| seen.insert(plan::key_of(row)))
            .collect();
        let mut latest = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut query: QueryBuilder<Sqlite> =
                QueryBuilder::new("WITH k(indicator, unit, period, period_start) AS (");
            query.push_values(chunk, |mut b, row| {
                b.push_bind(row.indicator.as_str())
                    .push_bind(row.unit.as_str())
                    .push_bind(row.period.to_string())
                    .push_bind(secs(row.period_start));
            });
            query.push(
                ") SELECT o.indicator, o.unit, o.period, o.revision, o.value, o.revision_label, o.source \
                 FROM k JOIN observations o \
                   ON o.indicator = k.indicator AND o.unit = k.unit \
                  AND o.period_start = k.period_start AND o.period = k.period \
                 WHERE o.revision = (SELECT max(m.revision) FROM observations m \
                   WHERE m.indicator = o.indicator AND m.unit = o.unit \
                     AND m.period_start = o.period_start AND m.period = o.period)",
            );
            for row in query.build().fetch_all(&mut **tx).await? {
                let key = (
                    row.try_get("indicator")?,
                    row.try_get("unit")?,
                    row.try_get("period")?,
                );
                latest.insert(
                    key,
                    Latest {
                        revision: row.try_get("revision")?,
                        value: row.try_get("value")?,
                        revision_label: row.try_get("revision_label")?,
                        source: row.try_get("source")?,
                    },
                );
            }
        }
        Ok(latest)
    }
}

fn observation_from(row: &SqliteRow) -> StoreResult<StoredObservation> {
    Ok(StoredObservation {
        indicator: row.try_get("indicator")?,
        unit: row.try_get("unit")?,
        period: row.try_get("period")?,
        period_start: from_secs(row.try_get("period_start")?),
        period_end: from_secs(row.try_get("period_end")?),
        value: row.try_get("value")?,
        revision: row.try_get("revision")?,
        revision_label: row.try_get("revision_label")?,
        source: row.try_get("source")?,
        // Until the v2 schema: a revision was known when it was stored.
        reported_at: from_micros(row.try_get("received_at")?),
        received_at: from_micros(row.try_get("received_at")?),
        recorded_by: row.try_get("recorded_by")?,
        state: crate::domain::ApprovalState::Preliminary,
    })
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

fn target_from(row: &SqliteRow) -> StoreResult<TargetRow> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "targets",
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
    Ok(TargetRow {
        target: Target {
            year: row.try_get("year")?,
            indicator: Code::parse(&indicator).map_err(corrupt)?,
            unit: Code::parse(&unit).map_err(corrupt)?,
            value,
            tolerance: row.try_get("tolerance")?,
            source: row.try_get("source")?,
            illustrative: row.try_get("illustrative")?,
        },
        origin: row.try_get("origin")?,
        updated_at: from_secs(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
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
        let mut conn = self.pool.acquire().await?;
        audit::insert_token(&mut conn, token).await
    }

    async fn create_token(&self, token: &TokenRecord, event: &AuditEvent) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
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
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
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
        let mut conn = self.pool.acquire().await?;
        audit::revoke_token(&mut conn, id, at).await
    }

    async fn write_batch(&self, batch: &WriteBatch) -> StoreResult<WriteOutcome> {
        let _timer = OpTimer::start(self.backend(), "write_batch");
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        if let Some(claim) = &batch.idempotency {
            if let Some(receipt) = Self::replay(&mut tx, claim).await? {
                return Ok(WriteOutcome::Replayed(receipt));
            }
        }
        let latest = Self::latest_of(&mut tx, batch).await?;
        let (planned, duplicates) = plan::plan_revisions(&batch.rows, latest);
        for chunk in planned.chunks(ROWS_PER_STATEMENT) {
            let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO observations (indicator, unit, period, period_start, period_end, revision, \
                 value, revision_label, source, received_at, recorded_by) ",
            );
            query.push_values(chunk, |mut b, planned| {
                let row = &batch.rows[planned.index];
                b.push_bind(row.indicator.as_str())
                    .push_bind(row.unit.as_str())
                    .push_bind(row.period.to_string())
                    .push_bind(secs(row.period_start))
                    .push_bind(secs(row.period_end))
                    .push_bind(planned.revision)
                    .push_bind(row.value)
                    .push_bind(row.revision_label.as_deref())
                    .push_bind(row.source.as_deref())
                    .push_bind(micros(batch.received_at))
                    .push_bind(batch.recorded_by.as_str());
            });
            query.build().execute(&mut *tx).await?;
        }
        let receipt = IngestReceipt {
            accepted: planned.len(),
            duplicates: duplicates.len(),
            rejected: batch.rejected.clone(),
        };
        if let Some(claim) = &batch.idempotency {
            let json = serde_json::to_string(&receipt).map_err(|e| StoreError::Corrupt {
                table: "idempotency_keys",
                detail: e.to_string(),
            })?;
            sqlx::query(
                "INSERT INTO idempotency_keys (token_id, key, request_digest, receipt, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&claim.token_id)
            .bind(&claim.key)
            .bind(&claim.request_digest)
            .bind(json)
            .bind(micros(batch.received_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(WriteOutcome::Written {
            receipt,
            accepted: planned.iter().map(|p| p.index).collect(),
        })
    }

    async fn observations(&self, query: &ObservationQuery) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "observations");
        let rows = sqlx::query(
            "SELECT o.* FROM observations o \
             WHERE o.indicator = ?1 AND o.unit = ?2 \
               AND o.period_start >= ?3 AND o.period_start < ?4 AND o.received_at <= ?5 \
               AND o.revision = (SELECT max(m.revision) FROM observations m \
                   WHERE m.indicator = o.indicator AND m.unit = o.unit \
                     AND m.period_start = o.period_start AND m.period = o.period \
                     AND m.received_at <= ?5) \
               AND o.value IS NOT NULL \
             ORDER BY o.period_start, o.period",
        )
        .bind(&query.indicator)
        .bind(&query.unit)
        .bind(query.from.map_or(i64::MIN, secs))
        .bind(query.to.map_or(i64::MAX, secs))
        .bind(query.as_of.map_or(i64::MAX, micros))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(observation_from).collect()
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
        let rows = sqlx::query(
            "SELECT o.* FROM observations o \
             WHERE o.period_start >= ?1 AND o.period_start < ?2 AND o.received_at <= ?3 \
               AND o.revision = (SELECT max(m.revision) FROM observations m \
                   WHERE m.indicator = o.indicator AND m.unit = o.unit \
                     AND m.period_start = o.period_start AND m.period = o.period \
                     AND m.received_at <= ?3) \
               AND o.value IS NOT NULL \
             ORDER BY o.indicator, o.unit, o.period_start, o.period",
        )
        .bind(secs(from))
        .bind(secs(to))
        .bind(as_of.map_or(i64::MAX, micros))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(observation_from).collect()
    }

    async fn revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        let rows = sqlx::query(
            "SELECT * FROM observations WHERE indicator = ? AND unit = ? AND period = ? ORDER BY revision",
        )
        .bind(indicator)
        .bind(unit)
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(observation_from).collect()
    }

    async fn seed_targets(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let stored = sqlx::query("SELECT * FROM targets")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(target_from)
            .collect::<StoreResult<Vec<_>>>()?;
        if let Some(event) = super::audit::seed_event(&stored, targets, at) {
            audit::append(&mut tx, &event).await?;
        }
        for target in targets {
            let (value, lo, hi) = super::split_value(&target.value);
            sqlx::query(
                "INSERT INTO targets (year, indicator, unit, value, lo, hi, tolerance, source, illustrative, origin, updated_at, updated_by) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'config', ?, 'config') \
                 ON CONFLICT (year, indicator, unit) DO UPDATE SET \
                   value = excluded.value, lo = excluded.lo, hi = excluded.hi, tolerance = excluded.tolerance, \
                   source = excluded.source, illustrative = excluded.illustrative, updated_at = excluded.updated_at \
                 WHERE targets.origin = 'config'",
            )
            .bind(target.year)
            .bind(target.indicator.as_str())
            .bind(target.unit.as_str())
            .bind(value)
            .bind(lo)
            .bind(hi)
            .bind(target.tolerance)
            .bind(target.source.as_deref())
            .bind(target.illustrative)
            .bind(secs(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn targets(&self, year: Option<i32>) -> StoreResult<Vec<TargetRow>> {
        let rows = sqlx::query(
            "SELECT * FROM targets WHERE (?1 IS NULL OR year = ?1) ORDER BY year, indicator, unit",
        )
        .bind(year)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(target_from).collect()
    }

    async fn set_target(&self, change: &TargetChange) -> StoreResult<TargetRow> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let old =
            sqlx::query("SELECT * FROM targets WHERE year = ? AND indicator = ? AND unit = ?")
                .bind(change.year)
                .bind(&change.indicator)
                .bind(&change.unit)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(target_from)
                .transpose()?;
        let (value, lo, hi) = super::split_value(&change.value);
        let row = sqlx::query(
            "INSERT INTO targets (year, indicator, unit, value, lo, hi, tolerance, source, illustrative, origin, updated_at, updated_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0, 'api', ?8, ?9) \
             ON CONFLICT (year, indicator, unit) DO UPDATE SET \
               value = ?4, lo = ?5, hi = ?6, tolerance = coalesce(?7, targets.tolerance), \
               origin = 'api', updated_at = ?8, updated_by = ?9 \
             RETURNING *",
        )
        .bind(change.year)
        .bind(&change.indicator)
        .bind(&change.unit)
        .bind(value)
        .bind(lo)
        .bind(hi)
        .bind(change.tolerance)
        .bind(secs(change.at))
        .bind(&change.actor)
        .fetch_one(&mut *tx)
        .await?;
        let new = target_from(&row)?;
        let event = super::audit::target_set_event(change, old.as_ref(), &new);
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(new)
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
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
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

    async fn dispatch(
        &self,
        receiver: &str,
        group_key: &str,
        payload: &serde_json::Value,
        event_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
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

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        let rows = sqlx::query(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(micros(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((count.try_into().unwrap_or(0), oldest.map(from_micros)))
    }

    async fn record_attempt(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (notification_id, at, ok, error) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(micros(at))
        .bind(error.is_none())
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let status = match (error, retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        sqlx::query(
            "UPDATE notifications SET status = ?2, attempts = attempts + 1, last_error = ?3, \
               next_attempt_at = coalesce(?4, next_attempt_at), \
               delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(retry_at.map(micros))
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notifications(&self, limit: i64) -> StoreResult<Vec<OutboxNotification>> {
        let rows = sqlx::query("SELECT * FROM notifications ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn upsert_silence(&self, silence: &Silence) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        audit::upsert_silence(&mut conn, silence).await
    }

    async fn save_silence(&self, silence: &Silence, event: &AuditEvent) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        audit::upsert_silence(&mut tx, silence).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_ack(&self, alert: &Alert, event: &AuditEvent) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
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
        .execute(&self.pool)
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
