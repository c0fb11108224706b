//! The rules engine: evaluates every target from the live state, re-evaluates only the targets
//! an ingest touched, and answers status queries, live or as of a past instant.
//!
//! Targets live in a dense vector of slots, each keeping its last status and hysteresis state,
//! so a full evaluation updates them in place, without key look-ups or copies, and splits the
//! slots between the machine's cores.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::anomaly::{robust_z, AnomalyConfig};
use super::hysteresis::{
    clears_band_with_margin, clears_with_margin, HysteresisConfig, Official, Pending,
};
use super::plan::{period_ends, PlanProfile, YearSpan};
use super::replay::Replayed;
use super::rollup::{Coverage, RollupPlan, DEFAULT_DIFFERENCE};
use super::series::{Latest, LiveState, SeriesId, SeriesSlice};
use super::staleness::{Expectation, IndicatorRelease, ReleaseCalendar};
use super::status::{evaluate, EvalInput, Evaluation, Point};
use crate::domain::code::CodeHash;
use crate::domain::number::tidy;
use crate::domain::{
    Catalogue, Code, Direction, Indicator, Kind, NamedPlan, NewObservation, Period, Periodicity,
    PlanSource, Status, Target, TargetValue,
};
use crate::metrics::{self, Pass as MetricsPass, StatusTally};
use crate::store::{DynStore, StoreResult};

/// A target: (year, indicator, unit).
pub type TargetKey = (i32, Code, Code);

/// One target's judgement with when it took its status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
    /// What this evaluation alone judged of the figures that are in; it becomes official after
    /// `for` when worse. While the feed is stale the status is `stale` and this is still the
    /// pacing verdict (on track, at risk, off track, …) on the figures received.
    pub judged: Status,
    /// A worse status waiting to become official.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The plan profile used: `linear`, `configured` or `previous_year`.
    #[schema(value_type = String, example = "linear")]
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
    /// For a parent unit of an indicator that rolls up: how many of its children reported,
    /// and how its own figure compares with theirs (ARCHITECTURE §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    pub evaluated_at: DateTime<Utc>,
}

/// A value the robust z-score flagged as suspicious (ARCHITECTURE §5 anomaly rule).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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

/// Targets per thread below which a full evaluation stays on fewer threads: starting one costs
/// about as much as evaluating a few hundred targets.
const MIN_TARGETS_PER_THREAD: usize = 10_000;

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

/// What every target of one periodicity and year shares in an evaluation at one instant: the
/// year's span, its periods' end instants and what the release calendar expects by then. Each
/// takes time zone conversions, so they are worked out once for all those targets.
#[derive(Debug, Clone)]
pub struct YearFrame {
    periodicity: Periodicity,
    /// The indicators' own release calendar, if they have one: the frame's calendar is
    /// the city's with it ([`ReleaseCalendar::with_release`]).
    release: Option<IndicatorRelease>,
    calendar: ReleaseCalendar,
    year: i32,
    zone: Tz,
    span: YearSpan,
    previous_span: YearSpan,
    /// End instants of the year's periods, oldest first: averages project the ones to come.
    period_ends: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
    expectation: Expectation,
    /// The calendar closes the year at `now` (its last period is past due and grace).
    closed: bool,
}

impl YearFrame {
    pub fn new(
        periodicity: Periodicity,
        year: i32,
        calendar: &ReleaseCalendar,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            periodicity,
            release: None,
            calendar: calendar.clone(),
            year,
            zone,
            span: YearSpan::of(year, zone),
            previous_span: YearSpan::of(year - 1, zone),
            period_ends: period_ends(periodicity, year, zone),
            now,
            expectation: calendar.expectation(periodicity, year, now, zone),
            closed: calendar.year_closed(periodicity, year, now, zone),
        }
    }

    /// The frame of the indicators of `periodicity` with the release calendar `release`
    /// over the city's `calendar`.
    fn for_release(
        periodicity: Periodicity,
        release: Option<&IndicatorRelease>,
        year: i32,
        calendar: &ReleaseCalendar,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Self {
        let own = calendar.with_release(release);
        Self {
            release: release.copied(),
            ..Self::new(periodicity, year, &own, zone, now)
        }
    }

    /// Moves the frame to `now`, keeping what does not depend on the instant.
    fn move_to(&mut self, now: DateTime<Utc>) {
        if now != self.now {
            let (periodicity, year, zone) = (self.periodicity, self.year, self.zone);
            self.now = now;
            self.expectation = self.calendar.expectation(periodicity, year, now, zone);
            self.closed = self.calendar.year_closed(periodicity, year, now, zone);
        }
    }

    /// The first period a monthly or quarterly series left out, once its deadline has passed:
    /// a flow's year is the sum of its periods, so a month missing would read as a slip when it
    /// is a late figure (ARCHITECTURE §4). A period before the latest figure counts whenever it
    /// fell due, before lateness is judged from too (a year back-filled without its January or
    /// its May is not a year's total); after the latest figure, a closed year's missing periods
    /// count too, since its outcome needs them all (an open year's latest period is the
    /// release calendar's to judge). Daily series are not judged so: a day without a figure
    /// may be a day without events.
    fn gap(&self, year_points: SeriesSlice<'_>) -> Option<Period> {
        if !matches!(
            self.periodicity,
            Periodicity::Monthly | Periodicity::Quarterly
        ) {
            return None;
        }
        let first_missing = |from: DateTime<Utc>| {
            let missing = Period::containing(
                self.periodicity,
                from.with_timezone(&self.zone).date_naive(),
            );
            // Later periods fall due later still.
            (self.calendar.deadline(&missing, self.zone) <= self.now).then_some(missing)
        };
        let mut covered = self.span.start;
        let mut any = false;
        for (start, end) in year_points.bounds() {
            if start > covered {
                return first_missing(covered);
            }
            any = true;
            covered = covered.max(end);
        }
        if any && self.closed && covered < self.span.end {
            return first_missing(covered);
        }
        None
    }

    /// The end instants of the year's periods that end after `after`.
    fn period_ends_after(&self, after: DateTime<Utc>) -> &[DateTime<Utc>] {
        let first = self.period_ends.partition_point(|end| *end <= after);
        &self.period_ends[first..]
    }
}

