//! Properties of every projection method over random series: the 90 % interval contains the
//! projection, a flow that only adds up is never projected below what it has, and the
//! probability of meeting a target agrees with where the target lies against the projection and
//! the interval. Each method gets its own run of [`CASES`] series that it projects.

use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::rules::plan::PlanProfile;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;
const YEAR: i32 = 2026;
const DAYS_IN_YEAR: u32 = 365;
const CASES: u32 = 10_000;
/// Room for the Student-t quantiles and tails, which statrs finds by iteration.
const SLACK: f64 = 1e-6;

#[derive(Debug, Clone)]
struct Series {
    kind: Kind,
    direction: Direction,
    /// Day of the year on which each reported period ends, increasing.
    days: Vec<u32>,
    /// Each period's own amount; a cumulative reports their running sum.
    amounts: Vec<f64>,
    /// Days on which the periods still to come end.
    pending: Vec<u32>,
    profile: PlanProfile,
    year_closed: bool,
    stale: bool,
    /// Targets, as offsets from the projection in half-widths of its interval.
    offsets: Vec<f64>,
}

impl Series {
    fn values(&self) -> Vec<f64> {
        if self.kind != Kind::Cumulative {
            return self.amounts.clone();
        }
        let mut running = 0.0;
        self.amounts
            .iter()
            .map(|amount| {
                running += amount;
                running
            })
            .collect()
    }

    /// A flow or cumulative to which every period added something non-negative.
    fn only_adds_up(&self) -> bool {
        let values = self.values();
        match self.kind {
            Kind::Flow => values.iter().all(|v| *v >= 0.0),
            Kind::Cumulative => {
                let mut previous = 0.0;
                values.iter().all(|v| {
                    let up = *v >= previous;
                    previous = *v;
                    up
                })
            }
            _ => false,
        }
    }

    fn evaluate(&self, direction: Direction, target: TargetValue) -> Evaluation {
        // A 365-day span that is not the calendar year in the city's zone: a monthly profile is
        // laid on twelve equal slices, which spares the time zone conversions of every
        // evaluation and keeps the many cases quick.
        let start = Utc.with_ymd_and_hms(YEAR, 1, 1, 0, 0, 0).unwrap();
        let span = YearSpan {
            start,
            end: start + Duration::days(i64::from(DAYS_IN_YEAR)),
        };
        let at = |day: &u32| span.start + Duration::days(i64::from(*day));
        let points: Vec<Point> = self
            .days
            .iter()
            .zip(self.values())
            .map(|(day, value)| Point {
                end: at(day),
                value,
            })
            .collect();
        let pending: Vec<_> = self.pending.iter().map(at).collect();
        evaluate(&EvalInput {
            kind: self.kind,
            direction,
            target,
            tolerance: 0.05,
            year: YEAR,
            span,
            zone: HCM,
            profile: &self.profile,
            points: &points,
            pending_period_ends: &pending,
            year_closed: self.year_closed,
            stale: self.stale,
        })
    }
}

/// Linear, or twelve monthly shares of which some are nil (months the plan expects nothing of).
fn profile() -> impl Strategy<Value = PlanProfile> {
    let month = prop_oneof![1 => Just(0.0), 3 => 0.01..1.0f64];
    prop_oneof![
        Just(PlanProfile::Linear),
        prop::array::uniform12(month)
            .prop_map(|values| PlanProfile::from_monthly_values(&values).unwrap_or_default()),
    ]
}

/// Amounts at one of several scales: non-negative ones most often (counts, money), signed ones,
/// perfectly even ones (no spread at all) and bursts among zeros.
fn amounts(len: usize) -> impl Strategy<Value = Vec<f64>> {
    let scale = prop::sample::select(vec![1e-3, 1.0, 250.0, 1e6, 1e12]);
    let unit = prop_oneof![
        4 => prop::collection::vec(0.0..1.0f64, len),
        2 => prop::collection::vec(-1.0..1.0f64, len),
        1 => (-1.0..1.0f64).prop_map(move |value| vec![value; len]),
        1 => prop::collection::vec(prop::sample::select(vec![0.0, 0.0, 1.0]), len),
    ];
    (scale, unit).prop_map(|(scale, unit)| unit.into_iter().map(|u| u * scale).collect())
}

fn offset() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), -0.01..0.01f64, -3.0..3.0f64]
}

