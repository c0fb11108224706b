//! Group writes on SQLite (ARCHITECTURE §7, §8): the batches of one group go in one `BEGIN
//! IMMEDIATE` transaction on the store's write connection, in order, each answered on its own.
//!
//! Revisions are decided inside the transaction, which holds SQLite's one write lock, so no
//! other writer (another process on the same file) can number the same key between the lookup
//! and the insert. Rows go in multi-row statements, never one round trip per row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::SubsecRound;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{micros, SqliteStore, Writer, ROWS_PER_STATEMENT};
use crate::domain::{NewObservation, Period};
use crate::store::activity::PushNote;
use crate::store::plan::{self, Key, Latest, Planned};
use crate::store::{
    IdempotencyClaim, IngestReceipt, StoreError, StoreResult, WriteBatch, WriteOutcome,
};

/// The ids a group uses, and those it learnt from the database: the cache takes the learnt ones
/// only once the group has committed, since a rolled-back insert's id may be handed out again.
#[derive(Default)]
struct Resolved {
    series: HashMap<(String, String), i64>,
    recorders: HashMap<String, i64>,
    sources: HashMap<String, i64>,
    /// Series created by this group: they hold no revision yet, so nothing is looked up.
    fresh_series: HashSet<i64>,
    learnt: Learnt,
}

#[derive(Default)]
pub(super) struct Learnt {
    series: Vec<((String, String), i64)>,
    recorders: Vec<(String, i64)>,
    sources: Vec<(String, i64)>,
}

/// Where a row is stored: its series and its period's bounds in microseconds.
type Bounds = (i64, i64, i64);

fn series_key(row: &NewObservation) -> (String, String) {
    (
        row.indicator.as_str().to_owned(),
        row.unit.as_str().to_owned(),
    )
}

/// Instants finer than the microseconds the table keeps would be two keys to the planner and
/// one to the table: they are stored, and compared, at microseconds.
fn at_micros(batches: &[WriteBatch]) -> Cow<'_, [WriteBatch]> {
    let finer = |row: &NewObservation| matches!(row.period, Period::Instant(t) if t.timestamp_subsec_nanos() % 1_000 != 0);
    if !batches.iter().any(|batch| batch.rows.iter().any(finer)) {
        return Cow::Borrowed(batches);
    }
    let mut owned = batches.to_vec();
    for row in owned.iter_mut().flat_map(|batch| batch.rows.iter_mut()) {
        if let Period::Instant(t) = row.period {
            let t = t.trunc_subsecs(6);
            row.period = Period::Instant(t);
            row.period_start = t;
            row.period_end = t;
        }
    }
    Cow::Owned(owned)
}

fn missing(what: &str, name: &str) -> StoreError {
    StoreError::Corrupt {
        table: "series",
        detail: format!("no id for {what} `{name}` after it was stored"),
    }
}

impl Resolved {
    fn bounds(&self, row: &NewObservation) -> StoreResult<Bounds> {
        let key = series_key(row);
        let series = *self
            .series
            .get(&key)
            .ok_or_else(|| missing("series", &format!("{}/{}", key.0, key.1)))?;
        Ok((series, micros(row.period_start), micros(row.period_end)))
    }
}

