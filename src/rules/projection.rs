//! Projections of the year's value (ARCHITECTURE §4). Each is one distribution of the year's
//! value, an [`Outlook`], from which the point, the 90 % interval and the probability of meeting
//! the target are all read, so the three cannot disagree:
//!
//! - flows and cumulatives: the run rate, with the spread of the same model ([`run_rate`]);
//! - levels, growth rates and averages: a least-squares line in time with its Student-t
//!   prediction interval ([`Line`]).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use utoipa::ToSchema;

use crate::domain::{Direction, TargetValue};

/// Two-sided 90 % intervals: the 0.95 quantile on each side.
pub const CONFIDENCE_QUANTILE: f64 = 0.95;

/// Points a flow or cumulative needs before its run rate gets a spread: with fewer, the spread
/// would rest on one degree of freedom and the interval would say little.
pub const FIT_MIN_POINTS: usize = 3;

/// How a projection was made; shown in the API so users can follow the working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `P = A / share(t_r)`.
    RunRate,
    /// The run rate with its interval and probability from the same model (n ≥ 3).
    RunRateWithFit,
    /// The latest value (fewer than three points).
    LatestValue,
    /// Mean of the values so far (an average with fewer than three points).
    MeanSoFar,
    /// Least-squares line in time, extrapolated to the year's end.
    LinearTrend,
    /// Mean of observed values and the trend's values for the periods to come.
    MeanWithTrend,
    /// The year is closed: its final value.
    FinalValue,
}

/// Degrees of freedom whose 0.95 quantile is computed once (a year of daily points fits).
const CACHED_DEGREES: usize = 400;

/// The Student-t 0.95 quantile: cached for whole degrees of freedom, which is what the fits
/// produce, because the inverse CDF is an iterative search and evaluations run by the thousand.
fn t_quantile(degrees_of_freedom: f64) -> Option<f64> {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let whole = degrees_of_freedom.fract() == 0.0 && degrees_of_freedom >= 1.0;
    if whole && (degrees_of_freedom as usize) < CACHED_DEGREES {
        let table = TABLE.get_or_init(|| {
            (0..CACHED_DEGREES)
                .map(|df| {
                    StudentsT::new(0.0, 1.0, df.max(1) as f64)
                        .map(|t| t.inverse_cdf(CONFIDENCE_QUANTILE))
                        .unwrap_or(f64::NAN)
                })
                .collect()
        });
        return Some(table[degrees_of_freedom as usize]).filter(|q| q.is_finite());
    }
    StudentsT::new(0.0, 1.0, degrees_of_freedom)
        .ok()
        .map(|t| t.inverse_cdf(CONFIDENCE_QUANTILE))
}

/// The scale of a Student-t distribution of the projected value around its point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub standard_error: f64,
    pub degrees_of_freedom: f64,
}

impl Spread {
    fn distribution(&self) -> Option<StudentsT> {
        StudentsT::new(0.0, 1.0, self.degrees_of_freedom).ok()
    }

    /// The 90 % interval around `centre`.
    pub fn interval(&self, centre: f64) -> Option<(f64, f64)> {
        let quantile = t_quantile(self.degrees_of_freedom)?;
        let half = quantile * self.standard_error;
        Some((centre - half, centre + half))
    }
}

/// The projected year's value as a distribution: Student-t around `point`, censored at `floor`
/// when the value cannot end below it (what a non-negative flow has already reached).
///
/// Censoring moves the probability below the floor onto the floor itself: quantiles under it
/// become the floor and the others stay, and a target at or under the floor is sure to be
/// exceeded. As the distribution is symmetric around the point and the point is never under the
/// floor, the interval contains the point and the probability of meeting a target is at least
/// one half exactly when the point meets it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub point: f64,
    /// `None` when there are too few points to estimate one: no interval, no probability.
    pub spread: Option<Spread>,
    pub floor: Option<f64>,
}

/// A spread under this fraction of the point is the rounding of the fit (a constant series
/// leaves residuals of a few units in the last place), not information: it is read as none, so
/// that the interval and the probability are not left to rounding at the point's last digits.
const NEGLIGIBLE_SPREAD: f64 = 1e-9;

