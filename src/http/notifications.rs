//! The notification outbox as an operator searches it: pages newest first, filtered by status,
//! receiver, alert and time, so a notification stuck pending can be found among thousands
//! (ARCHITECTURE §5).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState};
use crate::domain::alert::OutboxNotification;
use crate::store::NotificationFilter;

/// A page's size when the request names none, and the most one may ask for.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// Receiver names and alert fingerprints are short codes; anything longer matches nothing.
const MAX_RECEIVER_CHARS: usize = 128;
const MAX_FINGERPRINT_CHARS: usize = 512;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Only notifications in this state: `pending` (queued, or waiting for a retry),
    /// `delivered`, or `failed` (given up after the last retry).
    #[param(value_type = Option<String>, pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// Only those to this receiver (its name in `alerting.toml`).
    receiver: Option<String>,
    /// Only those carrying this alert (its fingerprint, as `GET /alerts` shows it).
    alert: Option<String>,
    /// Only those queued at or after this instant (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Only those queued before this instant (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Where the previous page ended: its `next_cursor`.
    cursor: Option<String>,
    /// How many at most (1 to 500; 100 when absent).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Notifications {
    /// Newest first.
    notifications: Vec<OutboxNotification>,
    /// Pass as `cursor` for the next, older page; `null` on the last page. Notifications
    /// queued meanwhile come before the first page, never inside a later one.
    next_cursor: Option<String>,
}

impl NotificationQuery {
    /// The store's filter, or the first parameter at fault.
    fn filter(self) -> Result<NotificationFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("give 1 to {MAX_LIMIT} notifications per page"),
            ));
        }
        let status = self
            .status
            .map(|status| match status.as_str() {
                "pending" | "delivered" | "failed" => Ok(status),
                _ => Err(ApiError::invalid(
                    "status",
                    "use pending, delivered or failed",
                )),
            })
            .transpose()?;
        let receiver = non_empty(self.receiver, "receiver", MAX_RECEIVER_CHARS)?;
        let fingerprint = non_empty(self.alert, "alert", MAX_FINGERPRINT_CHARS)?;
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to <= from {
                return Err(ApiError::invalid("to", "`to` must come after `from`"));
            }
        }
        let before_id = self
            .cursor
            .map(|cursor| {
                cursor
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| {
                        ApiError::invalid("cursor", "give the `next_cursor` of the previous page")
                    })
            })
            .transpose()?;
        Ok(NotificationFilter {
            status,
            receiver,
            fingerprint,
            from: self.from,
            to: self.to,
            before_id,
            limit,
        })
    }
}

fn non_empty(
    value: Option<String>,
    parameter: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(value) if value.trim().is_empty() => Err(ApiError::invalid(
            parameter,
            format!("give a {parameter} or leave the parameter out"),
        )),
        Some(value) if value.chars().count() > max_chars => Err(ApiError::invalid(
            parameter,
            format!("at most {max_chars} characters"),
        )),
        Some(value) => Ok(Some(value)),
    }
}

/// The notification outbox, newest first, a page at a time. **Admin only.**
///
/// Paged by cursor: each page ends with `next_cursor`, which asks for the notifications older
/// than the last one shown. A notification queued while an operator pages shows up on a new
/// first page, and never moves another into a page already read.
#[utoipa::path(
    get,
    path = "/notifications",
    operation_id = "alerts_notifications",
    tag = "alerts",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, description = "Hộp thư đi / The outbox", body = Notifications),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<NotificationQuery>,
) -> Result<Json<Notifications>, ApiError> {
    caller.require_admin()?;
    let filter = query.filter()?;
    let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
    let notifications = state.store.notification_page(&filter).await?;
    // A full page may have older ones behind it; a short one is the last.
    let next_cursor = (notifications.len() == limit)
        .then(|| notifications.last().map(|n| n.id.to_string()))
        .flatten();
    Ok(Json(Notifications {
        notifications,
        next_cursor,
    }))
}
