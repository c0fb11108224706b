//! Department activity on SQLite (migration 0012, [`crate::store::activity`]): filed in the
//! write group's transaction, multi-row statements for the pushes, refused rows and counts, and
//! a prune per department filed under that reads only the newest end of its index.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{from_micros, micros, SqliteStore, ROWS_PER_STATEMENT};
use crate::store::activity::{
    minute_of, ActivityCount, DepartmentActivity, Filed, PushRecord, ReasonCount, RejectionRecord,
};
use crate::store::StoreResult;

/// Writes what `filed` holds, then prunes the departments it filed under.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    filed: &Filed<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if filed.is_empty() {
        return Ok(());
    }
    for chunk in filed.pushes.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO ingest_pushes (department, at, format, sender, feed, accepted, \
             duplicates, rejected) ",
        );
        query.push_values(chunk, |mut b, p| {
            b.push_bind(p.department)
                .push_bind(micros(p.at))
                .push_bind(p.note.format.as_str())
                .push_bind(p.note.by.as_str())
                .push_bind(p.note.feed.as_str())
                .push_bind(p.accepted as i64)
                .push_bind(p.duplicates as i64)
                .push_bind(p.rejected as i64);
        });
        query.build().execute(&mut *conn).await?;
    }
    for chunk in filed.refusals.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO ingest_refusals (department, at, format, sender, feed, row_index, code, \
             message, field, value, indicator) ",
        );
        query.push_values(chunk, |mut b, r| {
            b.push_bind(r.department)
                .push_bind(micros(r.at))
                .push_bind(r.note.format.as_str())
                .push_bind(r.note.by.as_str())
                .push_bind(r.note.feed.as_str())
                .push_bind(r.index as i64)
                .push_bind(r.code)
                .push_bind(r.message.as_str())
                .push_bind(r.refused.and_then(|n| n.field.as_deref()))
                .push_bind(r.refused.and_then(|n| n.value.as_deref()))
                .push_bind(r.refused.and_then(|n| n.indicator.as_deref()));
        });
        query.build().execute(&mut *conn).await?;
    }
    let counts: Vec<_> = filed.counts.iter().collect();
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO ingest_counts (department, feed, minute, pushes, accepted, duplicates, \
             rejected) ",
        );
        query.push_values(chunk, |mut b, ((department, feed, minute), c)| {
            b.push_bind(*department)
                .push_bind(*feed)
                .push_bind(*minute)
                .push_bind(c[0])
                .push_bind(c[1])
                .push_bind(c[2])
                .push_bind(c[3]);
        });
        query.push(
            " ON CONFLICT (department, feed, minute) DO UPDATE SET \
               pushes = pushes + excluded.pushes, accepted = accepted + excluded.accepted, \
               duplicates = duplicates + excluded.duplicates, \
               rejected = rejected + excluded.rejected",
        );
        query.build().execute(&mut *conn).await?;
    }
    for (department, (limits, refused)) in &filed.departments {
        sqlx::query(
            "DELETE FROM ingest_pushes WHERE department = ?1 AND id <= \
               (SELECT id FROM ingest_pushes WHERE department = ?1 \
                ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(department)
        .bind(limits.pushes as i64)
        .execute(&mut *conn)
        .await?;
        if !refused {
            continue;
        }
        sqlx::query(
            "DELETE FROM ingest_refusals WHERE department = ?1 AND id <= \
               (SELECT id FROM ingest_refusals WHERE department = ?1 \
                ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(department)
        .bind(limits.rejections as i64)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(cutoff) = filed.counts_cutoff(now) {
        sqlx::query("DELETE FROM ingest_counts WHERE minute < ?")
            .bind(cutoff)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn read_activity(
        &self,
        department: &str,
        pushes: i64,
        rejections: i64,
    ) -> StoreResult<DepartmentActivity> {
        let push_rows = sqlx::query(
            "SELECT at, format, sender, feed, accepted, duplicates, rejected FROM ingest_pushes \
             WHERE department = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(department)
        .bind(pushes)
        .fetch_all(&self.pool)
        .await?;
        let refusal_rows = sqlx::query(
            "SELECT at, format, sender, feed, row_index, code, message, field, value, indicator \
             FROM ingest_refusals WHERE department = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(department)
        .bind(rejections)
        .fetch_all(&self.pool)
        .await?;
        let mut activity = DepartmentActivity::default();
        for row in push_rows {
            activity.pushes.push(PushRecord {
                at: from_micros(row.try_get("at")?),
                format: row.try_get("format")?,
                by: row.try_get("sender")?,
                feed: row.try_get("feed")?,
                accepted: usize_of(row.try_get("accepted")?),
                duplicates: usize_of(row.try_get("duplicates")?),
                rejected: usize_of(row.try_get("rejected")?),
            });
        }
        for row in refusal_rows {
            activity.rejections.push(RejectionRecord {
                at: from_micros(row.try_get("at")?),
                format: row.try_get("format")?,
                by: row.try_get("sender")?,
                feed: row.try_get("feed")?,
                index: usize_of(row.try_get("row_index")?),
                code: row.try_get("code")?,
                message: row.try_get("message")?,
                field: row.try_get("field")?,
                value: row.try_get("value")?,
                indicator: row.try_get("indicator")?,
            });
        }
        Ok(activity)
    }

    pub(super) async fn read_activity_counts(
        &self,
        department: Option<&str>,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<ActivityCount>> {
        let rows = sqlx::query(
            "SELECT department, feed, sum(pushes) AS pushes, sum(accepted) AS accepted, \
               sum(duplicates) AS duplicates, sum(rejected) AS rejected \
             FROM ingest_counts \
             WHERE minute >= ?1 AND (?2 IS NULL OR department = ?2) AND (?3 IS NULL OR feed = ?3) \
             GROUP BY department, feed ORDER BY department, feed",
        )
        .bind(minute_of(since))
        .bind(department)
        .bind(feed)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ActivityCount {
                    department: row.try_get("department")?,
                    feed: row.try_get("feed")?,
                    pushes: u64_of(row.try_get("pushes")?),
                    accepted: u64_of(row.try_get("accepted")?),
                    duplicates: u64_of(row.try_get("duplicates")?),
                    rejected: u64_of(row.try_get("rejected")?),
                })
            })
            .collect()
    }

    pub(super) async fn read_refusal_reasons(
        &self,
        department: &str,
        feed: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<ReasonCount>> {
        let rows = sqlx::query(
            "SELECT code, count(*) AS rows FROM ingest_refusals \
             WHERE department = ?1 AND at >= ?2 AND (?3 IS NULL OR feed = ?3) \
             GROUP BY code ORDER BY count(*) DESC, code",
        )
        .bind(department)
        .bind(micros(since))
        .bind(feed)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ReasonCount {
                    code: row.try_get("code")?,
                    rows: u64_of(row.try_get("rows")?),
                })
            })
            .collect()
    }
}

fn usize_of(n: i64) -> usize {
    usize::try_from(n).unwrap_or_default()
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
