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
    /// The figures behind a target's alert, for the full form of its text; absent for alerts
    /// of other things (a late task, a reminder) and for those stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working: Option<AlertWorking>,
}

/// The working of a target's alert as the rules engine last judged it while the alert was active:
/// what an email shows under the short summary (ARCHITECTURE §5). Figures are plain numbers in
/// the indicator's measure; each text writes them in its own language's notation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertWorking {
    /// The indicator's unit of measure: `tỷ đồng`, `%`.
    pub measure_vi: String,
    pub measure_en: String,
    /// The year's value so far.
    #[serde(default)]
    pub actual: Option<f64>,
    /// What the plan expects by the latest period reported.
    #[serde(default)]
    pub expected: Option<f64>,
    /// The year's projected value, and its 90 % interval `[low, high]`.
    #[serde(default)]
    pub projection: Option<f64>,
    #[serde(default)]
    pub interval: Option<[f64; 2]>,
    /// Probability of meeting the target, 0 to 1.
    #[serde(default)]
    pub probability: Option<f64>,
    /// The target in force: a value, or a band from `target_low` to `target_high`.
    #[serde(default)]
    pub target: Option<f64>,
    #[serde(default)]
    pub target_low: Option<f64>,
    #[serde(default)]
    pub target_high: Option<f64>,
    /// Since when the version of the target in force applies, and why it was set (ARCHITECTURE
    /// §8); absent when the store could not say.
    #[serde(default)]
    pub target_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub target_reason: Option<String>,
    /// Where the target comes from (a resolution), as the catalogue says.
    #[serde(default)]
    pub target_source: Option<String>,
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