impl SqliteStore {
    pub(super) async fn group(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<PushNote>],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let batches = at_micros(batches);
        let mut writer = self.writer().await?;
        match self.try_group(&mut writer, &batches, notes).await {
            Ok((outcomes, learnt)) => {
                self.learn(learnt);
                Ok(outcomes)
            }
            Err(error) => {
                // Whatever state the failure left the connection in, the next group starts on
                // a fresh one.
                writer.discard();
                Err(error)
            }
        }
    }

    async fn try_group(
        &self,
        writer: &mut Writer<'_>,
        batches: &[WriteBatch],
        notes: &[Option<PushNote>],
    ) -> StoreResult<(Vec<StoreResult<WriteOutcome>>, Learnt)> {
        let mut tx = writer.begin().await?;
        let group_id: i64 =
            sqlx::query_scalar("UPDATE write_groups SET last = last + 1 RETURNING last")
                .fetch_one(&mut *tx)
                .await?;
        let resolved = self.resolve(&mut tx, batches).await?;
        let mut latest = latest_of(&mut tx, batches, &resolved).await?;

        let mut outcomes = Vec::with_capacity(batches.len());
        let mut planned: Vec<(&WriteBatch, Planned)> = Vec::new();
        for batch in batches {
            if let Some(claim) = &batch.idempotency {
                // A key an earlier batch of this group claimed is in the table already.
                match replay(&mut tx, claim).await {
                    Ok(Some(receipt)) => {
                        outcomes.push(Ok(WriteOutcome::Replayed(receipt)));
                        continue;
                    }
                    Ok(None) => {}
                    Err(StoreError::IdempotencyMismatch) => {
                        outcomes.push(Err(StoreError::IdempotencyMismatch));
                        continue;
                    }
                    Err(other) => return Err(other),
                }
            }
            let (rows, duplicates) =
                plan::plan_revisions_in(&batch.rows, 0..batch.rows.len(), &mut latest);
            let changes = crate::store::plan::Changes::of(&batch.rows, &rows);
            let receipt = IngestReceipt {
                accepted: rows.len(),
                duplicates: duplicates.len(),
                rejected: batch.rejected.clone(),
                updated: changes.updated,
                withdrawn: changes.withdrawn,
            };
            if let Some(claim) = &batch.idempotency {
                remember(&mut tx, claim, &receipt, batch).await?;
            }
            outcomes.push(Ok(WriteOutcome::Written {
                receipt,
                accepted: rows.iter().map(|p| p.index).collect(),
            }));
            planned.extend(rows.into_iter().map(|p| (batch, p)));
        }
        insert(&mut tx, &planned, &resolved, group_id).await?;
        // Each push's activity commits with its rows (ARCHITECTURE §1).
        let filed = crate::store::activity::file(batches, notes, &outcomes);
        super::activity::record(&mut tx, &filed, chrono::Utc::now()).await?;
        tx.commit().await?;
        Ok((outcomes, resolved.learnt))
    }

    fn learn(&self, learnt: Learnt) {
        if learnt.series.is_empty() && learnt.recorders.is_empty() && learnt.sources.is_empty() {
            return;
        }
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        ids.series.extend(learnt.series);
        ids.recorders.extend(learnt.recorders);
        ids.sources.extend(learnt.sources);
    }

    /// The ids of every series, recorder and source the group names, creating those that are
    /// new.
    async fn resolve(
        &self,
        conn: &mut SqliteConnection,
        batches: &[WriteBatch],
    ) -> StoreResult<Resolved> {
        let mut resolved = Resolved::default();
        let mut want_series = Vec::new();
        let mut want_recorders = Vec::new();
        let mut want_sources = Vec::new();
        {
            let ids = self.ids.read().unwrap_or_else(|e| e.into_inner());
            let mut seen_series = HashSet::new();
            let mut seen_names = HashSet::new();
            for batch in batches {
                if let Some(&id) = ids.recorders.get(&batch.recorded_by) {
                    resolved.recorders.insert(batch.recorded_by.clone(), id);
                } else if seen_names.insert(("r", batch.recorded_by.as_str())) {
                    want_recorders.push(batch.recorded_by.clone());
                }
                for row in &batch.rows {
                    let key = series_key(row);
                    if let Some(&id) = ids.series.get(&key) {
                        resolved.series.insert(key, id);
                    } else if seen_series.insert(key.clone()) {
                        want_series.push(key);
                    }
                    if let Some(source) = row.source.as_deref() {
                        if let Some(&id) = ids.sources.get(source) {
                            resolved.sources.insert(source.to_owned(), id);
                        } else if seen_names.insert(("s", source)) {
                            want_sources.push(source.to_owned());
                        }
                    }
                }
            }
        }
        for (key, id, fresh) in series_ids(conn, &want_series).await? {
            if fresh {
                resolved.fresh_series.insert(id);
            }
            resolved.learnt.series.push((key.clone(), id));
            resolved.series.insert(key, id);
        }
        for (name, id) in name_ids(conn, "recorders", &want_recorders).await? {
            resolved.learnt.recorders.push((name.clone(), id));
            resolved.recorders.insert(name, id);
        }
        for (name, id) in name_ids(conn, "sources", &want_sources).await? {
            resolved.learnt.sources.push((name.clone(), id));
            resolved.sources.insert(name, id);
        }
        Ok(resolved)
    }
}

