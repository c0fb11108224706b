//! Group writes on PostgreSQL (ARCHITECTURE §7): the batches of one group in one transaction
//! and one commit, on the store's own connection.
//!
//! No lock is taken between instances. Revisions are decided inside the transaction from what
//! it reads; when another instance commits the same key's next revision first, the unique key
//! refuses one of the two inserts and the loser's whole group is tried again, now reading what
//! the winner committed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

use super::copy::CopyEncoder;
use super::{Ids, PgStore};
use crate::domain::NewObservation;
use crate::store::plan::{self, Key, Latest, Planned};
use crate::store::{
    IdempotencyClaim, IngestReceipt, StoreError, StoreResult, WriteBatch, WriteOutcome,
};

/// Tries of one group when a concurrent writer took the same keys first.
const MAX_ATTEMPTS: u32 = 8;

/// A write connection idle this long is checked before it carries a group.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Up to `attempt` milliseconds, varying with the clock so two losers do not retry in step.
fn retry_pause(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_micros(u64::from(nanos % (attempt * 1000)))
}

/// COPY data is sent in chunks of about this many bytes.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// The fields of one COPYed row, as `COPY_COLUMNS` names them.
const COPY_FIELDS: i16 = 12;
const COPY_COLUMNS: &str = "COPY observations (series_id, period_start, period_end, revision, \
     value, reported_at, received_at, state, recorder_id, source_id, label, group_id) \
     FROM STDIN (FORMAT binary)";

/// A period of one series: the stored key less the revision.
type RowKey = (i32, DateTime<Utc>, DateTime<Utc>);

/// What a batch of the group comes to before the rows are written.
enum Fate {
    /// Its key was answered before, in an earlier commit.
    Replayed(IngestReceipt),
    /// Its key was used by an earlier batch of this group with the same request.
    SameAs(usize),
    Refused,
    Write,
}

/// Ids learnt inside a transaction, kept only once it has committed.
#[derive(Default)]
pub(super) struct Learnt {
    series: Vec<((String, String), i32)>,
    recorders: Vec<(String, i32)>,
    sources: Vec<(String, i32)>,
}

pub(super) fn retryable(error: &StoreError) -> bool {
    // Unique violation (another instance stored the key first), deadlock, serialization.
    matches!(error, StoreError::Database(sqlx::Error::Database(e))
        if matches!(e.code().as_deref(), Some("23505" | "40P01" | "40001")))
}

pub(super) async fn open_writer(
    options: &PgConnectOptions,
    timeout: Duration,
) -> StoreResult<PgConnection> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(conn) => Ok(conn?),
        // As the pool answers when it cannot connect in time: an outage, not an internal error.
        Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
    }
}