/// The frames of the (periodicity, release calendar, year) triples evaluated so far: an engine
/// keeps them between evaluations and only moves them to each new instant.
#[derive(Debug, Default)]
pub(super) struct Frames(Vec<YearFrame>);

impl Frames {
    /// The frame of `indicator`'s periodicity and release calendar (the city's `calendar`, or
    /// the indicator's own over it) and `year` at `now`.
    pub(super) fn prepare(
        &mut self,
        indicator: &Indicator,
        year: i32,
        calendar: &ReleaseCalendar,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> &YearFrame {
        let (periodicity, release) = (indicator.periodicity, indicator.release.as_ref());
        let position = self.position(periodicity, release, year);
        match position {
            Some(i) => {
                self.0[i].move_to(now);
                &self.0[i]
            }
            None => {
                self.0.push(YearFrame::for_release(
                    periodicity,
                    release,
                    year,
                    calendar,
                    zone,
                    now,
                ));
                &self.0[self.0.len() - 1]
            }
        }
    }

    fn position(
        &self,
        periodicity: Periodicity,
        release: Option<&IndicatorRelease>,
        year: i32,
    ) -> Option<usize> {
        self.0.iter().position(|f| {
            f.periodicity == periodicity && f.year == year && f.release.as_ref() == release
        })
    }

    fn get(&self, indicator: &Indicator, year: i32) -> Option<&YearFrame> {
        let i = self.position(indicator.periodicity, indicator.release.as_ref(), year)?;
        self.0.get(i)
    }
}

/// Flags the series whose new latest value looks suspicious against the values before it, and
/// clears the flag of those whose new latest value does not; called with rows not yet applied
/// to `live`. The values compared are those of the row's year and the year before, whatever
/// else is in memory, so that a replay of the store flags the same values (ARCHITECTURE §8).
pub(super) fn flag_anomalies(
    live: &LiveState,
    anomalies: &mut HashMap<SeriesId, Anomaly>,
    rows: &[&NewObservation],
    config: &AnomalyConfig,
    zone: Tz,
    now: DateTime<Utc>,
) {
    for row in rows {
        // A series without values has nothing to compare a new one with.
        let Some(id) = live.id(row.indicator.as_str(), row.unit.as_str()) else {
            continue;
        };
        if !live.is_latest(id, row.period_start) {
            continue; // a revision of an older period says nothing about the latest value
        }
        let Some(value) = row.value else {
            // A withdrawn value was never a fact to flag.
            anomalies.remove(&id);
            continue;
        };
        let year = row.period.year(zone);
        let window_start = YearSpan::of(year - 1, zone).start;
        let recent = live.recent_before(id, window_start, row.period_start, ANOMALY_WINDOW);
        match robust_z(&recent, value, config) {
            Some(score) if score.flagged => {
                let flagged = FlaggedValue {
                    period: row.period.to_string(),
                    value,
                    change: tidy(score.change),
                    z: score.z,
                    median_change: tidy(score.median),
                    threshold: score.threshold,
                    at: now,
                };
                anomalies.insert(id, Anomaly { year, flagged });
            }
            _ => {
                anomalies.remove(&id);
            }
        }
    }
}

/// Counts the official statuses that `changes` moved and updates their gauges: once per pass,
/// and only for the (year, group) cells that changed.
fn publish_statuses(tally: &mut StatusTally, changes: &[StatusChange]) {
    for change in changes {
        tally.record(change.year, &change.indicator, change.from, change.to);
    }
    tally.publish();
}

/// Evaluates one target from its series' values in the target's year; `frame` is the one of
/// the indicator's periodicity and the target's year.
pub fn evaluate_target(
    indicator: &Indicator,
    target: &Target,
    year_points: SeriesSlice<'_>,
    frame: &YearFrame,
    profile: &PlanProfile,
) -> (Evaluation, Option<Period>) {
    let span = frame.span;
    // A figure of a period still running is that period so far (a month's exports sent on the
    // 7th, a day's dossiers every hour): it covers the time up to now, not to the period's end,
    // so the year is paced and projected from now and does not read as complete early.
    let running: Vec<Point>;
    let points = match year_points.points().split_last() {
        Some((last, before)) if last.end > frame.now => {
            let through = Point {
                end: frame.now.max(before.last().map_or(span.start, |p| p.end)),
                ..*last
            };
            running = before.iter().copied().chain([through]).collect();
            &running[..]
        }
        _ => year_points.points(),
    };
    let reported_through = points.last().map(|p| p.end);
    let staleness = frame
        .expectation
        .judge(year_points.last_period(), frame.zone);
    // A flow is summed, so a period left out before the latest is as late as the latest.
    let gap = if indicator.kind == Kind::Flow && !staleness.stale {
        frame.gap(year_points)
    } else {
        None
    };
    // A yearly (or December) figure reported before the year is over is an estimate: the year
    // closes when it has ended and its last period is in, or when the release date has passed.
    let year_closed =
        (frame.now >= span.end && reported_through.is_some_and(|t| t >= span.end)) || frame.closed;
    // Only averages project the periods still to come.
    let pending = if indicator.kind == Kind::Average {
        frame.period_ends_after(reported_through.unwrap_or(span.start))
    } else {
        &[]
    };
    let evaluation = evaluate(&EvalInput {
        kind: indicator.kind,
        direction: indicator.direction,
        target: target.value,
        tolerance: target.tolerance.unwrap_or(indicator.tolerance),
        year: target.year,
        span,
        zone: frame.zone,
        profile,
        points,
        pending_period_ends: pending,
        year_closed,
        stale: staleness.stale || gap.is_some(),
    });
    let overdue = staleness
        .stale
        .then_some(staleness.expected)
        .flatten()
        .or(gap);
    (evaluation, overdue)
}

/// Judges one target (before hysteresis) from the live state: its evaluation, the period that
/// is overdue, and the name of its plan profile. `series` is the series the target is judged
/// on (`LiveState::judged_id`).
fn judge(
    indicator: &Indicator,
    target: &Target,
    live: &LiveState,
    series: Option<SeriesId>,
    frame: &YearFrame,
) -> (Evaluation, Option<Period>, &'static str) {
    let within = |span: &YearSpan| {
        series.map_or_else(SeriesSlice::default, |id| {
            live.starting_within(id, span.start, span.end)
        })
    };
    let previous_year: Vec<Latest> =
        if matches!(indicator.plan, PlanSource::Named(NamedPlan::PreviousYear)) {
            within(&frame.previous_span).latest().collect()
        } else {
            Vec::new()
        };
    let (profile, plan) = plan_profile(indicator, &previous_year);
    let (evaluation, overdue) =
        evaluate_target(indicator, target, within(&frame.span), frame, &profile);
    (evaluation, overdue, plan)
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

/// A target and what its evaluations carry over from one to the next.
pub(super) struct Slot {
    pub(super) target: Target,
    /// Its indicator's position in the catalogue; a target whose indicator the catalogue does
    /// not have is never evaluated.
    pub(super) indicator: Option<usize>,
    /// Its series of reported values, once the series has a value.
    pub(super) series: Option<SeriesId>,
    /// The series it is judged on: `series`, or for a parent of an indicator that rolls up
    /// the one formed from its children (`LiveState::judged_id`).
    pub(super) values: Option<SeriesId>,
    pub(super) official: Option<Official>,
    /// The latest status, updated in place by each evaluation.
    pub(super) status: Option<TargetStatus>,
}

impl Slot {
    pub(super) fn new(target: Target, catalogue: &Catalogue, live: &LiveState) -> Self {
        Self {
            indicator: catalogue
                .indicators
                .iter()
                .position(|i| i.code == target.indicator),
            series: live.id(target.indicator.as_str(), target.unit.as_str()),
            values: live.judged_id(target.indicator.as_str(), target.unit.as_str()),
            target,
            official: None,
            status: None,
        }
    }
}

/// A series' latest value flagged as suspicious, shown on the target of its period's year.
#[derive(Debug, Clone)]
pub(super) struct Anomaly {
    pub(super) year: i32,
    pub(super) flagged: FlaggedValue,
}

struct Inner {
    live: LiveState,
    /// Every target: in key order as loaded, then those added since.
    slots: Vec<Slot>,
    /// Each target's slot, in the order statuses are listed.
    index: BTreeMap<TargetKey, usize>,
    anomalies: HashMap<SeriesId, Anomaly>,
    frames: Frames,
    /// Years that have targets: only their observations are kept live.
    years: HashSet<i32>,
    /// Official statuses by year and sector group, for the metrics.
    tally: StatusTally,
    /// The latest instant anything was evaluated at.
    last_at: DateTime<Utc>,
    /// Targets a change reached with an instant before their last evaluation: their state is
    /// to be replayed from the store, as evaluating them out of order would not give it.
    behind: BTreeSet<usize>,
}

pub struct Engine {
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) zone: Tz,
    pub(super) calendar: ReleaseCalendar,
    pub(super) hysteresis: HysteresisConfig,
    pub(super) anomaly: AnomalyConfig,
    /// The unit tree and the indicators that roll up along it.
    pub(super) rollups: Arc<RollupPlan>,
    /// The timer's period: ticks fall on multiples of it from the Unix epoch, so that a replay
    /// counts the same evaluations as the live engine did (ARCHITECTURE §8).
    pub(super) tick: chrono::Duration,
    /// The instant the engine was built for: ticks up to it are in its state.
    built_at: DateTime<Utc>,
    /// Threads a full evaluation may use.
    cores: usize,
    /// The relative difference between a parent's own figure and its children's that is
    /// flagged (`rules.rollup_difference`).
    pub(super) rollup_difference: f64,
    // A std lock: evaluations are short, CPU-bound and never await while holding it.
    inner: RwLock<Inner>,
}

fn key_of(target: &Target) -> TargetKey {
    (target.year, target.indicator.clone(), target.unit.clone())
}

/// What evaluating a slot reads besides the slot: shared by the threads of a full evaluation.
pub(super) struct Pass<'a> {
    pub(super) catalogue: &'a Catalogue,
    pub(super) hysteresis: &'a HysteresisConfig,
    pub(super) live: &'a LiveState,
    pub(super) anomalies: &'a HashMap<SeriesId, Anomaly>,
    pub(super) frames: &'a Frames,
    pub(super) now: DateTime<Utc>,
    pub(super) rollup_difference: f64,
}

