//! Reads of the narrow observations (migration 0005). The API names a series by indicator and
//! unit and a period by its text: both are mapped to what is stored (a series id, the period's
//! bounds in the city's zone) and back. `as_of` goes by `reported_at` (ARCHITECTURE §8).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::PgStore;
use crate::domain::{ApprovalState, Period, StoredObservation};
use crate::store::plan::Aggregate;
use crate::store::{Bucket, BucketPoint, ObservationQuery, StoreError, StoreResult};

/// The named columns of a stored revision, from `o` (observations) joined to its recorder and
/// source, with when it was verified and made official (migration 0011): looked up only for a
/// revision whose state says it was, so preliminary rows cost nothing more.
pub(super) const NAMED: &str =
    "o.period_start, o.period_end, o.revision, o.value, o.label, o.reported_at, \
                     o.received_at, o.state, rec.name AS recorded_by, src.name AS source, \
     CASE WHEN o.state >= 1 THEN (SELECT a.approved_at FROM approvals a \
         WHERE a.series_id = o.series_id AND a.period_start = o.period_start \
           AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 1) \
     END AS verified_at, \
     CASE WHEN o.state = 2 THEN (SELECT a.approved_at FROM approvals a \
         WHERE a.series_id = o.series_id AND a.period_start = o.period_start \
           AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 2) \
     END AS official_at";
pub(super) const NAMES: &str =
    "JOIN recorders rec ON rec.id = o.recorder_id LEFT JOIN sources src ON src.id = o.source_id";

/// The latest revision known at `$4` of each period of series `$1` starting in `[$2, $3)`.
const LATEST_OF_SERIES: &str = "SELECT DISTINCT ON (period_start, period_end) * FROM observations \
     WHERE series_id = $1 \
       AND ($2::timestamptz IS NULL OR period_start >= $2) \
       AND ($3::timestamptz IS NULL OR period_start < $3) \
       AND ($4::timestamptz IS NULL OR reported_at <= $4) \
     ORDER BY period_start, period_end, revision DESC";

/// The connection a read of observations runs on: one that sees each commit whole.
///
/// On TimescaleDB a statement under READ COMMITTED picks the hypertable's chunks when it is
/// planned and takes the snapshot it reads with afterwards. A write group that creates a chunk
/// and commits in between is then read without that chunk's rows, though with the rest of the
/// group: half a batch, for one read. A REPEATABLE READ transaction takes its snapshot before
/// the plan, so the plan knows every chunk that snapshot can see (ARCHITECTURE §7). A plain
/// table has no chunks to miss, and there a lone statement is read as it is.
pub(super) enum Reader {
    Pooled(PoolConnection<Postgres>),
    Snapshot(Transaction<'static, Postgres>),
}

impl Reader {
    /// Ends the read; its transaction, if any, has written nothing.
    pub(super) async fn done(self) -> StoreResult<()> {
        if let Self::Snapshot(tx) = self {
            tx.commit().await?;
        }
        Ok(())
    }
}

impl Deref for Reader {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Snapshot(tx) => tx,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Snapshot(tx) => tx,
        }
    }
}

impl PgStore {
    /// A connection for reading observations (see [`Reader`]).
    pub(super) async fn reader(&self) -> StoreResult<Reader> {
        if self.timescale.load(Ordering::Relaxed) {
            let tx = self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            return Ok(Reader::Snapshot(tx));
        }
        Ok(Reader::Pooled(self.pool.acquire().await?))
    }

    /// The id of a series, `None` when nothing was ever stored for it.
    async fn series_id(&self, indicator: &str, unit: &str) -> StoreResult<Option<i32>> {
        let key = (indicator.to_owned(), unit.to_owned());
        if let Some(&id) = self
            .ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .series
            .get(&key)
        {
            return Ok(Some(id));
        }
        let id: Option<i32> =
            sqlx::query_scalar("SELECT id FROM series WHERE indicator = $1 AND unit = $2")
                .bind(indicator)
                .bind(unit)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(id) = id {
            self.ids
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .series
                .insert(key, id);
        }
        Ok(id)
    }

    pub(super) fn observation_from(
        &self,
        row: &PgRow,
        indicator: String,
        unit: String,
    ) -> StoreResult<StoredObservation> {
        let period_start: DateTime<Utc> = row.try_get("period_start")?;
        let period_end: DateTime<Utc> = row.try_get("period_end")?;
        let period = Period::from_bounds(period_start, period_end, self.zone).ok_or_else(|| {
            StoreError::Corrupt {
                table: "observations",
                detail: format!(
                    "{indicator}/{unit}: [{period_start}, {period_end}) is no period in {}",
                    self.zone
                ),
            }
        })?;
        let state: i16 = row.try_get("state")?;
        Ok(StoredObservation {
            indicator,
            unit,
            period: period.to_string(),
            period_start,
            period_end,
            value: row.try_get("value")?,
            revision: row.try_get("revision")?,
            revision_label: row.try_get("label")?,
            source: row.try_get("source")?,
            reported_at: row.try_get("reported_at")?,
            received_at: row.try_get("received_at")?,
            recorded_by: row.try_get("recorded_by")?,
            state: ApprovalState::from_i16(state).ok_or_else(|| StoreError::Corrupt {
                table: "observations",
                detail: format!("approval state {state}"),
            })?,
            verified_at: row.try_get("verified_at")?,
            official_at: row.try_get("official_at")?,
        })
    }

