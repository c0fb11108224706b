//! Hysteresis: the official status of a target, which follows the judged status without flapping
//! (ARCHITECTURE §4).
//!
//! The judged status of each evaluation is a *candidate*. [`Official::observe`] decides whether it
//! becomes official:
//! - **Worse** (a higher [`Status::severity`]): only once it, or something at least as bad, has
//!   been the candidate on `for_evaluations` consecutive evaluations **and** for `for_duration`
//!   since it was first seen, like a Prometheus alert's `for`. A run is kept per level, so an
//!   `at_risk` → `off_track` slide counts towards `at_risk` from its first evaluation, and towards
//!   `off_track` from the first `off_track`.
//! - **Better**: only when the caller says the projection clears the threshold by the recovery
//!   margin ([`clears_with_margin`]). Without that, a projection hovering at a threshold would go
//!   worse (after `for`) and immediately back, over and over.
//! - **Interrupted**: a candidate that is not worse than the official status ends every pending
//!   run, so the next worse candidate starts counting again.
//! - **Immediate**: a change into or out of `achieved`, `missed`, `stale` or `no_data`. The first
//!   two are final outcomes drawn from actual values (the target is met, or the year closed
//!   without meeting it), not from a projection, so there is no noise to smooth and holding them
//!   back would hide a fact. `stale` and `no_data` come from the reporting calendar, not from a
//!   threshold, so they cannot hover; and they say nothing about the target, so there is no judged
//!   status to protect when data arrives again.
//!
//! Pure: the evaluation time is passed in and no clock is read.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::RulesSettings;
use crate::domain::{Direction, Status};

/// When a candidate status becomes official.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HysteresisConfig {
    /// Consecutive evaluations a worse status must be seen on; 0 or 1 disables the count.
    pub for_evaluations: u32,
    /// How long a worse status must have held since first seen; zero disables the wait.
    pub for_duration: Duration,
    /// Fraction of the threshold a recovering projection must clear it by, e.g. 0.01. Used by the
    /// caller with [`clears_with_margin`]; kept here so one config carries the whole policy.
    pub recovery_margin: f64,
}

// Here rather than in `config`, which sits below the rules it configures.
impl RulesSettings {
    /// `[rules]`'s hysteresis policy.
    pub fn hysteresis(&self) -> HysteresisConfig {
        HysteresisConfig {
            for_evaluations: self.for_evaluations,
            for_duration: Duration::seconds(self.for_seconds.max(0)),
            recovery_margin: self.recovery_margin,
        }
    }
}

impl Default for HysteresisConfig {
    /// Three evaluations, no wait, a 1 % recovery margin.
    fn default() -> Self {
        Self {
            for_evaluations: 3,
            for_duration: Duration::zero(),
            recovery_margin: 0.01,
        }
    }
}

/// A change of the official status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub at: DateTime<Utc>,
}

/// A worse status waiting to become official.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pending {
    pub status: Status,
    /// The first evaluation of the current run.
    pub first_seen: DateTime<Utc>,
    /// Consecutive evaluations at this level or worse.
    pub evaluations: u32,
}

/// Pending levels: the judged statuses that can be held back. `missed` is worse still but is a
/// final outcome and applies at once.
const LEVELS: [Status; 2] = [Status::AtRisk, Status::OffTrack];

/// The official status of one target, with its pending worse statuses.
///
/// Serializable so that a restart resumes the pending runs instead of starting them over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Official {
    pub status: Status,
    /// When `status` became official.
    pub since: DateTime<Utc>,
    /// The official status before this one.
    pub previous: Option<Status>,
    /// One run per entry of [`LEVELS`].
    #[serde(default)]
    pending: [Option<Run>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    first_seen: DateTime<Utc>,
    evaluations: u32,
}

impl Run {
    fn is_ripe(&self, at: DateTime<Utc>, config: &HysteresisConfig) -> bool {
        let enough_evaluations = self.evaluations >= config.for_evaluations;
        // Checked apart from the subtraction so that a zero wait is met even if the caller's
        // clock stepped back between evaluations.
        let waited = config.for_duration <= Duration::zero()
            || at.signed_duration_since(self.first_seen) >= config.for_duration;
        enough_evaluations && waited
    }
}