impl Pass<'_> {
    /// Evaluates one target, updates its official status and its `TargetStatus` in place, and
    /// returns the change of its official status, if any.
    pub(super) fn evaluate(&self, slot: &mut Slot) -> Option<StatusChange> {
        let Slot {
            target,
            indicator,
            series,
            values,
            official,
            status,
        } = slot;
        if status.as_ref().is_some_and(|s| s.evaluated_at > self.now) {
            return None; // out of order: the engine replays it (see `Engine::behind`)
        }
        let indicator = self.catalogue.indicators.get((*indicator)?)?;
        // Prepared for every slot before the pass.
        let frame = self.frames.get(indicator, target.year)?;
        let (mut evaluation, overdue, plan) = judge(indicator, target, self.live, *values, frame);
        let coverage = self.coverage(indicator, target, *values, frame);
        // Hysteresis follows the status with staleness applied, as the alerts do; `judged`
        // shows the verdict underneath.
        let candidate = evaluation.status;
        let judged = evaluation.verdict;
        let tolerance = target.tolerance.unwrap_or(indicator.tolerance);
        let margin = self.hysteresis.recovery_margin;
        let margin_ok = evaluation.projection.is_none_or(|projection| {
            clears_threshold(
                indicator.direction,
                target.value,
                tolerance,
                candidate,
                projection,
                margin,
            )
        });
        let first = official.is_none();
        let official = official.get_or_insert_with(|| Official::new(candidate, self.now));
        let transition = official.observe(candidate, margin_ok, self.now, self.hysteresis);
        evaluation.status = official.status;
        let change = match transition {
            Some(transition) => Some((Some(transition.from), transition.to)),
            None if first => Some((None, candidate)),
            None => None,
        };

        let anomaly = series
            .and_then(|id| self.anomalies.get(&id))
            .filter(|a| a.year == target.year)
            .map(|a| &a.flagged);
        let status = status.get_or_insert_with(|| TargetStatus {
            year: target.year,
            indicator: target.indicator.clone(),
            unit: target.unit.clone(),
            group: indicator.group.clone(),
            department: indicator.department.clone(),
            target: target.clone(),
            // The rest is set below, as on every evaluation.
            tolerance,
            evaluation: evaluation.clone(),
            judged,
            pending: None,
            plan,
            since: self.now,
            previous: None,
            anomaly: None,
            overdue_period: None,
            coverage: None,
            evaluated_at: self.now,
        });
        status.tolerance = tolerance;
        status.evaluation = evaluation;
        status.judged = judged;
        status.pending = official.pending();
        status.plan = plan;
        status.since = official.since;
        status.previous = official.previous;
        if status.anomaly.as_ref() != anomaly {
            status.anomaly = anomaly.cloned();
        }
        status.overdue_period = overdue.map(|p| p.to_string());
        status.coverage = coverage;
        status.evaluated_at = self.now;

        change.map(|(from, to)| StatusChange {
            year: target.year,
            indicator: target.indicator.clone(),
            unit: target.unit.clone(),
            from,
            to,
            at: self.now,
        })
    }

    /// How much of a parent's value of the target's year its children's reports cover; `None`
    /// for a unit whose value is not formed from its children's.
    fn coverage(
        &self,
        indicator: &Indicator,
        target: &Target,
        values: Option<SeriesId>,
        frame: &YearFrame,
    ) -> Option<Coverage> {
        let plan = self.live.rollups()?;
        if !plan.rolls_up(indicator.code.as_str(), target.unit.as_str()) {
            return None;
        }
        let unit = plan.unit(target.unit.as_str())?;
        let expected = u32::try_from(plan.children(unit).len()).unwrap_or(u32::MAX);
        let (periods, last) = match values {
            Some(id) => (
                self.live
                    .rollup_within(id, frame.span.start, frame.span.end),
                self.live
                    .starting_within(id, frame.span.start, frame.span.end)
                    .last_period()
                    .map(ToString::to_string),
            ),
            None => (&[][..], None),
        };
        Some(Coverage::of(
            indicator.rollup,
            expected,
            periods,
            last,
            self.rollup_difference,
        ))
    }

    fn evaluate_each(&self, slots: &mut [Slot]) -> Vec<StatusChange> {
        slots
            .iter_mut()
            .filter_map(|slot| self.evaluate(slot))
            .collect()
    }
}

