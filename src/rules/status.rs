//! The status of one (indicator, unit, year), as ARCHITECTURE §4 defines it. Pure: the
//! caller passes the year's points, the plan profile, and whether the year is closed or the
//! feed stale; nothing here reads a clock or a database.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::plan::{PlanProfile, YearSpan};
use super::projection::{run_rate, Line, Method, Outlook, Spread};
use crate::domain::{Direction, Kind, Status, TargetValue};

/// One period of the year: its end instant and its latest value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub end: DateTime<Utc>,
    pub value: f64,
}

/// Everything the judgement needs.
#[derive(Debug, Clone)]
pub struct EvalInput<'a> {
    pub kind: Kind,
    pub direction: Direction,
    pub target: TargetValue,
    /// The at-risk band as a fraction of the target (the target's own, else the indicator's).
    pub tolerance: f64,
    pub year: i32,
    pub span: YearSpan,
    pub zone: Tz,
    pub profile: &'a PlanProfile,
    /// The year's points, latest revisions, sorted by end.
    pub points: &'a [Point],
    /// End instants of the periods still to come (for averages).
    pub pending_period_ends: &'a [DateTime<Utc>],
    /// The year's last period is in, or its release date has passed.
    pub year_closed: bool,
    /// A period that is due has not been delivered.
    pub stale: bool,
}

/// The judgement with its working, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Evaluation {
    pub status: Status,
    /// The year's value so far: the sum (flow), the latest year-to-date total (cumulative), the
    /// latest value (level, growth) or the mean so far (average).
    // The working's sums and shares are sent without the binary noise of their last digits.
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub actual: Option<f64>,
    /// What the plan expects by the reported-through time (flows and cumulatives).
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub expected: Option<f64>,
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_option")]
    pub projection: Option<f64>,
    /// 90 % interval of the projection: `[low, high]`.
    #[schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2)]
    #[serde(serialize_with = "crate::domain::number::serialize_tidy_pair")]
    pub interval: Option<(f64, f64)>,
    /// Probability of meeting the target.
    pub probability: Option<f64>,
    pub method: Option<Method>,
    /// End of the latest period reported: pacing is judged here, never at the wall clock.
    pub reported_through: Option<DateTime<Utc>>,
    /// Plan share at the reported-through time.
    pub share: Option<f64>,
    /// The verdict on the figures that are in, as if none were overdue: `status` itself, unless
    /// the feed is stale. Shown as `judged` beside the official status.
    #[serde(skip)]
    pub verdict: Status,
}

impl Evaluation {
    fn empty(status: Status) -> Self {
        Self {
            status,
            verdict: status,
            actual: None,
            expected: None,
            projection: None,
            interval: None,
            probability: None,
            method: None,
            reported_through: None,
            share: None,
        }
    }
}

/// The tolerance as an absolute amount around a threshold, so negative targets (a growth
/// target of −2 %) widen the band the right way.
fn band(threshold: f64, tolerance: f64) -> f64 {
    threshold.abs() * tolerance
}

/// Judges a projection (or a final value) against the target.
pub fn judge(direction: Direction, target: TargetValue, tolerance: f64, value: f64) -> Status {
    match (direction, target) {
        (_, TargetValue::Band { lo, hi }) => {
            if (lo..=hi).contains(&value) {
                Status::OnTrack
            } else if value >= lo - band(lo, tolerance) && value <= hi + band(hi, tolerance) {
                Status::AtRisk
            } else {
                Status::OffTrack
            }
        }
        (Direction::HigherIsBetter, TargetValue::Point { value: t }) => {
            if value >= t {
                Status::OnTrack
            } else if value >= t - band(t, tolerance) {
                Status::AtRisk
            } else {
                Status::OffTrack
            }
        }
        (Direction::LowerIsBetter | Direction::Within, TargetValue::Point { value: t }) => {
            if value <= t {
                Status::OnTrack
            } else if value <= t + band(t, tolerance) {
                Status::AtRisk
            } else {
                Status::OffTrack
            }
        }
    }
}

fn meets(direction: Direction, target: TargetValue, value: f64) -> bool {
    judge(direction, target, 0.0, value) == Status::OnTrack
}

fn midpoint(target: TargetValue) -> f64 {
    match target {
        TargetValue::Point { value } => value,
        TargetValue::Band { lo, hi } => (lo + hi) / 2.0,
    }
}