impl Official {
    /// A target whose first judged status is taken as official at once: there is nothing yet to
    /// flap from.
    pub fn new(status: Status, at: DateTime<Utc>) -> Self {
        Self {
            status,
            since: at,
            previous: None,
            pending: [None; 2],
        }
    }

    /// The most severe status waiting to become official, if any.
    pub fn pending(&self) -> Option<Pending> {
        LEVELS
            .iter()
            .zip(self.pending.iter())
            .rev()
            .find_map(|(status, run)| {
                run.map(|run| Pending {
                    status: *status,
                    first_seen: run.first_seen,
                    evaluations: run.evaluations,
                })
            })
    }

    /// Takes the judged status of one evaluation at `at`. `margin_ok` says whether the projection
    /// clears the better status's threshold by the recovery margin; it only matters when the
    /// candidate is better than the official status. Returns the transition when the official
    /// status changes.
    pub fn observe(
        &mut self,
        candidate: Status,
        margin_ok: bool,
        at: DateTime<Utc>,
        config: &HysteresisConfig,
    ) -> Option<Transition> {
        if candidate == self.status {
            self.pending = [None; 2];
            return None;
        }
        if applies_immediately(self.status) || applies_immediately(candidate) {
            self.pending = [None; 2];
            return Some(self.change_to(candidate, at));
        }
        let official_severity = self.status.severity();
        let candidate_severity = candidate.severity();
        if candidate_severity <= official_severity {
            self.pending = [None; 2];
            return margin_ok.then(|| self.change_to(candidate, at));
        }

        for (level, run) in LEVELS.iter().zip(self.pending.iter_mut()) {
            let severity = level.severity();
            let applies = severity > official_severity && severity <= candidate_severity;
            *run = if applies {
                Some(match *run {
                    Some(ongoing) => Run {
                        first_seen: ongoing.first_seen,
                        evaluations: ongoing.evaluations.saturating_add(1),
                    },
                    None => Run {
                        first_seen: at,
                        evaluations: 1,
                    },
                })
            } else {
                None
            };
        }
        let ripe = LEVELS
            .iter()
            .zip(self.pending.iter())
            .rev()
            .find(|(_, run)| run.is_some_and(|run| run.is_ripe(at, config)))
            .map(|(level, _)| *level)?;
        Some(self.change_to(ripe, at))
    }

    /// Whether a worse status is waiting for its `for`.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(Option::is_some)
    }

    /// The earliest instant at which a pending run has waited its `for_duration`: before it, no
    /// evaluation can make a pending status official, however many there are.
    pub fn earliest_ripening(&self, config: &HysteresisConfig) -> Option<DateTime<Utc>> {
        let wait = config.for_duration.max(Duration::zero());
        self.pending
            .iter()
            .flatten()
            .map(|run| run.first_seen + wait)
            .min()
    }

    /// Counts `n` evaluations that judged the same candidate as the last one, before
    /// [`Self::earliest_ripening`]: each pending run grows by `n` and nothing else can change.
    /// A replay skips the timer's ticks between changes this way (ARCHITECTURE §8).
    pub fn count_unchanged(&mut self, n: u32) {
        for run in self.pending.iter_mut().flatten() {
            run.evaluations = run.evaluations.saturating_add(n);
        }
    }

    /// Makes `status` official; runs for levels worse than it keep counting.
    fn change_to(&mut self, status: Status, at: DateTime<Utc>) -> Transition {
        let transition = Transition {
            from: self.status,
            to: status,
            at,
        };
        for (level, run) in LEVELS.iter().zip(self.pending.iter_mut()) {
            if level.severity() <= status.severity() {
                *run = None;
            }
        }
        self.previous = Some(self.status);
        self.status = status;
        self.since = at;
        transition
    }
}

/// Statuses that become official, and stop being official, without hysteresis.
fn applies_immediately(status: Status) -> bool {
    matches!(
        status,
        Status::Achieved | Status::Missed | Status::Stale | Status::NoData
    )
}