impl Engine {
    /// Loads the targets and the latest values of the targets' years from the store, and takes
    /// up every target's state where the stored history leaves it: the replay of its evaluations
    /// up to `now` (ARCHITECTURE §8), so a restart changes no status and no pending count.
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        catalogue: Arc<Catalogue>,
        store: &DynStore,
        zone: Tz,
        calendar: ReleaseCalendar,
        hysteresis: HysteresisConfig,
        tick: std::time::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Self> {
        let targets: Vec<Target> = store
            .targets(None)
            .await?
            .into_iter()
            .map(|row| row.target)
            .collect();
        let years: HashSet<i32> = targets.iter().map(|t| t.year).collect();
        let live = match (years.iter().min(), years.iter().max()) {
            (Some(&first), Some(&last)) => {
                // The year before the first sets its seasonal plan; figures of years without
                // targets yet are kept live as they arrive, so they are loaded too.
                let rows = store
                    .latest_between(
                        YearSpan::of(first - 1, zone).start,
                        YearSpan::of(last + 1, zone).end,
                        Some(now),
                    )
                    .await?;
                LiveState::from_stored(&rows)
            }
            _ => LiveState::default(),
        };
        let engine = Self::new(
            catalogue, targets, live, zone, calendar, hysteresis, tick, now,
        );
        engine.restore(store, now).await?;
        Ok(engine)
    }

