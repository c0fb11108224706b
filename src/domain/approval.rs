//! Approvals of revisions (ARCHITECTURE §8): a department's approver verifies its own figures,
//! the statistics office makes them official. Approvals are appended, never edited; a revision's
//! `state` is the highest it was given, and a new revision starts preliminary again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApprovalState;

/// Which revisions a judgement reads (ARCHITECTURE §8, §12). `Latest` is what every revision says
/// as soon as it is known; `Official` counts a revision only from the moment it became official
/// (the later of its `reported_at` and its official approval), so a past instant reads as the
/// official figures read then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum History {
    Latest,
    #[default]
    Official,
}

impl History {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Official => "official",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "latest" => Some(Self::Latest),
            "official" => Some(Self::Official),
            _ => None,
        }
    }
}

/// The revisions one approval names.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalSelection {
    /// One revision of one period; only while it is the period's latest.
    One {
        indicator: String,
        unit: String,
        period_start: DateTime<Utc>,
        period_end: DateTime<Utc>,
        revision: i32,
    },
    /// The latest revision of every period lying within `[from, to]` of the indicators' series
    /// (of one unit's only, when given).
    Latest {
        indicators: Vec<String>,
        unit: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// An approval about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    pub selection: ApprovalSelection,
    /// `verified` or `official`: a revision only ever moves up to it.
    pub state: ApprovalState,
    pub approved_at: DateTime<Utc>,
    /// The approving token's label.
    pub approved_by: String,
    pub note: Option<String>,
    /// Official as published: a revision known before this instant (history back-filled from
    /// before the service's first start) takes its state from when it was reported, so past
    /// official reports show the figures published then; any other from `approved_at`.
    pub published_before: Option<DateTime<Utc>>,
}

impl NewApproval {
    /// When the approval takes effect for a revision reported at `reported_at`.
    pub fn effective_for(&self, reported_at: DateTime<Utc>) -> DateTime<Utc> {
        match self.published_before {
            Some(before) if reported_at < before => reported_at.min(self.approved_at),
            _ => self.approved_at,
        }
    }
}

/// One revision an approval moved, with the state it moved to.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApprovedRevision {
    pub indicator: String,
    pub unit: String,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub revision: i32,
    pub state: ApprovalState,
    pub approved_at: DateTime<Utc>,
}

/// What an approval did: the revisions it moved up, and how many it named that already stood
/// at the state or above.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalOutcome {
    pub approved: Vec<ApprovedRevision>,
    pub unchanged: usize,
}
