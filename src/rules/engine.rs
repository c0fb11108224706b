//! The rules engine: evaluates every target from the live state, re-evaluates only the targets
//! an ingest touched, and answers status queries, live or as of a past instant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::anomaly::{robust_z, AnomalyConfig};
use super::hysteresis::{
    clears_band_with_margin, clears_with_margin, HysteresisConfig, Official, Pending,
};
use super::plan::{remaining_period_ends, PlanProfile, YearSpan};
use super::staleness::ReleaseCalendar;
use super::status::{evaluate, EvalInput, Evaluation, Point};
use crate::domain::{
    Catalogue, Code, Direction, Indicator, Kind, NamedPlan, NewObservation, Period, PlanSource,
    Status, Target, TargetValue,
};
use crate::live::{Latest, LiveState, SeriesKey};
use crate::store::{DynStore, StoreResult, TargetRow};

/// A target: (year, indicator, unit).
pub type TargetKey = (i32, Code, Code);

/// One target's judgement with when it took its status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    pub year: i32,
    pub indicator: Code,
    pub unit: Code,
    pub group: Code,
    pub department: Code,
    pub target: Target,
    pub tolerance: f64,
    /// The working; its `status` is the official one (after hysteresis).
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// What this evaluation alone judged; it becomes official after `for` when worse.
    pub judged: Status,
    /// A worse status waiting to become official.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The plan profile used: `linear`, `configured` or `previous_year`.
    pub plan: &'static str,
    /// When the target took its current official status.
    pub since: DateTime<Utc>,
    pub previous: Option<Status>,
    /// The latest value of this target's series, when it looks suspicious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<FlaggedValue>,
    /// The period that is due and missing, when the feed is stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue_period: Option<String>,
    pub evaluated_at: DateTime<Utc>,
}

/// A value the robust z-score flagged as suspicious (DESIGN §4 anomaly rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlaggedValue {
    pub period: String,
    pub value: f64,
    /// The change from the previous period.
    pub change: f64,
    pub z: Option<f64>,
    pub median_change: f64,
    pub threshold: f64,
    pub at: DateTime<Utc>,
}

/// The plan profile of one target: configured shares, the seasonal pattern of the series in the
/// previous year, or linear. Returns the profile and its name for the API.
pub fn plan_profile(
    indicator: &Indicator,
    previous_year: &[Latest],
) -> (PlanProfile, &'static str) {
    match &indicator.plan {
        PlanSource::Monthly(shares) => (PlanProfile::Monthly { shares: *shares }, "configured"),
        PlanSource::Named(NamedPlan::Linear) => (PlanProfile::Linear, "linear"),
        PlanSource::Named(NamedPlan::PreviousYear) => {
            match seasonal_values(indicator.kind, previous_year)
                .and_then(|v| PlanProfile::from_monthly_values(&v))
            {
                Some(profile) => (profile, "previous_year"),
                None => (PlanProfile::Linear, "linear"),
            }
        }
    }
}

/// Last year's amount per month, from a complete year of monthly or quarterly periods (a
/// quarter's amount spread evenly over its months; cumulative totals turned into increments).
fn seasonal_values(kind: Kind, year: &[Latest]) -> Option<[f64; 12]> {
    let monthly = year.iter().all(|p| matches!(p.period, Period::Month(..)));
    let quarterly = year.iter().all(|p| matches!(p.period, Period::Quarter(..)));
    let complete = (monthly && year.len() == 12) || (quarterly && year.len() == 4);
    if !complete {
        return None;
    }
    // `year` comes sorted by period start.
    let mut amounts: Vec<f64> = year.iter().map(|p| p.value).collect();
    if kind == Kind::Cumulative {
        for i in (1..amounts.len()).rev() {
            amounts[i] -= amounts[i - 1];
        }
    }
    let mut values = [0.0; 12];
    for (month, value) in values.iter_mut().enumerate() {
        *value = if monthly {
            amounts[month]
        } else {
            amounts[month / 3] / 3.0
        };
    }
    Some(values)
}

