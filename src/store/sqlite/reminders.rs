//! Reminders on SQLite (migration 0010): the reminder's row and its notifications commit in one
//! write transaction, so a reminder recorded is a reminder queued, and never twice.

use chrono::{DateTime, Utc};

use super::{micros, SqliteStore};
use crate::store::{QueuedNotification, ReminderRecord, StoreResult};

impl SqliteStore {
    pub(super) async fn insert_reminder(
        &self,
        reminder: &ReminderRecord,
        notifications: &[QueuedNotification],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO reminders (indicator, unit, period, kind, due_at, sent_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .bind(&reminder.indicator)
        .bind(&reminder.unit)
        .bind(&reminder.period)
        .bind(&reminder.kind)
        .bind(micros(reminder.due_at))
        .bind(micros(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for queued in notifications {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO notifications (receiver, group_key, payload, status, next_attempt_at, created_at) \
                 VALUES (?1, ?2, '{}', 'pending', ?3, ?3) RETURNING id",
            )
            .bind(&queued.receiver)
            .bind(&queued.group_key)
            .bind(micros(at))
            .fetch_one(&mut *tx)
            .await?;
            // The payload names its own outbox id, as a dispatched notification's does.
            let mut payload = queued.payload.clone();
            payload["id"] = serde_json::json!(id);
            sqlx::query("UPDATE notifications SET payload = ? WHERE id = ?")
                .bind(payload.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
