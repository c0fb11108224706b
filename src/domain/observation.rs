use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
    /// When the figure became known (published or reported); `None` means when it is stored.
    /// Readers "as of" an instant go by this time (ARCHITECTURE §8).
    pub reported_at: Option<DateTime<Utc>>,
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
    /// When the figure became known: what `as_of` reads by.
    pub reported_at: DateTime<Utc>,
    /// When this service stored it.
    pub received_at: DateTime<Utc>,
    pub recorded_by: String,
    pub state: ApprovalState,
    /// When this revision was verified by its department's approver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// When this revision became official.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub official_at: Option<DateTime<Utc>>,
}

impl StoredObservation {
    /// The revision as the engine applies a committed row, known at its `reported_at`; `None`
    /// when its codes or period no longer parse (the catalogue may have changed since it was
    /// stored), as a live engine would not hold it either.
    pub fn as_committed(&self) -> Option<NewObservation> {
        Some(NewObservation {
            indicator: Code::parse(&self.indicator).ok()?,
            unit: Code::parse(&self.unit).ok()?,
            period: self.period.parse::<Period>().ok()?,
            period_start: self.period_start,
            period_end: self.period_end,
            value: self.value,
            revision_label: self.revision_label.clone(),
            source: self.source.clone(),
            reported_at: Some(self.reported_at),
        })
    }
}

/// How far a revision has been approved: department feeds arrive `preliminary`, the owning
/// department's approver makes them `verified`, the statistics office `official`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    #[default]
    Preliminary,
    Verified,
    Official,
}

impl ApprovalState {
    pub const ALL: [Self; 3] = [Self::Preliminary, Self::Verified, Self::Official];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preliminary => "preliminary",
            Self::Verified => "verified",
            Self::Official => "official",
        }
    }

    /// The small integer both backends store.
    pub fn as_i16(self) -> i16 {
        match self {
            Self::Preliminary => 0,
            Self::Verified => 1,
            Self::Official => 2,
        }
    }

    pub fn from_i16(raw: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_i16() == raw)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_preliminary(&self) -> bool {
        *self == Self::Preliminary
    }
}