/// Values before a new one that the anomaly check compares it with.
const ANOMALY_WINDOW: usize = 13;

/// A status that changed in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    pub year: i32,
    pub indicator: Code,
    pub unit: Code,
    pub from: Option<Status>,
    pub to: Status,
    pub at: DateTime<Utc>,
}

struct Inner {
    live: LiveState,
    targets: BTreeMap<TargetKey, Target>,
    statuses: BTreeMap<TargetKey, TargetStatus>,
    official: BTreeMap<TargetKey, Official>,
    anomalies: HashMap<SeriesKey, FlaggedValue>,
    /// Years that have targets: only their observations are kept live.
    years: HashSet<i32>,
}

pub struct Engine {
    catalogue: Arc<Catalogue>,
    zone: Tz,
    calendar: ReleaseCalendar,
    hysteresis: HysteresisConfig,
    anomaly: AnomalyConfig,
    // A std lock: evaluations are short, CPU-bound and never await while holding it.
    inner: RwLock<Inner>,
}

fn key_of(target: &Target) -> TargetKey {
    (target.year, target.indicator.clone(), target.unit.clone())
}

/// Evaluates one target from its series' latest values, at `now`.
pub fn evaluate_target(
    indicator: &Indicator,
    target: &Target,
    year_points: &[Latest],
    calendar: &ReleaseCalendar,
    profile: &PlanProfile,
    zone: Tz,
    now: DateTime<Utc>,
) -> (Evaluation, Option<Period>) {
    let span = YearSpan::of(target.year, zone);
    let points: Vec<Point> = year_points
        .iter()
        .map(|l| Point {
            end: l.end,
            value: l.value,
        })
        .collect();
    let reported_through = points.last().map(|p| p.end);
    let latest_period = year_points.last().map(|l| l.period);
    let staleness = calendar.staleness(
        indicator.periodicity,
        latest_period.as_ref(),
        target.year,
        now,
        zone,
    );
    // A yearly (or December) figure reported before the year is over is an estimate: the year
    // closes when it has ended and its last period is in, or when the release date has passed.
    let year_closed = (now >= span.end && reported_through.is_some_and(|t| t >= span.end))
        || calendar.year_closed(indicator.periodicity, target.year, now, zone);
    // Only averages project the periods still to come.
    let pending = if indicator.kind == Kind::Average {
        remaining_period_ends(
            indicator.periodicity,
            target.year,
            reported_through.unwrap_or(span.start),
            zone,
        )
    } else {
        Vec::new()
    };
    let evaluation = evaluate(&EvalInput {
        kind: indicator.kind,
        direction: indicator.direction,
        target: target.value,
        tolerance: target.tolerance.unwrap_or(indicator.tolerance),
        year: target.year,
        span,
        zone,
        profile,
        points: &points,
        pending_period_ends: &pending,
        year_closed,
        stale: staleness.stale,
    });
    let overdue = staleness.stale.then_some(staleness.expected).flatten();
    (evaluation, overdue)
}

/// Whether a recovering projection clears the threshold of the status it recovers to by the
/// margin: the target itself for on track, the at-risk edge for at risk.
fn clears_threshold(
    direction: Direction,
    target: TargetValue,
    tolerance: f64,
    judged: Status,
    projection: f64,
    margin: f64,
) -> bool {
    let widen = |threshold: f64| threshold.abs() * tolerance;
    match (judged, target) {
        (Status::OnTrack, TargetValue::Point { value }) => {
            clears_with_margin(direction, projection, value, margin)
        }
        (Status::OnTrack, TargetValue::Band { lo, hi }) => {
            clears_band_with_margin(projection, lo, hi, margin)
        }
        (Status::AtRisk, TargetValue::Point { value }) => match direction {
            Direction::HigherIsBetter => {
                clears_with_margin(direction, projection, value - widen(value), margin)
            }
            _ => clears_with_margin(
                Direction::LowerIsBetter,
                projection,
                value + widen(value),
                margin,
            ),
        },
        (Status::AtRisk, TargetValue::Band { lo, hi }) => {
            clears_band_with_margin(projection, lo - widen(lo), hi + widen(hi), margin)
        }
        _ => true,
    }
}