impl Outlook {
    /// The spread, with one too small to tell from rounding set to nothing.
    fn resolved_spread(&self) -> Option<Spread> {
        let spread = self.spread?;
        let negligible = spread.standard_error <= self.point.abs() * NEGLIGIBLE_SPREAD;
        Some(Spread {
            standard_error: if negligible {
                0.0
            } else {
                spread.standard_error
            },
            ..spread
        })
    }

    /// The 90 % interval `[low, high]`.
    pub fn interval(&self) -> Option<(f64, f64)> {
        let (low, high) = self.resolved_spread()?.interval(self.point)?;
        Some(match self.floor {
            Some(floor) => (low.max(floor), high.max(floor)),
            None => (low, high),
        })
    }

    /// Probability that the outcome meets the target.
    pub fn probability_of_meeting(&self, direction: Direction, target: TargetValue) -> Option<f64> {
        let spread = self.resolved_spread()?;
        if spread.standard_error <= 0.0 {
            // A perfect fit: the outcome is the point itself.
            let outcome = self.floor.map_or(self.point, |floor| self.point.max(floor));
            let meets = match (direction, target) {
                (Direction::HigherIsBetter, TargetValue::Point { value }) => outcome >= value,
                (_, TargetValue::Point { value }) => outcome <= value,
                (_, TargetValue::Band { lo, hi }) => (lo..=hi).contains(&outcome),
            };
            return Some(if meets { 1.0 } else { 0.0 });
        }
        let distribution = spread.distribution()?;
        let z = |x: f64| (x - self.point) / spread.standard_error;
        let under_floor = |x: f64| self.floor.is_some_and(|floor| x < floor);
        let at_or_under_floor = |x: f64| self.floor.is_some_and(|floor| x <= floor);
        // P(outcome ≤ x) and P(outcome < x); the upper tail from `sf`, which keeps its
        // precision where `1 − cdf` would round to nothing.
        let at_most = |x: f64| {
            if under_floor(x) {
                0.0
            } else {
                distribution.cdf(z(x))
            }
        };
        let below = |x: f64| {
            if at_or_under_floor(x) {
                0.0
            } else {
                distribution.cdf(z(x))
            }
        };
        let at_least = |x: f64| {
            if at_or_under_floor(x) {
                1.0
            } else {
                distribution.sf(z(x))
            }
        };
        Some(match (direction, target) {
            (Direction::HigherIsBetter, TargetValue::Point { value }) => at_least(value),
            // A point target for a band indicator reads as "at most".
            (Direction::LowerIsBetter | Direction::Within, TargetValue::Point { value }) => {
                at_most(value)
            }
            (_, TargetValue::Band { lo, hi }) => (at_most(hi) - below(lo)).max(0.0),
        })
    }
}

/// A step of the year-to-date path shorter than this share of the plan (a month the plan
/// expects nothing of) is merged into the next, since the model weighs each step by the inverse
/// of its share.
const MIN_STEP_SHARE: f64 = 1e-9;

/// The run-rate model of a flow or cumulative figure, from its year-to-date path: the plan
/// share `x_i = share(t_i)` at the end of each reported period and the total `y_i` by then,
/// oldest first. `None` when the share reached is nil.
///
/// The total is read as a random walk with drift in plan time: the amount added over a
/// stretch of the year is `b·Δx` plus a noise of variance `σ²·Δx`, so a month the plan expects
/// twice as much of is allowed twice the variance. Under that model the best estimate of the
/// drift, weighted least squares on the steps, is `b = Σ Δy / Σ Δx = y_n / x_n`: the run rate
/// itself, which is why it stays the point. The year's total is what is in plus the rest of the
/// year, `y_n + b·(1 − x_n)` plus noise, and its prediction variance adds the noise still to come
/// to the error of `b`: `σ²·(1 − x_n) + (1 − x_n)²·σ²/x_n = σ²·(1 − x_n)/x_n`, with `σ²`
/// estimated from the weighted residuals of the steps on their `m − 1` degrees of freedom.
///
/// The steps, not the totals, are what is fitted: totals share every earlier step, so a fit of
/// the totals (through the origin) counts the same noise again at every point, understates the
/// spread, and gives a point of its own that need not be the run rate.
///
/// When every step is non-negative (a flow that only adds up), the year cannot end below the
/// total already reached: the outlook is censored there.
pub fn run_rate<I>(path: I) -> Option<Outlook>
where
    I: IntoIterator<Item = (f64, f64)>,
    I::IntoIter: Clone,
{
    let steps = path.into_iter();
    let mut count = 0;
    let mut last = (0.0, 0.0);
    let mut non_negative = true;
    for (share, total) in steps.clone() {
        non_negative &= total >= last.1;
        last = (share, total);
        count += 1;
    }
    let (share_reached, total) = last;
    if count == 0 || share_reached <= f64::EPSILON {
        return None;
    }
    let point = total / share_reached;
    let floor = non_negative.then_some(total);
    let spread = if count >= FIT_MIN_POINTS {
        step_spread(steps, point, share_reached)
    } else {
        None
    };
    Some(Outlook {
        point,
        spread,
        floor,
    })
}

