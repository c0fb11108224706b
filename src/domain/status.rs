use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a target stands (ARCHITECTURE §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already met for the year.
    Achieved,
    /// The projection for the year's end meets the target.
    OnTrack,
    /// The projection misses by no more than the tolerance.
    AtRisk,
    /// The projection misses by more than the tolerance: the slippage that alerts.
    OffTrack,
    /// The year is closed (or a ceiling already passed) and the target was not met.
    Missed,
    /// A period that is due has not been delivered.
    Stale,
    /// Nothing observed this year.
    NoData,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Achieved => "achieved",
            Self::OnTrack => "on_track",
            Self::AtRisk => "at_risk",
            Self::OffTrack => "off_track",
            Self::Missed => "missed",
            Self::Stale => "stale",
            Self::NoData => "no_data",
        }
    }

    /// How bad the status is for the target, for "got worse" decisions: 0 is fine. Stale and
    /// no-data say nothing about the target itself and rank as fine here; they alert through
    /// their own rules.
    pub fn severity(self) -> u8 {
        match self {
            Self::Achieved | Self::OnTrack | Self::Stale | Self::NoData => 0,
            Self::AtRisk => 1,
            Self::OffTrack => 2,
            Self::Missed => 3,
        }
    }
}