/// The ids of `wanted` series, inserting the missing ones; `true` marks a series created here.
async fn series_ids(
    conn: &mut SqliteConnection,
    wanted: &[(String, String)],
) -> StoreResult<Vec<((String, String), i64, bool)>> {
    let mut found = Vec::with_capacity(wanted.len());
    let mut known = HashSet::new();
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, indicator, unit FROM series WHERE (indicator, unit) IN (",
        );
        query.push_values(chunk, |mut b, (indicator, unit)| {
            b.push_bind(indicator.as_str()).push_bind(unit.as_str());
        });
        query.push(")");
        for row in query.build().fetch_all(&mut *conn).await? {
            let key: (String, String) = (row.try_get("indicator")?, row.try_get("unit")?);
            known.insert(key.clone());
            found.push((key, row.try_get("id")?, false));
        }
    }
    let new: Vec<_> = wanted.iter().filter(|k| !known.contains(*k)).collect();
    for chunk in new.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO series (indicator, unit) ");
        query.push_values(chunk, |mut b, (indicator, unit)| {
            b.push_bind(indicator.as_str()).push_bind(unit.as_str());
        });
        query.push(" RETURNING id, indicator, unit");
        for row in query.build().fetch_all(&mut *conn).await? {
            found.push((
                (row.try_get("indicator")?, row.try_get("unit")?),
                row.try_get("id")?,
                true,
            ));
        }
    }
    Ok(found)
}

/// The ids of `wanted` names in `table` (`recorders` or `sources`), inserting the missing ones.
async fn name_ids(
    conn: &mut SqliteConnection,
    table: &'static str,
    wanted: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    let mut found = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO {table} (name) "));
        query.push_values(chunk, |mut b, name| {
            b.push_bind(name.as_str());
        });
        // The no-op update makes RETURNING answer for the names that were there already.
        query.push(" ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id, name");
        for row in query.build().fetch_all(&mut *conn).await? {
            found.push((row.try_get("name")?, row.try_get("id")?));
        }
    }
    Ok(found)
}

/// The latest stored revision (whenever it became known) of every key the group's rows name.
async fn latest_of(
    conn: &mut SqliteConnection,
    batches: &[WriteBatch],
    resolved: &Resolved,
) -> StoreResult<HashMap<Key, Latest>> {
    let mut keys: HashMap<Bounds, Key> = HashMap::new();
    for batch in batches {
        for row in &batch.rows {
            let bounds = resolved.bounds(row)?;
            if !resolved.fresh_series.contains(&bounds.0) {
                keys.entry(bounds).or_insert_with(|| plan::key_of(row));
            }
        }
    }
    let wanted: Vec<_> = keys.keys().copied().collect();
    let mut latest = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("WITH k(series_id, period_start, period_end) AS (");
        query.push_values(chunk, |mut b, (series, start, end)| {
            b.push_bind(series).push_bind(start).push_bind(end);
        });
        // SQLite takes the other columns of an aggregate query with one max() from the row
        // that holds the maximum: the latest revision's value, label and source.
        query.push(
            ") SELECT o.series_id, o.period_start, o.period_end, max(o.revision) AS revision, \
                      o.value, o.label, src.name AS source \
               FROM k JOIN observations o ON o.series_id = k.series_id \
                AND o.period_start = k.period_start AND o.period_end = k.period_end \
               LEFT JOIN sources src ON src.id = o.source_id \
               GROUP BY o.series_id, o.period_start, o.period_end",
        );
        for row in query.build().fetch_all(&mut *conn).await? {
            let bounds: Bounds = (
                row.try_get("series_id")?,
                row.try_get("period_start")?,
                row.try_get("period_end")?,
            );
            let Some(key) = keys.get(&bounds) else {
                continue;
            };
            latest.insert(
                key.clone(),
                Latest {
                    revision: row.try_get("revision")?,
                    value: row.try_get("value")?,
                    revision_label: row.try_get("label")?,
                    source: row.try_get("source")?,
                },
            );
        }
    }
    Ok(latest)
}

