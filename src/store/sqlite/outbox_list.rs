//! The outbox listing and the first start on SQLite (migration 0015).

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::{from_micros, micros, notification_from, SqliteStore};
use crate::domain::alert::OutboxNotification;
use crate::store::{NotificationFilter, StoreResult};

impl SqliteStore {
    pub(super) async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> StoreResult<Vec<OutboxNotification>> {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT * FROM notifications WHERE 1 = 1");
        if let Some(before) = filter.before_id {
            query.push(" AND id < ").push_bind(before);
        }
        if let Some(status) = &filter.status {
            query.push(" AND status = ").push_bind(status.clone());
        }
        if let Some(receiver) = &filter.receiver {
            query.push(" AND receiver = ").push_bind(receiver.clone());
        }
        if let Some(from) = filter.from {
            query.push(" AND created_at >= ").push_bind(micros(from));
        }
        if let Some(to) = filter.to {
            query.push(" AND created_at < ").push_bind(micros(to));
        }
        if let Some(fingerprint) = &filter.fingerprint {
            // No index reaches into the payload here: SQLite serves one instance and its outbox
            // stays small enough to walk newest first.
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM json_each(notifications.payload, '$.alerts') \
                     WHERE json_extract(value, '$.fingerprint') = ",
                )
                .push_bind(fingerprint.clone())
                .push(")");
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(notification_from).collect()
    }

    pub(super) async fn record_first_start(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let mut writer = self.writer().await?;
        let conn = writer.conn()?;
        sqlx::query(
            "INSERT INTO service_start (id, started_at) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(micros(now))
        .execute(&mut *conn)
        .await?;
        let started: i64 = sqlx::query_scalar("SELECT started_at FROM service_start WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        Ok(from_micros(started))
    }
}
