//! Anomaly: a robust z-score of a new value's change against the recent changes of its series
//! (ARCHITECTURE §5, "a value that jumps beyond k standard deviations of its recent changes").
//!
//! The score is Iglewicz and Hoaglin's modified z-score, `0.6745 · (x − median) / MAD`, applied to
//! the new change `x = new − last`. Changes rather than levels are scored because most series
//! here trend (cumulative totals, growing levels): a level far from the recent median is normal
//! for them, a step far from the usual step is not. The median and MAD are used rather than the
//! mean and standard deviation so that one earlier spike in the window does not mask the next.
//!
//! When more than half the changes are identical the MAD is zero; then, as IBM's statistics
//! products do, the spread is `1.253314 · MeanAD` (the mean absolute deviation about the median,
//! scaled to approximate a standard deviation), giving `(x − median) / (1.253314 · MeanAD)`. When
//! that is zero too, every recent change was the same, no scale exists, and any change that
//! differs from it by more than a relative epsilon is flagged.

use serde::{Deserialize, Serialize};

/// Iglewicz and Hoaglin's constant: the 0.75 quantile of the standard normal, so that
/// `MAD / 0.6745` estimates the standard deviation of normal data.
pub const MAD_TO_Z: f64 = 0.6745;

/// `sqrt(π / 2)`: `1.253314 · MeanAD` estimates the standard deviation of normal data.
pub const MEAN_AD_TO_SD: f64 = 1.253314;

/// How the score is computed and when it flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnomalyConfig {
    /// Flag when `|z| > k`. Iglewicz and Hoaglin recommend 3.5.
    pub k: f64,
    /// Fewer recent changes than this are not judged: a median of three steps says little.
    pub min_changes: usize,
    /// For a window whose changes were all identical: a new change is flagged when it differs
    /// from them by more than this fraction of the larger of the usual change and the last value
    /// (so that floating-point noise in a constant series is not an anomaly).
    pub relative_epsilon: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            k: 3.5,
            min_changes: 5,
            relative_epsilon: 1e-9,
        }
    }
}

/// Which spread the score was divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// `z = 0.6745 · (x − median) / MAD`.
    Mad,
    /// MAD was zero: `z = (x − median) / (1.253314 · MeanAD)`.
    MeanAbsoluteDeviation,
    /// Every recent change was the same: no z, only "equal or not".
    None,
}

/// The score of one new value, with its working.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScore {
    /// The new change, `new − last recent value`.
    pub change: f64,
    /// The robust z-score of the change; `None` when the recent changes have no spread at all.
    pub z: Option<f64>,
    /// Median of the recent changes.
    pub median: f64,
    /// Median absolute deviation of the recent changes about their median.
    pub mad: f64,
    /// Mean absolute deviation about the median, used when `mad` is zero.
    pub mean_ad: f64,
    pub spread: Spread,
    /// `k`, the bound on `|z|`.
    pub threshold: f64,
    pub flagged: bool,
}

/// Scores `new_value` against `recent` (the series' latest values, oldest first).
///
/// Returns `None` (not judged) when there are fewer than `min_changes` recent changes or when a
/// value is not finite.
pub fn robust_z(recent: &[f64], new_value: f64, config: &AnomalyConfig) -> Option<AnomalyScore> {
    if !new_value.is_finite() || recent.iter().any(|value| !value.is_finite()) {
        return None;
    }
    let changes: Vec<f64> = recent.windows(2).map(|pair| pair[1] - pair[0]).collect();
    if changes.is_empty() || changes.len() < config.min_changes {
        return None;
    }
    let last = *recent.last()?;
    let change = new_value - last;
    let median = median_of(&changes)?;
    let deviations: Vec<f64> = changes.iter().map(|c| (c - median).abs()).collect();
    let mad = median_of(&deviations)?;
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
    let departure = change - median;
    // A spread within floating-point noise of the series' size is no spread: steps of 0.24
    // added up in binary differ by 1e-16, and dividing by that gives z in the trillions.
    let noise = config.relative_epsilon * median.abs().max(last.abs());

    let (z, spread) = if mad > noise {
        (Some(MAD_TO_Z * departure / mad), Spread::Mad)
    } else if mean_ad > noise {
        (
            Some(departure / (MEAN_AD_TO_SD * mean_ad)),
            Spread::MeanAbsoluteDeviation,
        )
    } else {
        (None, Spread::None)
    };
    let flagged = match z {
        Some(z) => z.abs() > config.k,
        None => departure.abs() > noise,
    };
    Some(AnomalyScore {
        change,
        z,
        median,
        mad,
        mean_ad,
        spread,
        threshold: config.k,
        flagged,
    })
}

