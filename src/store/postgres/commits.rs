//! The commits other instances follow (ARCHITECTURE §7, migration 0008): each write group,
//! target change and token revocation records one row in its own transaction and a NOTIFY that
//! PostgreSQL delivers at commit; a follower reads by transaction id up to its snapshot's
//! `xmin`, so it misses nothing and reads nothing twice.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::read::{NAMED, NAMES};
use super::PgStore;
use crate::store::{CommitKind, RemoteCommit, StoreError, StoreResult};

/// The channel of the NOTIFY sent with every recorded commit.
pub const CHANNEL: &str = "ktxh_commits";

/// Records a commit of this instance in the transaction `tx` is in, and the NOTIFY that tells
/// the others once it commits.
pub(super) async fn record(
    tx: &mut PgConnection,
    instance: &str,
    group_id: i64,
    kind: CommitKind,
    subject: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    record_group(tx, instance, group_id, kind, subject, None, at).await
}

/// Where a write group's rows lie in the observations' key.
pub(super) struct GroupKeys {
    pub(super) series: Vec<i32>,
    pub(super) first_start: DateTime<Utc>,
    pub(super) last_start: DateTime<Utc>,
}

/// [`record`], with where the group's rows lie.
pub(super) async fn record_group(
    tx: &mut PgConnection,
    instance: &str,
    group_id: i64,
    kind: CommitKind,
    subject: Option<&str>,
    keys: Option<&GroupKeys>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO commits (group_id, instance, kind, subject, series, first_start, \
         last_start, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(group_id)
    .bind(instance)
    .bind(kind.as_str())
    .bind(subject)
    .bind(keys.map(|k| k.series.as_slice()))
    .bind(keys.map(|k| k.first_start))
    .bind(keys.map(|k| k.last_start))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    // The payload is only a wake-up call with this transaction's id (well under NOTIFY's 8,000
    // bytes): followers read what committed from the table, and keep reading soon while the
    // horizon has not yet passed the id they heard.
    sqlx::query("SELECT pg_notify($1, pg_current_xact_id()::text)")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A new group id, for a commit that writes no observation.
pub(super) async fn next_group(tx: &mut PgConnection) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT nextval('write_groups')")
        .fetch_one(&mut *tx)
        .await?)
}

fn parse_xid(text: &str) -> StoreResult<u64> {
    text.parse().map_err(|_| StoreError::Corrupt {
        table: "commits",
        detail: format!("transaction id {text}"),
    })
}

impl PgStore {
    /// The bound below which every transaction has ended, now.
    pub(super) async fn commit_horizon(&self) -> StoreResult<u64> {
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&self.pool)
                .await?;
        parse_xid(&xmin)
    }

    /// Other instances' commits with a transaction id from `from` up to the bound of one
    /// snapshot, with their rows, in transaction order; and that bound, where the next read
    /// starts.
    pub(super) async fn commits_from(&self, from: u64) -> StoreResult<(Vec<RemoteCommit>, u64)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&mut *tx)
                .await?;
        let until = parse_xid(&xmin)?;
        let rows = sqlx::query(
            "SELECT group_id, instance, kind, subject, committed_at FROM commits \
             WHERE xid >= $1::text::xid8 AND xid < $2::text::xid8 AND instance <> $3 \
             ORDER BY xid, group_id",
        )
        .bind(from.to_string())
        .bind(&xmin)
        .bind(&self.instance)
        .fetch_all(&mut *tx)
        .await?;
        let mut commits = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            commits.push(RemoteCommit {
                group_id: row.try_get("group_id")?,
                instance: row.try_get("instance")?,
                kind: CommitKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                    table: "commits",
                    detail: format!("kind {kind}"),
                })?,
                subject: row.try_get("subject")?,
                at: row.try_get("committed_at")?,
                rows: Vec::new(),
                approvals: Vec::new(),
            });
        }
        let groups: Vec<i64> = commits
            .iter()
            .filter(|c| c.kind == CommitKind::Observations)
            .map(|c| c.group_id)
            .collect();
        if !groups.is_empty() {
            // Through the observations' key: the group's series and period starts.
            let sql = format!(
                "SELECT o.group_id, s.indicator, s.unit, {NAMED} FROM commits c \
                 JOIN LATERAL (SELECT * FROM observations x \
                     WHERE x.series_id = ANY(c.series) \
                       AND x.period_start BETWEEN c.first_start AND c.last_start \
                       AND x.group_id = c.group_id) o ON TRUE \
                 JOIN series s ON s.id = o.series_id {NAMES} \
                 WHERE c.group_id = ANY($1) \
                 ORDER BY o.group_id, s.indicator, s.unit, o.period_start, o.period_end, o.revision"
            );
            let stored = sqlx::query(&sql).bind(&groups).fetch_all(&mut *tx).await?;
            let mut by_group: std::collections::HashMap<i64, Vec<_>> =
                std::collections::HashMap::new();
            for row in &stored {
                let group: i64 = row.try_get("group_id")?;
                let observation =
                    self.observation_from(row, row.try_get("indicator")?, row.try_get("unit")?)?;
                by_group.entry(group).or_default().push(observation);
            }
            for commit in &mut commits {
                if let Some(rows) = by_group.remove(&commit.group_id) {
                    commit.rows = rows;
                }
            }
        }
        let approval_groups: Vec<i64> = commits
            .iter()
            .filter(|c| c.kind == CommitKind::Approval)
            .map(|c| c.group_id)
            .collect();
        if !approval_groups.is_empty() {
            for (group, approved) in self.approvals_of_groups(&mut tx, &approval_groups).await? {
                if let Some(commit) = commits.iter_mut().find(|c| c.group_id == group) {
                    commit.approvals.push(approved);
                }
            }
        }
        tx.commit().await?;
        Ok((commits, until))
    }
}
