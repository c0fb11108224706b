//! Reminders on PostgreSQL (migration 0010): the reminder's row and its notifications commit in
//! one transaction. The row's key makes a second instance's attempt at the same reminder, or a
//! restarted leader's, insert nothing and queue nothing.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::{QueuedNotification, ReminderRecord, StoreResult};

impl PgStore {
    pub(super) async fn insert_reminder(
        &self,
        reminder: &ReminderRecord,
        notifications: &[QueuedNotification],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO reminders (indicator, unit, period, kind, due_at, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&reminder.indicator)
        .bind(&reminder.unit)
        .bind(&reminder.period)
        .bind(&reminder.kind)
        .bind(reminder.due_at)
        .bind(at)
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
                 VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id",
            )
            .bind(&queued.receiver)
            .bind(&queued.group_key)
            .bind(&queued.payload)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            // The payload names its own outbox id, as a dispatched notification's does.
            sqlx::query(
                "UPDATE notifications SET payload = jsonb_set(payload, '{id}', to_jsonb(id)) WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