/// Series of one of `kinds` with a number of reported periods in `reported` and of periods to
/// come in `to_come`.
fn series(
    kinds: &[Kind],
    reported: std::ops::RangeInclusive<usize>,
    to_come: std::ops::RangeInclusive<usize>,
    year_closed: bool,
) -> impl Strategy<Value = Series> {
    let kind = prop::sample::select(kinds.to_vec());
    let direction = prop::sample::select(vec![
        Direction::HigherIsBetter,
        Direction::LowerIsBetter,
        Direction::Within,
    ]);
    (reported, to_come)
        .prop_flat_map(|(reported, to_come)| {
            let days = prop::collection::btree_set(1..=DAYS_IN_YEAR, reported + to_come)
                .prop_map(|days| days.into_iter().collect::<Vec<_>>());
            (Just(reported), days, amounts(reported))
        })
        .prop_flat_map(move |(reported, days, amounts)| {
            (
                kind.clone(),
                direction.clone(),
                Just(days[..reported].to_vec()),
                Just(amounts),
                Just(days[reported..].to_vec()),
                profile(),
                any::<bool>(),
                prop::collection::vec(offset(), 3),
            )
        })
        .prop_map(
            move |(kind, direction, days, amounts, pending, profile, stale, offsets)| Series {
                kind,
                direction,
                days,
                amounts,
                pending,
                profile,
                year_closed,
                stale,
                offsets,
            },
        )
}

/// The probability an evaluation gives, which must lie in [0, 1].
fn probability_of(evaluation: &Evaluation) -> Result<Option<f64>, TestCaseError> {
    if let Some(p) = evaluation.probability {
        prop_assert!((0.0..=1.0).contains(&p), "probability {p}");
    }
    Ok(evaluation.probability)
}

/// Checks every property on `series` and the targets placed around its projection, then
/// keeps the case only if it was projected by `method`.
fn check(series: &Series, method: Method) -> Result<(), TestCaseError> {
    let direction = series.direction;
    let probe = series.evaluate(direction, TargetValue::Point { value: 0.0 });
    let projection = probe.projection.ok_or_else(|| fail("no projection"))?;
    let actual = probe.actual.ok_or_else(|| fail("no actual"))?;
    prop_assert!(projection.is_finite(), "projection {projection}");

    if series.year_closed {
        prop_assert_eq!(probe.method, Some(Method::FinalValue));
        prop_assert_eq!(projection, actual);
        prop_assert_eq!(probe.interval, None);
    } else if let Some((low, high)) = probe.interval {
        prop_assert!(low.is_finite() && high.is_finite(), "{low}, {high}");
        prop_assert!(
            low <= projection && projection <= high,
            "{projection} outside [{low}, {high}]"
        );
        if series.only_adds_up() {
            prop_assert!(low >= actual, "[{low}, {high}] under the actual {actual}");
        }
    } else {
        prop_assert_eq!(probe.probability, None);
    }
    if matches!(probe.method, Some(Method::RunRate | Method::RunRateWithFit)) {
        // The run rate stays the point.
        let share = probe.share.ok_or_else(|| fail("no share"))?;
        prop_assert_eq!(projection, actual / share);
    }

    let (low, high) = probe.interval.unwrap_or((projection, projection));
    let half_width = if high > low {
        (high - low) / 2.0
    } else {
        projection.abs().max(actual.abs()).max(1.0) * 0.1
    };
    let mut targets: Vec<f64> = series
        .offsets
        .iter()
        .map(|offset| projection + offset * half_width)
        .chain([projection, low, high, actual])
        .filter(|t| t.is_finite())
        .collect();
    targets.sort_by(f64::total_cmp);
    targets.dedup();

    let mut chances = Vec::with_capacity(targets.len());
    for &value in &targets {
        let evaluation = series.evaluate(direction, TargetValue::Point { value });
        prop_assert_eq!(evaluation.projection, probe.projection);
        prop_assert_eq!(evaluation.interval, probe.interval);
        let Some(p) = probability_of(&evaluation)? else {
            continue;
        };
        if series.year_closed {
            let met = meets(direction, TargetValue::Point { value }, actual);
            prop_assert_eq!(p, certainty(met));
            continue;
        }
        point_agrees(direction, value, projection, (low, high), p)?;
        chances.push(p);
    }
    // The more a target asks, the less likely it is met.
    for pair in chances.windows(2) {
        let (easier, harder) = match direction {
            Direction::HigherIsBetter => (pair[0], pair[1]),
            _ => (pair[1], pair[0]),
        };
        prop_assert!(harder <= easier + 1e-12, "{chances:?} for {targets:?}");
    }

    let (first, second) = (targets[0], targets[targets.len() / 2]);
    let bands = [
        (low, high),
        (projection - half_width / 2.0, projection + half_width / 2.0),
        (first, second),
        (second, targets[targets.len() - 1]),
    ];
    for (lo, hi) in bands {
        let target = TargetValue::Band { lo, hi };
        let evaluation = series.evaluate(direction, target);
        let Some(p) = probability_of(&evaluation)? else {
            continue;
        };
        if series.year_closed {
            prop_assert_eq!(p, certainty(meets(direction, target, actual)));
            continue;
        }
        band_agrees((lo, hi), projection, (low, high), p)?;
    }

    prop_assume!(
        probe.method == Some(method),
        "projected by {:?}",
        probe.method
    );
    Ok(())
}