impl PgStore {
    pub(super) async fn group(
        &self,
        batches: &[WriteBatch],
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let mut slot = self.writer.lock().await;
        let mut attempt = 1;
        loop {
            // Taken out of the slot for the whole group: if this future is dropped half-way
            // (mid-COPY, say) the connection goes with it and the next group opens a new one.
            let mut conn = match slot.take() {
                Some((mut conn, last_used)) if last_used.elapsed() >= IDLE_CHECK => {
                    // A connection left idle may have been closed by the server (a restart, an
                    // idle timeout): checked before it carries a group, so a write never fails
                    // on a connection that was dead before it began.
                    match conn.ping().await {
                        Ok(()) => conn,
                        Err(error) => {
                            tracing::info!(%error, "write connection lost while idle; reopening");
                            open_writer(&self.connect_options, self.acquire_timeout).await?
                        }
                    }
                }
                Some((conn, _)) => conn,
                None => open_writer(&self.connect_options, self.acquire_timeout).await?,
            };
            match self.try_group(&mut conn, batches).await {
                Ok((outcomes, learnt)) => {
                    *slot = Some((conn, Instant::now()));
                    self.learn(learnt);
                    return Ok(outcomes);
                }
                Err(error) if attempt < MAX_ATTEMPTS && retryable(&error) => {
                    tracing::info!(%error, attempt, "write group raced another writer; retrying");
                    // The connection is dropped with the error, as after any error. A short,
                    // varying pause lets the other writer's group finish first.
                    drop(conn);
                    tokio::time::sleep(retry_pause(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_group(
        &self,
        conn: &mut PgConnection,
        batches: &[WriteBatch],
    ) -> StoreResult<(Vec<StoreResult<WriteOutcome>>, Learnt)> {
        let mut tx = conn.begin().await?;
        let group_id: i64 = sqlx::query_scalar("SELECT nextval('write_groups')")
            .fetch_one(&mut *tx)
            .await?;

        // Every claim of the group looked up at once; within the group, a key's first batch
        // answers for the later ones.
        let known = claims_of(&mut tx, batches).await?;
        let mut fates = Vec::with_capacity(batches.len());
        let mut claimed: HashMap<(&str, &str), (&[u8], usize)> = HashMap::new();
        for (index, batch) in batches.iter().enumerate() {
            let Some(claim) = &batch.idempotency else {
                fates.push(Fate::Write);
                continue;
            };
            let key = (claim.token_id.as_str(), claim.key.as_str());
            if let Some(&(digest, first)) = claimed.get(&key) {
                fates.push(if digest == &claim.request_digest[..] {
                    Fate::SameAs(first)
                } else {
                    Fate::Refused
                });
                continue;
            }
            fates.push(
                match known.get(&(claim.token_id.clone(), claim.key.clone())) {
                    Some((digest, _)) if *digest != claim.request_digest => Fate::Refused,
                    Some((_, receipt)) => Fate::Replayed(receipt.clone()),
                    None => {
                        claimed.insert(key, (&claim.request_digest[..], index));
                        Fate::Write
                    }
                },
            );
        }

        let writing: Vec<&WriteBatch> = batches
            .iter()
            .zip(&fates)
            .filter(|(_, fate)| matches!(fate, Fate::Write))
            .map(|(batch, _)| batch)
            .collect();
        let mut learnt = Learnt::default();
        let (ids, created) = self.resolve_ids(&mut tx, &writing, &mut learnt).await?;
        let mut latest = latest_of(&mut tx, &writing, &ids, &created).await?;

        let mut outcomes: Vec<Option<StoreResult<WriteOutcome>>> = Vec::with_capacity(fates.len());
        let mut fresh = Vec::new();
        let mut revised = Vec::new();
        let mut remembered = Vec::new();
        for (batch, fate) in batches.iter().zip(&fates) {
            outcomes.push(match fate {
                Fate::Replayed(receipt) => Some(Ok(WriteOutcome::Replayed(receipt.clone()))),
                Fate::Refused => Some(Err(StoreError::IdempotencyMismatch)),
                Fate::SameAs(_) => None,
                Fate::Write => {
                    let (planned, duplicates) =
                        plan::plan_revisions_in(&batch.rows, 0..batch.rows.len(), &mut latest);
                    for p in &planned {
                        let target = if p.revision == 1 {
                            &mut fresh
                        } else {
                            &mut revised
                        };
                        target.push((batch, *p));
                    }
                    let mut accepted: Vec<usize> = planned.iter().map(|p| p.index).collect();
                    accepted.sort_unstable();
                    let receipt = IngestReceipt {
                        accepted: accepted.len(),
                        duplicates: duplicates.len(),
                        rejected: batch.rejected.clone(),
                    };
                    if let Some(claim) = &batch.idempotency {
                        remembered.push((claim, batch.received_at, receipt.clone()));
                    }
                    Some(Ok(WriteOutcome::Written { receipt, accepted }))
                }
            });
        }
        for (index, fate) in fates.iter().enumerate() {
            if let Fate::SameAs(first) = fate {
                let receipt = match &outcomes[*first] {
                    Some(Ok(outcome)) => outcome.receipt().clone(),
                    _ => {
                        return Err(StoreError::Corrupt {
                            table: "idempotency_keys",
                            detail: "a key's first batch in the group was not written".into(),
                        })
                    }
                };
                outcomes[index] = Some(Ok(WriteOutcome::Replayed(receipt)));
            }
        }

        remember(&mut tx, &remembered).await?;
        copy_fresh(&mut tx, &fresh, &ids, group_id).await?;
        insert_revised(&mut tx, &revised, &ids, group_id).await?;
        tx.commit().await?;
        Ok((outcomes.into_iter().flatten().collect(), learnt))
    }

    /// The ids of every series, recorder and source the rows name, creating those missing;
    /// with the ids of the series created here, which hold no revision yet.
    async fn resolve_ids(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batches: &[&WriteBatch],
        learnt: &mut Learnt,
    ) -> StoreResult<(Ids, HashSet<i32>)> {
        let mut ids = Ids::default();
        let mut created = HashSet::new();
        let mut missing_series = Vec::new();
        let mut missing_recorders = Vec::new();
        let mut missing_sources = Vec::new();
        {
            let known = self.ids.read().unwrap_or_else(|e| e.into_inner());
            for batch in batches {
                match known.recorders.get(&batch.recorded_by) {
                    Some(&id) => {
                        ids.recorders.insert(batch.recorded_by.clone(), id);
                    }
                    None => missing_recorders.push(batch.recorded_by.clone()),
                }
                for row in &batch.rows {
                    let series = series_key(row);
                    if let std::collections::hash_map::Entry::Vacant(entry) =
                        ids.series.entry(series)
                    {
                        match known.series.get(entry.key()) {
                            Some(&id) => {
                                entry.insert(id);
                            }
                            None => missing_series.push(entry.into_key()),
                        }
                    }
                    if let Some(source) = &row.source {
                        match known.sources.get(source) {
                            Some(&id) => {
                                ids.sources.insert(source.clone(), id);
                            }
                            None => missing_sources.push(source.clone()),
                        }
                    }
                }
            }
        }
        // Sorted, so that two writers creating the same names lock them in the same order.
        missing_series.sort_unstable();
        missing_series.dedup();
        missing_recorders.sort_unstable();
        missing_recorders.dedup();
        missing_sources.sort_unstable();
        missing_sources.dedup();
        if !missing_series.is_empty() {
            let (indicators, units): (Vec<&str>, Vec<&str>) = missing_series
                .iter()
                .map(|(i, u)| (i.as_str(), u.as_str()))
                .unzip();
            let inserted: Vec<i32> = sqlx::query_scalar(
                "INSERT INTO series (indicator, unit) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(&indicators)
            .bind(&units)
            .fetch_all(&mut **tx)
            .await?;
            created.extend(inserted);
            let rows = sqlx::query(
                "SELECT s.id, s.indicator, s.unit FROM series s \
                 JOIN UNNEST($1::text[], $2::text[]) AS k(indicator, unit) \
                   ON s.indicator = k.indicator AND s.unit = k.unit",
            )
            .bind(&indicators)
            .bind(&units)
            .fetch_all(&mut **tx)
            .await?;
            for row in rows {
                let key = (row.try_get("indicator")?, row.try_get("unit")?);
                let id: i32 = row.try_get("id")?;
                ids.series.insert(key.clone(), id);
                learnt.series.push((key, id));
            }
        }
        for (table, missing, found, learnt) in [
            (
                "recorders",
                &missing_recorders,
                &mut ids.recorders,
                &mut learnt.recorders,
            ),
            (
                "sources",
                &missing_sources,
                &mut ids.sources,
                &mut learnt.sources,
            ),
        ] {
            if missing.is_empty() {
                continue;
            }
            sqlx::query(&format!(
                "INSERT INTO {table} (name) SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING"
            ))
            .bind(missing)
            .execute(&mut **tx)
            .await?;
            let rows: Vec<(i32, String)> = sqlx::query_as(&format!(
                "SELECT id, name FROM {table} WHERE name = ANY($1::text[])"
            ))
            .bind(missing)
            .fetch_all(&mut **tx)
            .await?;
            for (id, name) in rows {
                found.insert(name.clone(), id);
                learnt.push((name, id));
            }
        }
        Ok((ids, created))
    }

    fn learn(&self, learnt: Learnt) {
        if learnt.series.is_empty() && learnt.recorders.is_empty() && learnt.sources.is_empty() {
            return;
        }
        let mut known = self.ids.write().unwrap_or_else(|e| e.into_inner());
        known.series.extend(learnt.series);
        known.recorders.extend(learnt.recorders);
        known.sources.extend(learnt.sources);
    }
}

fn series_key(row: &NewObservation) -> (String, String) {
    (
        row.indicator.as_str().to_owned(),
        row.unit.as_str().to_owned(),
    )
}

fn missing(what: &str, name: &str) -> StoreError {
    StoreError::Corrupt {
        table: "series",
        detail: format!("no id for {what} `{name}`"),
    }
}

fn series_id(ids: &Ids, row: &NewObservation) -> StoreResult<i32> {
    ids.series
        .get(&series_key(row))
        .copied()
        .ok_or_else(|| missing("series", &format!("{}/{}", row.indicator, row.unit)))
}

fn recorder_id(ids: &Ids, batch: &WriteBatch) -> StoreResult<i32> {
    ids.recorders
        .get(&batch.recorded_by)
        .copied()
        .ok_or_else(|| missing("recorder", &batch.recorded_by))
}

fn source_id(ids: &Ids, row: &NewObservation) -> StoreResult<Option<i32>> {
    row.source
        .as_ref()
        .map(|source| {
            ids.sources
                .get(source)
                .copied()
                .ok_or_else(|| missing("source", source))
        })
        .transpose()
}

/// What was stored under each claim's key and is still live: its request's digest and the
/// receipt answered. Keys older than their claim's `not_before` are forgotten first, so they
/// may be used again.
async fn claims_of(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[WriteBatch],
) -> StoreResult<HashMap<(String, String), (Vec<u8>, IngestReceipt)>> {
    let claims: Vec<&IdempotencyClaim> = batches
        .iter()
        .filter_map(|b| b.idempotency.as_ref())
        .collect();
    if claims.is_empty() {
        return Ok(HashMap::new());
    }
    let tokens: Vec<&str> = claims.iter().map(|c| c.token_id.as_str()).collect();
    let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
    let not_before: Vec<DateTime<Utc>> = claims.iter().map(|c| c.not_before).collect();
    sqlx::query(
        "DELETE FROM idempotency_keys i \
         USING UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS k(token_id, key, not_before) \
         WHERE i.token_id = k.token_id AND i.key = k.key AND i.created_at < k.not_before",
    )
    .bind(&tokens)
    .bind(&keys)
    .bind(&not_before)
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query(
        "SELECT DISTINCT i.token_id, i.key, i.request_digest, i.receipt FROM idempotency_keys i \
         JOIN UNNEST($1::text[], $2::text[]) AS k(token_id, key) \
           ON i.token_id = k.token_id AND i.key = k.key",
    )
    .bind(&tokens)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    let mut known = HashMap::with_capacity(rows.len());
    for row in rows {
        let receipt: serde_json::Value = row.try_get("receipt")?;
        let receipt = serde_json::from_value(receipt).map_err(|e| StoreError::Corrupt {
            table: "idempotency_keys",
            detail: e.to_string(),
        })?;
        known.insert(
            (row.try_get("token_id")?, row.try_get("key")?),
            (row.try_get("request_digest")?, receipt),
        );
    }
    Ok(known)
}

/// Remembers the receipts of the group's written batches under their keys, in one statement.
async fn remember(
    tx: &mut Transaction<'_, Postgres>,
    claims: &[(&IdempotencyClaim, DateTime<Utc>, IngestReceipt)],
) -> StoreResult<()> {
    if claims.is_empty() {
        return Ok(());
    }
    let mut tokens = Vec::with_capacity(claims.len());
    let mut keys = Vec::with_capacity(claims.len());
    let mut digests = Vec::with_capacity(claims.len());
    let mut receipts = Vec::with_capacity(claims.len());
    let mut created = Vec::with_capacity(claims.len());
    for (claim, at, receipt) in claims {
        tokens.push(claim.token_id.as_str());
        keys.push(claim.key.as_str());
        digests.push(claim.request_digest.as_slice());
        receipts.push(
            serde_json::to_value(receipt).map_err(|e| StoreError::Corrupt {
                table: "idempotency_keys",
                detail: e.to_string(),
            })?,
        );
        created.push(*at);
    }
    sqlx::query(
        "INSERT INTO idempotency_keys (token_id, key, request_digest, receipt, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::timestamptz[])",
    )
    .bind(&tokens)
    .bind(&keys)
    .bind(&digests)
    .bind(&receipts)
    .bind(&created)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The latest stored revision of every period the group's rows name, by the rows' own keys.
/// Series `created` in this transaction have none, and are not looked up.
async fn latest_of(
    tx: &mut Transaction<'_, Postgres>,
    batches: &[&WriteBatch],
    ids: &Ids,
    created: &HashSet<i32>,
) -> StoreResult<HashMap<Key, Latest>> {
    let mut keys: HashMap<RowKey, Key> = HashMap::new();
    for row in batches.iter().flat_map(|batch| &batch.rows) {
        let series = series_id(ids, row)?;
        if created.contains(&series) {
            continue;
        }
        let key = (series, row.period_start, row.period_end);
        keys.entry(key).or_insert_with(|| plan::key_of(row));
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let n = keys.len();
    let (mut series, mut starts, mut ends) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, start, end) in keys.keys() {
        series.push(*id);
        starts.push(*start);
        ends.push(*end);
    }
    let (Some(&first), Some(&last)) = (starts.iter().min(), starts.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows = sqlx::query(
        "SELECT DISTINCT ON (o.series_id, o.period_start, o.period_end) \
                o.series_id, o.period_start, o.period_end, o.revision, o.value, o.label, src.name AS source \
         FROM UNNEST($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS k(series_id, period_start, period_end) \
         JOIN observations o ON o.series_id = k.series_id AND o.period_start = k.period_start \
                            AND o.period_end = k.period_end \
         LEFT JOIN sources src ON src.id = o.source_id \
         WHERE o.period_start BETWEEN $4 AND $5 \
         ORDER BY o.series_id, o.period_start, o.period_end, o.revision DESC",
    )
    .bind(&series)
    .bind(&starts)
    .bind(&ends)
    // The group's span as plain bounds: on a hypertable they exclude every chunk outside it
    // before a key is probed, where the join alone would probe each key in every chunk (an
    // append after years of history ran 14 times slower without them).
    .bind(first)
    .bind(last)
    .fetch_all(&mut **tx)
    .await?;
    let mut latest = HashMap::with_capacity(rows.len());
    for row in rows {
        let key: RowKey = (
            row.try_get("series_id")?,
            row.try_get("period_start")?,
            row.try_get("period_end")?,
        );
        let Some(key) = keys.remove(&key) else {
            continue;
        };
        latest.insert(
            key,
            Latest {
                revision: row.try_get("revision")?,
                value: row.try_get("value")?,
                revision_label: row.try_get("label")?,
                source: row.try_get("source")?,
            },
        );
    }
    Ok(latest)
}

/// The periods no revision existed for, as revision 1, by binary COPY: the unique key proves
/// that none appeared meanwhile.
async fn copy_fresh(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(&WriteBatch, Planned)],
    ids: &Ids,
    group_id: i64,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = tx.copy_in_raw(COPY_COLUMNS).await?;
    let mut encoder = CopyEncoder::new(COPY_CHUNK_BYTES);
    for (batch, planned) in rows {
        let row = &batch.rows[planned.index];
        let encoded = (|| -> StoreResult<()> {
            encoder.tuple(COPY_FIELDS);
            encoder.int4(series_id(ids, row)?);
            encoder.timestamptz(row.period_start);
            encoder.timestamptz(row.period_end);
            encoder.int4(planned.revision);
            encoder.opt_float8(row.value);
            encoder.timestamptz(row.reported_at.unwrap_or(batch.received_at));
            encoder.timestamptz(batch.received_at);
            encoder.int2(crate::domain::ApprovalState::Preliminary.as_i16());
            encoder.int4(recorder_id(ids, batch)?);
            encoder.opt_int4(source_id(ids, row)?);
            encoder.opt_text(row.revision_label.as_deref());
            encoder.int8(group_id);
            Ok(())
        })();
        if let Err(error) = encoded {
            // Ends the COPY so the connection is usable again; the group fails with the error.
            let _ = copy.abort("a row could not be encoded").await;
            return Err(error);
        }
        if encoder.len() >= COPY_CHUNK_BYTES {
            copy.send(encoder.take()).await?;
        }
    }
    copy.send(encoder.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// Later revisions of stored periods, with one UNNEST insert.
async fn insert_revised(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[(&WriteBatch, Planned)],
    ids: &Ids,
    group_id: i64,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut series = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    let mut revisions = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut reported = Vec::with_capacity(n);
    let mut received = Vec::with_capacity(n);
    let mut recorders = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (batch, planned) in rows {
        let row = &batch.rows[planned.index];
        series.push(series_id(ids, row)?);
        starts.push(row.period_start);
        ends.push(row.period_end);
        revisions.push(planned.revision);
        values.push(row.value);
        reported.push(row.reported_at.unwrap_or(batch.received_at));
        received.push(batch.received_at);
        recorders.push(recorder_id(ids, batch)?);
        sources.push(source_id(ids, row)?);
        labels.push(row.revision_label.as_deref());
    }
    sqlx::query(
        "INSERT INTO observations (series_id, period_start, period_end, revision, value, \
                                   reported_at, received_at, state, recorder_id, source_id, label, group_id) \
         SELECT s, ps, pe, r, v, rep, rec, 0, rcd, src, l, $11 \
         FROM UNNEST($1::int4[], $2::timestamptz[], $3::timestamptz[], $4::int4[], $5::float8[], \
                     $6::timestamptz[], $7::timestamptz[], $8::int4[], $9::int4[], $10::text[]) \
              AS t(s, ps, pe, r, v, rep, rec, rcd, src, l)",
    )
    .bind(&series)
    .bind(&starts)
    .bind(&ends)
    .bind(&revisions)
    .bind(&values)
    .bind(&reported)
    .bind(&received)
    .bind(&recorders)
    .bind(&sources)
    .bind(&labels)
    .bind(group_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
