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

use super::commits;
use super::copy::CopyEncoder;
use super::{Ids, PgStore};
use crate::domain::code::CodeHash;
use crate::domain::NewObservation;
use crate::store::activity::PushNote;
use crate::store::plan::{Latest, Planned};
use crate::store::{
    CommitKind, IdempotencyClaim, IngestReceipt, StoreError, StoreResult, Turn, WriteBatch,
    WriteOutcome,
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

/// Maps and sets looked up once or more per row of a group: a seeded hash (foldhash) costs a
/// fraction of SipHash's per key, and keys a sender chose cannot be made to collide without
/// knowing this process's seed.
type RowMap<V> = HashMap<RowKey, V, foldhash::fast::RandomState>;
type IdSet = HashSet<i32, foldhash::fast::RandomState>;

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

/// How long a write group that has written its rows waits for the group before it to end
/// before it gives its locks up (see [`PgStore::group`]). A group commits in milliseconds; one
/// still running after this long may be waiting, through others, for a lock of this one.
const TURN_LIMIT: Duration = Duration::from_secs(1);

/// How often a group waiting for its turn looks whether another session waits for it.
const TURN_CHECK: Duration = Duration::from_millis(5);

/// Waits, holding the group's locks, for the group before to end: false, to give the locks up,
/// when another session waits for one of them (the group before, say, needing a chunk this one
/// created first: a wait PostgreSQL cannot see as a deadlock, since this side of it waits in
/// the writer) or after [`TURN_LIMIT`].
async fn wait_for_turn(
    tx: &mut Transaction<'_, Postgres>,
    turn: &mut Turn,
) -> Result<bool, TryError> {
    let deadline = Instant::now() + TURN_LIMIT;
    loop {
        if turn.wait_at_most(TURN_CHECK).await {
            return Ok(true);
        }
        let waited_for: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
             WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid)))",
        )
        .fetch_one(&mut **tx)
        .await?;
        if waited_for || Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// Why one try at writing a group failed.
#[derive(Debug)]
pub(super) enum TryError {
    Store(StoreError),
    /// The group before did not end within [`TURN_LIMIT`].
    TurnLate,
    /// The group was taken as new, but holds a period already stored.
    Stored,
}