/// The spread of the year's total under the model of [`run_rate`], whose drift is `rate`.
fn step_spread(
    path: impl Iterator<Item = (f64, f64)>,
    rate: f64,
    share_reached: f64,
) -> Option<Spread> {
    let weighted_square = |share: f64, amount: f64| (amount - rate * share).powi(2) / share;
    let mut previous = (0.0, 0.0);
    let mut open = (0.0, 0.0);
    let mut closed = None;
    let mut weighted_rss = 0.0;
    let mut steps = 0usize;
    for (share, total) in path {
        open.0 += share - previous.0;
        open.1 += total - previous.1;
        previous = (share, total);
        if open.0 > MIN_STEP_SHARE {
            weighted_rss += weighted_square(open.0, open.1);
            steps += 1;
            closed = Some(open);
            open = (0.0, 0.0);
        }
    }
    if open != (0.0, 0.0) {
        // The last periods added no plan share (a December the plan expects nothing of): they
        // join the step before them.
        let (share, amount) = closed?;
        let merged = (share + open.0, amount + open.1);
        if merged.0 <= MIN_STEP_SHARE {
            return None;
        }
        weighted_rss += weighted_square(merged.0, merged.1) - weighted_square(share, amount);
    }
    if steps < 2 {
        return None;
    }
    let degrees_of_freedom = (steps - 1) as f64;
    let still_to_come = (1.0 - share_reached).max(0.0);
    let standard_error = if still_to_come > 0.0 {
        (weighted_rss.max(0.0) / degrees_of_freedom * still_to_come / share_reached).sqrt()
    } else {
        0.0
    };
    standard_error.is_finite().then_some(Spread {
        standard_error,
        degrees_of_freedom,
    })
}

/// An ordinary least-squares line `y = a + b·x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub intercept: f64,
    pub slope: f64,
    /// Residual standard deviation, with n − 2 degrees of freedom.
    pub s: f64,
    pub n: usize,
    pub mean_x: f64,
    pub sxx: f64,
}

