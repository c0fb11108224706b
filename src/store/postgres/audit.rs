//! The audit log on PostgreSQL: appends chained rows and the writes that go with an audit row.
//!
//! Every audit append first takes a transaction-scoped advisory lock, so writers in every
//! instance and every `ktxh` command on the database chain one after the other and never to
//! the same head.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::alerts::model::{Alert, Silence};
use crate::auth::TokenRecord;
use crate::store::audit::{hash_from, AuditEntry, AuditEvent, GENESIS};
use crate::store::{StoreError, StoreResult};

/// Serialises writers of the audit chain.
const AUDIT_LOCK_KEY: i64 = 0x6b74_7868_0002;

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "audit_log",
        detail,
    }
}

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
    let last: Option<(i64, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (last_id, prev) = match last {
        None => (0, GENESIS),
        Some((id, hash)) => (
            id,
            hash_from(hash).ok_or_else(|| corrupt(format!("row {id} carries no valid hash")))?,
        ),
    };
    let mut entry = event.clone().into_entry(last_id + 1);
    let hash = entry.chain_hash(&prev);
    entry.hash = Some(hash);
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
    .bind(&hash[..])
    .execute(&mut *conn)
    .await?;
    Ok(entry)
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
    let doc = serde_json::to_value(silence).map_err(|e| StoreError::Corrupt {
        table: "silences",
        detail: e.to_string(),
    })?;
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

pub(super) async fn upsert_alert(conn: &mut PgConnection, alert: &Alert) -> StoreResult<()> {
    let doc = serde_json::to_value(alert).map_err(|e| StoreError::Corrupt {
        table: "alerts",
        detail: e.to_string(),
    })?;
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
    /// Seals rows written before the chain existed, oldest first (see migration 0004).
    pub(super) async fn seal_audit(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx).await?;
        let unsealed = sqlx::query("SELECT * FROM audit_log WHERE hash IS NULL ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let Some(first) = unsealed.first() else {
            return Ok(());
        };
        let first_id: i64 = first.try_get("id")?;
        let before: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT 1")
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
            sqlx::query("UPDATE audit_log SET hash = $1 WHERE id = $2 AND hash IS NULL")
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
                sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT * FROM audit_log WHERE ($1::int8 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(entry_from).collect()
    }

    pub(super) async fn record(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        let mut tx = self.pool.begin().await?;
        let entry = append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(entry)
    }
}