impl From<StoreError> for TryError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<sqlx::Error> for TryError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
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
    /// Writes a group on write lane `lane`, committing once `turn` (the group before) has
    /// ended, when given.
    pub(super) async fn group(
        &self,
        batches: &[WriteBatch],
        notes: &[Option<PushNote>],
        lane: usize,
        mut turn: Option<&mut Turn>,
    ) -> StoreResult<Vec<StoreResult<WriteOutcome>>> {
        let mut slot = self.writers[lane].lock().await;
        let mut attempt = 1;
        let mut look_up = false;
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
            match self
                .try_group(&mut conn, batches, notes, look_up, turn.as_deref_mut())
                .await
            {
                Ok((outcomes, learnt)) => {
                    *slot = Some((conn, Instant::now()));
                    self.learn(learnt);
                    return Ok(outcomes);
                }
                Err(TryError::Stored) => {
                    // Rolled back on a connection still in step: written again, looked up.
                    tracing::debug!(
                        rows = batches.iter().map(|b| b.rows.len()).sum::<usize>(),
                        "a group taken as new holds stored periods; planning it from them"
                    );
                    look_up = true;
                    *slot = Some((conn, Instant::now()));
                }
                Err(TryError::TurnLate) => {
                    // The group before has not ended in time: it may be waiting for a lock
                    // this one holds, which PostgreSQL cannot see as a deadlock. Rolled back,
                    // this group holds nothing; it waits its turn and is written again.
                    tracing::info!(
                        lane,
                        "write group waited too long for its turn; writing it again after"
                    );
                    drop(conn);
                    if let Some(turn) = turn.as_deref_mut() {
                        turn.wait().await;
                    }
                }
                Err(TryError::Store(error)) if attempt < MAX_ATTEMPTS && retryable(&error) => {
                    tracing::info!(%error, attempt, "write group raced another writer; retrying");
                    // The connection is dropped with the error, as after any error. A short,
                    // varying pause lets the other writer's group finish first.
                    drop(conn);
                    tokio::time::sleep(retry_pause(attempt)).await;
                    attempt += 1;
                }
                Err(TryError::Store(error)) => return Err(error),
            }
        }
    }

    async fn try_group(
        &self,
        conn: &mut PgConnection,
        batches: &[WriteBatch],
        notes: &[Option<PushNote>],
        look_up: bool,
        turn: Option<&mut Turn>,
    ) -> Result<(Vec<StoreResult<WriteOutcome>>, Learnt), TryError> {
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
        let series = series_of(batches, &fates, &ids)?;
        let keys = stored_keys(batches, &series, &created);
        let lookup = if self.timescale.load(std::sync::atomic::Ordering::Relaxed) {
            Lookup::Joined
        } else {
            Lookup::Probed
        };

        // A group of periods never stored before (an append, the common case) is planned without
        // looking its keys up: every row planned as a first revision goes in by COPY, and the
        // unique key refuses revision 1 of any period already stored, since no revision is ever
        // deleted. A refusal rolls the group back, and it is written again, planned from the
        // stored revisions ([`TryError::Stored`]); no savepoint costs the common case two round
        // trips. A small sample of the keys is looked up first, so that a re-sent batch goes
        // straight to the lookup instead of failing a COPY.
        let mut assume_new = !look_up && !keys.is_empty() && none_stored(&mut tx, &keys).await?;
        let mut latest = if assume_new {
            // Every row of an append becomes a key of its own.
            RowMap::with_capacity_and_hasher(keys.len(), Default::default())
        } else {
            latest_of(&mut tx, &keys, lookup).await?
        };
        let mut plan = plan_group(batches, &fates, &series, &created, &ids, &mut latest)?;
        if assume_new && plan.unproven {
            // A retraction of a period taken as empty changes nothing, and no COPY would prove
            // the period empty: those need the lookup.
            assume_new = false;
            latest = latest_of(&mut tx, &keys, lookup).await?;
            plan = plan_group(batches, &fates, &series, &created, &ids, &mut latest)?;
        }
        match copy_fresh(&mut tx, &plan.fresh, &ids, group_id).await {
            Ok(()) => {}
            Err(error) if assume_new && unique_violation(&error) => {
                tx.rollback().await?;
                return Err(TryError::Stored);
            }
            Err(error) => return Err(error.into()),
        }
        insert_revised(&mut tx, &plan.revised, &ids, group_id).await?;
        // Up to here the group has only added rows under keys of its own; what follows takes
        // locks the group before may want too (idempotency claims, the minute's activity), so
        // it waits for that group to end first, and so commits after it.
        if let Some(turn) = turn {
            if !wait_for_turn(&mut tx, turn).await? {
                return Err(TryError::TurnLate);
            }
        }
        remember(&mut tx, &plan.remembered).await?;
        if !plan.fresh.is_empty() || !plan.revised.is_empty() {
            // The writer stamps every batch of a group with one instant.
            let at = batches.first().map_or_else(Utc::now, |b| b.received_at);
            let written = || plan.fresh.iter().chain(&plan.revised);
            let mut series: Vec<i32> = written().map(|i| i.series).collect();
            series.sort_unstable();
            series.dedup();
            let starts = written().map(|i| i.row.period_start);
            let keys = commits::GroupKeys {
                series,
                first_start: starts.clone().min().unwrap_or(at),
                last_start: starts.max().unwrap_or(at),
            };
            commits::record_group(
                &mut tx,
                &self.instance,
                group_id,
                CommitKind::Observations,
                None,
                Some(&keys),
                at,
            )
            .await?;
        }
        // Each push's activity commits with its rows (ARCHITECTURE §1).
        let filed = crate::store::activity::file(batches, notes, &plan.outcomes);
        super::activity::record(&mut tx, &filed, Utc::now()).await?;
        tx.commit().await?;
        Ok((plan.outcomes, learnt))
    }

    /// The ids of every series, recorder and source the rows name, creating those missing;
    /// with the ids of the series created here, which hold no revision yet.
    async fn resolve_ids(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batches: &[&WriteBatch],
        learnt: &mut Learnt,
    ) -> StoreResult<(Ids, IdSet)> {
        let mut ids = Ids::default();
        let mut created = IdSet::default();
        let mut missing_series = Vec::new();
        let mut missing_recorders = Vec::new();
        let mut missing_sources = Vec::new();
        {
            let known = self.ids.read().unwrap_or_else(|e| e.into_inner());
            // Each name is looked up once, however many rows carry it: the cache is keyed by
            // owned strings, and a key built per row would cost two allocations a row.
            let mut seen: HashSet<(&str, &str), CodeHash> = HashSet::default();
            let mut seen_sources: HashSet<&str> = HashSet::new();
            for batch in batches {
                match known.recorders.get(&batch.recorded_by) {
                    Some(&id) => {
                        ids.recorders.insert(batch.recorded_by.clone(), id);
                    }
                    None => missing_recorders.push(batch.recorded_by.clone()),
                }
                for row in &batch.rows {
                    if seen.insert((row.indicator.as_str(), row.unit.as_str())) {
                        let series = series_key(row);
                        match known.series.get(&series) {
                            Some(&id) => {
                                ids.series.insert(series, id);
                            }
                            None => missing_series.push(series),
                        }
                    }
                    if let Some(source) = &row.source {
                        if seen_sources.insert(source.as_str()) {
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

/// Each written batch's rows' series ids, in row order; empty for batches not written.
fn series_of(batches: &[WriteBatch], fates: &[Fate], ids: &Ids) -> StoreResult<Vec<Vec<i32>>> {
    let by_name: HashMap<(&str, &str), i32, CodeHash> = ids
        .series
        .iter()
        .map(|((indicator, unit), &id)| ((indicator.as_str(), unit.as_str()), id))
        .collect();
    batches
        .iter()
        .zip(fates)
        .map(|(batch, fate)| {
            if !matches!(fate, Fate::Write) {
                return Ok(Vec::new());
            }
            batch
                .rows
                .iter()
                .map(|row| {
                    by_name
                        .get(&(row.indicator.as_str(), row.unit.as_str()))
                        .copied()
                        .ok_or_else(|| {
                            missing("series", &format!("{}/{}", row.indicator, row.unit))
                        })
                })
                .collect()
        })
        .collect()
}

/// The periods of the written rows that may already hold revisions (all but those of series
/// `created` in this transaction), in row order, a period as often as its rows name it: most
/// groups only have a few of them looked up, and are spared hashing every row's key.
fn stored_keys(batches: &[WriteBatch], series: &[Vec<i32>], created: &IdSet) -> Vec<RowKey> {
    batches
        .iter()
        .zip(series)
        .flat_map(|(batch, series)| batch.rows.iter().zip(series))
        .filter(|(_, id)| !created.contains(id))
        .map(|(row, &id)| (id, row.period_start, row.period_end))
        .collect()
}

/// The latest revision of each key, one index probe per key. The span of the keys bounds the
/// probes as plain values too, which on a hypertable leaves out every chunk outside it. On plain
/// PostgreSQL a join of the keys with the table ([`LATEST_JOINED`]) became a scan of the whole
/// table for the span, which grew with the table (117 ms for 10,000 keys among 900,000 rows,
/// against 16 ms probed).
const LATEST_PROBED: &str = "SELECT k.series_id, k.period_start, k.period_end, o.revision, \
            o.value, o.label, src.name AS source \
     FROM UNNEST($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS k(series_id, period_start, period_end) \
     CROSS JOIN LATERAL ( \
         SELECT o.revision, o.value, o.label, o.source_id FROM observations o \
         WHERE o.series_id = k.series_id AND o.period_start = k.period_start \
           AND o.period_end = k.period_end AND o.period_start BETWEEN $4 AND $5 \
         ORDER BY o.revision DESC LIMIT 1) o \
     LEFT JOIN sources src ON src.id = o.source_id";

/// The latest revision of each key, the keys joined with the table. On a hypertable the span's
/// bounds exclude every chunk outside it before a key is probed (an append after years of history
/// ran 14 times slower without them), and the chunks left are read whole: 12–28 ms for 10,000
/// keys in a year's chunk of 600,000 rows, where probing each key through TimescaleDB's chunk
/// append took 115–280 ms.
const LATEST_JOINED: &str = "SELECT DISTINCT ON (o.series_id, o.period_start, o.period_end) \
            o.series_id, o.period_start, o.period_end, o.revision, o.value, o.label, \
            src.name AS source \
     FROM UNNEST($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS k(series_id, period_start, period_end) \
     JOIN observations o ON o.series_id = k.series_id AND o.period_start = k.period_start \
                        AND o.period_end = k.period_end \
     LEFT JOIN sources src ON src.id = o.source_id \
     WHERE o.period_start BETWEEN $4 AND $5 \
     ORDER BY o.series_id, o.period_start, o.period_end, o.revision DESC";

/// How the latest revisions of a group's keys are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// An index probe per key: plain PostgreSQL, and a few keys on any server.
    Probed,
    /// The keys joined with the chunks of their span: many keys in a hypertable.
    Joined,
}

/// The latest stored revision of every key (each looked up once, however often it is named).
async fn latest_of(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[RowKey],
    lookup: Lookup,
) -> StoreResult<RowMap<Latest>> {
    if keys.is_empty() {
        return Ok(RowMap::default());
    }
    let n = keys.len();
    let (mut series, mut starts, mut ends) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut seen = HashSet::with_capacity(n);
    for &(id, start, end) in keys {
        if seen.insert((id, start, end)) {
            series.push(id);
            starts.push(start);
            ends.push(end);
        }
    }
    let (Some(&first), Some(&last)) = (starts.iter().min(), starts.iter().max()) else {
        return Ok(RowMap::default());
    };
    let statement = match lookup {
        Lookup::Probed => LATEST_PROBED,
        Lookup::Joined => LATEST_JOINED,
    };
    let rows = sqlx::query(statement)
        .bind(&series)
        .bind(&starts)
        .bind(&ends)
        .bind(first)
        .bind(last)
        .fetch_all(&mut **tx)
        .await?;
    let mut latest = RowMap::with_capacity_and_hasher(rows.len(), Default::default());
    for row in rows {
        let key: RowKey = (
            row.try_get("series_id")?,
            row.try_get("period_start")?,
            row.try_get("period_end")?,
        );
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

/// Keys looked up before a group is taken as new.
const SAMPLED_KEYS: usize = 32;

/// Whether none of a sample of `keys`, spread evenly from the first to the last, is stored.
async fn none_stored(tx: &mut Transaction<'_, Postgres>, keys: &[RowKey]) -> StoreResult<bool> {
    let sample: Vec<RowKey> = if keys.len() <= SAMPLED_KEYS {
        keys.to_vec()
    } else {
        (0..SAMPLED_KEYS)
            .map(|i| keys[i * (keys.len() - 1) / (SAMPLED_KEYS - 1)])
            .collect()
    };
    Ok(latest_of(tx, &sample, Lookup::Probed).await?.is_empty())
}

fn unique_violation(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(sqlx::Error::Database(e))
        if e.code().as_deref() == Some("23505"))
}

/// One row to insert, with the ids and revision it is stored under.
#[derive(Clone, Copy)]
struct Insert<'a> {
    batch: &'a WriteBatch,
    row: &'a NewObservation,
    series: i32,
    recorder: i32,
    revision: i32,
}

/// What a group comes to: each batch's outcome, the rows to insert, the receipts to remember.
struct GroupPlan<'a> {
    outcomes: Vec<StoreResult<WriteOutcome>>,
    /// First revisions, by COPY.
    fresh: Vec<Insert<'a>>,
    /// Later revisions of periods stored or written earlier in the group.
    revised: Vec<Insert<'a>>,
    remembered: Vec<(&'a IdempotencyClaim, DateTime<Utc>, IngestReceipt)>,
    /// Some period absent from `latest` was only retracted, so no first revision of it is
    /// written to prove it empty.
    unproven: bool,
}

/// Plans every written batch of the group in order against `latest`, which then holds what each
/// key's latest revision has become.
fn plan_group<'a>(
    batches: &'a [WriteBatch],
    fates: &[Fate],
    series: &[Vec<i32>],
    created: &IdSet,
    ids: &Ids,
    latest: &mut RowMap<Latest>,
) -> StoreResult<GroupPlan<'a>> {
    let mut plan = GroupPlan {
        outcomes: Vec::with_capacity(batches.len()),
        fresh: Vec::new(),
        revised: Vec::new(),
        remembered: Vec::new(),
        unproven: false,
    };
    let mut outcomes: Vec<Option<StoreResult<WriteOutcome>>> = Vec::with_capacity(fates.len());
    for ((batch, fate), series) in batches.iter().zip(fates).zip(series) {
        outcomes.push(match fate {
            Fate::Replayed(receipt) => Some(Ok(WriteOutcome::Replayed(receipt.clone()))),
            Fate::Refused => Some(Err(StoreError::IdempotencyMismatch)),
            Fate::SameAs(_) => None,
            Fate::Write => {
                let recorder = recorder_id(ids, batch)?;
                let (planned, duplicates, unproven) =
                    plan_rows(&batch.rows, series, created, latest);
                plan.unproven |= unproven;
                let mut accepted = Vec::with_capacity(planned.len());
                let changes = crate::store::plan::Changes::of(&batch.rows, &planned);
                for p in planned {
                    let insert = Insert {
                        batch,
                        row: &batch.rows[p.index],
                        series: series[p.index],
                        recorder,
                        revision: p.revision,
                    };
                    if p.revision == 1 {
                        plan.fresh.push(insert);
                    } else {
                        plan.revised.push(insert);
                    }
                    accepted.push(p.index);
                }
                let receipt = IngestReceipt {
                    accepted: accepted.len(),
                    duplicates,
                    rejected: batch.rejected.clone(),
                    updated: changes.updated,
                    withdrawn: changes.withdrawn,
                };
                if let Some(claim) = &batch.idempotency {
                    plan.remembered
                        .push((claim, batch.received_at, receipt.clone()));
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
    plan.outcomes = outcomes.into_iter().flatten().collect();
    Ok(plan)
}

/// [`plan::plan_revisions_in`] for one batch, keyed by series id and bounds rather than by
/// codes and the period's text, which would cost three allocations a row: row by row, a new
/// revision or a duplicate of the key's latest value, label and source. Returns the planned
/// rows in order, the number of duplicates, and whether a retraction met a key absent from
/// `latest` outside the series `created` here (see [`GroupPlan::unproven`]).
fn plan_rows(
    rows: &[NewObservation],
    series: &[i32],
    created: &IdSet,
    latest: &mut RowMap<Latest>,
) -> (Vec<Planned>, usize, bool) {
    use std::collections::hash_map::Entry;
    let mut planned = Vec::with_capacity(rows.len());
    let mut duplicates = 0;
    let mut unproven = false;
    for (index, (row, &id)) in rows.iter().zip(series).enumerate() {
        match latest.entry((id, row.period_start, row.period_end)) {
            Entry::Vacant(_) if row.value.is_none() => {
                unproven |= !created.contains(&id);
                duplicates += 1;
            }
            Entry::Vacant(entry) => {
                entry.insert(Latest {
                    revision: 1,
                    value: row.value,
                    revision_label: row.revision_label.clone(),
                    source: row.source.clone(),
                });
                planned.push(Planned {
                    index,
                    revision: 1,
                    replaces: false,
                });
            }
            Entry::Occupied(mut entry) => {
                let current = entry.get_mut();
                // A retraction of an empty period, or the latest content again. Bitwise: a
                // re-sent value parses to the same f64; -0.0 after 0.0 is kept.
                let unchanged = row.value.is_none() && current.value.is_none()
                    || current.value.map(f64::to_bits) == row.value.map(f64::to_bits)
                        && current.revision_label == row.revision_label
                        && current.source == row.source;
                if unchanged {
                    duplicates += 1;
                } else {
                    let replaces = current.value.is_some() && row.value.is_some();
                    *current = Latest {
                        revision: current.revision + 1,
                        value: row.value,
                        revision_label: row.revision_label.clone(),
                        source: row.source.clone(),
                    };
                    planned.push(Planned {
                        index,
                        revision: current.revision,
                        replaces,
                    });
                }
            }
        }
    }
    (planned, duplicates, unproven)
}

/// The periods no revision existed for, as revision 1, by binary COPY: the unique key proves
/// that none appeared meanwhile.
async fn copy_fresh(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[Insert<'_>],
    ids: &Ids,
    group_id: i64,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // In the key's order (ARCHITECTURE §7): a feed sends a period of many series at once, and
    // taken as sent each row lands on another leaf of the key than the row before it; in
    // order, runs of rows go to one leaf, whose path down the index is still in the cache.
    let mut ordered: Vec<&Insert<'_>> = rows.iter().collect();
    ordered.sort_unstable_by_key(|insert| {
        (
            insert.series,
            insert.row.period_start,
            insert.row.period_end,
        )
    });
    let mut copy = tx.copy_in_raw(COPY_COLUMNS).await?;
    let mut encoder = CopyEncoder::new(COPY_CHUNK_BYTES);
    for insert in ordered {
        let row = insert.row;
        let source = match source_id(ids, row) {
            Ok(source) => source,
            Err(error) => {
                // Ends the COPY so the connection is usable again; the group fails with the error.
                let _ = copy.abort("a row could not be encoded").await;
                return Err(error);
            }
        };
        encoder.tuple(COPY_FIELDS);
        encoder.int4(insert.series);
        encoder.timestamptz(row.period_start);
        encoder.timestamptz(row.period_end);
        encoder.int4(insert.revision);
        encoder.opt_float8(row.value);
        encoder.timestamptz(row.reported_at.unwrap_or(insert.batch.received_at));
        encoder.timestamptz(insert.batch.received_at);
        encoder.int2(crate::domain::ApprovalState::Preliminary.as_i16());
        encoder.int4(insert.recorder);
        encoder.opt_int4(source);
        encoder.opt_text(row.revision_label.as_deref());
        encoder.int8(group_id);
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
    rows: &[Insert<'_>],
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
    for insert in rows {
        let row = insert.row;
        series.push(insert.series);
        starts.push(row.period_start);
        ends.push(row.period_end);
        revisions.push(insert.revision);
        values.push(row.value);
        reported.push(row.reported_at.unwrap_or(insert.batch.received_at));
        received.push(insert.batch.received_at);
        recorders.push(insert.recorder);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Period};
    use crate::store::plan;

    const ZONE: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

    /// A small deterministic generator, so that a failure can be replayed.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    const UNITS: [&str; 2] = ["HCM", "Q1"];
    const VALUES: [Option<f64>; 5] = [None, Some(1.0), Some(2.0), Some(0.0), Some(-0.0)];
    const LABELS: [Option<&str>; 2] = [None, Some("official")];

    fn row(random: &mut Lcg) -> NewObservation {
        let period = Period::Month(2026, 1 + random.below(3) as u32);
        NewObservation {
            indicator: Code::parse("EXPORT_TURNOVER").unwrap(),
            unit: Code::parse(UNITS[random.below(UNITS.len())]).unwrap(),
            period,
            period_start: period.start(ZONE),
            period_end: period.end(ZONE),
            value: VALUES[random.below(VALUES.len())],
            revision_label: LABELS[random.below(LABELS.len())].map(str::to_owned),
            source: LABELS[random.below(LABELS.len())].map(str::to_owned),
            reported_at: None,
        }
    }

    fn series(row: &NewObservation) -> i32 {
        UNITS.iter().position(|u| *u == row.unit.as_str()).unwrap() as i32
    }

    #[test]
    fn rows_are_planned_as_the_shared_planner_plans_them() {
        let mut random = Lcg(7);
        for _ in 0..2_000 {
            let stored: Vec<NewObservation> =
                (0..random.below(4)).map(|_| row(&mut random)).collect();
            let rows: Vec<NewObservation> =
                (0..random.below(8)).map(|_| row(&mut random)).collect();
            let mut by_key = HashMap::new();
            let mut by_bounds = RowMap::default();
            for r in &stored {
                let latest = Latest {
                    revision: 1 + random.below(3) as i32,
                    value: r.value,
                    revision_label: r.revision_label.clone(),
                    source: r.source.clone(),
                };
                by_key.insert(plan::key_of(r), latest.clone());
                by_bounds.insert((series(r), r.period_start, r.period_end), latest);
            }
            let ids: Vec<i32> = rows.iter().map(series).collect();
            let (expected, duplicates) = plan::plan_revisions(&rows, by_key);
            let (planned, counted, _) = plan_rows(&rows, &ids, &IdSet::default(), &mut by_bounds);
            assert_eq!(planned, expected, "{rows:?} after {stored:?}");
            assert_eq!(counted, duplicates.len(), "{rows:?} after {stored:?}");
        }
    }

    #[test]
    fn a_retraction_of_a_period_taken_as_empty_is_unproven_unless_its_series_is_new() {
        let mut random = Lcg(1);
        let mut retraction = row(&mut random);
        retraction.value = None;
        let ids = [series(&retraction)];
        let (_, duplicates, unproven) = plan_rows(
            std::slice::from_ref(&retraction),
            &ids,
            &IdSet::default(),
            &mut RowMap::default(),
        );
        assert_eq!((duplicates, unproven), (1, true));
        let created: IdSet = ids.into_iter().collect();
        let (_, _, unproven) = plan_rows(
            std::slice::from_ref(&retraction),
            &ids,
            &created,
            &mut RowMap::default(),
        );
        assert!(!unproven);
    }
}
