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
        self.clock().linear_share(t)
    }

    /// Days from the start of the span to `t` (fractional), the x axis of trend fits.
    pub fn days_since_start(&self, t: DateTime<Utc>) -> f64 {
        self.clock().days_since_start(t)
    }

    /// The span ready to place many instants in (see [`SpanClock`]).
    pub fn clock(&self) -> SpanClock {
        SpanClock {
            start: self.start,
            start_secs: self.start.timestamp(),
            start_nanos: self.start.timestamp_subsec_nanos(),
            millis: (self.end - self.start).num_milliseconds(),
        }
    }
}

/// A [`YearSpan`] with its start in Unix time and its length worked out once. chrono subtracts
/// instants as calendar dates, several times slower than subtracting Unix times, and a fit
/// places every point of a series in its year.
#[derive(Debug, Clone, Copy)]
pub struct SpanClock {
    start: DateTime<Utc>,
    start_secs: i64,
    start_nanos: u32,
    /// The span's length.
    millis: i64,
}

impl SpanClock {
    /// [`YearSpan::linear_share`].
    pub fn linear_share(&self, t: DateTime<Utc>) -> f64 {
        if self.millis <= 0 {
            return 1.0;
        }
        (self.millis_since_start(t) as f64 / self.millis as f64).clamp(0.0, 1.0)
    }

    /// [`YearSpan::days_since_start`].
    pub fn days_since_start(&self, t: DateTime<Utc>) -> f64 {
        self.millis_since_start(t) as f64 / 86_400_000.0
    }

    /// `(t - start).num_milliseconds()`.
    fn millis_since_start(&self, t: DateTime<Utc>) -> i64 {
        const NANOS_PER_SEC: i64 = 1_000_000_000;
        let nanos = t.timestamp_subsec_nanos();
        // chrono counts a leap second (nanos past one second) its own way.
        let leap = |nanos: u32| i64::from(nanos) >= NANOS_PER_SEC;
        if leap(nanos) || leap(self.start_nanos) {
            return (t - self.start).num_milliseconds();
        }
        let mut secs = t.timestamp() - self.start_secs;
        let mut nanos = i64::from(nanos) - i64::from(self.start_nanos);
        // As chrono's `TimeDelta::num_milliseconds`: seconds and nanoseconds of one sign, each
        // truncated towards zero.
        if secs > 0 && nanos < 0 {
            secs -= 1;
            nanos += NANOS_PER_SEC;
        } else if secs < 0 && nanos > 0 {
            secs += 1;
            nanos -= NANOS_PER_SEC;
        }
        secs * 1_000 + nanos / 1_000_000
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
        self.laid_on(span, year, zone).share(t)
    }

    /// The profile laid on `span`, to read [`Self::share`] at many instants: the month
    /// boundaries are time zone conversions, so they are found once rather than per instant.
    pub fn laid_on(&self, span: &YearSpan, year: i32, zone: Tz) -> PlanCurve<'_> {
        let months = match self {
            Self::Linear => None,
            Self::Monthly { shares } => {
                let calendar = YearSpan::of(year, zone) == *span;
                let slice = (span.end - span.start) / 12;
                let bounds: [DateTime<Utc>; 13] = std::array::from_fn(|index| {
                    if !calendar {
                        span.start + slice * index as i32
                    } else if index < 12 {
                        Period::Month(year, index as u32 + 1).start(zone)
                    } else {
                        Period::Month(year, 12).end(zone)
                    }
                });
                Some((shares, bounds))
            }
        };
        PlanCurve {
            span: *span,
            clock: span.clock(),
            months,
        }
    }
}

/// A [`PlanProfile`] laid on one span (see [`PlanProfile::laid_on`]).
#[derive(Debug, Clone)]
pub struct PlanCurve<'a> {
    span: YearSpan,
    clock: SpanClock,
    /// A monthly profile's shares, with the instants its months start at and the last one's end.
    months: Option<(&'a [f64; 12], [DateTime<Utc>; 13])>,
}

impl PlanCurve<'_> {
    /// The expected cumulative share of the year's target at `t`, in `[0, 1]`.
    pub fn share(&self, t: DateTime<Utc>) -> f64 {
        let Some((shares, bounds)) = &self.months else {
            return self.linear_share(t);
        };
        if t <= self.span.start {
            return 0.0;
        }
        if t >= self.span.end {
            return 1.0;
        }
        let mut done = 0.0;
        for (index, share) in shares.iter().enumerate() {
            let (month_start, month_end) = (bounds[index], bounds[index + 1]);
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

    /// [`YearSpan::linear_share`] of the span.
    pub fn linear_share(&self, t: DateTime<Utc>) -> f64 {
        self.clock.linear_share(t)
    }
}

/// The end instants of every period of `year`, oldest first.
pub fn period_ends(periodicity: Periodicity, year: i32, zone: Tz) -> Vec<DateTime<Utc>> {
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
    periods.iter().map(|p| p.end(zone)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn at(period: &str) -> DateTime<Utc> {
        Period::parse(period).unwrap().end(HCM)
    }

    #[test]
    fn the_clock_measures_milliseconds_as_chrono_does() {
        use chrono::TimeZone;
        let instants = [
            Utc.with_ymd_and_hms(2025, 12, 31, 17, 0, 0).unwrap(),
            Utc.timestamp_opt(1_767_200_000, 999_999_999).unwrap(),
            Utc.timestamp_opt(1_767_200_000, 500_000).unwrap(),
            Utc.timestamp_opt(-86_401, 1).unwrap(),
            Utc.timestamp_opt(-86_401, 999_000_001).unwrap(),
            Utc.timestamp_opt(1_798_761_599, 1_500_000_000).unwrap(), // a leap second
            at("2026-12"),
        ];
        for start in instants {
            let clock = YearSpan { start, end: start }.clock();
            for t in instants {
                let chrono = (t - start).num_milliseconds();
                assert_eq!(clock.millis_since_start(t), chrono, "{start} → {t}");
            }
        }
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
    fn a_years_period_ends_come_in_order() {
        let quarters = period_ends(Periodicity::Quarterly, 2026, HCM);
        let expected: Vec<_> = ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
            .into_iter()
            .map(at)
            .collect();
        assert_eq!(quarters, expected);
        assert_eq!(period_ends(Periodicity::Daily, 2026, HCM).len(), 365);
        assert_eq!(period_ends(Periodicity::Yearly, 2026, HCM), [at("2026")]);
    }
}
