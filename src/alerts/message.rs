//! What a receiver is given to send: one notification for a group of alerts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, AlertState, Severity};

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

impl From<&Alert> for AlertMessage {
    fn from(alert: &Alert) -> Self {
        Self {
            fingerprint: alert.fingerprint.clone(),
            rule: alert.rule.clone(),
            severity: alert.severity,
            state: alert.state,
            labels: alert.labels.clone(),
            summary_vi: alert.summary_vi.clone(),
            summary_en: alert.summary_en.clone(),
            link: alert.link.clone(),
            // A receiver is told when the alert fired, not when its condition was first seen.
            starts_at: alert.fired_at.unwrap_or(alert.starts_at),
            ends_at: alert.ends_at,
        }
    }
}
