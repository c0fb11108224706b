//! The outbox listing and the first start on PostgreSQL (migration 0015).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::{notification_from, PgStore};
use crate::domain::alert::OutboxNotification;
use crate::store::{NotificationFilter, StoreResult};

impl PgStore {
    pub(super) async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> StoreResult<Vec<OutboxNotification>> {
        let mut query: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT * FROM notifications WHERE TRUE");
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
            query.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            query.push(" AND created_at < ").push_bind(to);
        }
        if let Some(fingerprint) = &filter.fingerprint {
            // Containment, so the GIN index on the payload's alerts answers it.
            query
                .push(" AND payload -> 'alerts' @> jsonb_build_array(jsonb_build_object('fingerprint', ")
                .push_bind(fingerprint.clone())
                .push("::text))");
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
        // Two instances starting at once both insert; the first commit wins and both read it.
        sqlx::query(
            "INSERT INTO service_start (id, started_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let started: DateTime<Utc> =
            sqlx::query_scalar("SELECT started_at FROM service_start WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(started)
    }
}
