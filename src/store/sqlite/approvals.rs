//! Approvals on SQLite (migration 0011): the revisions an approval names move up to its state
//! and each step is appended to `approvals`, with the audit row, in one write transaction.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::read::{NAMED, NAMES};
use super::{audit, from_micros, micros, SqliteStore};
use crate::domain::approval::{ApprovalOutcome, ApprovalSelection, ApprovedRevision, NewApproval};
use crate::domain::StoredObservation;
use crate::store::{AuditEvent, StoreResult};

/// The latest revision of every period of the selected series lying within `[?3, ?4)` (an instant at `?4` is the next period's), as
/// `read.rs`'s LATEST takes it: the row holding the group's max(revision).
const SELECTED: &str = "SELECT o.series_id, s.indicator, s.unit, o.period_start, o.period_end, \
        max(o.revision) AS revision, o.state, o.reported_at \
     FROM observations o JOIN series s ON s.id = o.series_id \
     WHERE s.indicator IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR s.unit = ?2) \
       AND o.period_start >= ?3 AND o.period_start < ?4 AND o.period_end <= ?4 \
     GROUP BY o.series_id, o.period_start, o.period_end";

/// The revisions an approval moves, from the JSON array bound as `?1`:
/// `[[series_id, period_start, period_end, revision, approved_at], …]`.
const KEYS: &str = "SELECT json_extract(value, '$[0]') AS series_id, \
        json_extract(value, '$[1]') AS period_start, json_extract(value, '$[2]') AS period_end, \
        json_extract(value, '$[3]') AS revision, json_extract(value, '$[4]') AS at \
     FROM json_each(?1)";

struct Selected {
    series_id: i64,
    indicator: String,
    unit: String,
    period_start: i64,
    period_end: i64,
    revision: i32,
    state: i16,
    reported_at: i64,
}

fn selected_of(row: &SqliteRow) -> StoreResult<Selected> {
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

async fn select(
    tx: &mut SqliteConnection,
    selection: &ApprovalSelection,
) -> StoreResult<Vec<Selected>> {
    let (indicators, unit, from, to, revision) = match selection {
        ApprovalSelection::Latest {
            indicators,
            unit,
            from,
            to,
        } => (indicators.clone(), unit.clone(), *from, *to, None),
        ApprovalSelection::One {
            indicator,
            unit,
            period_start,
            period_end,
            revision,
        } => (
            vec![indicator.clone()],
            Some(unit.clone()),
            *period_start,
            *period_end,
            Some(*revision),
        ),
    };
    let rows = sqlx::query(SELECTED)
        .bind(serde_json::json!(indicators).to_string())
        .bind(unit)
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&mut *tx)
        .await?;
    let selected = rows
        .iter()
        .map(selected_of)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(match revision {
        // Only while it is the period's latest: a superseded revision is not approved.
        Some(revision) => selected
            .into_iter()
            .filter(|s| {
                s.period_start == micros(from)
                    && s.period_end == micros(to)
                    && s.revision == revision
            })
            .collect(),
        None => selected,
    })
}

impl SqliteStore {
    fn period_text(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> StoreResult<String> {
        crate::store::period_text(start, end, self.zone)
    }

    pub(super) async fn approve_revisions(
        &self,
        approval: &NewApproval,
        event: &AuditEvent,
    ) -> StoreResult<ApprovalOutcome> {
        let state = approval.state.as_i16();
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let selected = select(&mut tx, &approval.selection).await?;
        let (moving, standing): (Vec<Selected>, Vec<Selected>) =
            selected.into_iter().partition(|s| s.state < state);
        let group: i64 =
            sqlx::query_scalar("UPDATE write_groups SET last = last + 1 RETURNING last")
                .fetch_one(&mut *tx)
                .await?;
        if !moving.is_empty() {
            // The keys as one JSON array, one statement each: a statement per revision costs
            // a round trip to SQLite's thread each, seconds for a back-filled history.
            let keys = serde_json::Value::from(
                moving
                    .iter()
                    .map(|s| {
                        let at = micros(approval.effective_for(from_micros(s.reported_at)));
                        serde_json::json!([
                            s.series_id,
                            s.period_start,
                            s.period_end,
                            s.revision,
                            at
                        ])
                    })
                    .collect::<Vec<_>>(),
            )
            .to_string();
            sqlx::query(&format!(
                "UPDATE observations SET state = max(observations.state, ?2) \
                 FROM ({KEYS}) AS k \
                 WHERE observations.series_id = k.series_id \
                   AND observations.period_start = k.period_start \
                   AND observations.period_end = k.period_end \
                   AND observations.revision = k.revision"
            ))
            .bind(&keys)
            .bind(state)
            .execute(&mut *tx)
            .await?;
            // `WHERE true` tells SQLite's parser that ON CONFLICT is the upsert clause.
            sqlx::query(&format!(
                "INSERT INTO approvals (series_id, period_start, period_end, revision, state, \
                     approved_at, approved_by, note, group_id) \
                 SELECT k.series_id, k.period_start, k.period_end, k.revision, ?2, k.at, ?3, ?4, ?5 \
                 FROM ({KEYS}) AS k WHERE true ON CONFLICT DO NOTHING"
            ))
            .bind(&keys)
            .bind(state)
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
        tx.commit().await?;
        let approved = moving
            .into_iter()
            .map(|s| {
                let (start, end) = (from_micros(s.period_start), from_micros(s.period_end));
                Ok(ApprovedRevision {
                    period: self.period_text(start, end)?,
                    indicator: s.indicator,
                    unit: s.unit,
                    period_start: start,
                    period_end: end,
                    revision: s.revision,
                    state: approval.state,
                    approved_at: approval.effective_for(from_micros(s.reported_at)),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(ApprovalOutcome {
            approved,
            unchanged: standing.len(),
        })
    }

    /// See [`crate::store::Store::official_between`].
    pub(super) async fn official_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        known_by: DateTime<Utc>,
        indicators: Option<&[String]>,
    ) -> StoreResult<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT {NAMED} FROM observations o \
             JOIN approvals a ON a.series_id = o.series_id AND a.period_start = o.period_start \
                 AND a.period_end = o.period_end AND a.revision = o.revision AND a.state = 2 \
             {NAMES} \
             WHERE o.period_start >= ?1 AND o.period_start < ?2 AND o.reported_at <= ?3 \
               AND a.approved_at <= ?3 \
               AND (?4 IS NULL OR s.indicator IN (SELECT value FROM json_each(?4))) \
             ORDER BY max(o.reported_at, a.approved_at), s.indicator, s.unit, o.period_start, \
                 o.period_end, o.revision"
        );
        let rows = sqlx::query(&sql)
            .bind(micros(from))
            .bind(micros(to))
            .bind(micros(known_by))
            .bind(indicators.map(|list| serde_json::json!(list).to_string()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| self.observation_from(row)).collect()
    }
}
