//! PostgreSQL, with observations in a TimescaleDB hypertable when the server has the extension.

mod audit;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::plan::{self, Aggregate, Key, Latest, Planned};
use super::{
    AuditEntry, AuditEvent, Backend, Bucket, BucketPoint, IdempotencyClaim, IngestReceipt,
    MigrationState, ObservationQuery, OpTimer, Store, StoreError, StoreResult, TargetChange,
    TargetRow, WriteBatch, WriteOutcome, RECORDED_MIGRATIONS,
};
use crate::alerts::model::{Alert, AlertEvent, NewAlertEvent, OutboxNotification, Silence};
use crate::auth::{Role, TokenRecord};
use crate::domain::{Code, StoredObservation, Target, TargetValue};

/// Rows are sent to COPY in chunks of about this many bytes.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// Escapes a value for COPY's text format.
fn copy_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

/// The schema this build expects, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Serialises observation writers across every instance sharing the database, so two batches
/// never race for the same next revision number.
const WRITE_LOCK_KEY: i64 = 0x6b74_7868_0001;

pub struct PgStore {
    pool: PgPool,
    zone: Tz,
    timescale: AtomicBool,
}

impl PgStore {
    pub async fn connect(url: &str, zone: Tz, acquire_timeout: Duration) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            zone,
            timescale: AtomicBool::new(false),
        })
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

    async fn replay(
        tx: &mut Transaction<'_, Postgres>,
        claim: &IdempotencyClaim,
    ) -> StoreResult<Option<IngestReceipt>> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND created_at < $3",
        )
        .bind(&claim.token_id)
        .bind(&claim.key)
        .bind(claim.not_before)
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(
            "SELECT request_digest, receipt FROM idempotency_keys WHERE token_id = $1 AND key = $2",
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
        let receipt: serde_json::Value = row.try_get("receipt")?;
        serde_json::from_value(receipt)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table: "idempotency_keys",
                detail: e.to_string(),
            })
    }

    async fn latest_of(
        tx: &mut Transaction<'_, Postgres>,
        batch: &WriteBatch,
        indices: &[usize],
    ) -> StoreResult<HashMap<Key, Latest>> {
        let n = indices.len();
        let (mut indicators, mut units, mut periods, mut starts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for row in indices.iter().map(|&i| &batch.rows[i]) {
            indicators.push(row.indicator.as_str());
            units.push(row.unit.as_str());
            periods.push(row.period.to_string());
            starts.push(row.period_start);
        }
        let rows = sqlx::query(
            "SELECT DISTINCT ON (o.indicator, o.unit, o.period) \
                    o.indicator, o.unit, o.period, o.revision, o.value, o.revision_label, o.source \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS k(indicator, unit, period, period_start) \
             JOIN observations o ON o.indicator = k.indicator AND o.unit = k.unit \
                               AND o.period_start = k.period_start AND o.period = k.period \
             ORDER BY o.indicator, o.unit, o.period, o.revision DESC",
        )
        .bind(&indicators)
        .bind(&units)
        .bind(&periods)
        .bind(&starts)
        .fetch_all(&mut **tx)
        .await?;
        let mut latest = HashMap::with_capacity(rows.len());
        for row in rows {
            latest.insert(
                (
                    row.try_get("indicator")?,
                    row.try_get("unit")?,
                    row.try_get("period")?,
                ),
                Latest {
                    revision: row.try_get("revision")?,
                    value: row.try_get("value")?,
                    revision_label: row.try_get("revision_label")?,
                    source: row.try_get("source")?,
                },
            );
        }
        Ok(latest)
    }

    /// Writes the batch's rows, returning the indexes of the accepted rows and of duplicates.
    ///
    /// Most rows are new periods, so every first occurrence of a key is COPYed as revision 1
    /// inside a savepoint: the unique index then proves that none existed. When one did, the
    /// savepoint is rolled back and the batch takes the general path: look up the latest
    /// revision of each key, plan revisions, insert. Repeats within a batch always take it, and
    /// so does a batch with a retraction, which must not be stored for a period without a value.
    async fn write_rows(
        tx: &mut Transaction<'_, Postgres>,
        batch: &WriteBatch,
    ) -> StoreResult<(Vec<usize>, Vec<usize>)> {
        if batch.rows.iter().any(|row| row.value.is_none()) {
            let all: Vec<usize> = (0..batch.rows.len()).collect();
            let latest = Self::latest_of(tx, batch, &all).await?;
            let (planned, duplicates) = plan::plan_revisions_of(&batch.rows, all, latest);
            Self::insert(tx, batch, &planned).await?;
            return Ok((planned.iter().map(|p| p.index).collect(), duplicates));
        }
        let (firsts, repeats) = plan::first_occurrences(&batch.rows);
        sqlx::query("SAVEPOINT fresh_rows")
            .execute(&mut **tx)
            .await?;
        let fresh: Vec<Planned> = firsts
            .iter()
            .map(|&index| Planned { index, revision: 1 })
            .collect();
        let general: Vec<usize> = match Self::copy(tx, batch, &fresh).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT fresh_rows")
                    .execute(&mut **tx)
                    .await?;
                repeats
            }
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                sqlx::query("ROLLBACK TO SAVEPOINT fresh_rows")
                    .execute(&mut **tx)
                    .await?;
                (0..batch.rows.len()).collect()
            }
            Err(other) => return Err(other),
        };
        let mut accepted: Vec<usize> = if general.len() == batch.rows.len() {
            Vec::new()
        } else {
            firsts
        };
        let mut duplicates = Vec::new();
        if !general.is_empty() {
            let latest = Self::latest_of(tx, batch, &general).await?;
            let (planned, repeated) = plan::plan_revisions_of(&batch.rows, general, latest);
            Self::insert(tx, batch, &planned).await?;
            accepted.extend(planned.iter().map(|p| p.index));
            accepted.sort_unstable();
            duplicates = repeated;
        }
        Ok((accepted, duplicates))
    }

    /// COPYs the planned rows (text format) into the observations table.
    async fn copy(
        conn: &mut sqlx::PgConnection,
        batch: &WriteBatch,
        planned: &[Planned],
    ) -> StoreResult<()> {
        if planned.is_empty() {
            return Ok(());
        }
        let received_at = batch.received_at.to_rfc3339();
        let recorded_by = copy_escape(&batch.recorded_by);
        let mut copy = conn
            .copy_in_raw(
                "COPY observations (indicator, unit, period, period_start, period_end, revision, value, \
                 revision_label, source, received_at, recorded_by) FROM STDIN",
            )
            .await?;
        let mut buffer = String::with_capacity(COPY_CHUNK_BYTES + 512);
        for p in planned {
            let row = &batch.rows[p.index];
            use std::fmt::Write as _;
            let _ = write!(
                buffer,
                "{}\t{}\t{}\t{}\t{}\t{}\t",
                row.indicator,
                row.unit,
                copy_escape(&row.period.to_string()),
                row.period_start.to_rfc3339(),
                row.period_end.to_rfc3339(),
                p.revision,
            );
            // Debug keeps every digit of an f64, so the value round-trips exactly.
            let _ = match row.value {
                Some(value) => write!(buffer, "{value:?}"),
                None => write!(buffer, "\\N"),
            };
            let _ = writeln!(
                buffer,
                "\t{}\t{}\t{}\t{}",
                row.revision_label
                    .as_deref()
                    .map_or("\\N".into(), copy_escape),
                row.source.as_deref().map_or("\\N".into(), copy_escape),
                received_at,
                recorded_by,
            );
            if buffer.len() >= COPY_CHUNK_BYTES {
                copy.send(buffer.as_bytes()).await?;
                buffer.clear();
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer.as_bytes()).await?;
        }
        copy.finish().await?;
        Ok(())
    }

    /// Inserts the planned rows with one UNNEST statement.
    async fn insert(
        tx: &mut Transaction<'_, Postgres>,
        batch: &WriteBatch,
        planned: &[Planned],
    ) -> StoreResult<()> {
        if planned.is_empty() {
            return Ok(());
        }
        let mut columns = InsertColumns::with_capacity(planned.len());
        for p in planned {
            columns.push(&batch.rows[p.index], p.revision);
        }
        sqlx::query(
            "INSERT INTO observations (indicator, unit, period, period_start, period_end, revision, \
                                       value, revision_label, source, received_at, recorded_by) \
             SELECT i, u, p, ps, pe, r, v, l, s, $10, $11 \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], \
                         $6::int4[], $7::float8[], $8::text[], $9::text[]) AS t(i, u, p, ps, pe, r, v, l, s)",
        )
            .bind(&columns.indicators)
            .bind(&columns.units)
            .bind(&columns.periods)
            .bind(&columns.starts)
            .bind(&columns.ends)
            .bind(&columns.revisions)
            .bind(&columns.values)
            .bind(&columns.labels)
            .bind(&columns.sources)
            .bind(batch.received_at)
            .bind(&batch.recorded_by)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn bucket_expression(&self, bucket: Bucket) -> &'static str {
        // $6 is the bucket width, $7 the city's zone.
        if self.timescale.load(Ordering::Relaxed) {
            return "time_bucket($6::interval, period_start, $7::text)";
        }
        match bucket {
            // date_bin has no months; calendar buckets use date_trunc in the zone instead.
            Bucket::Day | Bucket::Week => {
                "(date_bin($6::interval, period_start AT TIME ZONE $7::text, TIMESTAMP '2000-01-03') AT TIME ZONE $7::text)"
            }
            Bucket::Month => "date_trunc('month', period_start, $7::text)",
            Bucket::Quarter => "date_trunc('quarter', period_start, $7::text)",
            Bucket::Year => "date_trunc('year', period_start, $7::text)",
        }
    }
}

