//! The audit log on SQLite: appends chained rows and the writes that go with an audit row.
//!
//! Audit writes open their transaction with `BEGIN IMMEDIATE`, which takes SQLite's one write
//! lock before reading the chain's head, so two writers (the service and a `ktxh token` command
//! on the same file) can never chain to the same head and fork the log.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{micros, SqliteStore};
use crate::alerts::model::{Alert, Silence};
use crate::auth::TokenRecord;
use crate::store::audit::{hash_from, AuditEntry, AuditEvent, GENESIS};
use crate::store::{StoreError, StoreResult};

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "audit_log",
        detail,
    }
}

fn entry_from(row: &SqliteRow) -> StoreResult<AuditEntry> {
    let parse = |raw: Option<String>| -> StoreResult<Option<serde_json::Value>> {
        raw.map(|text| serde_json::from_str(&text).map_err(|e| corrupt(e.to_string())))
            .transpose()
    };
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: DateTime::from_timestamp_micros(row.try_get("at")?).unwrap_or_default(),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        old: parse(row.try_get("old_value")?)?,
        new: parse(row.try_get("new_value")?)?,
        reason: row.try_get("reason")?,
        client_ip: row.try_get("client_ip")?,
        hash: hash_from(row.try_get("hash")?),
    })
}

/// The chain's head: the last row's id and hash.
async fn head(conn: &mut SqliteConnection) -> StoreResult<(i64, [u8; 32])> {
    let last: Option<(i64, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    match last {
        None => Ok((0, GENESIS)),
        Some((id, hash)) => hash_from(hash)
            .map(|hash| (id, hash))
            .ok_or_else(|| corrupt(format!("row {id} carries no valid hash"))),
    }
}

/// Appends `event` after the chain's head; the caller's transaction must hold the write lock.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    event: &AuditEvent,
) -> StoreResult<AuditEntry> {
    let (last_id, prev) = head(conn).await?;
    let mut entry = event.clone().into_entry(last_id + 1);
    let hash = entry.chain_hash(&prev);
    entry.hash = Some(hash);
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, subject, old_value, new_value, reason, client_ip, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.id)
    .bind(micros(entry.at))
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(entry.old.as_ref().map(|v| v.to_string()))
    .bind(entry.new.as_ref().map(|v| v.to_string()))
    .bind(&entry.reason)
    .bind(&entry.client_ip)
    .bind(&hash[..])
    .execute(&mut *conn)
    .await?;
    Ok(entry)
}

pub(super) async fn insert_token(
    conn: &mut SqliteConnection,
    token: &TokenRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, role, department, digest, created_at, expires_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&token.id)
    .bind(&token.name)
    .bind(token.role.as_str())
    .bind(&token.department)
    .bind(&token.digest)
    .bind(token.created_at.timestamp())
    .bind(token.expires_at.map(|t| t.timestamp()))
    .bind(token.revoked_at.map(|t| t.timestamp()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn revoke_token(
    conn: &mut SqliteConnection,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(at.timestamp())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn upsert_silence(
    conn: &mut SqliteConnection,
    silence: &Silence,
) -> StoreResult<()> {
    let doc = serde_json::to_string(silence).map_err(|e| StoreError::Corrupt {
        table: "silences",
        detail: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO silences (id, doc, ends_at, expired_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, ends_at = excluded.ends_at, expired_at = excluded.expired_at",
    )
    .bind(&silence.id)
    .bind(doc)
    .bind(micros(silence.ends_at))
    .bind(silence.expired_at.map(micros))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn upsert_alert(conn: &mut SqliteConnection, alert: &Alert) -> StoreResult<()> {
    let doc = serde_json::to_string(alert).map_err(|e| StoreError::Corrupt {
        table: "alerts",
        detail: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO alerts (fingerprint, state, doc, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at = excluded.updated_at",
    )
    .bind(&alert.fingerprint)
    .bind(alert.state.as_str())
    .bind(doc)
    .bind(micros(alert.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// A transaction holding SQLite's write lock from its first statement.
    pub(super) async fn begin_write(
        &self,
    ) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Seals rows written before the chain existed, oldest first (see migration 0004).
    pub(super) async fn seal_audit(&self) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let unsealed = sqlx::query("SELECT * FROM audit_log WHERE hash IS NULL ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let Some(first) = unsealed.first() else {
            return Ok(());
        };
        let first_id: i64 = first.try_get("id")?;
        let before: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT 1")
                .bind(first_id)
                .fetch_optional(&mut *tx)
                .await?;
        let mut prev = match before {
            None => GENESIS,
            Some(hash) => hash_from(hash)
                .ok_or_else(|| corrupt(format!("the row before {first_id} has no valid hash")))?,
        };
        for row in &unsealed {
            let entry = entry_from(row)?;
            let hash = entry.chain_hash(&prev);
            sqlx::query("UPDATE audit_log SET hash = ? WHERE id = ? AND hash IS NULL")
                .bind(&hash[..])
                .bind(entry.id)
                .execute(&mut *tx)
                .await?;
            prev = hash;
        }
        tx.commit().await?;
        tracing::info!(rows = unsealed.len(), "audit rows sealed into the chain");
        Ok(())
    }

    pub(super) async fn audit_rows(
        &self,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows = match after {
            Some(after) => {
                sqlx::query("SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(
                "SELECT * FROM audit_log WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter().map(entry_from).collect()
    }

    /// Runs the audit append with the writes it records, in one write transaction.
    pub(super) async fn record(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let entry = append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(entry)
    }
}