impl Engine {
    /// Loads the targets and the latest values of the targets' years from the store.
    pub async fn load(
        catalogue: Arc<Catalogue>,
        store: &DynStore,
        zone: Tz,
        calendar: ReleaseCalendar,
        hysteresis: HysteresisConfig,
        now: DateTime<Utc>,
    ) -> StoreResult<Self> {
        let targets: Vec<Target> = store
            .targets(None)
            .await?
            .into_iter()
            .map(|row: TargetRow| row.target)
            .collect();
        let years: HashSet<i32> = targets.iter().map(|t| t.year).collect();
        let live = match (years.iter().min(), years.iter().max()) {
            (Some(&first), Some(&last)) => {
                let rows = store
                    .latest_between(
                        YearSpan::of(first, zone).start,
                        YearSpan::of(last, zone).end,
                        None,
                    )
                    .await?;
                LiveState::from_stored(&rows)
            }
            _ => LiveState::default(),
        };
        Ok(Self::new(
            catalogue, targets, live, zone, calendar, hysteresis, now,
        ))
    }

    /// Builds the engine from targets and a live state already at hand, and evaluates once.
    pub fn new(
        catalogue: Arc<Catalogue>,
        targets: Vec<Target>,
        live: LiveState,
        zone: Tz,
        calendar: ReleaseCalendar,
        hysteresis: HysteresisConfig,
        now: DateTime<Utc>,
    ) -> Self {
        let years: HashSet<i32> = targets.iter().map(|t| t.year).collect();
        let engine = Self {
            catalogue,
            zone,
            calendar,
            hysteresis,
            anomaly: AnomalyConfig::default(),
            inner: RwLock::new(Inner {
                live,
                targets: targets.into_iter().map(|t| (key_of(&t), t)).collect(),
                statuses: BTreeMap::new(),
                official: BTreeMap::new(),
                anomalies: HashMap::new(),
                years,
            }),
        };
        engine.evaluate_all(now);
        engine
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is a single insert),
        // so a poisoned lock is still usable.
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-evaluates the given targets (all when `None`) and returns the status changes.
    fn reevaluate(
        &self,
        inner: &mut Inner,
        keys: Option<Vec<TargetKey>>,
        now: DateTime<Utc>,
    ) -> Vec<StatusChange> {
        let keys: Vec<TargetKey> = keys.unwrap_or_else(|| inner.targets.keys().cloned().collect());
        let mut changes = Vec::new();
        for key in keys {
            let Some(target) = inner.targets.get(&key) else {
                continue;
            };
            let Some(indicator) = self.catalogue.indicator(key.1.as_str()) else {
                continue;
            };
            let series = (key.1.clone(), key.2.clone());
            let points = inner.live.year_of(&series, key.0, self.zone);
            let previous_year =
                if matches!(indicator.plan, PlanSource::Named(NamedPlan::PreviousYear)) {
                    inner.live.year_of(&series, key.0 - 1, self.zone)
                } else {
                    Vec::new()
                };
            let (profile, plan) = plan_profile(indicator, &previous_year);
            let (mut evaluation, overdue) = evaluate_target(
                indicator,
                target,
                &points,
                &self.calendar,
                &profile,
                self.zone,
                now,
            );
            let judged = evaluation.status;
            let tolerance = target.tolerance.unwrap_or(indicator.tolerance);
            let margin = self.hysteresis.recovery_margin;
            let margin_ok = evaluation.projection.is_none_or(|projection| {
                clears_threshold(
                    indicator.direction,
                    target.value,
                    tolerance,
                    judged,
                    projection,
                    margin,
                )
            });
            let first = !inner.official.contains_key(&key);
            let official = inner
                .official
                .entry(key.clone())
                .or_insert_with(|| Official::new(judged, now));
            let transition = official.observe(judged, margin_ok, now, &self.hysteresis);
            evaluation.status = official.status;
            let (since, previous, pending) =
                (official.since, official.previous, official.pending());
            let change = match transition {
                Some(transition) => Some((Some(transition.from), transition.to)),
                None if first => Some((None, judged)),
                None => None,
            };
            if let Some((from, to)) = change {
                changes.push(StatusChange {
                    year: key.0,
                    indicator: key.1.clone(),
                    unit: key.2.clone(),
                    from,
                    to,
                    at: now,
                });
            }
            let status = TargetStatus {
                year: key.0,
                indicator: key.1.clone(),
                unit: key.2.clone(),
                group: indicator.group.clone(),
                department: indicator.department.clone(),
                target: target.clone(),
                tolerance,
                evaluation,
                judged,
                pending,
                plan,
                since,
                previous,
                anomaly: inner
                    .anomalies
                    .get(&(key.1.clone(), key.2.clone()))
                    .filter(|a| a.period.starts_with(&key.0.to_string()))
                    .cloned(),
                overdue_period: overdue.map(|p| p.to_string()),
                evaluated_at: now,
            };
            inner.statuses.insert(key, status);
        }
        changes
    }

