//! Progress towards a multi-year target (the five-year plan), by the measure Open SDG implements
//! after Statistics Canada and Eurostat (ARCHITECTURE §4).
//!
//! Reproduced from Open SDG's build library: repository `open-sdg/sdg-build`, file
//! `sdg/ProgressMeasure.py`, in its class-based form (`SeriesProgress`: `calculate_progress_value`,
//! `methodology_1`, `methodology_2`, `is_target_achieved`, `get_progress_thresholds`,
//! `get_progress_status`), checked against the published methodology, repository
//! `open-sdg/open-sdg`, file `docs/progress-methodology.md`.
//!
//! The rules, as that code applies them:
//! - Years: the current year is the latest year with a value; the base year is the configured one
//!   if it has a value, otherwise the first later year that has one. Fewer than two distinct years
//!   between them (current − base < 1) cannot be assessed.
//! - `CAGR(a, b, t_a, t_b) = (a / b)^(1 / (t_a − t_b)) − 1`.
//! - `d` is +1 for higher-is-better and −1 for lower-is-better; `sign` is −1 when the base value is
//!   negative (so a series of negative values has its desired direction flipped), +1 otherwise.
//! - A target of zero is replaced by 0.001 before anything else, including the "already achieved"
//!   check; a base value of zero is replaced by 0.001 in the growth rates (its `sign` stays +1).
//! - With a target: achieved when the current value already meets it (`≥` higher-is-better, `≤`
//!   lower-is-better). This check comes first and does not need two years of data. Otherwise
//!   `R = sign · d · CAGR_obs / |CAGR_req|` with `CAGR_req = CAGR(target, base, target_year,
//!   base_year)`, against 0.95 / 0.60 / 0.
//! - Without a target: `sign · d · CAGR_obs` against fixed growth rates 0.015 / 0.005 / 0 (1.5 % and
//!   0.5 % a year; the methodology page gives the same figures).
//! - Categories: `v ≥ high` substantial; `med ≤ v < high` moderate; `low ≤ v < med` limited;
//!   `v < low` deterioration.
//! - A base and a current value of opposite signs cannot be assessed (the exponential model needs
//!   one sign throughout).
//!
//! Not reproduced: the threshold scaling near a natural limit (`limit`) and the −5..5 scores used
//! to aggregate several series into one indicator; a five-year target here is one series.

use serde::{Deserialize, Serialize};

use crate::domain::{Direction, Status};

/// Thresholds on `R` when there is a target (Open SDG's defaults for its "method 2").
const WITH_TARGET: Thresholds = Thresholds {
    high: 0.95,
    med: 0.6,
    low: 0.0,
};

/// Thresholds on the directed CAGR when there is no target (Open SDG's "method 1"). The top one is
/// 1.5 % a year, not 1 %: Open SDG's code and its methodology page both say 0.015.
const WITHOUT_TARGET: Thresholds = Thresholds {
    high: 0.015,
    med: 0.005,
    low: 0.0,
};

/// What Open SDG puts in place of a zero base or target: the growth model divides by the base
/// and takes the ratio's root, so zero has no meaning there.
const ZERO_REPLACEMENT: f64 = 0.001;

struct Thresholds {
    high: f64,
    med: f64,
    low: f64,
}

/// One yearly value of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct YearValue {
    pub year: i32,
    pub value: f64,
}

/// Open SDG's progress categories, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// The current value already meets the target.
    TargetAchieved,
    /// On track: `R ≥ 0.95` (or a directed growth of at least 1.5 % a year without a target).
    Substantial,
    /// Progress made but acceleration needed: `0.60 ≤ R < 0.95` (0.5 %..1.5 % without a target).
    Moderate,
    /// Limited progress: `0 ≤ R < 0.60` (0..0.5 % without a target).
    Limited,
    /// Moving away from the target (or the desired direction): `R < 0`.
    Deterioration,
}