/// Evaluates one target.
pub fn evaluate(input: &EvalInput<'_>) -> Evaluation {
    let Some(last) = input.points.last() else {
        let mut evaluation = Evaluation::empty(Status::NoData);
        evaluation.status = if input.stale {
            Status::Stale
        } else {
            Status::NoData
        };
        return evaluation;
    };
    // A closed year is judged on its final value alone, so its projection is not worked out.
    let project = !input.year_closed;
    let mut evaluation = match input.kind {
        Kind::Flow | Kind::Cumulative => accumulated(input, project),
        Kind::Level | Kind::Growth | Kind::Average => trended(input, project),
    };
    evaluation.reported_through = Some(last.end);
    let actual = evaluation.actual.unwrap_or(last.value);

    evaluation.verdict = if input.year_closed {
        evaluation.method = Some(Method::FinalValue);
        evaluation.projection = Some(actual);
        evaluation.interval = None;
        evaluation.probability = Some(if meets(input.direction, input.target, actual) {
            1.0
        } else {
            0.0
        });
        if meets(input.direction, input.target, actual) {
            Status::Achieved
        } else {
            Status::Missed
        }
    } else if let Some(status) = settled_early(input, actual) {
        status
    } else {
        match evaluation.projection {
            Some(projection) => judge(input.direction, input.target, input.tolerance, projection),
            None => Status::NoData,
        }
    };
    evaluation.status = if input.stale {
        with_staleness(evaluation.verdict, settled_early(input, actual))
    } else {
        evaluation.verdict
    };
    evaluation
}

/// The status of a target whose feed is stale, given `settled`, the outcome its figures settle
/// whatever is still to come. A verdict drawn from figures that stop short of what is due may
/// only show that they are late, so `stale` takes its place; so does a closed year's outcome
/// that a missing figure could still change (a total short of its target with a month not in).
/// An outcome the figures already settle stands: a total already past its target, a flow
/// already past its ceiling.
fn with_staleness(verdict: Status, settled: Option<Status>) -> Status {
    if settled == Some(verdict) {
        verdict
    } else {
        Status::Stale
    }
}

/// A flow or cumulative total can settle the year before it ends: a higher-is-better total that
/// already reached its target is achieved, and a lower-is-better flow past its ceiling is missed.
fn settled_early(input: &EvalInput<'_>, actual: f64) -> Option<Status> {
    let TargetValue::Point { value: target } = input.target else {
        return None;
    };
    match (input.kind, input.direction) {
        (Kind::Flow | Kind::Cumulative, Direction::HigherIsBetter) if actual >= target => {
            Some(Status::Achieved)
        }
        (Kind::Flow, Direction::LowerIsBetter) if actual > target => Some(Status::Missed),
        _ => None,
    }
}

/// Flows and cumulatives: actual, expected to date and, when `project`, the run-rate projection
/// with, from three points on, its interval and probability under the same model.
fn accumulated(input: &EvalInput<'_>, project: bool) -> Evaluation {
    let curve = input.profile.laid_on(&input.span, input.year, input.zone);
    let share_at = |t: DateTime<Utc>| {
        let share = curve.share(t);
        // A profile may expect nothing yet (a zero January); pace such months linearly.
        if share > f64::EPSILON {
            share
        } else {
            curve.linear_share(t)
        }
    };
    let running_total = |running: f64, point: &Point| match input.kind {
        Kind::Flow => running + point.value,
        _ => point.value,
    };
    let actual = input.points.iter().fold(0.0, running_total);
    let share = input.points.last().map_or(0.0, |point| share_at(point.end));
    let mut evaluation = Evaluation::empty(Status::NoData);
    evaluation.actual = Some(actual);
    evaluation.share = Some(share);
    evaluation.expected = Some(midpoint(input.target) * share);
    if share <= f64::EPSILON || !project {
        return evaluation;
    }
    // The year-to-date path in plan time. The model reads it twice, and a share costs more than
    // keeping it (a monthly profile searches its months), so it is worked out once.
    let path: Vec<(f64, f64)> = input
        .points
        .iter()
        .scan(0.0, |running, point| {
            *running = running_total(*running, point);
            Some((share_at(point.end), *running))
        })
        .collect();
    let Some(outlook) = run_rate(path.iter().copied()) else {
        return evaluation;
    };
    evaluation.method = Some(if outlook.spread.is_some() {
        Method::RunRateWithFit
    } else {
        Method::RunRate
    });
    set_outlook(&mut evaluation, &outlook, input);
    evaluation
}

/// The projection, its interval and its probability, all read from one outlook.
fn set_outlook(evaluation: &mut Evaluation, outlook: &Outlook, input: &EvalInput<'_>) {
    evaluation.projection = Some(outlook.point);
    evaluation.interval = outlook.interval();
    evaluation.probability = outlook.probability_of_meeting(input.direction, input.target);
}