/// A point target: met with probability at least one half exactly when the projection meets
/// it, at least 95 % when the whole interval does and at most 5 % when none of it does.
fn point_agrees(
    direction: Direction,
    target: f64,
    projection: f64,
    (low, high): (f64, f64),
    p: f64,
) -> Result<(), TestCaseError> {
    let context = || format!("target {target}, projection {projection}, [{low}, {high}]: {p}");
    let (meets, sure, hopeless) = match direction {
        Direction::HigherIsBetter => (projection >= target, target <= low, target > high),
        // "Within" with a point target reads as "at most".
        _ => (projection <= target, target >= high, target < low),
    };
    if meets {
        prop_assert!(p >= 0.5, "{}", context());
    } else {
        prop_assert!(p <= 0.5, "{}", context());
    }
    if sure {
        prop_assert!(p >= 0.95 - SLACK, "{}", context());
    }
    if hopeless {
        prop_assert!(p <= 0.05 + SLACK, "{}", context());
    }
    Ok(())
}

/// A band: at most one half when the projection is outside it, at least 90 % when it holds the
/// whole interval, at most 5 % when it misses the interval.
fn band_agrees(
    (lo, hi): (f64, f64),
    projection: f64,
    (low, high): (f64, f64),
    p: f64,
) -> Result<(), TestCaseError> {
    let context = || format!("band [{lo}, {hi}], projection {projection}, [{low}, {high}]: {p}");
    if projection < lo || projection > hi {
        prop_assert!(p <= 0.5, "{}", context());
    }
    if lo <= low && high <= hi {
        prop_assert!(p >= 0.9 - SLACK, "{}", context());
    }
    if hi < low || lo > high {
        prop_assert!(p <= 0.05 + SLACK, "{}", context());
    }
    Ok(())
}

/// A closed year's probability: its value meets the target or does not.
fn certainty(met: bool) -> f64 {
    if met {
        1.0
    } else {
        0.0
    }
}

fn fail(what: &str) -> TestCaseError {
    TestCaseError::fail(what.to_owned())
}

const ACCUMULATED: &[Kind] = &[Kind::Flow, Kind::Cumulative];
const POINT_IN_TIME: &[Kind] = &[Kind::Level, Kind::Growth];
const EVERY_KIND: &[Kind] = &[
    Kind::Flow,
    Kind::Cumulative,
    Kind::Level,
    Kind::Growth,
    Kind::Average,
];

proptest! {
    #![proptest_config(ProptestConfig {
        // A series whose plan share puts all its points on one step has no spread and is
        // projected by the bare run rate: it is checked, then drawn again.
        max_global_rejects: CASES,
        ..ProptestConfig::with_cases(CASES)
    })]

    #[test]
    fn run_rate_projections_are_coherent(series in series(ACCUMULATED, 1..=2, 0..=0, false)) {
        check(&series, Method::RunRate)?;
    }

    #[test]
    fn run_rate_with_fit_projections_are_coherent(
        series in series(ACCUMULATED, 3..=40, 0..=0, false)
    ) {
        check(&series, Method::RunRateWithFit)?;
    }

    #[test]
    fn linear_trend_projections_are_coherent(
        series in series(POINT_IN_TIME, 3..=40, 0..=0, false)
    ) {
        check(&series, Method::LinearTrend)?;
    }

    #[test]
    fn mean_with_trend_projections_are_coherent(
        series in series(&[Kind::Average], 3..=12, 1..=12, false)
    ) {
        check(&series, Method::MeanWithTrend)?;
    }

    #[test]
    fn latest_value_projections_are_coherent(
        series in series(POINT_IN_TIME, 1..=2, 0..=0, false)
    ) {
        check(&series, Method::LatestValue)?;
    }

    #[test]
    fn mean_so_far_projections_are_coherent(
        series in series(&[Kind::Average], 1..=2, 0..=10, false)
    ) {
        check(&series, Method::MeanSoFar)?;
    }

    #[test]
    fn final_values_are_coherent(series in series(EVERY_KIND, 1..=12, 0..=0, true)) {
        check(&series, Method::FinalValue)?;
    }
}
