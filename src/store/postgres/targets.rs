//! Versioned targets on PostgreSQL (migration 0006, ARCHITECTURE §8): a change closes the
//! version in force and opens the next at the change's instant.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{audit, commits, PgStore};
use crate::domain::{Code, Target};
use crate::store::{CommitKind, StoreError, StoreResult, TargetChange, TargetRow, TargetVersion};

const COLUMNS: &str = "year, indicator, unit, value, lo, hi, tolerance, source, illustrative, \
                       origin, valid_from, valid_to, set_by, reason";

fn target_of(row: &PgRow) -> StoreResult<Target> {
    crate::store::target_from_row(row)
}

/// A version as the target it made, in force since `valid_from`.
fn row_of(row: &PgRow) -> StoreResult<TargetRow> {
    Ok(TargetRow {
        target: target_of(row)?,
        origin: row.try_get("origin")?,
        updated_at: row.try_get("valid_from")?,
        updated_by: row.try_get("set_by")?,
    })
}

fn version_of(row: &PgRow) -> StoreResult<TargetVersion> {
    Ok(TargetVersion {
        target: target_of(row)?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        origin: row.try_get("origin")?,
        set_by: row.try_get("set_by")?,
        reason: row.try_get("reason")?,
    })
}

/// The versions in force now, locked against a concurrent change when `lock`.
async fn current(conn: &mut PgConnection, lock: bool) -> StoreResult<Vec<TargetRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM target_versions WHERE valid_to IS NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(row_of)
        .collect()
}

/// Closes the version of `target` in force (if any) at `at` and opens `target` from then on.
async fn replace(
    conn: &mut PgConnection,
    target: &Target,
    origin: &str,
    at: DateTime<Utc>,
    set_by: &str,
    reason: Option<&str>,
) -> StoreResult<TargetRow> {
    // A clock that stepped back never makes a version end before it began.
    let closed_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE target_versions SET valid_to = GREATEST($4, valid_from) \
         WHERE year = $1 AND indicator = $2 AND unit = $3 AND valid_to IS NULL \
         RETURNING valid_to",
    )
    .bind(target.year)
    .bind(target.indicator.as_str())
    .bind(target.unit.as_str())
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let from = closed_at.map_or(at, |closed| closed.max(at));
    let (value, lo, hi) = crate::store::split_value(&target.value);
    let row = sqlx::query(&format!(
        "INSERT INTO target_versions ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13) RETURNING {COLUMNS}"
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

impl PgStore {
    pub(super) async fn seed(&self, targets: &[Target], at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // The audit lock first, as in set_target, so the two never wait on each other.
        audit::lock(&mut tx).await?;
        let stored = current(&mut tx, true).await?;
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
    /// whole year and the service only learnt it then (a configuration seeded today is what a
    /// report of last month is judged against); only a later change is not seen before it was
    /// made.
    pub(super) async fn in_force(
        &self,
        year: Option<i32>,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<TargetRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions v \
             WHERE ($1::int4 IS NULL OR year = $1) \
               AND CASE WHEN $2::timestamptz IS NULL THEN valid_to IS NULL \
                        WHEN valid_from <= $2 THEN valid_to IS NULL OR valid_to > $2 \
                        ELSE NOT EXISTS (SELECT 1 FROM target_versions e \
                               WHERE e.year = v.year AND e.indicator = v.indicator \
                                 AND e.unit = v.unit \
                                 AND (e.valid_from < v.valid_from \
                                      OR (e.valid_from = v.valid_from AND e.id < v.id))) END \
             ORDER BY year, indicator, unit"
        ))
        .bind(year)
        .bind(at)
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
            "SELECT {COLUMNS} FROM target_versions WHERE year = $1 AND indicator = $2 AND unit = $3 \
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
            "SELECT {COLUMNS} FROM target_versions WHERE year = $1 \
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
        let mut tx = self.pool.begin().await?;
        audit::lock(&mut tx).await?;
        let old = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM target_versions \
             WHERE year = $1 AND indicator = $2 AND unit = $3 AND valid_to IS NULL FOR UPDATE"
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
        // Other instances take the new version into their engines.
        let group = commits::next_group(&mut tx).await?;
        let subject = format!("{}/{}/{}", change.year, change.indicator, change.unit);
        commits::record(
            &mut tx,
            &self.instance,
            group,
            CommitKind::Target,
            Some(&subject),
            change.at,
        )
        .await?;
        tx.commit().await?;
        Ok(new)
    }
}
