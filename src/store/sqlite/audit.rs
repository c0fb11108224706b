//! The audit log on SQLite: its statements in SQLite's SQL (the chain's bookkeeping over them is
//! `store::audit`'s) and the writes that go with an audit row.
//!
//! Audit writes open their transaction with `BEGIN IMMEDIATE`, which takes SQLite's one write
//! lock before reading the chain's head, so two writers (the service and a `ktxh token` command
//! on the same file) can never chain to the same head and fork the log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{micros, SqliteStore};
use crate::domain::alert::{Alert, Silence};
use crate::domain::token::TokenRecord;
use crate::store::audit::{self as chain, corrupt, hash_from, AuditEntry, AuditEvent, AuditLog};
use crate::store::{StoreError, StoreResult};

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

/// A row's JSON document; a value that does not serialise is reported against its table.
fn doc_of(value: &impl Serialize, table: &'static str) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

#[async_trait]
impl AuditLog for SqliteConnection {
    async fn last_row(&mut self) -> StoreResult<Option<(i64, Option<Vec<u8>>)>> {
        Ok(
            sqlx::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *self)
                .await?,
        )
    }

    async fn insert_row(&mut self, entry: &AuditEntry) -> StoreResult<()> {
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
        .bind(entry.hash.as_ref().map(|hash| &hash[..]))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn unsealed_rows(&mut self) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query("SELECT * FROM audit_log WHERE hash IS NULL ORDER BY id")
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(entry_from)
            .collect()
    }

    async fn hash_before(&mut self, id: i64) -> StoreResult<Option<Option<Vec<u8>>>> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *self)
                .await?,
        )
    }

    async fn set_hash(&mut self, id: i64, hash: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("UPDATE audit_log SET hash = ? WHERE id = ? AND hash IS NULL")
            .bind(&hash[..])
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}

/// Appends `event` after the chain's head; the caller's transaction must hold the write lock.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    event: &AuditEvent,
) -> StoreResult<AuditEntry> {
    chain::append(conn, event).await
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
    let doc = doc_of(silence, "silences")?;
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

/// Writes an alert's current state, for the rules' commits and for acknowledgements alike.
pub(super) async fn upsert_alert(conn: &mut SqliteConnection, alert: &Alert) -> StoreResult<()> {
    let doc = doc_of(alert, "alerts")?;
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
    /// Seals rows written before the chain existed.
    pub(super) async fn seal_audit(&self) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let sealed = chain::seal(&mut *tx).await?;
        tx.commit().await?;
        if sealed > 0 {
            tracing::info!(rows = sealed, "audit rows sealed into the chain");
        }
        Ok(())
    }

    /// The newest rows first, only those below `before` when given.
    pub(super) async fn audit_newest(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(
            "SELECT * FROM audit_log WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry_from)
        .collect()
    }

    /// The rows above `after`, oldest first.
    pub(super) async fn audit_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query("SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(entry_from)
            .collect()
    }

    /// Runs the audit append with the writes it records, in one write transaction.
    pub(super) async fn record(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let entry = append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(entry)
    }
}