    /// Replaces every target's state with its replay up to `now`.
    async fn restore(&self, store: &DynStore, now: DateTime<Utc>) -> StoreResult<()> {
        let years: Vec<i32> = {
            let inner = self.read();
            let mut years: Vec<i32> = inner.years.iter().copied().collect();
            years.sort_unstable();
            years
        };
        let mut replayed = Vec::new();
        for year in years {
            replayed.extend(self.replay_year(store, year, now, None, |_| true).await?);
        }
        self.install(replayed, now);
        Ok(())
    }

    /// The latest instant anything was evaluated at.
    pub fn last_evaluated(&self) -> DateTime<Utc> {
        self.read().last_at
    }

    /// The targets whose state must be replayed because a change reached them out of order;
    /// taking them clears the list.
    pub fn take_behind(&self) -> Vec<TargetKey> {
        let mut inner = self.write();
        let behind = std::mem::take(&mut inner.behind);
        behind
            .into_iter()
            .filter_map(|i| inner.slots.get(i).map(|slot| key_of(&slot.target)))
            .collect()
    }

    /// Replays `keys` from the store up to the latest instant the engine evaluated, and takes
    /// their state from the replay (ARCHITECTURE §8). Returns the official statuses that moved.
    pub async fn replay_targets(
        &self,
        store: &DynStore,
        keys: &[TargetKey],
    ) -> StoreResult<Vec<StatusChange>> {
        let until = self.read().last_at;
        // One read of each year, of the indicators the keys name.
        let mut by_year: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for (year, indicator, _) in keys {
            by_year
                .entry(*year)
                .or_default()
                .push(indicator.to_string());
        }
        let wanted: HashSet<&TargetKey> = keys.iter().collect();
        let mut replayed = Vec::new();
        for (year, mut indicators) in by_year {
            indicators.sort_unstable();
            indicators.dedup();
            replayed.extend(
                self.replay_year(store, year, until, Some(&indicators), |t| {
                    wanted.contains(&key_of(t))
                })
                .await?,
            );
        }
        Ok(self.install(replayed, until))
    }