    /// Evaluates every target: at start and on the timer (staleness, the passage of time).
    pub fn evaluate_all(&self, now: DateTime<Utc>) -> Vec<StatusChange> {
        let mut inner = self.write();
        self.reevaluate(&mut inner, None, now)
    }

    /// Applies accepted observations and re-evaluates only the targets of the series they touch.
    pub fn apply(&self, rows: &[&NewObservation], now: DateTime<Utc>) -> Vec<StatusChange> {
        let mut inner = self.write();
        // Only years that have targets are kept live: a back-fill of old years must not grow
        // the in-memory state.
        let relevant: Vec<&NewObservation> = rows
            .iter()
            .copied()
            .filter(|r| inner.years.contains(&r.period.year(self.zone)))
            .collect();
        for row in &relevant {
            let key = (row.indicator.clone(), row.unit.clone());
            if !inner.live.is_latest(&key, row.period_start) {
                continue; // a revision of an older period says nothing about the latest value
            }
            let recent = inner
                .live
                .recent_before(&key, row.period_start, ANOMALY_WINDOW);
            match robust_z(&recent, row.value, &self.anomaly) {
                Some(score) if score.flagged => {
                    let flagged = FlaggedValue {
                        period: row.period.to_string(),
                        value: row.value,
                        change: score.change,
                        z: score.z,
                        median_change: score.median,
                        threshold: score.threshold,
                        at: now,
                    };
                    inner.anomalies.insert(key, flagged);
                }
                _ => {
                    inner.anomalies.remove(&key);
                }
            }
        }
        let touched: HashSet<(i32, SeriesKey)> = relevant
            .iter()
            .map(|r| {
                (
                    r.period.year(self.zone),
                    (r.indicator.clone(), r.unit.clone()),
                )
            })
            .collect();
        inner.live.apply(&relevant);
        // A year's figures also set next year's seasonal plan, so both years are re-judged.
        let keys: Vec<TargetKey> = touched
            .into_iter()
            .flat_map(|(year, (indicator, unit))| {
                [
                    (year, indicator.clone(), unit.clone()),
                    (year + 1, indicator, unit),
                ]
            })
            .filter(|key| inner.targets.contains_key(key))
            .collect();
        self.reevaluate(&mut inner, Some(keys), now)
    }

    /// Replaces one target (after an admin changed it) and re-evaluates it.
    pub fn set_target(&self, target: Target, now: DateTime<Utc>) -> Vec<StatusChange> {
        let key = key_of(&target);
        let mut inner = self.write();
        inner.years.insert(target.year);
        inner.targets.insert(key.clone(), target);
        self.reevaluate(&mut inner, Some(vec![key]), now)
    }

    /// Current statuses matching `filter`.
    pub fn statuses(&self, filter: impl Fn(&TargetStatus) -> bool) -> Vec<TargetStatus> {
        self.read()
            .statuses
            .values()
            .filter(|s| filter(s))
            .cloned()
            .collect()
    }

