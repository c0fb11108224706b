//! Approvals on PostgreSQL (migration 0011): the revisions an approval names move up to its
//! state, each step is appended to `approvals`, and the audit row and the commit that other
//! instances follow (ARCHITECTURE §7) go in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::read::{NAMED, NAMES};
use super::{audit, commits, PgStore};
use crate::domain::approval::{ApprovalOutcome, ApprovalSelection, ApprovedRevision, NewApproval};
use crate::domain::StoredObservation;
use crate::store::{AuditEvent, CommitKind, StoreError, StoreResult};

/// The latest revision of every period of the selected series lying within `[$3, $4)` (an instant at `$4` is the next period's).
const SELECTED: &str = "SELECT DISTINCT ON (o.series_id, o.period_start, o.period_end) \
        o.series_id, s.indicator, s.unit, o.period_start, o.period_end, o.revision, o.state, \
        o.reported_at \
     FROM observations o JOIN series s ON s.id = o.series_id \
     WHERE s.indicator = ANY($1) AND ($2::text IS NULL OR s.unit = $2) \
       AND o.period_start >= $3 AND o.period_start < $4 AND o.period_end <= $4 \
     ORDER BY o.series_id, o.period_start, o.period_end, o.revision DESC";

/// A selected revision.
struct Selected {
    series_id: i32,
    indicator: String,
    unit: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    revision: i32,
    state: i16,
    reported_at: DateTime<Utc>,
}

fn selected_of(row: &PgRow) -> StoreResult<Selected> {
    Ok(Selected {
        series_id: row.try_get("series_id")?,
        indicator: row.try_get("indicator")?,
        unit: row.try_get("unit")?,
        period_start: row.try_get("period_start")?,
        period_end: row.try_get("period_end")?,
        revision: row.try_get("revision")?,
        state: row.try_get("state")?,
        reported_at: row.try_get("reported_at")?,
    })
}

