//! Department activity on PostgreSQL (migration 0012, [`crate::store::activity`]): filed in the
//! write group's transaction in two statements whatever the group holds, one that inserts the
//! pushes, refused rows and counts, and one that prunes what the departments filed under no
//! longer keep.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::store::activity::{
    minute_of, ActivityCount, DepartmentActivity, Filed, PushRecord, ReasonCount, RejectionRecord,
};
use crate::store::StoreResult;

/// Writes what `filed` holds, then prunes the departments it filed under.
pub(super) async fn record(
    conn: &mut PgConnection,
    filed: &Filed<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if filed.is_empty() {
        return Ok(());
    }
    let pushes = &filed.pushes;
    let refusals = &filed.refusals;
    let counts: Vec<_> = filed.counts.iter().collect();
    sqlx::query(
        "WITH pushes AS ( \
           INSERT INTO ingest_pushes (department, at, format, sender, feed, accepted, duplicates, rejected) \
           SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], \
                                $6::int[], $7::int[], $8::int[])), \
         refusals AS ( \
           INSERT INTO ingest_refusals (department, at, format, sender, feed, row_index, code, \
                                        message, field, value, indicator) \
           SELECT * FROM UNNEST($9::text[], $10::timestamptz[], $11::text[], $12::text[], \
                                $13::text[], $14::int[], $15::text[], $16::text[], $17::text[], \
                                $18::text[], $19::text[])) \
         INSERT INTO ingest_counts (department, feed, minute, pushes, accepted, duplicates, rejected) \
         SELECT * FROM UNNEST($20::text[], $21::text[], $22::bigint[], $23::bigint[], \
                              $24::bigint[], $25::bigint[], $26::bigint[]) \
         ON CONFLICT (department, feed, minute) DO UPDATE SET \
           pushes = ingest_counts.pushes + EXCLUDED.pushes, \
           accepted = ingest_counts.accepted + EXCLUDED.accepted, \
           duplicates = ingest_counts.duplicates + EXCLUDED.duplicates, \
           rejected = ingest_counts.rejected + EXCLUDED.rejected",
    )
    .bind(pushes.iter().map(|p| p.department).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| p.at).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| p.note.format.as_str()).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| p.note.by.as_str()).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| p.note.feed.as_str()).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| count(p.accepted)).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| count(p.duplicates)).collect::<Vec<_>>())
    .bind(pushes.iter().map(|p| count(p.rejected)).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.department).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.note.format.as_str()).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.note.by.as_str()).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.note.feed.as_str()).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| count(r.index)).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.code).collect::<Vec<_>>())
    .bind(refusals.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
    .bind(
        refusals
            .iter()
            .map(|r| r.refused.and_then(|n| n.field.as_deref()))
            .collect::<Vec<_>>(),
    )
    .bind(
        refusals
            .iter()
            .map(|r| r.refused.and_then(|n| n.value.as_deref()))
            .collect::<Vec<_>>(),
    )
    .bind(
        refusals
            .iter()
            .map(|r| r.refused.and_then(|n| n.indicator.as_deref()))
            .collect::<Vec<_>>(),
    )
    .bind(counts.iter().map(|((d, _, _), _)| *d).collect::<Vec<_>>())
    .bind(counts.iter().map(|((_, f, _), _)| *f).collect::<Vec<_>>())
    .bind(counts.iter().map(|((_, _, m), _)| *m).collect::<Vec<_>>())
    .bind(counts.iter().map(|(_, c)| c[0]).collect::<Vec<_>>())
    .bind(counts.iter().map(|(_, c)| c[1]).collect::<Vec<_>>())
    .bind(counts.iter().map(|(_, c)| c[2]).collect::<Vec<_>>())
    .bind(counts.iter().map(|(_, c)| c[3]).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;

    // Each department's bound is read from the newest end of its index: the rows it keeps and
    // one more, never the table. Departments in key order, so writers on several instances
    // prune in one order.
    let departments: Vec<&str> = filed.departments.keys().copied().collect();
    let pushes_kept: Vec<i64> = filed
        .departments
        .values()
        .map(|(l, _)| l.pushes as i64)
        .collect();
    // A department none of whose rows were refused this time has nothing new to drop.
    let refusals_kept: Vec<Option<i64>> = filed
        .departments
        .values()
        .map(|(l, refused)| refused.then_some(l.rejections as i64))
        .collect();
    sqlx::query(
        "WITH kept AS ( \
           SELECT d.department, \
             (SELECT id FROM ingest_pushes p WHERE p.department = d.department \
               ORDER BY id DESC LIMIT 1 OFFSET d.pushes) AS push_bound, \
             (SELECT id FROM ingest_refusals r WHERE r.department = d.department \
                AND d.refusals IS NOT NULL \
               ORDER BY id DESC LIMIT 1 OFFSET d.refusals) AS refusal_bound \
           FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS d(department, pushes, refusals)), \
         pushes AS ( \
           DELETE FROM ingest_pushes p USING kept \
           WHERE p.department = kept.department AND p.id <= kept.push_bound), \
         refusals AS ( \
           DELETE FROM ingest_refusals r USING kept \
           WHERE r.department = kept.department AND r.id <= kept.refusal_bound) \
         DELETE FROM ingest_counts WHERE minute < $4::bigint",
    )
    .bind(&departments)
    .bind(&pushes_kept)
    .bind(&refusals_kept)
    .bind(filed.counts_cutoff(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl PgStore {
    pub(super) async fn read_activity(
        &self,
        department: &str,
        pushes: i64,
        rejections: i64,
    ) -> StoreResult<DepartmentActivity> {
        let push_rows = sqlx::query(
            "SELECT at, format, sender, feed, accepted, duplicates, rejected FROM ingest_pushes \
             WHERE department = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(department)
        .bind(pushes)
        .fetch_all(&self.pool)
        .await?;
        let refusal_rows = sqlx::query(
            "SELECT at, format, sender, feed, row_index, code, message, field, value, indicator \
             FROM ingest_refusals WHERE department = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(department)
        .bind(rejections)
        .fetch_all(&self.pool)
        .await?;
        let mut activity = DepartmentActivity::default();
        for row in push_rows {
            activity.pushes.push(PushRecord {
                at: row.try_get("at")?,
                format: row.try_get("format")?,
                by: row.try_get("sender")?,
                feed: row.try_get("feed")?,
                accepted: usize_of(row.try_get::<i32, _>("accepted")?),
                duplicates: usize_of(row.try_get::<i32, _>("duplicates")?),
                rejected: usize_of(row.try_get::<i32, _>("rejected")?),
            });
        }
        for row in refusal_rows {
            activity.rejections.push(RejectionRecord {
                at: row.try_get("at")?,
                format: row.try_get("format")?,
                by: row.try_get("sender")?,
                feed: row.try_get("feed")?,
                index: usize_of(row.try_get::<i32, _>("row_index")?),
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
            "SELECT department, feed, sum(pushes)::bigint AS pushes, \
               sum(accepted)::bigint AS accepted, sum(duplicates)::bigint AS duplicates, \
               sum(rejected)::bigint AS rejected \
             FROM ingest_counts \
             WHERE minute >= $1 AND ($2::text IS NULL OR department = $2) \
               AND ($3::text IS NULL OR feed = $3) \
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
             WHERE department = $1 AND at >= $2 AND ($3::text IS NULL OR feed = $3) \
             GROUP BY code ORDER BY count(*) DESC, code",
        )
        .bind(department)
        .bind(since)
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

fn usize_of(n: i32) -> usize {
    usize::try_from(n).unwrap_or_default()
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
