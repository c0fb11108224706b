//! The audit log: every privileged act as one row (who, what, on what, before and after, why,
//! from where), chained by SHA-256 so that a row changed behind the service's back is found.
//!
//! Row `n` carries `SHA-256(hash(n-1) ‖ canonical(n))`, the first row's predecessor being 32
//! zero bytes. `canonical` is the JSON array `[id, at (µs since the epoch), actor, action,
//! subject, old, new, reason, client_ip]` with object keys sorted, so both backends, whatever
//! they do to a JSON document's layout, hash the same row to the same value. The id is in the
//! encoding, so rows cannot be reordered; the predecessor's hash is, so a row cannot be removed.
//! Nothing deletes audit rows: the log is kept for as long as the database is.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::store::{StoreError, StoreResult};

/// The predecessor of the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// A privileged act about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// Who acted: a token's label, `config`, or `cli:<user>`.
    pub actor: String,
    /// What was done: `target.set`, `targets.seed`, `token.create`, `token.revoke`,
    /// `silence.create`, `silence.expire`, `alert.ack`, `explanation.add`, `config.check_failed`, …
    pub action: String,
    /// What it was done to.
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    /// The caller's address when the act came over the network.
    pub client_ip: Option<String>,
}

impl AuditEvent {
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        action: &str,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            action: action.to_owned(),
            subject: subject.into(),
            before: None,
            after: None,
            reason: None,
            client_ip: None,
        }
    }

    /// The row this event becomes under `id`, with the time as the stores keep it (µs).
    pub fn into_entry(self, id: i64) -> AuditEntry {
        AuditEntry {
            id,
            at: truncate_to_micros(self.at),
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            old: self.before,
            new: self.after,
            reason: self.reason,
            client_ip: self.client_ip,
            hash: None,
        }
    }
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who acted: a token's label (never its secret), `config` or `cli:<user>`.
    pub actor: String,
    #[schema(example = "target.set")]
    pub action: String,
    /// What the act was done to, e.g. `2026/GRDP_GROWTH/HCM` or a token's id.
    pub subject: String,
    /// The state before the act (`null` when there was none).
    pub old: Option<serde_json::Value>,
    /// The state after the act.
    pub new: Option<serde_json::Value>,
    pub reason: Option<String>,
    /// The caller's IP address, for acts made over the network.
    pub client_ip: Option<String>,
    /// SHA-256 of the previous row's hash and this row (hex).
    #[serde(serialize_with = "hex_option")]
    #[schema(value_type = Option<String>, example = "9f2c…")]
    pub hash: Option<[u8; 32]>,
}

fn hex_option<S: serde::Serializer>(hash: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match hash {
        Some(bytes) => s.serialize_str(&hex::encode(bytes)),
        None => s.serialize_none(),
    }
}

/// Both stores keep microseconds; the hash must be of what they keep.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// One spelling of a JSON value, whatever wrote it and whatever read it back: object keys in
/// byte order (whether or not serde_json keeps insertion order in this build), and every number
/// as the `f64` it denotes, negative zero as zero. PostgreSQL's `jsonb` keeps numbers as
/// decimals and gives `1.5e16` back as `15000000000000000` and `-0.0` as `0`; hashing what was
/// written would then break the chain of a row nobody touched.
fn canonical_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> = map
                .iter()
                .map(|(key, value)| (key, canonical_json(value)))
                .collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(key, value)| (key.clone(), value))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_json).collect()),
        Value::Number(number) => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            let float = if float == 0.0 { 0.0 } else { float };
            serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)
        }
        other => other.clone(),
    }
}

impl AuditEntry {
    fn canonical(&self) -> Vec<u8> {
        let fields = serde_json::json!([
            self.id,
            self.at.timestamp_micros(),
            self.actor,
            self.action,
            self.subject,
            self.old.as_ref().map(canonical_json),
            self.new.as_ref().map(canonical_json),
            self.reason,
            self.client_ip,
        ]);
        // With objects canonical and in byte order, this is one encoding per row.
        serde_json::to_vec(&fields).unwrap_or_default()
    }