/// Median of finite values: the mean of the two middle ones for an even count.
fn median_of(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted.get(middle).copied()
    } else {
        let below = sorted.get(middle.checked_sub(1)?)?;
        let above = sorted.get(middle)?;
        Some((below + above) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Changes 2, 3, 1, 4, 3: sorted 1 2 3 3 4, median 3; |c − 3| = 1 0 2 1 0, sorted 0 0 1 1 2,
    // MAD 1; MeanAD = 4 / 5 = 0.8.
    const TRENDING: &[f64] = &[100.0, 102.0, 105.0, 106.0, 110.0, 113.0];
    // Changes 2, 1, 2, 1, 2: median 2; |c − 2| = 0 1 0 1 0, MAD 0; MeanAD = 2 / 5 = 0.4.
    const MOSTLY_EVEN: &[f64] = &[100.0, 102.0, 103.0, 105.0, 106.0, 108.0];
    // Changes 1..6: median (3 + 4) / 2 = 3.5; |c − 3.5| = 2.5 1.5 .5 .5 1.5 2.5, MAD 1.5.
    const EVEN_COUNT: &[f64] = &[0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0];
    const FLAT: &[f64] = &[50.0; 6];
    const STEADY: &[f64] = &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0];

    struct Case {
        name: &'static str,
        recent: &'static [f64],
        new_value: f64,
        k: f64,
        z: Option<f64>,
        spread: Spread,
        flagged: bool,
    }

    #[test]
    fn scores_match_the_hand_computation() {
        let k = 3.5;
        let cases = [
            Case {
                name: "a spike is flagged",
                recent: TRENDING,
                // change 133 − 113 = 20; z = 0.6745 · (20 − 3) / 1 = 11.4665 > 3.5.
                new_value: 133.0,
                k,
                z: Some(11.4665),
                spread: Spread::Mad,
                flagged: true,
            },
            Case {
                name: "a drop is flagged as well",
                recent: TRENDING,
                // change 100 − 113 = −13; z = 0.6745 · (−16) / 1 = −10.792; |z| > 3.5.
                new_value: 100.0,
                k,
                z: Some(-10.792),
                spread: Spread::Mad,
                flagged: true,
            },
            Case {
                name: "the usual step is not flagged",
                recent: TRENDING,
                // change 3 = median; z = 0.
                new_value: 116.0,
                k,
                z: Some(0.0),
                spread: Spread::Mad,
                flagged: false,
            },
            Case {
                name: "a somewhat larger step is not flagged",
                recent: TRENDING,
                // change 5; z = 0.6745 · 2 / 1 = 1.349 ≤ 3.5.
                new_value: 118.0,
                k,
                z: Some(1.349),
                spread: Spread::Mad,
                flagged: false,
            },
            Case {
                name: "a score exactly at k is not flagged",
                recent: TRENDING,
                // change 5; z = 0.6745 · 2 = k: the rule is |z| > k.
                new_value: 118.0,
                k: MAD_TO_Z * 2.0,
                z: Some(1.349),
                spread: Spread::Mad,
                flagged: false,
            },
            Case {
                name: "an even number of changes takes the mean of the middle two",
                recent: EVEN_COUNT,
                // change 28 − 21 = 7; z = 0.6745 · (7 − 3.5) / 1.5 = 1.573833.
                new_value: 28.0,
                k,
                z: Some(1.573_833_333_333_333),
                spread: Spread::Mad,
                flagged: false,
            },
            Case {
                name: "a spike after an even number of changes is flagged",
                recent: EVEN_COUNT,
                // change 51 − 21 = 30; z = 0.6745 · 26.5 / 1.5 = 11.916167.
                new_value: 51.0,
                k,
                z: Some(11.916_166_666_666_667),
                spread: Spread::Mad,
                flagged: true,
            },
            Case {
                name: "a zero MAD falls back to the mean absolute deviation",
                recent: MOSTLY_EVEN,
                // change 112 − 108 = 4; z = (4 − 2) / (1.253314 · 0.4) = 2 / 0.5013256 = 3.989423.
                new_value: 112.0,
                k,
                z: Some(3.989_423_241_103_187),
                spread: Spread::MeanAbsoluteDeviation,
                flagged: true,
            },
            Case {
                name: "a usual step under the fallback is not flagged",
                recent: MOSTLY_EVEN,
                // change 3; z = 1 / 0.5013256 = 1.994712.
                new_value: 111.0,
                k,
                z: Some(1.994_711_620_551_593_6),
                spread: Spread::MeanAbsoluteDeviation,
                flagged: false,
            },
            Case {
                name: "a flat series that stays flat is not flagged",
                recent: FLAT,
                // every change 0, MAD 0, MeanAD 0; change 0 equals the median.
                new_value: 50.0,
                k,
                z: None,
                spread: Spread::None,
                flagged: false,
            },
            Case {
                name: "a flat series that moves is flagged",
                recent: FLAT,
                // change 1 vs median 0: 1 > 1e-9 · max(0, 50).
                new_value: 51.0,
                k,
                z: None,
                spread: Spread::None,
                flagged: true,
            },
            Case {
                name: "floating-point noise on a flat series is not flagged",
                recent: FLAT,
                // change 1e-12 ≤ 1e-9 · 50 = 5e-8.
                new_value: 50.0 + 1e-12,
                k,
                z: None,
                spread: Spread::None,
                flagged: false,
            },
            Case {
                name: "a steady cumulative series keeping its pace is not flagged",
                recent: STEADY,
                // every change 10; change 70 − 60 = 10.
                new_value: 70.0,
                k,
                z: None,
                spread: Spread::None,
                flagged: false,
            },
            Case {
                name: "a steady cumulative series changing its pace is flagged",
                recent: STEADY,
                // change 11 vs 10: 1 > 1e-9 · max(10, 60).
                new_value: 71.0,
                k,
                z: None,
                spread: Spread::None,
                flagged: true,
            },
        ];
        for case in cases {
            let config = AnomalyConfig {
                k: case.k,
                ..AnomalyConfig::default()
            };
            let score = robust_z(case.recent, case.new_value, &config)
                .unwrap_or_else(|| panic!("{}: not judged", case.name));
            match (score.z, case.z) {
                (Some(actual), Some(expected)) => assert!(
                    (actual - expected).abs() < 1e-9,
                    "{}: z {actual} != {expected}",
                    case.name
                ),
                (actual, expected) => assert_eq!(actual, expected, "{}", case.name),
            }
            assert_eq!(score.spread, case.spread, "{}", case.name);
            assert_eq!(score.flagged, case.flagged, "{}", case.name);
            assert_eq!(score.threshold, case.k, "{}", case.name);
        }
    }

    #[test]
    fn the_working_shows_median_and_spreads() {
        let score = robust_z(TRENDING, 133.0, &AnomalyConfig::default()).expect("judged");
        assert_eq!(score.change, 20.0);
        assert_eq!(score.median, 3.0);
        assert_eq!(score.mad, 1.0);
        assert!((score.mean_ad - 0.8).abs() < 1e-12);
    }

    #[test]
    fn too_little_or_unusable_data_is_not_judged() {
        let config = AnomalyConfig::default();
        let cases: [(&str, &[f64], f64); 5] = [
            ("no history", &[], 10.0),
            ("one value, no change", &[10.0], 11.0),
            // five values give four changes, one short of five.
            ("four changes", &[1.0, 2.0, 3.0, 4.0, 5.0], 6.0),
            (
                "a NaN in the window",
                &[1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0],
                7.0,
            ),
            ("an infinite new value", TRENDING, f64::INFINITY),
        ];
        for (name, recent, new_value) in cases {
            assert_eq!(robust_z(recent, new_value, &config), None, "{name}");
        }
    }

    #[test]
    fn a_spread_of_rounding_noise_is_no_spread() {
        // Steps of 0.24 added up in binary: the changes differ in their last bits only, so
        // MAD and MeanAD are about 1e-14, and a step of 0.5 would score z in the trillions.
        let recent: Vec<f64> = (0..8).map(|i| 92.0 + 0.24 * f64::from(i)).collect();
        let deviations = recent.windows(2).map(|p| p[1] - p[0] - 0.24);
        assert!(
            deviations.into_iter().any(|d| d != 0.0),
            "the steps carry noise"
        );
        let last = recent[recent.len() - 1];
        let config = AnomalyConfig::default();
        let jump = robust_z(&recent, last + 0.5, &config).expect("judged");
        assert_eq!((jump.z, jump.spread), (None, Spread::None));
        assert!(jump.flagged);
        let usual = robust_z(&recent, last + 0.24, &config).expect("judged");
        assert!(!usual.flagged);
    }

    #[test]
    fn exactly_the_minimum_number_of_changes_is_judged() {
        // Six values, five changes.
        assert!(robust_z(TRENDING, 116.0, &AnomalyConfig::default()).is_some());
    }

    #[test]
    fn the_minimum_number_of_changes_is_configurable() {
        let config = AnomalyConfig {
            min_changes: 3,
            ..AnomalyConfig::default()
        };
        // Recent 0, 2, 5, 6: changes 2, 3, 1, median 2; |c − 2| = 0 1 1, MAD 1.
        // New 16: change 16 − 6 = 10; z = 0.6745 · (10 − 2) / 1 = 5.396 > 3.5.
        let score = robust_z(&[0.0, 2.0, 5.0, 6.0], 16.0, &config).expect("judged");
        assert!((score.z.unwrap_or_default() - 5.396).abs() < 1e-9);
        assert!(score.flagged);
    }
}
