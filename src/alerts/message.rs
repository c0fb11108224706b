//! What a receiver is given to send: one notification for a group of alerts.

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

/// One alert inside a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMessage {
    /// Stable identity of the alert: its rule and labels.
    pub fingerprint: String,
    /// `slippage`, `staleness`, `anomaly` or `rejects`.
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    /// Always present: `alertname`, `severity`, and where they apply `group`, `department`,
    /// `unit`, `indicator`.
    pub labels: BTreeMap<String, String>,
    pub summary_vi: String,
    pub summary_en: String,
    /// Absolute link to the indicator's page on the operations screen.
    pub link: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// One message to one receiver: the alerts of one group (Alertmanager's group_by), firing or
/// resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The outbox row id: receivers pass it on (e.g. as an idempotency key) so a retried
    /// delivery can be recognised downstream.
    pub id: i64,
    pub receiver: String,
    /// The labels the group was formed by, e.g. `{department="FINANCE"}`.
    pub group_key: String,
    /// `firing` when any alert in it fires, else `resolved`.
    pub status: AlertState,
    pub alerts: Vec<AlertMessage>,
    /// Language of the human-readable text: `vi` (default) or `en`.
    pub language: String,
    pub created_at: DateTime<Utc>,
}
