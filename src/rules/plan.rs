//! The plan share `share(t)`: the fraction of the year's target expected by instant `t`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{Period, Periodicity};

/// A year as a half-open interval `[start, end)` of instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl YearSpan {
    /// The calendar year `year` in the city's zone.
    pub fn of(year: i32, zone: Tz) -> Self {
        let period = Period::Year(year);
        Self {
            start: period.start(zone),
            end: period.end(zone),
        }
    }

    /// Linear share of the span elapsed at `t`, clamped to `[0, 1]`.
    pub fn linear_share(&self, t: DateTime<Utc>) -> f64 {
        let total = (self.end - self.start).num_milliseconds() as f64;
        if total <= 0.0 {
            return 1.0;
        }
        ((t - self.start).num_milliseconds() as f64 / total).clamp(0.0, 1.0)
    }

    /// Days from the start of the span to `t` (fractional), the x axis of trend fits.
    pub fn days_since_start(&self, t: DateTime<Utc>) -> f64 {
        (t - self.start).num_milliseconds() as f64 / 86_400_000.0
    }
}

/// How the year's target is expected to accumulate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PlanProfile {
    /// Evenly over the year: `share(t) = (t − start) / (end − start)`.
    #[default]
    Linear,
    /// Each month's share of the year (twelve non-negative numbers summing to 1), linear within
    /// a month.
    Monthly { shares: [f64; 12] },
}

impl PlanProfile {
    /// A profile from last year's monthly values (their seasonal pattern); `None` when they
    /// cannot be one (negative, not finite or all zero).
    pub fn from_monthly_values(values: &[f64; 12]) -> Option<Self> {
        if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return None;
        }
        let total: f64 = values.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut shares = [0.0; 12];
        for (share, value) in shares.iter_mut().zip(values) {
            *share = value / total;
        }
        Some(Self::Monthly { shares })
    }

    /// The expected cumulative share of the year's target at `t`, in `[0, 1]`.
    ///
    /// Monthly profiles are laid on the calendar months of `year` in `zone`; a `span` that is
    /// not a calendar year (tests) uses twelve equal slices instead.
    pub fn share(&self, span: &YearSpan, t: DateTime<Utc>, year: i32, zone: Tz) -> f64 {
        let shares = match self {
            Self::Linear => return span.linear_share(t),
            Self::Monthly { shares } => shares,
        };
        if t <= span.start {
            return 0.0;
        }
        if t >= span.end {
            return 1.0;
        }
        let calendar = YearSpan::of(year, zone) == *span;
        let mut done = 0.0;
        for (index, share) in shares.iter().enumerate() {
            let (month_start, month_end) = if calendar {
                let month = Period::Month(year, index as u32 + 1);
                (month.start(zone), month.end(zone))
            } else {
                let slice = (span.end - span.start) / 12;
                (
                    span.start + slice * index as i32,
                    span.start + slice * (index as i32 + 1),
                )
            };
            if t < month_end {
                let within = YearSpan {
                    start: month_start,
                    end: month_end,
                }
                .linear_share(t);
                return (done + share * within).clamp(0.0, 1.0);
            }
            done += share;
        }
        1.0
    }
}

/// The end instants of the periods of `year` that end after `after`, for projecting averages.
pub fn remaining_period_ends(
    periodicity: Periodicity,
    year: i32,
    after: DateTime<Utc>,
    zone: Tz,
) -> Vec<DateTime<Utc>> {
    let periods: Vec<Period> = match periodicity {
        Periodicity::Yearly => vec![Period::Year(year)],
        Periodicity::Quarterly => (1..=4).map(|q| Period::Quarter(year, q)).collect(),
        Periodicity::Monthly => (1..=12).map(|m| Period::Month(year, m)).collect(),
        Periodicity::Daily => {
            let Some(first) = chrono::NaiveDate::from_ymd_opt(year, 1, 1) else {
                return Vec::new();
            };
            first
                .iter_days()
                .take_while(|d| chrono::Datelike::year(d) == year)
                .map(Period::Day)
                .collect()
        }
    };
    periods
        .iter()
        .map(|p| p.end(zone))
        .filter(|end| *end > after)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn at(period: &str) -> DateTime<Utc> {
        Period::parse(period).unwrap().end(HCM)
    }

    #[test]
    fn linear_share_is_the_elapsed_fraction_of_the_year() {
        let span = YearSpan::of(2026, HCM);
        assert_eq!(span.linear_share(span.start), 0.0);
        assert_eq!(span.linear_share(span.end), 1.0);
        // Jan–Jun 2026: 181 of 365 days.
        assert!((span.linear_share(at("2026-06")) - 181.0 / 365.0).abs() < 1e-12);
    }

    #[test]
    fn a_monthly_profile_accumulates_its_shares_month_by_month() {
        let span = YearSpan::of(2026, HCM);
        let mut values = [1.0; 12];
        values[11] = 12.0; // a December peak, as budget spending has
        let profile = PlanProfile::from_monthly_values(&values).unwrap();
        // After November: 11 of 23 parts.
        assert!((profile.share(&span, at("2026-11"), 2026, HCM) - 11.0 / 23.0).abs() < 1e-12);
        // Halfway through December (31 days): 11/23 + 12/23 · 0.5.
        let mid_december = at("2026-11") + chrono::Duration::hours(31 * 12);
        assert!(
            (profile.share(&span, mid_december, 2026, HCM) - (11.0 + 6.0) / 23.0).abs() < 1e-12
        );
        assert_eq!(profile.share(&span, at("2026-12"), 2026, HCM), 1.0);
    }

    #[test]
    fn unusable_monthly_values_give_no_profile() {
        assert!(PlanProfile::from_monthly_values(&[0.0; 12]).is_none());
        let mut negative = [1.0; 12];
        negative[3] = -1.0;
        assert!(PlanProfile::from_monthly_values(&negative).is_none());
    }

    #[test]
    fn remaining_periods_are_those_ending_after_the_reported_through_time() {
        let ends = remaining_period_ends(Periodicity::Quarterly, 2026, at("2026-Q2"), HCM);
        assert_eq!(ends, vec![at("2026-Q3"), at("2026-Q4")]);
        assert!(remaining_period_ends(Periodicity::Monthly, 2026, at("2026-12"), HCM).is_empty());
        assert_eq!(
            remaining_period_ends(Periodicity::Daily, 2026, at("2026-12-29"), HCM).len(),
            2
        );
    }
}