    pub fn status(&self, key: &TargetKey) -> Option<TargetStatus> {
        self.read().statuses.get(key).cloned()
    }

    /// Targets and series known, for metrics and health.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.targets.len(), inner.live.series_count())
    }

    /// Statuses as they would have been judged at `as_of`, from the revisions known then.
    /// Hysteresis needs the history of evaluations, which the past does not keep: the judged
    /// status is reported, with `since` = `as_of` and no `previous`.
    pub async fn evaluate_as_of(
        &self,
        store: &DynStore,
        year: i32,
        as_of: DateTime<Utc>,
        filter: impl Fn(&Target) -> bool,
    ) -> StoreResult<Vec<TargetStatus>> {
        let targets: Vec<Target> = self
            .read()
            .targets
            .values()
            .filter(|t| t.year == year && filter(t))
            .cloned()
            .collect();
        let span = YearSpan::of(year, self.zone);
        let rows = store
            .latest_between(span.start, span.end, Some(as_of))
            .await?;
        let live = LiveState::from_stored(&rows);
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let Some(indicator) = self.catalogue.indicator(target.indicator.as_str()) else {
                continue;
            };
            let series = (target.indicator.clone(), target.unit.clone());
            let points = live.year_of(&series, year, self.zone);
            let (profile, plan) =
                plan_profile(indicator, &live.year_of(&series, year - 1, self.zone));
            let (evaluation, overdue) = evaluate_target(
                indicator,
                &target,
                &points,
                &self.calendar,
                &profile,
                self.zone,
                as_of,
            );
            out.push(TargetStatus {
                judged: evaluation.status,
                pending: None,
                plan,
                year,
                indicator: target.indicator.clone(),
                unit: target.unit.clone(),
                group: indicator.group.clone(),
                department: indicator.department.clone(),
                tolerance: target.tolerance.unwrap_or(indicator.tolerance),
                target,
                evaluation,
                since: as_of,
                previous: None,
                anomaly: None,
                overdue_period: overdue.map(|p| p.to_string()),
                evaluated_at: as_of,
            });
        }
        Ok(out)
    }
}

/// Read access for the live screens.
impl Engine {
    /// The latest values of one series' periods starting in `year`, oldest first.
    pub fn year_points(&self, indicator: &Code, unit: &Code, year: i32) -> Vec<Latest> {
        self.read()
            .live
            .year_of(&(indicator.clone(), unit.clone()), year, self.zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn months(values: &[f64]) -> Vec<Latest> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let period = Period::Month(2025, i as u32 + 1);
                Latest {
                    period,
                    end: period.end(chrono_tz::Asia::Ho_Chi_Minh),
                    value: *v,
                }
            })
            .collect()
    }

    #[test]
    fn a_flow_takes_last_years_months_as_its_seasonal_pattern() {
        let mut values = [10.0; 12];
        values[11] = 90.0;
        let profile = seasonal_values(Kind::Flow, &months(&values)).unwrap();
        assert_eq!(profile, values);
    }

    #[test]
    fn cumulative_totals_become_monthly_increments() {
        let totals: Vec<f64> = (1..=12).map(|m| f64::from(m) * 5.0).collect();
        assert_eq!(
            seasonal_values(Kind::Cumulative, &months(&totals)).unwrap(),
            [5.0; 12]
        );
    }

    #[test]
    fn quarters_are_spread_over_their_months() {
        let quarters: Vec<Latest> = [30.0, 60.0, 90.0, 120.0]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let period = Period::Quarter(2025, i as u32 + 1);
                Latest {
                    period,
                    end: period.end(chrono_tz::Asia::Ho_Chi_Minh),
                    value: *v,
                }
            })
            .collect();
        let values = seasonal_values(Kind::Flow, &quarters).unwrap();
        assert_eq!(values[..3], [10.0; 3]);
        assert_eq!(values[9..], [40.0; 3]);
    }

    #[test]
    fn an_incomplete_previous_year_falls_back_to_linear() {
        assert!(seasonal_values(Kind::Flow, &months(&[1.0; 11])).is_none());
    }
}
