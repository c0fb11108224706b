use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Code, Period};

/// A validated observation on its way into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObservation {
    pub indicator: Code,
    pub unit: Code,
    pub period: Period,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// `None` withdraws the period's value (a retraction revision).
    pub value: Option<f64>,
    /// A free label such as `preliminary` or `official`; revisions are numbered by the store.
    pub revision_label: Option<String>,
    pub source: Option<String>,
}

/// One stored revision of an observation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredObservation {
    pub indicator: String,
    pub unit: String,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// `null` in a revision that withdrew the value; latest-value reads never return one.
    pub value: Option<f64>,
    pub revision: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub received_at: DateTime<Utc>,
    pub recorded_by: String,
}