impl Line {
    pub fn fit(xs: &[f64], ys: &[f64]) -> Option<Self> {
        let n = xs.len();
        if n < 3 || n != ys.len() {
            return None;
        }
        let mean_x = xs.iter().sum::<f64>() / n as f64;
        let mean_y = ys.iter().sum::<f64>() / n as f64;
        let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| (x - mean_x) * (y - mean_y))
            .sum();
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        let rss: f64 = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| (y - intercept - slope * x).powi(2))
            .sum();
        Some(Self {
            intercept,
            slope,
            s: (rss / (n - 2) as f64).sqrt(),
            n,
            mean_x,
            sxx,
        })
    }

    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// Spread of a new observation at `x`: `s · sqrt(1 + 1/n + (x − x̄)² / Sxx)`.
    pub fn prediction_spread(&self, x: f64) -> Spread {
        self.prediction_spread_of_sum(1, x)
    }

    /// Spread of the sum of `count` new observations whose mean x is `mean_x`. Each brings its
    /// own noise, which adds up as `count·s²`, but all lean on the same fitted line, whose error
    /// adds up as `count²·s²·(1/n + (x̄_new − x̄)²/Sxx)`.
    pub fn prediction_spread_of_sum(&self, count: usize, mean_x: f64) -> Spread {
        let n = self.n as f64;
        let count = count as f64;
        let line_error = 1.0 / n + (mean_x - self.mean_x).powi(2) / self.sxx;
        Spread {
            standard_error: self.s * (count + count * count * line_error).sqrt(),
            degrees_of_freedom: n - 2.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    const HIGHER: Direction = Direction::HigherIsBetter;
    const LOWER: Direction = Direction::LowerIsBetter;

    fn at_least(value: f64) -> TargetValue {
        TargetValue::Point { value }
    }

    #[test]
    fn a_perfectly_paced_total_has_no_spread() {
        let outlook = run_rate([(0.25, 25.0), (0.5, 50.0), (0.75, 75.0)]).unwrap();
        assert!(close(outlook.point, 100.0));
        assert!(close(outlook.spread.unwrap().standard_error, 0.0));
        assert_eq!(outlook.interval(), Some((100.0, 100.0)));
        assert_eq!(
            outlook.probability_of_meeting(HIGHER, at_least(100.0)),
            Some(1.0)
        );
        assert_eq!(
            outlook.probability_of_meeting(HIGHER, at_least(100.5)),
            Some(0.0)
        );
    }

    #[test]
    fn the_run_rate_model_matches_a_hand_computation() {
        // Totals 20, 50, 70 at shares 0.25, 0.5, 0.75: steps of 0.25 adding 20, 30, 20.
        // b = 70 / 0.75 = 93.33…; each step expects 23.33…; residuals −10/3, 20/3, −10/3.
        // Weighted RSS = (100 + 400 + 100) / 9 / 0.25 = 266.67; s² = 133.33 on 2 degrees.
        // Var = s² · (1 − 0.75) / 0.75 = 44.44…, so the standard error is 20/3.
        let outlook = run_rate([(0.25, 20.0), (0.5, 50.0), (0.75, 70.0)]).unwrap();
        assert!(close(outlook.point, 70.0 / 0.75));
        let spread = outlook.spread.unwrap();
        assert!(close(spread.standard_error, 20.0 / 3.0));
        assert_eq!(spread.degrees_of_freedom, 2.0);
        // t(0.95, 2) = 2.919986 (tables).
        let (low, high) = outlook.interval().unwrap();
        assert!((high - outlook.point - 2.919986 * 20.0 / 3.0).abs() < 1e-4);
        assert!(close(outlook.point - low, high - outlook.point));
        // 100 is one standard error above the point. With 2 degrees of freedom the t
        // distribution has F(t) = 1/2 + t / (2·sqrt(2 + t²)), so P(T ≥ 1) = 1/2 − 1/(2·sqrt 3).
        let p = outlook
            .probability_of_meeting(HIGHER, at_least(100.0))
            .unwrap();
        assert!((p - (0.5 - 0.5 / 3f64.sqrt())).abs() < 1e-9, "{p}");
        assert_eq!(outlook.floor, Some(70.0));
    }

    #[test]
    fn a_non_negative_flow_never_ends_below_what_it_has() {
        // Nothing, nothing, then 90 by 90 % of the plan: b = 100 and a wide spread whose lower
        // end (about 7.7) would be under the 90 already in.
        let outlook = run_rate([(0.3, 0.0), (0.6, 0.0), (0.9, 90.0)]).unwrap();
        assert!(close(outlook.point, 100.0));
        let (low, high) = outlook.interval().unwrap();
        assert_eq!(low, 90.0);
        assert!(high > 190.0, "{high}");
        // A ceiling the flow already passed cannot be kept; a floor it passed is met.
        let ceiling = outlook.probability_of_meeting(LOWER, at_least(80.0));
        assert_eq!(ceiling, Some(0.0));
        let reached = outlook.probability_of_meeting(HIGHER, at_least(85.0));
        assert_eq!(reached, Some(1.0));
        // A band under what is in cannot be met, one around it keeps the mass held there.
        let under = TargetValue::Band { lo: 10.0, hi: 80.0 };
        assert_eq!(outlook.probability_of_meeting(HIGHER, under), Some(0.0));
        let around = TargetValue::Band {
            lo: 80.0,
            hi: 110.0,
        };
        let p = outlook.probability_of_meeting(HIGHER, around).unwrap();
        assert!((0.5..1.0).contains(&p), "{p}");
    }

    #[test]
    fn a_total_that_went_down_has_no_floor() {
        let outlook = run_rate([(0.25, 30.0), (0.5, 20.0), (0.75, 60.0)]).unwrap();
        assert_eq!(outlook.floor, None);
        let (low, _) = outlook.interval().unwrap();
        assert!(low < 60.0, "{low}");
    }

    #[test]
    fn a_step_the_plan_expects_nothing_of_joins_its_neighbour() {
        // A flat plan share between the first two points and after the last: three steps, not
        // five. The first joins the step after it, the last the step before it, so the spread
        // is that of the steps 0.25 → 20, 0.25 → 40, 0.25 → 15.
        let flat = [
            (0.25, 20.0),
            (0.25, 25.0),
            (0.5, 60.0),
            (0.75, 70.0),
            (0.75, 75.0),
        ];
        let merged = [(0.25, 20.0), (0.5, 60.0), (0.75, 75.0)];
        let with_flat = run_rate(flat).unwrap();
        let without = run_rate(merged).unwrap();
        assert!(close(with_flat.point, without.point));
        let (a, b) = (with_flat.spread.unwrap(), without.spread.unwrap());
        assert!(close(a.standard_error, b.standard_error));
        assert_eq!(a.degrees_of_freedom, 2.0);
    }

    #[test]
    fn the_run_rate_needs_three_points_for_a_spread_and_a_share_for_a_point() {
        let two = run_rate([(0.25, 20.0), (0.5, 50.0)]).unwrap();
        assert!(close(two.point, 100.0));
        assert_eq!(two.spread, None);
        assert_eq!(two.interval(), None);
        assert_eq!(two.probability_of_meeting(HIGHER, at_least(1.0)), None);
        assert_eq!(run_rate([(0.0, 5.0)]), None);
        assert_eq!(run_rate(std::iter::empty()), None);
    }

    #[test]
    fn the_year_end_leaves_nothing_to_come() {
        let outlook = run_rate([(0.5, 40.0), (0.75, 70.0), (1.0, 90.0)]).unwrap();
        assert!(close(outlook.point, 90.0));
        assert_eq!(outlook.spread.unwrap().standard_error, 0.0);
    }

    #[test]
    fn the_line_and_its_prediction_interval_match_a_hand_computation() {
        // x = 0, 1, 2, 3; y = 1, 3, 2, 4. x̄ = 1.5, ȳ = 2.5, Sxx = 5, Sxy = 4, b = 0.8, a = 1.3.
        // Fitted 1.3, 2.1, 2.9, 3.7; residuals −0.3, 0.9, −0.9, 0.3; RSS = 1.8; s = sqrt(0.9).
        let line = Line::fit(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!(close(line.slope, 0.8) && close(line.intercept, 1.3));
        assert!(close(line.s, 0.9f64.sqrt()));
        // At x = 5: 5.3; se = s · sqrt(1 + 1/4 + 12.25/5) = sqrt(0.9 · 3.7).
        let spread = line.prediction_spread(5.0);
        assert!(close(line.at(5.0), 5.3));
        assert!(close(spread.standard_error, (0.9f64 * 3.7).sqrt()));
        // t(0.95, 2) = 2.919986 (tables).
        let (lo, hi) = spread.interval(5.3).unwrap();
        assert!((hi - 5.3 - 2.919986 * (0.9f64 * 3.7).sqrt()).abs() < 1e-5);
        assert!(close(5.3 - lo, hi - 5.3));
        // Symmetric: the probability of exceeding the centre is one half.
        let outlook = Outlook {
            point: 5.3,
            spread: Some(spread),
            floor: None,
        };
        let p = outlook
            .probability_of_meeting(HIGHER, at_least(5.3))
            .unwrap();
        assert!(close(p, 0.5));
    }

    #[test]
    fn the_sum_of_new_observations_counts_their_noise_once_each() {
        // The line above, two new observations at x = 4 and 5 (mean 4.5):
        // Var = s² · (2 + 4 · (1/4 + 9/5)) = 0.9 · 10.2.
        let line = Line::fit(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        let spread = line.prediction_spread_of_sum(2, 4.5);
        assert!(close(spread.standard_error, (0.9f64 * 10.2).sqrt()));
        assert_eq!(spread.degrees_of_freedom, 2.0);
    }

    #[test]
    fn too_few_or_degenerate_points_fit_nothing() {
        assert!(Line::fit(&[1.0, 2.0], &[1.0, 2.0]).is_none());
        assert!(Line::fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }
}