    /// Puts replayed states in place of the targets' own.
    fn install(&self, replayed: Vec<Replayed>, now: DateTime<Utc>) -> Vec<StatusChange> {
        let mut guard = self.write();
        let inner = &mut *guard;
        let mut changes = Vec::new();
        // Years in order: the flag of a series' latest value comes from its latest year.
        for Replayed { slot, anomaly } in replayed {
            let key = key_of(&slot.target);
            let Some(&i) = inner.index.get(&key) else {
                continue;
            };
            let series = inner
                .live
                .id(slot.target.indicator.as_str(), slot.target.unit.as_str());
            if let Some(id) = series {
                match anomaly {
                    Some(anomaly)
                        if inner
                            .anomalies
                            .get(&id)
                            .is_none_or(|a| a.year <= anomaly.year) =>
                    {
                        inner.anomalies.insert(id, anomaly);
                    }
                    Some(_) => {}
                    // The replay of a year knows the flags of that year and the one before.
                    None if inner
                        .anomalies
                        .get(&id)
                        .is_some_and(|a| a.year <= slot.target.year) =>
                    {
                        inner.anomalies.remove(&id);
                    }
                    None => {}
                }
            }
            let Some(held) = inner.slots.get_mut(i) else {
                continue;
            };
            let from = held.status.as_ref().map(|s| s.evaluation.status);
            let to = slot.status.as_ref().map(|s| s.evaluation.status);
            if let (Some(to), true) = (to, from != to) {
                changes.push(StatusChange {
                    year: slot.target.year,
                    indicator: slot.target.indicator.clone(),
                    unit: slot.target.unit.clone(),
                    from,
                    to,
                    at: now,
                });
            }
            held.official = slot.official;
            held.status = slot.status;
            held.series = series;
            held.values = inner
                .live
                .judged_id(slot.target.indicator.as_str(), slot.target.unit.as_str());
        }
        inner.last_at = inner.last_at.max(now);
        publish_statuses(&mut inner.tally, &changes);
        changes
    }

    /// Builds the engine from targets and a live state already at hand, and evaluates once.
    /// `tick` is the evaluation timer's period.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        catalogue: Arc<Catalogue>,
        targets: Vec<Target>,
        live: LiveState,
        zone: Tz,
        calendar: ReleaseCalendar,
        hysteresis: HysteresisConfig,
        tick: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Self {
        let mut live = live;
        let rollups = Arc::new(RollupPlan::new(&catalogue));
        live.set_rollups(rollups.clone());
        let years: HashSet<i32> = targets.iter().map(|t| t.year).collect();
        // Keyed first so that a later duplicate replaces an earlier one.
        let targets: BTreeMap<TargetKey, Target> =
            targets.into_iter().map(|t| (key_of(&t), t)).collect();
        let (keys, slots): (Vec<TargetKey>, Vec<Slot>) = targets
            .into_iter()
            .map(|(key, target)| (key, Slot::new(target, &catalogue, &live)))
            .unzip();
        let index = keys.into_iter().zip(0..).collect();
        let tally = StatusTally::new(&catalogue, years.iter().copied());
        let engine = Self {
            catalogue,
            zone,
            calendar,
            hysteresis,
            anomaly: AnomalyConfig::default(),
            // A period chrono cannot hold is no period a timer runs on: a minute instead.
            tick: chrono::Duration::from_std(tick)
                .ok()
                .filter(|t| *t > chrono::Duration::zero())
                .unwrap_or_else(|| chrono::Duration::minutes(1)),
            built_at: now,
            cores: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            rollups,
            rollup_difference: DEFAULT_DIFFERENCE,
            inner: RwLock::new(Inner {
                live,
                slots,
                index,
                anomalies: HashMap::new(),
                frames: Frames::default(),
                years,
                tally,
                last_at: DateTime::<Utc>::MIN_UTC,
                behind: BTreeSet::new(),
            }),
        };
        engine.evaluate_all(now);
        engine
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each target's state is updated
        // on its own, the live state row by row), so a poisoned lock is still usable.
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pass that evaluates the targets in `slots` at `now`, with their frames moved to it.
    fn pass<'a, 's>(
        &'a self,
        live: &'a LiveState,
        anomalies: &'a HashMap<SeriesId, Anomaly>,
        frames: &'a mut Frames,
        slots: impl Iterator<Item = &'s Slot>,
        now: DateTime<Utc>,
    ) -> Pass<'a> {
        for slot in slots {
            let indicator = slot
                .indicator
                .and_then(|i| self.catalogue.indicators.get(i));
            if let Some(indicator) = indicator {
                frames.prepare(indicator, slot.target.year, &self.calendar, self.zone, now);
            }
        }
        Pass {
            catalogue: &self.catalogue,
            hysteresis: &self.hysteresis,
            live,
            anomalies,
            frames,
            now,
            rollup_difference: self.rollup_difference,
        }
    }

    /// Re-evaluates the targets in the given slots and returns the status changes.
    fn reevaluate(
        &self,
        inner: &mut Inner,
        slots: &[usize],
        now: DateTime<Utc>,
    ) -> Vec<StatusChange> {
        if slots.is_empty() {
            return Vec::new(); // an ingest of years without targets: no pass to count
        }
        let started = Instant::now();
        let Inner {
            live,
            slots: all,
            anomalies,
            frames,
            tally,
            last_at,
            behind,
            ..
        } = inner;
        let selected = slots.iter().filter_map(|&i| all.get(i));
        let pass = self.pass(live, anomalies, frames, selected, now);
        let changes: Vec<StatusChange> = slots
            .iter()
            .filter_map(|&i| pass.evaluate(all.get_mut(i)?))
            .collect();
        if now < *last_at {
            behind.extend(slots.iter().copied().filter(|&i| {
                all.get(i)
                    .and_then(|slot| slot.status.as_ref())
                    .is_some_and(|s| s.evaluated_at > now)
            }));
        }
        *last_at = (*last_at).max(now);
        metrics::evaluation_pass(MetricsPass::Partial, slots.len(), started.elapsed());
        publish_statuses(tally, &changes);
        changes
    }