impl Progress {
    /// The yearly status this progress category reads as.
    ///
    /// Open SDG's categories are about the pace towards a target several years away, while a
    /// [`Status`] is about whether the target will be met, so the mapping follows what each
    /// category asks of the city: nothing (achieved), keep going (on track), speed up (at risk),
    /// or change course (off track). Limited progress goes with deterioration because at under
    /// 60 % of the required pace the target is not reached by the plan's end without a change of
    /// course, which is what `off_track` signals. No category maps to `missed`: that needs the
    /// target year to be closed, which this measure does not know.
    pub fn status(self) -> Status {
        match self {
            Self::TargetAchieved => Status::Achieved,
            Self::Substantial => Status::OnTrack,
            Self::Moderate => Status::AtRisk,
            Self::Limited | Self::Deterioration => Status::OffTrack,
        }
    }

    fn from_value(value: f64, thresholds: &Thresholds) -> Option<Self> {
        // The same comparisons, in the same order, as Open SDG's `get_progress_status`; a NaN
        // matches none of them, as there.
        if value >= thresholds.high {
            Some(Self::Substantial)
        } else if value >= thresholds.med {
            Some(Self::Moderate)
        } else if value >= thresholds.low {
            Some(Self::Limited)
        } else if value < thresholds.low {
            Some(Self::Deterioration)
        } else {
            None
        }
    }
}

/// What the measure needs: the desired direction, the base year, the target if any, and the
/// yearly series (any order; NaN values are missing and skipped, as Open SDG drops NA values).
#[derive(Debug, Clone, Copy)]
pub struct FiveYearInput<'a> {
    pub direction: Direction,
    /// The configured base year; the first year at or after it with a value is used.
    pub base_year: i32,
    /// `(target year, target value)`; `None` judges the trend alone.
    pub target: Option<(i32, f64)>,
    pub series: &'a [YearValue],
}

/// The result, with its working.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FiveYearOutcome {
    pub progress: Progress,
    /// The number compared with the thresholds: `R` with a target, `sign · d · CAGR_obs`
    /// without. `None` only when the target is achieved but there are not two years of data.
    pub progress_value: Option<f64>,
    /// `R = sign · d · CAGR_obs / |CAGR_req|`, when there is a target.
    pub ratio: Option<f64>,
    /// Observed compound annual growth rate from the base year to the current year.
    pub cagr_observed: Option<f64>,
    /// Compound annual growth rate needed to reach the target in the target year.
    pub cagr_required: Option<f64>,
    /// The base year actually used and its value as observed (a zero is shown as zero; the
    /// growth rates used 0.001).
    pub base: YearValue,
    /// The latest year and its value.
    pub current: YearValue,
    /// The target value used: the configured one, or 0.001 in place of zero.
    pub target_value: Option<f64>,
}

/// Why the measure cannot be computed: Open SDG reports these as "unable to assess".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FiveYearError {
    #[error("a five-year target needs a direction of higher or lower is better, not a band")]
    DirectionWithin,
    #[error("no values in the series")]
    NoData,
    #[error("the series has two values for {0}")]
    DuplicateYear(i32),
    #[error("the value for {0} is infinite")]
    Infinite(i32),
    #[error("no value in or after the base year {base_year}; the latest is {latest_year}")]
    NoBaseYear { base_year: i32, latest_year: i32 },
    #[error(
        "at least two years of data are needed (base year {base_year}, latest {current_year})"
    )]
    TooFewYears { base_year: i32, current_year: i32 },
    #[error("the base value {base} and the current value {current} have opposite signs")]
    SignMismatch { base: f64, current: f64 },
    #[error("the base value {base} and the target {target} have opposite signs")]
    TargetSignMismatch { base: f64, target: f64 },
    #[error("the target year {0} is the base year")]
    TargetYearIsBaseYear(i32),
    #[error("the target equals the base value {0}, so no growth is required and R is undefined")]
    NoRequiredGrowth(f64),
    #[error("the progress value is undefined")]
    Undefined,
}

