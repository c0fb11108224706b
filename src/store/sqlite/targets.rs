//! Versioned targets on SQLite (migration 0006, ARCHITECTURE §8): a change closes the version in
//! force and opens the next at the change's instant. Writes run on the store's write connection
//! inside `BEGIN IMMEDIATE`, so the version in force cannot change between reading and closing it.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{audit, from_micros, micros, SqliteStore};
use crate::domain::{Code, Target};
use crate::store::{StoreError, StoreResult, TargetChange, TargetRow, TargetVersion};

const COLUMNS: &str = "year, indicator, unit, value, lo, hi, tolerance, source, illustrative, \
                       origin, valid_from, valid_to, set_by, reason";

fn target_of(row: &SqliteRow) -> StoreResult<Target> {
    crate::store::target_from_row(row)
}

/// A version as the target it made, in force since `valid_from`.
fn row_of(row: &SqliteRow) -> StoreResult<TargetRow> {
    Ok(TargetRow {
        target: target_of(row)?,
        origin: row.try_get("origin")?,
        updated_at: from_micros(row.try_get("valid_from")?),
        updated_by: row.try_get("set_by")?,
    })
}

fn version_of(row: &SqliteRow) -> StoreResult<TargetVersion> {
    Ok(TargetVersion {
        target: target_of(row)?,
        valid_from: from_micros(row.try_get("valid_from")?),
        valid_to: row.try_get::<Option<i64>, _>("valid_to")?.map(from_micros),
        origin: row.try_get("origin")?,
        set_by: row.try_get("set_by")?,
        reason: row.try_get("reason")?,
    })
}

/// Closes the version of `target` in force (if any) at `at` and opens `target` from then on.
async fn replace(
    conn: &mut SqliteConnection,
    target: &Target,
    origin: &str,
    at: DateTime<Utc>,
    set_by: &str,
    reason: Option<&str>,
) -> StoreResult<TargetRow> {
    // A clock that stepped back never makes a version end before it began.
    let closed_at: Option<i64> = sqlx::query_scalar(
        "UPDATE target_versions SET valid_to = max(?4, valid_from) \
         WHERE year = ?1 AND indicator = ?2 AND unit = ?3 AND valid_to IS NULL \
         RETURNING valid_to",
    )
    .bind(target.year)
    .bind(target.indicator.as_str())
    .bind(target.unit.as_str())
    .bind(micros(at))
    .fetch_optional(&mut *conn)
    .await?;
    let from = closed_at.map_or(micros(at), |closed| closed.max(micros(at)));
    let (value, lo, hi) = crate::store::split_value(&target.value);
    let row = sqlx::query(&format!(
        "INSERT INTO target_versions ({COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) RETURNING {COLUMNS}"
    ))
    .bind(target.year)
    .bind(target.indicator.as_str())
    .bind(target.unit.as_str())
    .bind(value)
    .bind(lo)
    .bind(hi)
    .bind(target.tolerance)
    .bind(target.source.as_deref())
    .bind(target.illustrative)
    .bind(origin)
    .bind(from)
    .bind(set_by)
    .bind(reason)
    .fetch_one(&mut *conn)
    .await?;
    row_of(&row)
}

impl SqliteStore {
    pub(super) async fn seed(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let stored = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions WHERE valid_to IS NULL"
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(row_of)
        .collect::<StoreResult<Vec<_>>>()?;
        let Some(event) = crate::store::audit::seed_event(&stored, targets, at) else {
            return Ok(());
        };
        for target in targets {
            let existing = stored.iter().find(|row| {
                row.target.year == target.year
                    && row.target.indicator == target.indicator
                    && row.target.unit == target.unit
            });
            // What the API set wins over config; an unchanged target opens no version.
            if existing.is_some_and(|row| row.origin == "api" || row.target == *target) {
                continue;
            }
            replace(
                &mut tx,
                target,
                "config",
                at,
                "config",
                Some("config/targets"),
            )
            .await?;
        }
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The versions in force at `at`, or now (the open ones) without it. A target's first
    /// version also answers for any instant before it was recorded: a year's plan holds for the
    /// whole year, the service only learnt it then (a configuration seeded today is what a
    /// report of last month is judged against); only a later change is not seen before it was
    /// made.
    pub(super) async fn in_force(
        &self,
        year: Option<i32>,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<TargetRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions v \
             WHERE (?1 IS NULL OR year = ?1) \
               AND CASE WHEN ?2 IS NULL THEN valid_to IS NULL \
                        WHEN valid_from <= ?2 THEN valid_to IS NULL OR valid_to > ?2 \
                        ELSE NOT EXISTS (SELECT 1 FROM target_versions e \
                               WHERE e.year = v.year AND e.indicator = v.indicator \
                                 AND e.unit = v.unit \
                                 AND (e.valid_from < v.valid_from \
                                      OR (e.valid_from = v.valid_from AND e.id < v.id))) END \
             ORDER BY year, indicator, unit"
        ))
        .bind(year)
        .bind(at.map(micros))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_of).collect()
    }

    pub(super) async fn history(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<TargetVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions WHERE year = ? AND indicator = ? AND unit = ? \
             ORDER BY valid_from, id"
        ))
        .bind(year)
        .bind(indicator)
        .bind(unit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }

    pub(super) async fn versions_of_year(&self, year: i32) -> StoreResult<Vec<TargetVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions WHERE year = ? \
             ORDER BY indicator, unit, valid_from, id"
        ))
        .bind(year)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }

    pub(super) async fn change_target(&self, change: &TargetChange) -> StoreResult<TargetRow> {
        let corrupt = |detail: String| StoreError::Corrupt {
            table: "target_versions",
            detail,
        };
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let old = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions \
             WHERE year = ? AND indicator = ? AND unit = ? AND valid_to IS NULL"
        ))
        .bind(change.year)
        .bind(&change.indicator)
        .bind(&change.unit)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(row_of)
        .transpose()?;
        let (source, illustrative) = change.provenance(old.as_ref().map(|row| &row.target));
        let target = Target {
            year: change.year,
            indicator: Code::parse(&change.indicator).map_err(corrupt)?,
            unit: Code::parse(&change.unit).map_err(corrupt)?,
            value: change.value,
            tolerance: change
                .tolerance
                .or_else(|| old.as_ref().and_then(|row| row.target.tolerance)),
            source,
            illustrative,
        };
        let new = replace(
            &mut tx,
            &target,
            "api",
            change.at,
            &change.actor,
            Some(&change.reason),
        )
        .await?;
        let event = crate::store::audit::target_set_event(change, old.as_ref(), &new);
        audit::append(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(new)
    }
}