    /// The hash this row must carry when `prev` is its predecessor's.
    pub fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(self.canonical());
        hasher.finalize().into()
    }
}

/// Converts a stored hash column.
pub(crate) fn hash_from(raw: Option<Vec<u8>>) -> Option<[u8; 32]> {
    raw.and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
}

/// A row of the audit log that cannot be what the service wrote.
pub(crate) fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "audit_log",
        detail,
    }
}

/// The audit log's statements, which each backend writes in its own SQL. The bookkeeping over
/// them (where the chain's head is, what the next row hashes to, the order old rows are sealed
/// in) is [`append`] and [`seal`], written once so that the backends cannot chain differently.
#[async_trait::async_trait]
pub(crate) trait AuditLog: Send {
    /// The last row's id and stored hash; `None` while the log is empty.
    async fn last_row(&mut self) -> StoreResult<Option<(i64, Option<Vec<u8>>)>>;
    /// Writes a sealed row.
    async fn insert_row(&mut self, entry: &AuditEntry) -> StoreResult<()>;
    /// The rows that carry no hash, oldest first.
    async fn unsealed_rows(&mut self) -> StoreResult<Vec<AuditEntry>>;
    /// The stored hash of the last row before `id`; `None` when no row comes before it.
    async fn hash_before(&mut self, id: i64) -> StoreResult<Option<Option<Vec<u8>>>>;
    /// Stores the hash of a row that has none.
    async fn set_hash(&mut self, id: i64, hash: &[u8; 32]) -> StoreResult<()>;
}

/// Appends `event` after the chain's head. The caller's transaction must keep every other
/// writer away from the head until it commits, or two rows would chain to the same one.
pub(crate) async fn append(log: &mut impl AuditLog, event: &AuditEvent) -> StoreResult<AuditEntry> {
    let (last_id, prev) = match log.last_row().await? {
        None => (0, GENESIS),
        Some((id, hash)) => (
            id,
            hash_from(hash).ok_or_else(|| corrupt(format!("row {id} carries no valid hash")))?,
        ),
    };
    let mut entry = event.clone().into_entry(last_id + 1);
    entry.hash = Some(entry.chain_hash(&prev));
    log.insert_row(&entry).await?;
    Ok(entry)
}

/// Seals the rows written before the chain existed (see migration 0004) after the row before
/// the first of them, and returns how many there were. Locking as for [`append`].
pub(crate) async fn seal(log: &mut impl AuditLog) -> StoreResult<usize> {
    let unsealed = log.unsealed_rows().await?;
    let Some(first) = unsealed.first() else {
        return Ok(0);
    };
    let prev = match log.hash_before(first.id).await? {
        None => GENESIS,
        Some(hash) => hash_from(hash)
            .ok_or_else(|| corrupt(format!("the row before {} has no valid hash", first.id)))?,
    };
    for (id, hash) in seal_hashes(prev, &unsealed) {
        log.set_hash(id, &hash).await?;
    }
    Ok(unsealed.len())
}

/// The hashes that chain `rows`, oldest first, after a row whose hash is `prev`.
fn seal_hashes(mut prev: [u8; 32], rows: &[AuditEntry]) -> Vec<(i64, [u8; 32])> {
    rows.iter()
        .map(|entry| {
            prev = entry.chain_hash(&prev);
            (entry.id, prev)
        })
        .collect()
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit row {id} is broken: {reason}")]
pub struct BrokenLink {
    pub id: i64,
    pub reason: String,
}

/// Walks the chain page by page, oldest row first.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    prev: [u8; 32],
    last_id: i64,
    rows: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            prev: GENESIS,
            last_id: 0,
            rows: 0,
        }
    }
}

impl ChainCheck {
    /// Rows checked so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The id of the last row checked (0 before any): the next page starts after it.
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// The hash of the last row checked.
    pub fn head(&self) -> [u8; 32] {
        self.prev
    }