/// Open SDG's progress measure for one series (see the module documentation for the rules).
pub fn five_year_progress(input: &FiveYearInput) -> Result<FiveYearOutcome, FiveYearError> {
    let direction = match input.direction {
        Direction::HigherIsBetter => 1.0,
        Direction::LowerIsBetter => -1.0,
        Direction::Within => return Err(FiveYearError::DirectionWithin),
    };
    let points = clean_series(input.series)?;
    let current = *points
        .iter()
        .max_by_key(|point| point.year)
        .ok_or(FiveYearError::NoData)?;
    let base = *points
        .iter()
        .filter(|point| point.year >= input.base_year)
        .min_by_key(|point| point.year)
        .ok_or(FiveYearError::NoBaseYear {
            base_year: input.base_year,
            latest_year: current.year,
        })?;
    let target = input
        .target
        .map(|(year, value)| (year, replace_zero(value)));

    // Open SDG decides "achieved" from the current value alone, before it checks that the
    // growth rates can be computed.
    let achieved = target.is_some_and(|(_, target_value)| {
        if direction > 0.0 {
            current.value >= target_value
        } else {
            current.value <= target_value
        }
    });
    let computed = directed_growth(direction, base, current, target);
    let (progress_value, cagr_observed, cagr_required) = match (computed, achieved) {
        (Ok(growth), _) => (
            Some(growth.progress_value),
            Some(growth.cagr_observed),
            growth.cagr_required,
        ),
        (Err(_), true) => (None, None, None),
        (Err(error), false) => return Err(error),
    };
    let thresholds = if target.is_some() {
        &WITH_TARGET
    } else {
        &WITHOUT_TARGET
    };
    let progress = if achieved {
        Progress::TargetAchieved
    } else {
        let value = progress_value.unwrap_or(f64::NAN);
        Progress::from_value(value, thresholds).ok_or(FiveYearError::Undefined)?
    };
    Ok(FiveYearOutcome {
        progress,
        progress_value,
        ratio: progress_value.filter(|_| target.is_some()),
        cagr_observed,
        cagr_required,
        base,
        current,
        target_value: target.map(|(_, value)| value),
    })
}

struct Growth {
    progress_value: f64,
    cagr_observed: f64,
    cagr_required: Option<f64>,
}

/// `sign · d · CAGR_obs`, divided by `|CAGR_req|` when there is a target: Open SDG's
/// `calculate_progress_value` with its checks in its order.
fn directed_growth(
    direction: f64,
    base: YearValue,
    current: YearValue,
    target: Option<(i32, f64)>,
) -> Result<Growth, FiveYearError> {
    // The sign comes from the base as observed: a zero base counts as positive.
    let sign = if base.value < 0.0 { -1.0 } else { 1.0 };
    let base_value = replace_zero(base.value);
    let opposite_signs =
        (base_value > 0.0 && current.value < 0.0) || (base_value < 0.0 && current.value > 0.0);
    if opposite_signs {
        return Err(FiveYearError::SignMismatch {
            base: base_value,
            current: current.value,
        });
    }
    if current.year - base.year < 1 {
        return Err(FiveYearError::TooFewYears {
            base_year: base.year,
            current_year: current.year,
        });
    }
    let cagr_observed = cagr(current.value, base_value, current.year, base.year);
    let directed = sign * direction * cagr_observed;
    let Some((target_year, target_value)) = target else {
        return Ok(Growth {
            progress_value: directed,
            cagr_observed,
            cagr_required: None,
        });
    };
    if target_year == base.year {
        return Err(FiveYearError::TargetYearIsBaseYear(target_year));
    }
    // Python would produce a complex root here and fail; the required pace is undefined.
    if target_value.signum() != base_value.signum() {
        return Err(FiveYearError::TargetSignMismatch {
            base: base_value,
            target: target_value,
        });
    }
    let cagr_required = cagr(target_value, base_value, target_year, base.year);
    // Python stops with a division by zero here; only reached when the target is not yet met.
    if cagr_required == 0.0 {
        return Err(FiveYearError::NoRequiredGrowth(base_value));
    }
    Ok(Growth {
        progress_value: directed / cagr_required.abs(),
        cagr_observed,
        cagr_required: Some(cagr_required),
    })
}

/// Compound annual growth rate from `(year_from, from)` to `(year_to, to)`.
fn cagr(to: f64, from: f64, year_to: i32, year_from: i32) -> f64 {
    let years = f64::from(year_to - year_from);
    (to / from).powf(1.0 / years) - 1.0
}

fn replace_zero(value: f64) -> f64 {
    if value == 0.0 {
        ZERO_REPLACEMENT
    } else {
        value
    }
}

