//! The expected path of a target through its year, for charts: what the plan expects by the end
//! of each month.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::plan::{PlanProfile, YearSpan};
use crate::domain::{Kind, Period, TargetValue};

/// One point of the expected path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct PathPoint {
    pub at: DateTime<Utc>,
    pub expected: f64,
}

/// The value expected at the start of the year and at the end of each month.
///
/// Flows and cumulatives accumulate towards the target along the plan profile (a profile that
/// expects nothing yet is paced linearly, as the status does); every other kind is judged
/// against the target itself all year, so its path is flat.
pub fn expected_path(
    kind: Kind,
    target: TargetValue,
    profile: &PlanProfile,
    year: i32,
    zone: Tz,
) -> Vec<PathPoint> {
    let span = YearSpan::of(year, zone);
    let goal = match target {
        TargetValue::Point { value } => value,
        TargetValue::Band { lo, hi } => (lo + hi) / 2.0,
    };
    let ends = std::iter::once(span.start)
        .chain((1..=12).map(|month| Period::Month(year, month).end(zone)));
    ends.map(|at| {
        let expected = match kind {
            Kind::Flow | Kind::Cumulative => {
                let share = profile.share(&span, at, year, zone);
                let share = if share > f64::EPSILON || at <= span.start {
                    share
                } else {
                    span.linear_share(at)
                };
                goal * share
            }
            Kind::Level | Kind::Growth | Kind::Average => goal,
        };
        PathPoint { at, expected }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn a_linear_flow_reaches_the_target_at_year_end() {
        let path = expected_path(
            Kind::Flow,
            TargetValue::Point { value: 365.0 },
            &PlanProfile::Linear,
            2026,
            ZONE,
        );
        assert_eq!(path.len(), 13);
        assert_eq!(path[0].expected, 0.0);
        // January has 31 of the year's 365 days.
        assert!((path[1].expected - 31.0).abs() < 1e-9, "{:?}", path[1]);
        assert!((path[12].expected - 365.0).abs() < 1e-9);
    }

    #[test]
    fn a_monthly_profile_shapes_the_path() {
        let mut shares = [0.0; 12];
        shares[11] = 0.5;
        shares[0] = 0.5;
        let path = expected_path(
            Kind::Cumulative,
            TargetValue::Point { value: 100.0 },
            &PlanProfile::Monthly { shares },
            2026,
            ZONE,
        );
        assert!((path[1].expected - 50.0).abs() < 1e-9);
        assert!((path[11].expected - 50.0).abs() < 1e-9);
        assert!((path[12].expected - 100.0).abs() < 1e-9);
    }

    #[test]
    fn levels_and_bands_are_flat_at_the_target() {
        let path = expected_path(
            Kind::Level,
            TargetValue::Band { lo: 3.0, hi: 5.0 },
            &PlanProfile::Linear,
            2026,
            ZONE,
        );
        assert!(path.iter().all(|p| p.expected == 4.0));
    }
}
