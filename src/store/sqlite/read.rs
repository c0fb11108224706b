//! Reads of the narrow observations (migration 0005). The API names a series by indicator and
//! unit and a period by its text: both are mapped to what is stored (a series id, the period's
//! bounds in the city's zone) and back. `as_of` goes by `reported_at` (ARCHITECTURE §8).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{from_micros, micros, SqliteStore};
use crate::domain::{ApprovalState, Period, StoredObservation};
use crate::store::{ObservationQuery, StoreError, StoreResult};

/// The latest revision known at `?4` of each period starting in `[?2, ?3)`, of the series
/// chosen by `{where}`. SQLite takes the other columns of an aggregate query with one max()
/// from the row that holds the maximum, so each group answers with its latest revision whole;
/// the key's order serves the grouping without a sort.
const LATEST: &str =
    "SELECT o.series_id, o.period_start, o.period_end, max(o.revision) AS revision, \
            o.value, o.label, o.reported_at, o.received_at, o.state, o.recorder_id, o.source_id \
     FROM observations o \
     WHERE {where} AND o.period_start >= ?2 AND o.period_start < ?3 AND o.reported_at <= ?4 \
     GROUP BY o.series_id, o.period_start, o.period_end";

/// Names for the ids of the revisions in `o`.
pub(super) const NAMES: &str = "JOIN series s ON s.id = o.series_id \
     JOIN recorders rec ON rec.id = o.recorder_id \
     LEFT JOIN sources src ON src.id = o.source_id";

/// With when the revision was verified and made official (migration 0011): looked up only for a
/// revision whose state says it was, so preliminary rows cost nothing more.
pub(super) const NAMED: &str =
    "o.period_start, o.period_end, o.revision, o.value, o.label, o.reported_at, \
     o.received_at, o.state, s.indicator, s.unit, rec.name AS recorded_by, src.name AS source, \
     CASE WHEN o.state >= 1 THEN (SELECT a.approved_at FROM approvals a \
         WHERE a.series_id = o.series_id AND a.period_start = o.period_start \
           AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 1) \
     END AS verified_at, \
     CASE WHEN o.state = 2 THEN (SELECT a.approved_at FROM approvals a \
         WHERE a.series_id = o.series_id AND a.period_start = o.period_start \
           AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 2) \
     END AS official_at";

impl SqliteStore {
    /// The id of a series, `None` when nothing was ever stored for it.
    async fn series_id(&self, indicator: &str, unit: &str) -> StoreResult<Option<i64>> {
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
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM series WHERE indicator = ? AND unit = ?")
                .bind(indicator)
                .bind(unit)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(id) = id {
            // Ids never change once committed, and a read only sees committed ones.
            self.ids
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .series
                .insert(key, id);
        }
        Ok(id)
    }

    pub(super) fn observation_from(&self, row: &SqliteRow) -> StoreResult<StoredObservation> {
        let indicator: String = row.try_get("indicator")?;
        let unit: String = row.try_get("unit")?;
        let period_start = from_micros(row.try_get("period_start")?);
        let period_end = from_micros(row.try_get("period_end")?);
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
            reported_at: from_micros(row.try_get("reported_at")?),
            received_at: from_micros(row.try_get("received_at")?),
            recorded_by: row.try_get("recorded_by")?,
            state: ApprovalState::from_i16(state).ok_or_else(|| StoreError::Corrupt {
                table: "observations",
                detail: format!("approval state {state}"),
            })?,
            verified_at: row
                .try_get::<Option<i64>, _>("verified_at")?
                .map(from_micros),
            official_at: row
                .try_get::<Option<i64>, _>("official_at")?
                .map(from_micros),
        })
    }

    pub(super) async fn latest_of_series(
        &self,
        query: &ObservationQuery,
    ) -> StoreResult<Vec<StoredObservation>> {
        let Some(series) = self.series_id(&query.indicator, &query.unit).await? else {
            return Ok(Vec::new());
        };
        let latest = LATEST.replace("{where}", "o.series_id = ?1");
        let sql = format!(
            "SELECT {NAMED} FROM ({latest}) o {NAMES} \
             WHERE o.value IS NOT NULL ORDER BY o.period_start, o.period_end"
        );
        let rows = sqlx::query(&sql)
            .bind(series)
            .bind(query.from.map_or(i64::MIN, micros))
            .bind(query.to.map_or(i64::MAX, micros))
            .bind(query.as_of.map_or(i64::MAX, micros))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| self.observation_from(row)).collect()
    }

    pub(super) async fn latest_of_all(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        // `?1` is bound but names no series: every series counts.
        let latest = LATEST.replace("{where}", "?1 IS NULL");
        let sql = format!(
            "SELECT {NAMED} FROM ({latest}) o {NAMES} \
             WHERE o.value IS NOT NULL \
             ORDER BY s.indicator, s.unit, o.period_start, o.period_end"
        );
        let rows = sqlx::query(&sql)
            .bind(None::<i64>)
            .bind(micros(from))
            .bind(micros(to))
            .bind(as_of.map_or(i64::MAX, micros))
            .fetch(&self.pool);
        self.observations_of(rows).await
    }

    /// The observations of a long answer (every series, a whole history), each read as its row
    /// arrives: holding every row first would take several times the memory of the answer at
    /// its peak, which the allocator then keeps.
    async fn observations_of(
        &self,
        mut rows: futures::stream::BoxStream<'_, Result<SqliteRow, sqlx::Error>>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let mut read = Vec::new();
        while let Some(row) = rows.try_next().await? {
            read.push(self.observation_from(&row)?);
        }
        Ok(read)
    }

    pub(super) async fn known_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT {NAMED} FROM observations o {NAMES} \
             WHERE o.period_start >= ?1 AND o.period_start < ?2 AND o.reported_at <= ?3 \
               AND (?4 IS NULL OR s.indicator IN (SELECT value FROM json_each(?4))) \
             ORDER BY o.reported_at, s.indicator, s.unit, o.period_start, o.period_end, o.revision"
        );
        let rows = sqlx::query(&sql)
            .bind(micros(from))
            .bind(micros(to))
            .bind(micros(known_by))
            .bind(indicators.map(|list| serde_json::json!(list).to_string()))
            .fetch(&self.pool);
        self.observations_of(rows).await
    }

    /// Every revision of one period, oldest first; none for a period text that names no period.
    pub(super) async fn all_revisions(
        &self,
        indicator: &str,
        unit: &str,
        period: &str,
    ) -> StoreResult<Vec<StoredObservation>> {
        let Ok(period) = period.parse::<Period>() else {
            return Ok(Vec::new());
        };
        let Some(series) = self.series_id(indicator, unit).await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {NAMED} FROM observations o {NAMES} \
             WHERE o.series_id = ? AND o.period_start = ? AND o.period_end = ? \
             ORDER BY o.revision"
        );
        let rows = sqlx::query(&sql)
            .bind(series)
            .bind(micros(period.start(self.zone)))
            .bind(micros(period.end(self.zone)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| self.observation_from(row)).collect()
    }
}