    /// Evaluates every target: at start and on the timer (staleness, the passage of time).
    pub fn evaluate_all(&self, now: DateTime<Utc>) -> Vec<StatusChange> {
        let mut inner = self.write();
        let started = Instant::now();
        let Inner {
            live,
            slots,
            anomalies,
            frames,
            tally,
            last_at,
            behind,
            ..
        } = &mut *inner;
        let pass = self.pass(live, anomalies, frames, slots.iter(), now);
        let changes = self.evaluate_in_parallel(&pass, slots);
        if now < *last_at {
            behind.extend(slots.iter().enumerate().filter_map(|(i, slot)| {
                let status = slot.status.as_ref()?;
                (status.evaluated_at > now).then_some(i)
            }));
        }
        *last_at = (*last_at).max(now);
        metrics::evaluation_pass(MetricsPass::Full, slots.len(), started.elapsed());
        publish_statuses(tally, &changes);
        changes
    }

    /// Evaluates `slots` with `pass`, split across the cores when there are enough of them.
    fn evaluate_in_parallel(&self, pass: &Pass<'_>, slots: &mut [Slot]) -> Vec<StatusChange> {
        let threads = self.cores.min(slots.len() / MIN_TARGETS_PER_THREAD).max(1);
        if threads == 1 {
            return pass.evaluate_each(slots);
        }
        // Contiguous chunks, joined in order: the changes come in slot order, as on one thread.
        let chunk = slots.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut chunks = slots.chunks_mut(chunk);
            let first = chunks.next().unwrap_or_default();
            let others: Vec<_> = chunks
                .map(|chunk| scope.spawn(move || pass.evaluate_each(chunk)))
                .collect();
            let mut changes = pass.evaluate_each(first);
            for other in others {
                match other.join() {
                    Ok(more) => changes.extend(more),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            changes
        })
    }