impl PgStore {
    fn period_text(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> StoreResult<String> {
        crate::store::period_text(start, end, self.zone)
    }

    async fn select(
        tx: &mut PgConnection,
        selection: &ApprovalSelection,
    ) -> StoreResult<Vec<Selected>> {
        let rows = match selection {
            ApprovalSelection::Latest {
                indicators,
                unit,
                from,
                to,
            } => {
                sqlx::query(SELECTED)
                    .bind(indicators)
                    .bind(unit)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *tx)
                    .await?
            }
            ApprovalSelection::One {
                indicator,
                unit,
                period_start,
                period_end,
                revision,
            } => {
                // Only while it is the period's latest: a superseded revision is not approved.
                let sql = format!(
                    "SELECT * FROM ({SELECTED}) l WHERE l.period_start = $3 AND l.period_end = $4 \
                     AND l.revision = $5"
                );
                sqlx::query(&sql)
                    .bind(std::slice::from_ref(indicator))
                    .bind(unit)
                    .bind(period_start)
                    .bind(period_end)
                    .bind(revision)
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        rows.iter().map(selected_of).collect()
    }

    pub(super) async fn approve_revisions(
        &self,
        approval: &NewApproval,
        event: &AuditEvent,
    ) -> StoreResult<ApprovalOutcome> {
        let state = approval.state.as_i16();
        let _approving = self.approving.lock().await;
        // On TimescaleDB the selection reads under a snapshot of its own, on a second connection
        // (see [`super::read::Reader`]): it never holds part of a write group that opened a
        // chunk. That connection is taken before the audit lock: audited writes queued behind
        // this one may hold every other connection of the pool until it ends. Its snapshot is
        // taken by its first statement, the selection, once no other approval can commit.
        let mut reader = if self.timescale.load(std::sync::atomic::Ordering::Relaxed) {
            Some(self.reader().await?)
        } else {
            None
        };
        let mut tx = self.pool.begin().await?;
        // The audit lock first, as every audited write takes it, so none waits on another.
        audit::lock(&mut tx).await?;
        let selected = match reader.take() {
            Some(mut reader) => {
                let selected = Self::select(&mut reader, &approval.selection).await?;
                reader.done().await?;
                selected
            }
            None => Self::select(&mut tx, &approval.selection).await?,
        };
        let (moving, standing): (Vec<Selected>, Vec<Selected>) =
            selected.into_iter().partition(|s| s.state < state);
        let group = commits::next_group(&mut tx).await?;
        if !moving.is_empty() {
            let series: Vec<i32> = moving.iter().map(|s| s.series_id).collect();
            let starts: Vec<DateTime<Utc>> = moving.iter().map(|s| s.period_start).collect();
            let ends: Vec<DateTime<Utc>> = moving.iter().map(|s| s.period_end).collect();
            let revisions: Vec<i32> = moving.iter().map(|s| s.revision).collect();
            let effective: Vec<DateTime<Utc>> = moving
                .iter()
                .map(|s| approval.effective_for(s.reported_at))
                .collect();
            sqlx::query(
                "UPDATE observations o SET state = GREATEST(o.state, $5) \
                 FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[], $4::int4[]) \
                     AS k(series_id, period_start, period_end, revision) \
                 WHERE o.series_id = k.series_id AND o.period_start = k.period_start \
                   AND o.period_end = k.period_end AND o.revision = k.revision",
            )
            .bind(&series)
            .bind(&starts)
            .bind(&ends)
            .bind(&revisions)
            .bind(state)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO approvals (series_id, period_start, period_end, revision, state, \
                     approved_at, approved_by, note, group_id) \
                 SELECT k.series_id, k.period_start, k.period_end, k.revision, $5, k.at, $7, $8, $9 \
                 FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[], $4::int4[], \
                     $6::timestamptz[]) AS k(series_id, period_start, period_end, revision, at) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&series)
            .bind(&starts)
            .bind(&ends)
            .bind(&revisions)
            .bind(state)
            .bind(&effective)
            .bind(&approval.approved_by)
            .bind(&approval.note)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        }
        let mut event = event.clone();
        event.after = Some(super::super::approval_audit(
            approval,
            moving.len(),
            standing.len(),
            group,
        ));
        audit::append(&mut tx, &event).await?;
        if !moving.is_empty() {
            commits::record(
                &mut tx,
                &self.instance,
                group,
                CommitKind::Approval,
                None,
                approval.approved_at,
            )
            .await?;
        }
        tx.commit().await?;
        let approved = moving
            .into_iter()
            .map(|s| {
                Ok(ApprovedRevision {
                    period: self.period_text(s.period_start, s.period_end)?,
                    indicator: s.indicator,
                    unit: s.unit,
                    period_start: s.period_start,
                    period_end: s.period_end,
                    revision: s.revision,
                    state: approval.state,
                    approved_at: approval.effective_for(s.reported_at),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(ApprovalOutcome {
            approved,
            unchanged: standing.len(),
        })
    }

    /// The revisions an approval commit moved, as its approvals rows record them.
    pub(super) async fn approvals_of_groups(
        &self,
        conn: &mut PgConnection,
        groups: &[i64],
    ) -> StoreResult<Vec<(i64, ApprovedRevision)>> {
        let rows = sqlx::query(
            "SELECT a.group_id, s.indicator, s.unit, a.period_start, a.period_end, a.revision, \
                    a.state, a.approved_at \
             FROM approvals a JOIN series s ON s.id = a.series_id \
             WHERE a.group_id = ANY($1) \
             ORDER BY a.group_id, s.indicator, s.unit, a.period_start, a.period_end",
        )
        .bind(groups)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let (start, end) = (row.try_get("period_start")?, row.try_get("period_end")?);
                let state: i16 = row.try_get("state")?;
                Ok((
                    row.try_get("group_id")?,
                    ApprovedRevision {
                        indicator: row.try_get("indicator")?,
                        unit: row.try_get("unit")?,
                        period: self.period_text(start, end)?,
                        period_start: start,
                        period_end: end,
                        revision: row.try_get("revision")?,
                        state: crate::domain::ApprovalState::from_i16(state).ok_or_else(|| {
                            StoreError::Corrupt {
                                table: "approvals",
                                detail: format!("approval state {state}"),
                            }
                        })?,
                        approved_at: row.try_get("approved_at")?,
                    },
                ))
            })
            .collect()
    }

    /// Every official revision of the periods starting in `[from, to)` that had become official
    /// by `known_by` and was reported by then, in the order they became official figures (the
    /// later of `reported_at` and the official approval).
    pub(super) async fn official_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT s.indicator, s.unit, {NAMED} FROM observations o \
             JOIN approvals a ON a.series_id = o.series_id AND a.period_start = o.period_start \
                 AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 2 \
             JOIN series s ON s.id = o.series_id {NAMES} \
             WHERE o.period_start >= $1 AND o.period_start < $2 AND o.reported_at <= $3 \
               AND a.approved_at <= $3 AND ($4::text[] IS NULL OR s.indicator = ANY($4)) \
             ORDER BY GREATEST(o.reported_at, a.approved_at), s.indicator, s.unit, \
                 o.period_start, o.period_end, o.revision"
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
}