/// Levels, growth rates and averages: when `project`, a linear trend in time (n ≥ 3)
/// extrapolated to the year's end with its prediction interval; the latest value (or the mean so
/// far) otherwise.
fn trended(input: &EvalInput<'_>, project: bool) -> Evaluation {
    let points = input.points;
    let n = points.len() as f64;
    let mean_so_far = points.iter().map(|p| p.value).sum::<f64>() / n;
    let latest = points.last().map_or(0.0, |p| p.value);
    let mut evaluation = Evaluation::empty(Status::NoData);
    evaluation.actual = Some(if input.kind == Kind::Average {
        mean_so_far
    } else {
        latest
    });
    if !project {
        return evaluation;
    }

    let clock = input.span.clock();
    let xs: Vec<f64> = points
        .iter()
        .map(|p| clock.days_since_start(p.end))
        .collect();
    let ys: Vec<f64> = points.iter().map(|p| p.value).collect();
    let Some(line) = Line::fit(&xs, &ys) else {
        let (projection, method) = if input.kind == Kind::Average {
            (mean_so_far, Method::MeanSoFar)
        } else {
            (latest, Method::LatestValue)
        };
        evaluation.projection = Some(projection);
        evaluation.method = Some(method);
        return evaluation;
    };

    let outlook = if input.kind == Kind::Average {
        // The year's mean of the observed values and the fitted values still to come; only the
        // ones to come are uncertain, so its spread is theirs, as a share of the year's count.
        let future: Vec<f64> = input
            .pending_period_ends
            .iter()
            .map(|t| clock.days_since_start(*t))
            .collect();
        let total = n + future.len() as f64;
        let fitted: f64 = future.iter().map(|x| line.at(*x)).sum();
        let point = (ys.iter().sum::<f64>() + fitted) / total;
        let spread = (!future.is_empty()).then(|| {
            let mean_future_x = future.iter().sum::<f64>() / future.len() as f64;
            let of_sum = line.prediction_spread_of_sum(future.len(), mean_future_x);
            Spread {
                standard_error: of_sum.standard_error / total,
                degrees_of_freedom: of_sum.degrees_of_freedom,
            }
        });
        Outlook {
            point,
            spread,
            floor: None,
        }
    } else {
        let x_end = clock.days_since_start(input.span.end);
        Outlook {
            point: line.at(x_end),
            spread: Some(line.prediction_spread(x_end)),
            floor: None,
        }
    };
    evaluation.method = Some(if input.kind == Kind::Average {
        Method::MeanWithTrend
    } else {
        Method::LinearTrend
    });
    set_outlook(&mut evaluation, &outlook, input);
    evaluation
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "status_props.rs"]
mod props;

#[cfg(test)]
mod staleness_tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    /// A flow towards 100 over a 100-day linear year, with `values` at days 25, 50, …
    fn flow(values: &[f64], stale: bool) -> Evaluation {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let points: Vec<Point> = values
            .iter()
            .zip(1..)
            .map(|(value, quarter)| Point {
                end: start + Duration::days(25 * quarter),
                value: *value,
            })
            .collect();
        evaluate(&EvalInput {
            kind: Kind::Flow,
            direction: Direction::HigherIsBetter,
            target: TargetValue::Point { value: 100.0 },
            tolerance: 0.05,
            year: 2026,
            span: YearSpan {
                start,
                end: start + Duration::days(100),
            },
            zone: chrono_tz::Asia::Ho_Chi_Minh,
            profile: &PlanProfile::Linear,
            points: &points,
            pending_period_ends: &[],
            year_closed: false,
            stale,
        })
    }

    #[test]
    fn a_stale_feed_shows_stale_and_keeps_the_verdict_on_the_figures_received() {
        // values | verdict on time = verdict when stale | status when stale.
        let table: [(&[f64], Status, Status); 5] = [
            (&[20.0, 25.0], Status::OffTrack, Status::Stale),
            (&[24.0, 24.0], Status::AtRisk, Status::Stale),
            (&[30.0, 30.0], Status::OnTrack, Status::Stale),
            (&[60.0, 60.0], Status::Achieved, Status::Achieved),
            (&[], Status::NoData, Status::Stale),
        ];
        for (values, verdict, stale_status) in table {
            let on_time = flow(values, false);
            assert_eq!(
                (on_time.status, on_time.verdict),
                (verdict, verdict),
                "{values:?}"
            );
            let late = flow(values, true);
            assert_eq!(
                (late.status, late.verdict),
                (stale_status, verdict),
                "{values:?}"
            );
            assert_eq!(late.projection, on_time.projection, "{values:?}");
        }
    }
}