/// Drops missing (NaN) values and rejects what Open SDG would reject: two values for one year.
fn clean_series(series: &[YearValue]) -> Result<Vec<YearValue>, FiveYearError> {
    let mut points: Vec<YearValue> = Vec::with_capacity(series.len());
    for point in series.iter().filter(|point| !point.value.is_nan()) {
        if point.value.is_infinite() {
            return Err(FiveYearError::Infinite(point.year));
        }
        if points.iter().any(|seen| seen.year == point.year) {
            return Err(FiveYearError::DuplicateYear(point.year));
        }
        points.push(*point);
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGHER: Direction = Direction::HigherIsBetter;
    const LOWER: Direction = Direction::LowerIsBetter;

    fn series(points: &[(i32, f64)]) -> Vec<YearValue> {
        points
            .iter()
            .map(|&(year, value)| YearValue { year, value })
            .collect()
    }

    fn assess(
        direction: Direction,
        base_year: i32,
        target: Option<(i32, f64)>,
        points: &[(i32, f64)],
    ) -> Result<FiveYearOutcome, FiveYearError> {
        let series = series(points);
        five_year_progress(&FiveYearInput {
            direction,
            base_year,
            target,
            series: &series,
        })
    }

    fn close(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|value| (value - expected).abs() < 1e-9)
    }

    struct Case {
        name: &'static str,
        direction: Direction,
        target: Option<(i32, f64)>,
        points: &'static [(i32, f64)],
        progress: Progress,
        /// The hand-computed number compared with the thresholds (None: not computed).
        value: Option<f64>,
    }

    #[test]
    fn every_category_is_reached_with_the_hand_computed_value() {
        let cases = [
            // Target 161.051 = 100 · 1.1^5 in 2025 from 100 in 2020: CAGR_req = 0.1.
            Case {
                name: "higher is better, growing at the required pace",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // 121 = 100 · 1.1²: CAGR_obs = 1.21^(1/2) − 1 = 0.1; R = 0.1 / 0.1 = 1.0 ≥ 0.95.
                points: &[(2020, 100.0), (2021, 110.0), (2022, 121.0)],
                progress: Progress::Substantial,
                value: Some(1.0),
            },
            Case {
                name: "higher is better, at four fifths of the pace",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // 1.1664^(1/2) − 1 = 1.08 − 1 = 0.08; R = 0.08 / 0.1 = 0.8 in [0.6, 0.95).
                points: &[(2020, 100.0), (2022, 116.64)],
                progress: Progress::Moderate,
                value: Some(0.8),
            },
            Case {
                name: "higher is better, at a fifth of the pace",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // 1.0404^(1/2) − 1 = 0.02; R = 0.02 / 0.1 = 0.2 in [0, 0.6).
                points: &[(2020, 100.0), (2022, 104.04)],
                progress: Progress::Limited,
                value: Some(0.2),
            },
            Case {
                name: "higher is better, shrinking",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // 0.9604^(1/2) − 1 = 0.98 − 1 = −0.02; R = −0.02 / 0.1 = −0.2 < 0.
                points: &[(2020, 100.0), (2022, 96.04)],
                progress: Progress::Deterioration,
                value: Some(-0.2),
            },
            Case {
                name: "higher is better, already past the target",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // 170 ≥ 161.051. R is still computed: (1.7^(1/2) − 1) / 0.1 = 0.303840 / 0.1 = 3.038405.
                points: &[(2020, 100.0), (2022, 170.0)],
                progress: Progress::TargetAchieved,
                value: Some(3.038_404_810_405_294_8),
            },
            Case {
                name: "a ratio of exactly 0.95 is substantial",
                direction: HIGHER,
                // CAGR_req = (400 / 100)^(1/2) − 1 = 1.0; CAGR_obs = 195 / 100 − 1 = 0.95.
                target: Some((2022, 400.0)),
                points: &[(2020, 100.0), (2021, 195.0)],
                progress: Progress::Substantial,
                value: Some(0.95),
            },
            Case {
                name: "no change at all is limited progress, not deterioration",
                direction: HIGHER,
                target: Some((2025, 161.051)),
                // CAGR_obs = (100 / 100)^(1/2) − 1 = 0; R = 0 ≥ 0.
                points: &[(2020, 100.0), (2022, 100.0)],
                progress: Progress::Limited,
                value: Some(0.0),
            },
            // Lower is better, target 59.049 = 100 · 0.9^5 in 2025: CAGR_req = −0.1, |…| = 0.1.
            Case {
                name: "lower is better, falling at the required pace",
                direction: LOWER,
                target: Some((2025, 59.049)),
                // 0.81^(1/2) − 1 = −0.1; R = 1 · (−1) · (−0.1) / 0.1 = 1.0.
                points: &[(2020, 100.0), (2022, 81.0)],
                progress: Progress::Substantial,
                value: Some(1.0),
            },
            Case {
                name: "lower is better, falling too slowly",
                direction: LOWER,
                target: Some((2025, 59.049)),
                // 0.9216^(1/2) − 1 = 0.96 − 1 = −0.04; R = (−1)(−0.04) / 0.1 = 0.4.
                points: &[(2020, 100.0), (2022, 92.16)],
                progress: Progress::Limited,
                value: Some(0.4),
            },
            Case {
                name: "lower is better, rising",
                direction: LOWER,
                target: Some((2025, 59.049)),
                // 1.0404^(1/2) − 1 = 0.02; R = (−1)(0.02) / 0.1 = −0.2.
                points: &[(2020, 100.0), (2022, 104.04)],
                progress: Progress::Deterioration,
                value: Some(-0.2),
            },
            Case {
                name: "lower is better, already under the ceiling",
                direction: LOWER,
                target: Some((2025, 59.049)),
                // 59 ≤ 59.049. R = (−1)(0.59^(1/2) − 1) / 0.1 = (1 − 0.768115) / 0.1 = 2.318854.
                points: &[(2020, 100.0), (2022, 59.0)],
                progress: Progress::TargetAchieved,
                value: Some(2.318_854_252_131_392),
            },
            // Negative base: sign = −1. Higher is better, from −100 towards −59.049.
            Case {
                name: "a negative base moving towards its target",
                direction: HIGHER,
                target: Some((2025, -59.049)),
                // CAGR_req = (−59.049 / −100)^(1/5) − 1 = −0.1; CAGR_obs = 0.81^(1/2) − 1 = −0.1;
                // R = (−1)(+1)(−0.1) / 0.1 = 1.0.
                points: &[(2020, -100.0), (2022, -81.0)],
                progress: Progress::Substantial,
                value: Some(1.0),
            },
            Case {
                name: "a negative base moving away from its target",
                direction: HIGHER,
                target: Some((2025, -59.049)),
                // CAGR_obs = (−121 / −100)^(1/2) − 1 = 0.1; R = (−1)(+1)(0.1) / 0.1 = −1.0.
                points: &[(2020, -100.0), (2022, -121.0)],
                progress: Progress::Deterioration,
                value: Some(-1.0),
            },
            // Zeros are replaced by 0.001.
            Case {
                name: "a zero base is replaced by 0.001",
                direction: HIGHER,
                target: Some((2025, 10.0)),
                // CAGR_obs = (0.1 / 0.001)^(1/2) − 1 = 10 − 1 = 9;
                // CAGR_req = (10 / 0.001)^(1/5) − 1 = 10^0.8 − 1 = 5.309573…; R = 1.695051.
                points: &[(2020, 0.0), (2022, 0.1)],
                progress: Progress::Substantial,
                value: Some(1.695_051_418_642_865),
            },
            Case {
                name: "a zero target is replaced by 0.001",
                direction: LOWER,
                target: Some((2030, 0.0)),
                // CAGR_req = (0.001 / 100)^(1/10) − 1 = 10^(−0.5) − 1 = −0.683772…;
                // CAGR_obs = 0.25^(1/2) − 1 = −0.5; R = (−1)(−0.5) / 0.683772 = 0.731238.
                points: &[(2020, 100.0), (2022, 25.0)],
                progress: Progress::Moderate,
                value: Some(0.731_237_647_787_132_3),
            },
            Case {
                name: "a zero target counts as met below 0.001, as Open SDG compares with 0.001",
                direction: LOWER,
                target: Some((2030, 0.0)),
                // 0.0005 ≤ 0.001. R = (−1)((0.0005 / 100)^(1/2) − 1) / 0.683772
                // = (1 − 0.002236) / 0.683772 = 1.459205.
                points: &[(2020, 100.0), (2022, 0.0005)],
                progress: Progress::TargetAchieved,
                value: Some(1.459_205_101_397_946_3),
            },
            // No target: sign · d · CAGR_obs against 0.015 / 0.005 / 0.
            Case {
                name: "no target, growing two per cent a year",
                direction: HIGHER,
                target: None,
                // 1.0404^(1/2) − 1 = 0.02 ≥ 0.015.
                points: &[(2020, 100.0), (2022, 104.04)],
                progress: Progress::Substantial,
                value: Some(0.02),
            },
            Case {
                name: "no target, growing one per cent a year",
                direction: HIGHER,
                target: None,
                // 101 / 100 − 1 = 0.01 in [0.005, 0.015).
                points: &[(2020, 100.0), (2021, 101.0)],
                progress: Progress::Moderate,
                value: Some(0.01),
            },
            Case {
                name: "no target, growing a quarter of a per cent a year",
                direction: HIGHER,
                target: None,
                // 100.25 / 100 − 1 = 0.0025 in [0, 0.005).
                points: &[(2020, 100.0), (2021, 100.25)],
                progress: Progress::Limited,
                value: Some(0.0025),
            },
            Case {
                name: "no target, shrinking one per cent a year",
                direction: HIGHER,
                target: None,
                // 99 / 100 − 1 = −0.01 < 0.
                points: &[(2020, 100.0), (2021, 99.0)],
                progress: Progress::Deterioration,
                value: Some(-0.01),
            },
            Case {
                name: "no target, lower is better and falling two per cent a year",
                direction: LOWER,
                target: None,
                // (−1)(98 / 100 − 1) = 0.02 ≥ 0.015.
                points: &[(2020, 100.0), (2021, 98.0)],
                progress: Progress::Substantial,
                value: Some(0.02),
            },
            Case {
                name: "no target, a negative series flips the direction",
                direction: HIGHER,
                target: None,
                // (−1)(+1)((−98 / −100) − 1) = (−1)(−0.02) = 0.02: from −100 up to −98.
                points: &[(2020, -100.0), (2021, -98.0)],
                progress: Progress::Substantial,
                value: Some(0.02),
            },
        ];
        for case in cases {
            let outcome = assess(case.direction, 2020, case.target, case.points)
                .unwrap_or_else(|error| panic!("{}: {error}", case.name));
            assert_eq!(outcome.progress, case.progress, "{}", case.name);
            match case.value {
                Some(expected) => assert!(
                    close(outcome.progress_value, expected),
                    "{}: {:?} != {expected}",
                    case.name,
                    outcome.progress_value
                ),
                None => assert_eq!(outcome.progress_value, None, "{}", case.name),
            }
            assert_eq!(
                outcome.ratio.is_some(),
                case.target.is_some(),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn the_working_shows_both_growth_rates_and_the_years_used() {
        // Base year 2019 has no value, so 2020 is used; 2018 is before it; 2023 is the latest.
        // CAGR_obs = (133.1 / 100)^(1/3) − 1 = 0.1; CAGR_req = (161.051 / 100)^(1/5) − 1 = 0.1.
        let outcome = assess(
            HIGHER,
            2019,
            Some((2025, 161.051)),
            &[(2023, 133.1), (2018, 50.0), (2020, 100.0), (2021, 110.0)],
        )
        .expect("assessable");
        assert_eq!(
            outcome.base,
            YearValue {
                year: 2020,
                value: 100.0
            }
        );
        assert_eq!(
            outcome.current,
            YearValue {
                year: 2023,
                value: 133.1
            }
        );
        assert!(close(outcome.cagr_observed, 0.1));
        assert!(close(outcome.cagr_required, 0.1));
        assert!(close(outcome.ratio, 1.0));
        assert_eq!(outcome.progress, Progress::Substantial);
    }

    #[test]
    fn a_zero_target_is_reported_as_the_value_used() {
        let outcome = assess(
            LOWER,
            2020,
            Some((2030, 0.0)),
            &[(2020, 100.0), (2022, 25.0)],
        )
        .expect("assessable");
        assert_eq!(outcome.target_value, Some(0.001));
        assert_eq!(outcome.base.value, 100.0);
    }

    #[test]
    fn missing_values_are_skipped() {
        // 2022 is NaN, so 2021 is the latest: 101 / 100 − 1 = 0.01, moderate without a target.
        let outcome = assess(
            HIGHER,
            2020,
            None,
            &[(2020, 100.0), (2021, 101.0), (2022, f64::NAN)],
        )
        .expect("assessable");
        assert_eq!(outcome.current.year, 2021);
        assert_eq!(outcome.progress, Progress::Moderate);
    }

    #[test]
    fn a_met_target_is_achieved_even_with_one_year_of_data() {
        // Open SDG checks the current value against the target before the two-year rule.
        let outcome =
            assess(HIGHER, 2020, Some((2025, 150.0)), &[(2020, 160.0)]).expect("achieved");
        assert_eq!(outcome.progress, Progress::TargetAchieved);
        assert_eq!(outcome.progress_value, None);
        assert_eq!(outcome.cagr_observed, None);
    }

    /// Name, direction, base year, target, series, expected error.
    type ErrorCase = (
        &'static str,
        Direction,
        i32,
        Option<(i32, f64)>,
        &'static [(i32, f64)],
        FiveYearError,
    );

    #[test]
    fn series_that_cannot_be_assessed_are_errors() {
        let cases: Vec<ErrorCase> = vec![
            (
                "one year of data",
                HIGHER,
                2020,
                Some((2025, 150.0)),
                &[(2020, 100.0)],
                FiveYearError::TooFewYears {
                    base_year: 2020,
                    current_year: 2020,
                },
            ),
            (
                "one year at or after the base year",
                HIGHER,
                2021,
                None,
                &[(2019, 90.0), (2020, 95.0), (2021, 100.0)],
                FiveYearError::TooFewYears {
                    base_year: 2021,
                    current_year: 2021,
                },
            ),
            (
                "nothing at or after the base year",
                HIGHER,
                2022,
                None,
                &[(2020, 100.0), (2021, 101.0)],
                FiveYearError::NoBaseYear {
                    base_year: 2022,
                    latest_year: 2021,
                },
            ),
            (
                "an empty series",
                HIGHER,
                2020,
                None,
                &[],
                FiveYearError::NoData,
            ),
            (
                "a band direction",
                Direction::Within,
                2020,
                None,
                &[(2020, 100.0), (2021, 101.0)],
                FiveYearError::DirectionWithin,
            ),
            (
                "a base and a current value of opposite signs",
                HIGHER,
                2020,
                None,
                &[(2020, -5.0), (2021, 3.0)],
                FiveYearError::SignMismatch {
                    base: -5.0,
                    current: 3.0,
                },
            ),
            (
                "a target of the other sign",
                HIGHER,
                2020,
                Some((2025, 10.0)),
                &[(2020, -5.0), (2021, -3.0)],
                FiveYearError::TargetSignMismatch {
                    base: -5.0,
                    target: 10.0,
                },
            ),
            (
                "two values for one year",
                HIGHER,
                2020,
                None,
                &[(2020, 100.0), (2020, 101.0), (2021, 102.0)],
                FiveYearError::DuplicateYear(2020),
            ),
            (
                "a target year equal to the base year",
                HIGHER,
                2020,
                Some((2020, 150.0)),
                &[(2020, 100.0), (2021, 101.0)],
                FiveYearError::TargetYearIsBaseYear(2020),
            ),
            (
                // CAGR_req = (100 / 100)^(1/5) − 1 = 0, and 90 < 100 is not achieved.
                "a target equal to the base value that is not met",
                HIGHER,
                2020,
                Some((2025, 100.0)),
                &[(2020, 100.0), (2021, 90.0)],
                FiveYearError::NoRequiredGrowth(100.0),
            ),
        ];
        for (name, direction, base_year, target, points, expected) in cases {
            assert_eq!(
                assess(direction, base_year, target, points),
                Err(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn each_category_maps_to_a_status() {
        let cases = [
            (Progress::TargetAchieved, Status::Achieved),
            (Progress::Substantial, Status::OnTrack),
            (Progress::Moderate, Status::AtRisk),
            (Progress::Limited, Status::OffTrack),
            (Progress::Deterioration, Status::OffTrack),
        ];
        for (progress, status) in cases {
            assert_eq!(progress.status(), status, "{progress:?}");
        }
    }

    #[test]
    fn categories_serialize_in_snake_case() {
        let json = serde_json::to_string(&Progress::TargetAchieved).expect("serializes");
        assert_eq!(json, "\"target_achieved\"");
    }
}