async fn insert(
    conn: &mut SqliteConnection,
    planned: &[(&WriteBatch, Planned)],
    resolved: &Resolved,
    group_id: i64,
) -> StoreResult<()> {
    for chunk in planned.chunks(ROWS_PER_STATEMENT) {
        // Ids first, so that a missing one fails before the statement is half built.
        let mut values = Vec::with_capacity(chunk.len());
        for (batch, planned) in chunk {
            let row = &batch.rows[planned.index];
            let (series, start, end) = resolved.bounds(row)?;
            let recorder = *resolved
                .recorders
                .get(&batch.recorded_by)
                .ok_or_else(|| missing("recorder", &batch.recorded_by))?;
            let source = match row.source.as_deref() {
                Some(name) => Some(
                    *resolved
                        .sources
                        .get(name)
                        .ok_or_else(|| missing("source", name))?,
                ),
                None => None,
            };
            values.push((
                series,
                start,
                end,
                recorder,
                source,
                *batch,
                row,
                planned.revision,
            ));
        }
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO observations (series_id, period_start, period_end, revision, value, \
             reported_at, received_at, state, recorder_id, source_id, label, group_id) ",
        );
        query.push_values(
            values,
            |mut b, (series, start, end, recorder, source, batch, row, revision)| {
                let received = micros(batch.received_at);
                b.push_bind(series)
                    .push_bind(start)
                    .push_bind(end)
                    .push_bind(revision)
                    .push_bind(row.value)
                    .push_bind(row.reported_at.map_or(received, micros))
                    .push_bind(received)
                    .push_bind(crate::domain::ApprovalState::default().as_i16())
                    .push_bind(recorder)
                    .push_bind(source)
                    .push_bind(row.revision_label.as_deref())
                    .push_bind(group_id);
            },
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The receipt stored under `claim`, if its key was used before; forgets keys older than the
/// claim's horizon first.
async fn replay(
    conn: &mut SqliteConnection,
    claim: &IdempotencyClaim,
) -> StoreResult<Option<IngestReceipt>> {
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = ? AND key = ? AND created_at < ?")
        .bind(&claim.token_id)
        .bind(&claim.key)
        .bind(micros(claim.not_before))
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT request_digest, receipt FROM idempotency_keys WHERE token_id = ? AND key = ?",
    )
    .bind(&claim.token_id)
    .bind(&claim.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let digest: Vec<u8> = row.try_get("request_digest")?;
    if digest != claim.request_digest {
        return Err(StoreError::IdempotencyMismatch);
    }
    let receipt: String = row.try_get("receipt")?;
    serde_json::from_str(&receipt)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            table: "idempotency_keys",
            detail: e.to_string(),
        })
}

async fn remember(
    conn: &mut SqliteConnection,
    claim: &IdempotencyClaim,
    receipt: &IngestReceipt,
    batch: &WriteBatch,
) -> StoreResult<()> {
    let json = serde_json::to_string(receipt).map_err(|e| StoreError::Corrupt {
        table: "idempotency_keys",
        detail: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO idempotency_keys (token_id, key, request_digest, receipt, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&claim.token_id)
    .bind(&claim.key)
    .bind(&claim.request_digest)
    .bind(json)
    .bind(micros(batch.received_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