    /// Applies accepted observations and re-evaluates only the targets of the series they touch.
    pub fn apply(&self, rows: &[&NewObservation], now: DateTime<Utc>) -> Vec<StatusChange> {
        let mut guard = self.write();
        let inner = &mut *guard;
        // Only the years from the one before the first target year on are kept live: a
        // back-fill of older years must not grow the in-memory state, and a target's previous
        // year sets its seasonal plan.
        let horizon = inner.years.iter().min().map(|first| first - 1);
        let relevant: Vec<&NewObservation> = rows
            .iter()
            .copied()
            .filter(|r| horizon.is_some_and(|h| r.period.year(self.zone) >= h))
            .collect();
        flag_anomalies(
            &inner.live,
            &mut inner.anomalies,
            &relevant,
            &self.anomaly,
            self.zone,
            now,
        );
        inner.live.apply(&relevant);
        // A year's figures also set next year's seasonal plan, so both years are re-judged.
        let mut touched = Vec::new();
        // A group holds many periods of few series: each series and year is looked up once.
        let mut seen: HashSet<(&str, &str, i32), CodeHash> = HashSet::default();
        for row in &relevant {
            let year = row.period.year(self.zone);
            if !seen.insert((row.indicator.as_str(), row.unit.as_str(), year)) {
                continue;
            }
            // A figure also moves the value of every parent it rolls up into.
            for unit in self
                .rollups
                .fed_units(row.indicator.as_str(), row.unit.as_str())
            {
                let series = inner.live.id(row.indicator.as_str(), unit.as_str());
                let values = inner.live.judged_id(row.indicator.as_str(), unit.as_str());
                for year in [year, year + 1] {
                    let key = (year, row.indicator.clone(), unit.clone());
                    let Some(&i) = inner.index.get(&key) else {
                        continue;
                    };
                    if let Some(slot) = inner.slots.get_mut(i) {
                        // The series may be new.
                        slot.series = series;
                        slot.values = values;
                        touched.push(i);
                    }
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        self.reevaluate(inner, &touched, now)
    }

    /// Replaces one target (after an admin changed it) and re-evaluates it.
    pub fn set_target(&self, target: Target, now: DateTime<Utc>) -> Vec<StatusChange> {
        let key = key_of(&target);
        let mut guard = self.write();
        let inner = &mut *guard;
        inner.years.insert(target.year);
        let i = match inner.index.get(&key) {
            Some(&i) => {
                if let Some(slot) = inner.slots.get_mut(i) {
                    if let Some(status) = &mut slot.status {
                        status.target = target.clone();
                    }
                    slot.target = target;
                }
                i
            }
            None => {
                let i = inner.slots.len();
                let slot = Slot::new(target, &self.catalogue, &inner.live);
                inner.slots.push(slot);
                inner.index.insert(key, i);
                i
            }
        };
        self.reevaluate(inner, &[i], now)
    }

    /// Current statuses matching `filter`.
    pub fn statuses(&self, filter: impl Fn(&TargetStatus) -> bool) -> Vec<TargetStatus> {
        let inner = self.read();
        inner
            .index
            .values()
            .filter_map(|&i| inner.slots.get(i)?.status.as_ref())
            .filter(|s| filter(s))
            .cloned()
            .collect()
    }

    pub fn status(&self, key: &TargetKey) -> Option<TargetStatus> {
        let inner = self.read();
        let &i = inner.index.get(key)?;
        inner.slots.get(i)?.status.clone()
    }

    /// The latest values of a series in `year`, oldest first: for a parent of an indicator
    /// that rolls up, its own figures or else its children's.
    pub fn year_points(&self, indicator: &Code, unit: &Code, year: i32) -> Vec<Latest> {
        let inner = self.read();
        let Some(id) = inner.live.judged_id(indicator.as_str(), unit.as_str()) else {
            return Vec::new();
        };
        let span = YearSpan::of(year, self.zone);
        inner
            .live
            .starting_within(id, span.start, span.end)
            .latest()
            .collect()
    }

    /// The unit tree and the indicators that roll up along it.
    pub fn rollups(&self) -> &Arc<RollupPlan> {
        &self.rollups
    }

    /// Sets the relative difference between a parent's own figure and its children's that is
    /// flagged, and shows it on every target at once: the flag is no part of the judgement,
    /// so no target is evaluated again.
    pub fn with_rollup_difference(self, threshold: f64) -> Self {
        let mut engine = self;
        engine.rollup_difference = threshold;
        {
            let mut guard = engine.write();
            let inner = &mut *guard;
            for slot in &mut inner.slots {
                let Some(status) = slot.status.as_mut() else {
                    continue;
                };
                if let Some(coverage) = status.coverage.as_mut() {
                    let rollup = engine
                        .catalogue
                        .indicator(status.indicator.as_str())
                        .map(|i| i.rollup);
                    if let (Some(rollup), Some(own), Some(computed)) =
                        (rollup, coverage.reported_value, coverage.computed)
                    {
                        let (difference, flagged) = super::rollup::differs(
                            rollup,
                            own,
                            computed,
                            coverage.partial,
                            threshold,
                        );
                        coverage.difference = difference;
                        coverage.flagged = flagged;
                    }
                }
            }
        }
        engine
    }

    /// The latest year up to `year` that has targets.
    pub fn target_year_up_to(&self, year: i32) -> Option<i32> {
        self.read()
            .years
            .iter()
            .copied()
            .filter(|y| *y <= year)
            .max()
    }

    /// Targets and series known, for metrics and health.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.slots.len(), inner.live.series_count())
    }

    /// The instant the engine was built for: the timer's first tick is the one after it.
    pub fn built_at(&self) -> DateTime<Utc> {
        self.built_at
    }

    /// The timer's period: the evaluation timer ticks on its multiples from the Unix epoch.
    pub fn tick(&self) -> std::time::Duration {
        self.tick
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(60))
    }

    /// Statuses as the live engine gave them at `as_of`: the replay of every evaluation up to
    /// then, from the revisions known then and the target versions in force then
    /// (ARCHITECTURE §8). Status, `since`, `previous`, pending runs and the flagged value are
    /// the live engine's, so a report of a past instant says what the screens said.
    pub async fn evaluate_as_of(
        &self,
        store: &DynStore,
        year: i32,
        as_of: DateTime<Utc>,
        filter: impl Fn(&Target) -> bool,
    ) -> StoreResult<Vec<TargetStatus>> {
        let replayed = self.replay_year(store, year, as_of, None, filter).await?;
        let mut out: Vec<TargetStatus> = replayed
            .into_iter()
            .filter_map(|replayed| replayed.slot.status)
            .collect();
        // The order the live statuses come in, whatever order the store answers in.
        out.sort_by(|a, b| (&a.indicator, &a.unit).cmp(&(&b.indicator, &b.unit)));
        Ok(out)
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

    #[test]
    fn the_periods_to_come_are_those_ending_after_the_reported_through_time() {
        let zone = chrono_tz::Asia::Ho_Chi_Minh;
        let at = |period: &str| Period::parse(period).unwrap().end(zone);
        let calendar = ReleaseCalendar::default();
        let frame = |periodicity| YearFrame::new(periodicity, 2026, &calendar, zone, at("2026-06"));
        assert_eq!(
            frame(Periodicity::Quarterly).period_ends_after(at("2026-Q2")),
            [at("2026-Q3"), at("2026-Q4")]
        );
        assert!(frame(Periodicity::Monthly)
            .period_ends_after(at("2026-12"))
            .is_empty());
        assert_eq!(
            frame(Periodicity::Daily)
                .period_ends_after(at("2026-12-29"))
                .len(),
            2
        );
    }
}