fn observation_from(row: &PgRow) -> StoreResult<StoredObservation> {
    Ok(StoredObservation {
        indicator: row.try_get("indicator")?,
        unit: row.try_get("unit")?,
        period: row.try_get("period")?,
        period_start: row.try_get("period_start")?,
        period_end: row.try_get("period_end")?,
        value: row.try_get("value")?,
        revision: row.try_get("revision")?,
        revision_label: row.try_get("revision_label")?,
        source: row.try_get("source")?,
        // Until the v2 schema: a revision was known when it was stored.
        reported_at: row.try_get("received_at")?,
        received_at: row.try_get("received_at")?,
        recorded_by: row.try_get("recorded_by")?,
        state: crate::domain::ApprovalState::Preliminary,
    })
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

fn target_from(row: &PgRow) -> StoreResult<TargetRow> {
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
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
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
        let _timer = OpTimer::start(self.backend(), "write_batch");
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        if let Some(claim) = &batch.idempotency {
            if let Some(receipt) = Self::replay(&mut tx, claim).await? {
                return Ok(WriteOutcome::Replayed(receipt));
            }
        }
        let (accepted, duplicates) = Self::write_rows(&mut tx, batch).await?;
        let receipt = IngestReceipt {
            accepted: accepted.len(),
            duplicates: duplicates.len(),
            rejected: batch.rejected.clone(),
        };
        if let Some(claim) = &batch.idempotency {
            let json = serde_json::to_value(&receipt).map_err(|e| StoreError::Corrupt {
                table: "idempotency_keys",
                detail: e.to_string(),
            })?;
            sqlx::query(
                "INSERT INTO idempotency_keys (token_id, key, request_digest, receipt, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&claim.token_id)
            .bind(&claim.key)
            .bind(&claim.request_digest)
            .bind(json)
            .bind(batch.received_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(WriteOutcome::Written { receipt, accepted })
    }

    async fn observations(&self, query: &ObservationQuery) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "observations");
        let rows = sqlx::query(
            "SELECT * FROM ( \
                SELECT DISTINCT ON (period_start, period) * FROM observations \
                WHERE indicator = $1 AND unit = $2 \
                  AND ($3::timestamptz IS NULL OR period_start >= $3) \
                  AND ($4::timestamptz IS NULL OR period_start < $4) \
                  AND ($5::timestamptz IS NULL OR received_at <= $5) \
                ORDER BY period_start, period, revision DESC) latest \
             WHERE value IS NOT NULL ORDER BY period_start, period",
        )
        .bind(&query.indicator)
        .bind(&query.unit)
        .bind(query.from)
        .bind(query.to)
        .bind(query.as_of)
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
        let _timer = OpTimer::start(self.backend(), "bucketed");
        let value = match aggregate {
            Aggregate::Sum => "sum(value)",
            Aggregate::Mean => "avg(value)",
            Aggregate::Last => "(array_agg(value ORDER BY period_end DESC))[1]",
        };
        let sql = format!(
            "WITH latest AS ( \
                SELECT DISTINCT ON (period_start, period) period_start, period_end, value FROM observations \
                WHERE indicator = $1 AND unit = $2 \
                  AND ($3::timestamptz IS NULL OR period_start >= $3) \
                  AND ($4::timestamptz IS NULL OR period_start < $4) \
                  AND ($5::timestamptz IS NULL OR received_at <= $5) \
                ORDER BY period_start, period, revision DESC) \
             SELECT {bucket} AS start, {value}::float8 AS value, count(*) AS count \
             FROM latest WHERE value IS NOT NULL GROUP BY 1 ORDER BY 1",
            bucket = self.bucket_expression(bucket),
        );
        let rows = sqlx::query(&sql)
            .bind(&query.indicator)
            .bind(&query.unit)
            .bind(query.from)
            .bind(query.to)
            .bind(query.as_of)
            .bind(bucket.interval())
            .bind(self.zone.name())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(BucketPoint {
                    start: row.try_get("start")?,
                    value: row.try_get("value")?,
                    count: row.try_get("count")?,
                })
            })
            .collect()
    }

    async fn latest_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let _timer = OpTimer::start(self.backend(), "latest_between");
        let rows = sqlx::query(
            "SELECT * FROM ( \
                SELECT DISTINCT ON (indicator, unit, period_start, period) * FROM observations \
                WHERE period_start >= $1 AND period_start < $2 \
                  AND ($3::timestamptz IS NULL OR received_at <= $3) \
                ORDER BY indicator, unit, period_start, period, revision DESC) latest \
             WHERE value IS NOT NULL ORDER BY indicator, unit, period_start, period",
        )
        .bind(from)
        .bind(to)
        .bind(as_of)
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
            "SELECT * FROM observations WHERE indicator = $1 AND unit = $2 AND period = $3 ORDER BY revision",
        )
        .bind(indicator)
        .bind(unit)
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(observation_from).collect()
    }

    async fn seed_targets(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The audit lock first, as in set_target, so the two never wait on each other.
        audit::lock(&mut tx).await?;
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'config', $10, 'config') \
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
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn targets(&self, year: Option<i32>) -> StoreResult<Vec<TargetRow>> {
        let rows = sqlx::query(
            "SELECT * FROM targets WHERE ($1::int4 IS NULL OR year = $1) ORDER BY year, indicator, unit",
        )
        .bind(year)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(target_from).collect()
    }

    async fn set_target(&self, change: &TargetChange) -> StoreResult<TargetRow> {
        let mut tx = self.pool.begin().await?;
        audit::lock(&mut tx).await?;
        let old = sqlx::query(
            "SELECT * FROM targets WHERE year = $1 AND indicator = $2 AND unit = $3 FOR UPDATE",
        )
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, FALSE, 'api', $8, $9) \
             ON CONFLICT (year, indicator, unit) DO UPDATE SET \
               value = $4, lo = $5, hi = $6, tolerance = coalesce($7, targets.tolerance), \
               origin = 'api', updated_at = $8, updated_by = $9 \
             RETURNING *",
        )
        .bind(change.year)
        .bind(&change.indicator)
        .bind(&change.unit)
        .bind(value)
        .bind(lo)
        .bind(hi)
        .bind(change.tolerance)
        .bind(change.at)
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

    async fn dispatch(
        &self,
        receiver: &str,
        group_key: &str,
        payload: &serde_json::Value,
        event_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (receiver, group_key, payload, status, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id",
        )
        .bind(receiver)
        .bind(group_key)
        .bind(payload)
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

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxNotification>> {
        let rows = sqlx::query(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn notification_backlog(&self) -> StoreResult<(u64, Option<DateTime<Utc>>)> {
        let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((count.try_into().unwrap_or(0), oldest))
    }

    async fn record_attempt(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO delivery_attempts (notification_id, at, ok, error) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(at)
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
            "UPDATE notifications SET status = $2, attempts = attempts + 1, last_error = $3, \
               next_attempt_at = coalesce($4, next_attempt_at), \
               delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notifications(&self, limit: i64) -> StoreResult<Vec<OutboxNotification>> {
        let rows = sqlx::query("SELECT * FROM notifications ORDER BY id DESC LIMIT $1")
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
        let mut tx = self.pool.begin().await?;
        audit::upsert_silence(&mut tx, silence).await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_ack(&self, alert: &Alert, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
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

/// Column arrays for one UNNEST insert.
struct InsertColumns<'a> {
    indicators: Vec<&'a str>,
    units: Vec<&'a str>,
    periods: Vec<String>,
    starts: Vec<DateTime<Utc>>,
    ends: Vec<DateTime<Utc>>,
    revisions: Vec<i32>,
    values: Vec<Option<f64>>,
    labels: Vec<Option<&'a str>>,
    sources: Vec<Option<&'a str>>,
}

impl<'a> InsertColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            indicators: Vec::with_capacity(n),
            units: Vec::with_capacity(n),
            periods: Vec::with_capacity(n),
            starts: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            revisions: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            labels: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, row: &'a crate::domain::NewObservation, revision: i32) {
        self.indicators.push(row.indicator.as_str());
        self.units.push(row.unit.as_str());
        self.periods.push(row.period.to_string());
        self.starts.push(row.period_start);
        self.ends.push(row.period_end);
        self.revisions.push(revision);
        self.values.push(row.value);
        self.labels.push(row.revision_label.as_deref());
        self.sources.push(row.source.as_deref());
    }
}

/// Decodes a row's `doc` column (JSONB) into `T`.
fn from_doc<T: serde::de::DeserializeOwned>(row: &PgRow, table: &'static str) -> StoreResult<T> {
    let doc: serde_json::Value = row.try_get("doc")?;
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}