/// Whether `projection` is on the good side of `threshold` by at least `|threshold| · margin`.
///
/// The absolute value keeps the margin pointing the right way for negative thresholds (a growth
/// target of −2 %, say). A band has two thresholds: for [`Direction::Within`] this returns false,
/// and [`clears_band_with_margin`] is the one to use. A NaN projection never clears.
pub fn clears_with_margin(
    direction: Direction,
    projection: f64,
    threshold: f64,
    margin: f64,
) -> bool {
    let cushion = threshold.abs() * margin;
    match direction {
        Direction::HigherIsBetter => projection >= threshold + cushion,
        Direction::LowerIsBetter => projection <= threshold - cushion,
        Direction::Within => false,
    }
}

/// Whether `projection` lies inside `[low, high]` by at least the margin on both sides.
pub fn clears_band_with_margin(projection: f64, low: f64, high: f64, margin: f64) -> bool {
    clears_with_margin(Direction::HigherIsBetter, projection, low, margin)
        && clears_with_margin(Direction::LowerIsBetter, projection, high, margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use Status::{Achieved, AtRisk, Missed, NoData, OffTrack, OnTrack, Stale};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .expect("a valid instant")
    }

    fn minutes(n: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(n)
    }

    fn evaluations(n: u32) -> HysteresisConfig {
        HysteresisConfig {
            for_evaluations: n,
            for_duration: Duration::zero(),
            recovery_margin: 0.01,
        }
    }

    /// One evaluation: the candidate, `margin_ok`, and the minute after [`t0`] it happens at.
    type Step = (Status, bool, i64);

    /// Name, starting status, `for_evaluations`, the evaluations, the expected transitions.
    type Scenario = (&'static str, Status, u32, Vec<Step>, Vec<Transition>);

    /// Feeds the steps to a fresh official status and returns the transitions.
    fn run(
        start: Status,
        config: &HysteresisConfig,
        steps: &[Step],
    ) -> (Official, Vec<Transition>) {
        let mut official = Official::new(start, t0());
        let transitions = steps
            .iter()
            .filter_map(|&(candidate, margin_ok, minute)| {
                official.observe(candidate, margin_ok, minutes(minute), config)
            })
            .collect();
        (official, transitions)
    }

    fn transition(from: Status, to: Status, minute: i64) -> Transition {
        Transition {
            from,
            to,
            at: minutes(minute),
        }
    }

    #[test]
    fn the_official_status_follows_the_rules_in_each_scenario() {
        let cases: Vec<Scenario> = vec![
            (
                "a single bad evaluation does not fire",
                OnTrack,
                3,
                vec![(AtRisk, false, 1)],
                vec![],
            ),
            (
                "three consecutive bad evaluations fire on the third",
                OnTrack,
                3,
                vec![(AtRisk, false, 1), (AtRisk, false, 2), (AtRisk, false, 3)],
                vec![transition(OnTrack, AtRisk, 3)],
            ),
            (
                "a count of one fires at once",
                OnTrack,
                1,
                vec![(OffTrack, false, 1)],
                vec![transition(OnTrack, OffTrack, 1)],
            ),
            (
                "a worse status counts towards a milder one already pending",
                OnTrack,
                3,
                // at_risk-or-worse on 1, 2, 3: at_risk fires at 3; off_track seen on 2, 3, 4
                // fires at 4.
                vec![
                    (AtRisk, false, 1),
                    (OffTrack, false, 2),
                    (OffTrack, false, 3),
                    (OffTrack, false, 4),
                ],
                vec![
                    transition(OnTrack, AtRisk, 3),
                    transition(AtRisk, OffTrack, 4),
                ],
            ),
            (
                "an interruption resets the count",
                OnTrack,
                3,
                // 1, 2 pending; 3 interrupts; 4, 5, 6 is the new run and fires at 6.
                vec![
                    (AtRisk, false, 1),
                    (AtRisk, false, 2),
                    (OnTrack, false, 3),
                    (AtRisk, false, 4),
                    (AtRisk, false, 5),
                    (AtRisk, false, 6),
                ],
                vec![transition(OnTrack, AtRisk, 6)],
            ),
            (
                "a milder candidate interrupts a worse pending level",
                AtRisk,
                2,
                // off_track on 1, at_risk on 2 ends that run, off_track on 3, 4 fires at 4.
                vec![
                    (OffTrack, false, 1),
                    (AtRisk, false, 2),
                    (OffTrack, false, 3),
                    (OffTrack, false, 4),
                ],
                vec![transition(AtRisk, OffTrack, 4)],
            ),
            (
                "a recovery without the margin does not change the official status",
                AtRisk,
                3,
                vec![(OnTrack, false, 1), (OnTrack, false, 2)],
                vec![],
            ),
            (
                "a recovery with the margin applies at once",
                AtRisk,
                3,
                vec![(OnTrack, false, 1), (OnTrack, true, 2)],
                vec![transition(AtRisk, OnTrack, 2)],
            ),
            (
                "a partial recovery with the margin steps down one level",
                OffTrack,
                3,
                vec![(AtRisk, true, 1)],
                vec![transition(OffTrack, AtRisk, 1)],
            ),
            (
                "missed applies at once",
                OnTrack,
                3,
                vec![(Missed, false, 1)],
                vec![transition(OnTrack, Missed, 1)],
            ),
            (
                "achieved applies at once without the margin",
                OffTrack,
                3,
                vec![(Achieved, false, 1)],
                vec![transition(OffTrack, Achieved, 1)],
            ),
            (
                "leaving a final outcome applies at once, as after a revision",
                Achieved,
                3,
                vec![(AtRisk, false, 1)],
                vec![transition(Achieved, AtRisk, 1)],
            ),
            (
                "stale applies at once and so does the status after it",
                AtRisk,
                3,
                vec![(Stale, false, 1), (OffTrack, false, 2)],
                vec![transition(AtRisk, Stale, 1), transition(Stale, OffTrack, 2)],
            ),
            (
                "no data applies at once",
                OnTrack,
                3,
                vec![(NoData, false, 1)],
                vec![transition(OnTrack, NoData, 1)],
            ),
        ];
        for (name, start, for_evaluations, steps, expected) in cases {
            let (_, transitions) = run(start, &evaluations(for_evaluations), &steps);
            assert_eq!(transitions, expected, "{name}");
        }
    }

    #[test]
    fn a_duration_for_fires_once_the_status_has_held_long_enough() {
        let config = HysteresisConfig {
            for_evaluations: 0,
            for_duration: Duration::minutes(10),
            recovery_margin: 0.01,
        };
        // First seen at 5; held 0 and 9 minutes at 5 and 14; 10 minutes at 15.
        let (official, transitions) = run(
            OnTrack,
            &config,
            &[
                (OffTrack, false, 5),
                (OffTrack, false, 14),
                (OffTrack, false, 15),
            ],
        );
        assert_eq!(transitions, vec![transition(OnTrack, OffTrack, 15)]);
        assert_eq!(official.since, minutes(15));
    }

    #[test]
    fn a_for_with_both_limits_needs_both() {
        let config = HysteresisConfig {
            for_evaluations: 3,
            for_duration: Duration::minutes(10),
            recovery_margin: 0.01,
        };
        let cases: [(&str, Vec<Step>, Vec<Transition>); 3] = [
            (
                "enough evaluations too soon",
                vec![(AtRisk, false, 0), (AtRisk, false, 1), (AtRisk, false, 2)],
                vec![],
            ),
            (
                "long enough with too few evaluations",
                vec![(AtRisk, false, 0), (AtRisk, false, 30)],
                vec![],
            ),
            (
                "both met on the fourth evaluation",
                vec![
                    (AtRisk, false, 0),
                    (AtRisk, false, 1),
                    (AtRisk, false, 2),
                    (AtRisk, false, 10),
                ],
                vec![transition(OnTrack, AtRisk, 10)],
            ),
        ];
        for (name, steps, expected) in cases {
            let (_, transitions) = run(OnTrack, &config, &steps);
            assert_eq!(transitions, expected, "{name}");
        }
    }

    #[test]
    fn an_input_oscillating_around_a_threshold_makes_at_most_one_transition() {
        // at_risk and on_track alternate for 40 evaluations; the on_track projections sit just
        // above the threshold, inside the margin, so margin_ok is false on every recovery.
        let oscillating: Vec<Step> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    (AtRisk, false, i)
                } else {
                    (OnTrack, false, i)
                }
            })
            .collect();
        let cases = [
            ("a for of two evaluations never fires", 2, 0),
            ("a for of one fires once and does not recover", 1, 1),
        ];
        for (name, for_evaluations, expected) in cases {
            let (official, transitions) = run(OnTrack, &evaluations(for_evaluations), &oscillating);
            assert_eq!(transitions.len(), expected, "{name}");
            let expected_status = if expected == 0 { OnTrack } else { AtRisk };
            assert_eq!(official.status, expected_status, "{name}");
        }
    }

    #[test]
    fn a_transition_records_since_and_previous() {
        let (official, _) = run(
            OnTrack,
            &evaluations(2),
            &[(AtRisk, false, 1), (AtRisk, false, 2)],
        );
        assert_eq!(official.status, AtRisk);
        assert_eq!(official.since, minutes(2));
        assert_eq!(official.previous, Some(OnTrack));
    }

    #[test]
    fn the_pending_run_shows_the_worst_level_and_restarts_after_an_interruption() {
        let config = evaluations(5);
        let mut official = Official::new(OnTrack, t0());
        official.observe(AtRisk, false, minutes(1), &config);
        official.observe(OffTrack, false, minutes(2), &config);
        assert_eq!(
            official.pending(),
            Some(Pending {
                status: OffTrack,
                first_seen: minutes(2),
                evaluations: 1
            })
        );
        official.observe(OnTrack, false, minutes(3), &config);
        assert_eq!(official.pending(), None);
        official.observe(AtRisk, false, minutes(4), &config);
        assert_eq!(
            official.pending(),
            Some(Pending {
                status: AtRisk,
                first_seen: minutes(4),
                evaluations: 1
            })
        );
    }

    #[test]
    fn the_state_survives_serialization_with_its_pending_run() {
        let config = evaluations(2);
        let mut official = Official::new(OnTrack, t0());
        official.observe(AtRisk, false, minutes(1), &config);
        let json = serde_json::to_string(&official).expect("serializes");
        let mut restored: Official = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(restored, official);
        let fired = restored.observe(AtRisk, false, minutes(2), &config);
        assert_eq!(fired, Some(transition(OnTrack, AtRisk, 2)));
    }

    #[test]
    fn the_recovery_margin_scales_with_the_threshold_and_its_sign() {
        use Direction::{HigherIsBetter, LowerIsBetter, Within};
        let cases = [
            // threshold 100, margin 1 %: higher needs ≥ 101, lower needs ≤ 99.
            ("higher, well clear", HigherIsBetter, 102.0, 100.0, true),
            (
                "higher, exactly at the margin",
                HigherIsBetter,
                101.0,
                100.0,
                true,
            ),
            (
                "higher, inside the margin",
                HigherIsBetter,
                100.5,
                100.0,
                false,
            ),
            ("lower, clear", LowerIsBetter, 98.9, 100.0, true),
            (
                "lower, inside the margin",
                LowerIsBetter,
                99.5,
                100.0,
                false,
            ),
            // threshold −100: |−100| · 1 % = 1; higher needs ≥ −99, lower needs ≤ −101.
            (
                "higher, negative threshold, clear",
                HigherIsBetter,
                -98.0,
                -100.0,
                true,
            ),
            (
                "higher, negative threshold, inside",
                HigherIsBetter,
                -99.5,
                -100.0,
                false,
            ),
            (
                "lower, negative threshold, clear",
                LowerIsBetter,
                -101.5,
                -100.0,
                true,
            ),
            (
                "lower, negative threshold, inside",
                LowerIsBetter,
                -100.5,
                -100.0,
                false,
            ),
            ("a band needs two thresholds", Within, 150.0, 100.0, false),
            (
                "a NaN projection never clears",
                HigherIsBetter,
                f64::NAN,
                100.0,
                false,
            ),
        ];
        for (name, direction, projection, threshold, expected) in cases {
            assert_eq!(
                clears_with_margin(direction, projection, threshold, 0.01),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_band_is_cleared_only_inside_both_margins() {
        // [100, 200] with 1 %: inside [101, 198].
        let cases = [
            ("the middle", 150.0, true),
            ("just above the low edge", 100.5, false),
            ("just below the high edge", 199.0, false),
            ("at the inner low edge", 101.0, true),
        ];
        for (name, projection, expected) in cases {
            assert_eq!(
                clears_band_with_margin(projection, 100.0, 200.0, 0.01),
                expected,
                "{name}"
            );
        }
    }
}
