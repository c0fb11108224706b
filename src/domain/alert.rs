//! Alerts, silences and outbox rows as the alert manager keeps them, the store holds them and
//! the API shows them (ARCHITECTURE §5). They are here, under both, so the store can keep them
//! without depending on the alert code that decides them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Severity, as Alertmanager spells it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Lifecycle of an alert, as in Prometheus: pending until its condition has held long enough,
/// then firing, then resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// Who acknowledged an alert, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ack {
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Rule and labels: stable for as long as the condition lasts, and the API's id.
    pub fingerprint: String,
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    pub labels: BTreeMap<String, String>,
    pub summary_vi: String,
    pub summary_en: String,
    pub link: String,
    /// When the condition was first seen (pending or firing).
    pub starts_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub ack: Option<Ack>,
}

/// Mutes notifications of the alerts whose labels all match, until `ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    pub id: String,
    /// Label name → value; every one must match (equality).
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub expired_at: Option<DateTime<Utc>>,
}

impl Silence {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expired_at.is_none() && self.starts_at <= now && now < self.ends_at
    }

    pub fn mutes(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> bool {
        self.is_active(now)
            && self
                .matchers
                .iter()
                .all(|(name, value)| labels.get(name) == Some(value))
    }
}

/// An outbox event: an alert's change for one receiver and group, not yet grouped into a
/// notification.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub id: i64,
    pub receiver: String,
    pub group_key: String,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertEvent {
    pub receiver: String,
    pub group_key: String,
    pub fingerprint: String,
}

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OutboxNotification {
    pub id: i64,
    pub receiver: String,
    pub group_key: String,
    /// What the receiver is sent.
    pub payload: serde_json::Value,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}
