//! Projections of the year's value: run rate, least squares through the origin on the plan
//! share (flows and cumulatives), and a linear trend in time (levels, growth, averages), each
//! with a 90 % Student-t interval and the probability of meeting the target.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use utoipa::ToSchema;

use crate::domain::{Direction, TargetValue};

/// Two-sided 90 % intervals: the 0.95 quantile on each side.
pub const CONFIDENCE_QUANTILE: f64 = 0.95;

/// How a projection was made; shown in the API so users can follow the working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `P = A / share(t_r)`.
    RunRate,
    /// Run rate, with a least-squares fit through the origin for the interval (n ≥ 3).
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

/// A fitted Student-t distribution of the projected value.
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

    /// Probability that a value distributed around `centre` is at most `x`.
    fn cdf(&self, centre: f64, x: f64) -> Option<f64> {
        Some(self.distribution()?.cdf((x - centre) / self.standard_error))
    }

    /// Probability that the outcome meets the target.
    pub fn probability_of_meeting(
        &self,
        centre: f64,
        direction: Direction,
        target: TargetValue,
    ) -> Option<f64> {
        if self.standard_error <= 0.0 {
            // A perfect fit: the outcome is the centre itself.
            let meets = match (direction, target) {
                (Direction::HigherIsBetter, TargetValue::Point { value }) => centre >= value,
                (_, TargetValue::Point { value }) => centre <= value,
                (_, TargetValue::Band { lo, hi }) => (lo..=hi).contains(&centre),
            };
            return Some(if meets { 1.0 } else { 0.0 });
        }
        match (direction, target) {
            (Direction::HigherIsBetter, TargetValue::Point { value }) => {
                Some(1.0 - self.cdf(centre, value)?)
            }
            (Direction::LowerIsBetter, TargetValue::Point { value }) => self.cdf(centre, value),
            (_, TargetValue::Band { lo, hi }) => {
                Some(self.cdf(centre, hi)? - self.cdf(centre, lo)?)
            }
            (Direction::Within, TargetValue::Point { value }) => {
                // A point target for a band indicator: read it as "at most".
                self.cdf(centre, value)
            }
        }
    }
}

/// Least squares through the origin, `y = b·x`: slope and its spread (n − 1 degrees of freedom).
pub fn fit_through_origin(xs: &[f64], ys: &[f64]) -> Option<(f64, Spread)> {
    let n = xs.len();
    if n < 2 || n != ys.len() {
        return None;
    }
    let sxx: f64 = xs.iter().map(|x| x * x).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = xs.iter().zip(ys).map(|(x, y)| x * y).sum::<f64>() / sxx;
    let rss: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - slope * x).powi(2))
        .sum();
    let degrees_of_freedom = (n - 1) as f64;
    let s = (rss / degrees_of_freedom).sqrt();
    Some((
        slope,
        Spread {
            standard_error: s / sxx.sqrt(),
            degrees_of_freedom,
        },
    ))
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

    /// Spread of a new observation at `x`: `s · sqrt(1 + 1/n + (x − x̄)² / Sxx)` (DESIGN §3).
    pub fn prediction_spread(&self, x: f64) -> Spread {
        let n = self.n as f64;
        Spread {
            standard_error: self.s * (1.0 + 1.0 / n + (x - self.mean_x).powi(2) / self.sxx).sqrt(),
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

    #[test]
    fn a_perfect_line_through_the_origin_has_no_spread() {
        let (slope, spread) = fit_through_origin(&[0.25, 0.5, 0.75], &[25.0, 50.0, 75.0]).unwrap();
        assert!(close(slope, 100.0));
        assert!(close(spread.standard_error, 0.0));
        let meets = TargetValue::Point { value: 100.0 };
        assert_eq!(
            spread.probability_of_meeting(slope, Direction::HigherIsBetter, meets),
            Some(1.0)
        );
        let misses = TargetValue::Point { value: 100.5 };
        assert_eq!(
            spread.probability_of_meeting(slope, Direction::HigherIsBetter, misses),
            Some(0.0)
        );
    }

    #[test]
    fn the_origin_fit_matches_a_hand_computation() {
        // x = 1, 2, 3; y = 1, 3, 2. Sxx = 14, Sxy = 1 + 6 + 6 = 13, b = 13/14.
        // Residuals: 1 − 13/14 = 1/14, 3 − 26/14 = 16/14, 2 − 39/14 = −11/14.
        // RSS = (1 + 256 + 121)/196 = 378/196; s² = RSS/2 = 189/196; se = sqrt(189/196)/sqrt(14).
        let (slope, spread) = fit_through_origin(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
        assert!(close(slope, 13.0 / 14.0));
        assert!(close(
            spread.standard_error,
            (189.0f64 / 196.0).sqrt() / 14f64.sqrt()
        ));
        assert_eq!(spread.degrees_of_freedom, 2.0);
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
        let p = spread
            .probability_of_meeting(
                5.3,
                Direction::HigherIsBetter,
                TargetValue::Point { value: 5.3 },
            )
            .unwrap();
        assert!(close(p, 0.5));
    }

    #[test]
    fn too_few_or_degenerate_points_fit_nothing() {
        assert!(Line::fit(&[1.0, 2.0], &[1.0, 2.0]).is_none());
        assert!(Line::fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
        assert!(fit_through_origin(&[0.0, 0.0], &[1.0, 2.0]).is_none());
    }
}
