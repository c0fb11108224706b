//! The audit log on PostgreSQL: its statements in PostgreSQL's SQL (the chain's bookkeeping over
//! them is `store::audit`'s) and the writes that go with an audit row.
//!
//! Every audit append first takes a transaction-scoped advisory lock, so writers in every
//! instance and every `ktxh` command on the database chain one after the other and never to
//! the same head.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::domain::alert::{Alert, Silence};
use crate::domain::token::TokenRecord;
use crate::store::audit::{self as chain, hash_from, AuditEntry, AuditEvent, AuditLog};
use crate::store::{StoreError, StoreResult};

/// Serialises writers of the audit chain.
const AUDIT_LOCK_KEY: i64 = 0x6b74_7868_0002;

fn entry_from(row: &PgRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        old: row.try_get("old_value")?,
        new: row.try_get("new_value")?,
        reason: row.try_get("reason")?,
        client_ip: row.try_get("client_ip")?,
        hash: hash_from(row.try_get("hash")?),
    })
}

/// A row's JSON document; a value that does not serialise is reported against its table.
fn doc_of(value: &impl Serialize, table: &'static str) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

#[async_trait]
impl AuditLog for PgConnection {
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.id)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.old)
        .bind(&entry.new)
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
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *self)
                .await?,
        )
    }

    async fn set_hash(&mut self, id: i64, hash: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("UPDATE audit_log SET hash = $1 WHERE id = $2 AND hash IS NULL")
            .bind(&hash[..])
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}

pub(super) async fn lock(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Appends `event` after the chain's head, inside the caller's transaction.
pub(super) async fn append(conn: &mut PgConnection, event: &AuditEvent) -> StoreResult<AuditEntry> {
    lock(conn).await?;
    chain::append(conn, event).await
}

pub(super) async fn insert_token(conn: &mut PgConnection, token: &TokenRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, role, department, digest, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&token.id)
    .bind(&token.name)
    .bind(token.role.as_str())
    .bind(&token.department)
    .bind(&token.digest)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.revoked_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn revoke_token(
    conn: &mut PgConnection,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn upsert_silence(conn: &mut PgConnection, silence: &Silence) -> StoreResult<()> {
    let doc = doc_of(silence, "silences")?;
    sqlx::query(
        "INSERT INTO silences (id, doc, ends_at, expired_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, ends_at = excluded.ends_at, expired_at = excluded.expired_at",
    )
    .bind(&silence.id)
    .bind(doc)
    .bind(silence.ends_at)
    .bind(silence.expired_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes an alert's current state, for the rules' commits and for acknowledgements alike.
pub(super) async fn upsert_alert(conn: &mut PgConnection, alert: &Alert) -> StoreResult<()> {
    let doc = doc_of(alert, "alerts")?;
    sqlx::query(
        "INSERT INTO alerts (fingerprint, state, doc, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at = excluded.updated_at",
    )
    .bind(&alert.fingerprint)
    .bind(alert.state.as_str())
    .bind(doc)
    .bind(alert.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PgStore {
    /// Seals rows written before the chain existed.
    pub(super) async fn seal_audit(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx).await?;
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
            "SELECT * FROM audit_log WHERE ($1::int8 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
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
        sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(entry_from)
            .collect()
    }

    pub(super) async fn record(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        let mut tx = self.pool.begin().await?;
        let entry = append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(entry)
    }
}