    /// Checks the next rows, in id order; the first broken one ends the walk.
    pub fn feed(&mut self, entries: &[AuditEntry]) -> Result<(), BrokenLink> {
        for entry in entries {
            let broken = |reason: &str| BrokenLink {
                id: entry.id,
                reason: reason.to_owned(),
            };
            if entry.id <= self.last_id {
                return Err(broken("rows are out of order"));
            }
            let Some(stored) = entry.hash else {
                return Err(broken("the row was never sealed into the chain"));
            };
            if entry.chain_hash(&self.prev) != stored {
                return Err(broken(
                    "its hash does not match its content and its predecessor's hash: \
                     this row was changed, or a row before it was removed",
                ));
            }
            self.prev = stored;
            self.last_id = entry.id;
            self.rows += 1;
        }
        Ok(())
    }
}

/// The `target.set` row of a change made through the API.
pub(crate) fn target_set_event(
    change: &crate::store::TargetChange,
    old: Option<&crate::store::TargetRow>,
    new: &crate::store::TargetRow,
) -> AuditEvent {
    let subject = format!("{}/{}/{}", change.year, change.indicator, change.unit);
    let mut event = AuditEvent::new(change.at, change.actor.clone(), "target.set", subject);
    event.before = old.and_then(|row| serde_json::to_value(&row.target).ok());
    event.after = serde_json::to_value(&new.target).ok();
    event.reason = Some(change.reason.clone());
    event.client_ip = change.client_ip.clone();
    event
}