    pub(super) async fn latest_of_series(
        &self,
        query: &ObservationQuery,
    ) -> StoreResult<Vec<StoredObservation>> {
        let Some(series) = self.series_id(&query.indicator, &query.unit).await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {NAMED} FROM ({LATEST_OF_SERIES}) o {NAMES} \
             WHERE o.value IS NOT NULL ORDER BY o.period_start, o.period_end"
        );
        let mut reader = self.reader().await?;
        let rows = sqlx::query(&sql)
            .bind(series)
            .bind(query.from)
            .bind(query.to)
            .bind(query.as_of)
            .fetch_all(&mut *reader)
            .await?;
        reader.done().await?;
        rows.iter()
            .map(|row| self.observation_from(row, query.indicator.clone(), query.unit.clone()))
            .collect()
    }

    fn bucket_expression(&self, bucket: Bucket) -> &'static str {
        // $5 is the bucket width, $6 the city's zone.
        if self.timescale.load(Ordering::Relaxed) {
            return "time_bucket($5::interval, period_start, $6::text)";
        }
        match bucket {
            // date_bin has no months; calendar buckets use date_trunc in the zone instead.
            Bucket::Day | Bucket::Week => {
                "(date_bin($5::interval, period_start AT TIME ZONE $6::text, TIMESTAMP '2000-01-03') AT TIME ZONE $6::text)"
            }
            Bucket::Month => "date_trunc('month', period_start, $6::text)",
            Bucket::Quarter => "date_trunc('quarter', period_start, $6::text)",
            Bucket::Year => "date_trunc('year', period_start, $6::text)",
        }
    }

    pub(super) async fn buckets(
        &self,
        query: &ObservationQuery,
        bucket: Bucket,
        aggregate: Aggregate,
    ) -> StoreResult<Vec<BucketPoint>> {
        let Some(series) = self.series_id(&query.indicator, &query.unit).await? else {
            return Ok(Vec::new());
        };
        let value = match aggregate {
            Aggregate::Sum => "sum(value)",
            Aggregate::Mean => "avg(value)",
            Aggregate::Last => "(array_agg(value ORDER BY period_end DESC))[1]",
        };
        let sql = format!(
            "WITH latest AS ({LATEST_OF_SERIES}) \
             SELECT {bucket} AS start, {value}::float8 AS value, count(*) AS count \
             FROM latest WHERE value IS NOT NULL GROUP BY 1 ORDER BY 1",
            bucket = self.bucket_expression(bucket),
        );
        let mut reader = self.reader().await?;
        let rows = sqlx::query(&sql)
            .bind(series)
            .bind(query.from)
            .bind(query.to)
            .bind(query.as_of)
            .bind(bucket.interval())
            .bind(self.zone.name())
            .fetch_all(&mut *reader)
            .await?;
        reader.done().await?;
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

    pub(super) async fn latest_of_all(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT s.indicator, s.unit, {NAMED} FROM ( \
                SELECT DISTINCT ON (series_id, period_start, period_end) * FROM observations \
                WHERE period_start >= $1 AND period_start < $2 \
                  AND ($3::timestamptz IS NULL OR reported_at <= $3) \
                ORDER BY series_id, period_start, period_end, revision DESC) o \
             JOIN series s ON s.id = o.series_id {NAMES} \
             WHERE o.value IS NOT NULL ORDER BY s.indicator, s.unit, o.period_start, o.period_end"
        );
        let mut reader = self.reader().await?;
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(as_of)
            .fetch_all(&mut *reader)
            .await?;
        reader.done().await?;
        rows.iter()
            .map(|row| self.observation_from(row, row.try_get("indicator")?, row.try_get("unit")?))
            .collect()
    }

    pub(super) async fn known_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT s.indicator, s.unit, {NAMED} FROM observations o \
             JOIN series s ON s.id = o.series_id {NAMES} \
             WHERE o.period_start >= $1 AND o.period_start < $2 AND o.reported_at <= $3 \
               AND ($4::text[] IS NULL OR s.indicator = ANY($4)) \
             ORDER BY o.reported_at, s.indicator, s.unit, o.period_start, o.period_end, o.revision"
        );
        let mut reader = self.reader().await?;
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(known_by)
            .bind(indicators)
            .fetch_all(&mut *reader)
            .await?;
        reader.done().await?;
        rows.iter()
            .map(|row| self.observation_from(row, row.try_get("indicator")?, row.try_get("unit")?))
            .collect()
    }

    pub(super) async fn revisions_of(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        // A text that is no period names nothing stored.
        let Ok(parsed) = period.parse::<Period>() else {
            return Ok(Vec::new());
        };
        let Some(series) = self.series_id(indicator, unit).await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {NAMED} FROM observations o {NAMES} \
             WHERE o.series_id = $1 AND o.period_start = $2 AND o.period_end = $3 \
             ORDER BY o.revision"
        );
        let mut reader = self.reader().await?;
        let rows = sqlx::query(&sql)
            .bind(series)
            .bind(parsed.start(self.zone))
            .bind(parsed.end(self.zone))
            .fetch_all(&mut *reader)
            .await?;
        reader.done().await?;
        rows.iter()
            .map(|row| self.observation_from(row, indicator.to_owned(), unit.to_owned()))
            .collect()
    }
}