/// The `targets.seed` row for configured `targets` written over `stored`: what each target
/// that is new or changed was and becomes, keyed `year/indicator/unit`; `None` when the
/// configuration changes nothing. Targets set through the API are left alone by the seed.
pub(crate) fn seed_event(
    stored: &[crate::store::TargetRow],
    targets: &[crate::domain::Target],
    at: DateTime<Utc>,
) -> Option<AuditEvent> {
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for target in targets {
        let existing = stored.iter().find(|row| {
            row.target.year == target.year
                && row.target.indicator == target.indicator
                && row.target.unit == target.unit
        });
        let unchanged = existing.is_some_and(|row| row.origin == "api" || row.target == *target);
        if unchanged {
            continue;
        }
        let key = format!("{}/{}/{}", target.year, target.indicator, target.unit);
        let old = existing
            .and_then(|row| serde_json::to_value(&row.target).ok())
            .unwrap_or(serde_json::Value::Null);
        before.insert(key.clone(), old);
        after.insert(key, serde_json::to_value(target).unwrap_or_default());
    }
    if after.is_empty() {
        return None;
    }
    let mut event = AuditEvent::new(at, "config", "targets.seed", "config/targets");
    event.reason = Some(format!(
        "{} configured target(s) added or changed",
        after.len()
    ));
    event.before = Some(serde_json::Value::Object(before));
    event.after = Some(serde_json::Value::Object(after));
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(events: Vec<AuditEvent>) -> Vec<AuditEntry> {
        let mut prev = GENESIS;
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let mut entry = event.into_entry(i as i64 + 1);
                let hash = entry.chain_hash(&prev);
                entry.hash = Some(hash);
                prev = hash;
                entry
            })
            .collect()
    }

    fn history() -> Vec<AuditEntry> {
        let at = DateTime::from_timestamp(1_780_000_000, 123_456_789).unwrap();
        let mut set = AuditEvent::new(at, "admin:ops", "target.set", "2026/GRDP_GROWTH/HCM");
        set.before = Some(serde_json::json!({"value": 9.5, "unit": "HCM"}));
        set.after = Some(serde_json::json!({"value": 10.0, "unit": "HCM"}));
        set.reason = Some("Nghị quyết HĐND".into());
        set.client_ip = Some("10.0.0.7".into());
        let token = AuditEvent::new(at, "cli:root", "token.create", "0123456789abcdef");
        let ack = AuditEvent::new(at, "department:CUSTOMS:feed", "alert.ack", "fp1");
        sealed(vec![set, token, ack])
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let mut check = ChainCheck::default();
        check.feed(&history()).unwrap();
        assert_eq!(check.rows(), 3);
        assert_eq!(check.last_id(), 3);
    }

    #[test]
    fn a_changed_field_breaks_the_chain_at_that_row() {
        let mut rows = history();
        rows[1].actor = "cli:someone-else".into();
        let err = ChainCheck::default().feed(&rows).unwrap_err();
        assert_eq!(err.id, 2);
    }

    #[test]
    fn a_changed_row_with_a_recomputed_hash_breaks_the_chain_at_the_next_row() {
        let mut rows = history();
        rows[0].reason = Some("edited".into());
        rows[0].hash = Some(rows[0].chain_hash(&GENESIS));
        let err = ChainCheck::default().feed(&rows).unwrap_err();
        assert_eq!(err.id, 2);
    }

    #[test]
    fn a_removed_row_breaks_the_chain_at_its_successor() {
        let mut rows = history();
        rows.remove(1);
        let err = ChainCheck::default().feed(&rows).unwrap_err();
        assert_eq!(err.id, 3);
    }

    #[test]
    fn an_unsealed_row_is_broken() {
        let mut rows = history();
        rows[2].hash = None;
        let err = ChainCheck::default().feed(&rows).unwrap_err();
        assert_eq!(err.id, 3);
        assert!(err.reason.contains("sealed"), "{err}");
    }

    #[test]
    fn the_encoding_ignores_json_key_order_but_not_values() {
        let rows = history();
        let mut reordered = rows[0].clone();
        reordered.old = Some(serde_json::from_str(r#"{"unit": "HCM", "value": 9.5}"#).unwrap());
        assert_eq!(reordered.chain_hash(&GENESIS), rows[0].chain_hash(&GENESIS));
        reordered.old = Some(serde_json::json!({"unit": "HCM", "value": 9.6}));
        assert_ne!(reordered.chain_hash(&GENESIS), rows[0].chain_hash(&GENESIS));
    }

    #[test]
    fn numbers_are_hashed_as_the_values_they_denote_whatever_their_spelling() {
        let rows = history();
        let with = |old: &str| {
            let mut row = rows[0].clone();
            row.old = Some(serde_json::from_str(old).unwrap());
            row.chain_hash(&GENESIS)
        };
        // How jsonb gives back what was written as 1.5e16 and -0.0.
        assert_eq!(
            with(r#"{"value": 1.5e16, "lo": -0.0}"#),
            with(r#"{"value": 15000000000000000, "lo": 0}"#)
        );
        assert_eq!(with(r#"{"value": 10}"#), with(r#"{"value": 10.0}"#));
        assert_ne!(with(r#"{"value": 10}"#), with(r#"{"value": 10.5}"#));
    }

    #[test]
    fn rows_sealed_late_get_the_hashes_they_would_have_had_if_appended() {
        let appended = history();
        let unsealed = |rows: &[AuditEntry]| -> Vec<AuditEntry> {
            rows.iter()
                .map(|row| AuditEntry {
                    hash: None,
                    ..row.clone()
                })
                .collect()
        };
        let hashes = |rows: &[AuditEntry]| -> Vec<(i64, [u8; 32])> {
            rows.iter().map(|row| (row.id, row.hash.unwrap())).collect()
        };
        assert_eq!(
            seal_hashes(GENESIS, &unsealed(&appended)),
            hashes(&appended)
        );
        let head = appended[0].hash.unwrap();
        assert_eq!(
            seal_hashes(head, &unsealed(&appended[1..])),
            hashes(&appended[1..])
        );
        assert_ne!(
            seal_hashes(GENESIS, &unsealed(&appended[1..])),
            hashes(&appended[1..]),
            "the first row sealed chains to the row before it"
        );
    }

    #[test]
    fn times_are_hashed_as_the_stores_keep_them() {
        let rows = history();
        assert_eq!(rows[0].at.timestamp_subsec_nanos(), 123_456_000);
    }
}
