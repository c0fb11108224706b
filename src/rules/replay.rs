//! The engine replayed over what the store knew: a target's state at any instant is a function
//! of the stored history, so an answer "as of" a past instant is what the live engine said then,
//! and an engine that starts takes up exactly where the last one left off (ARCHITECTURE §8).
//!
//! A target is evaluated at these instants, and only these, live and in a replay:
//! - when a version of it comes into force (`valid_from`; the first creates it);
//! - when revisions of its series for its year or the year before become known (`reported_at`;
//!   the rows known at one instant are applied together, as one write group is live);
//! - on every tick of the timer: the multiples of the evaluation interval from the Unix epoch.
//!
//! At one instant a new version comes first, then the data, then the tick. Between two changes a
//! target's judgement can only move when the release calendar crosses a due date (a feed turns
//! stale, the year closes), so a replay evaluates only the ticks where that happens, the ticks
//! where a pending status may become official, and the last tick before each change; the ticks
//! in between are counted towards the pending runs without being evaluated.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::engine::TargetStatus;
use super::engine::{flag_anomalies, Anomaly, Engine, Frames, Pass, Slot};
use super::plan::YearSpan;
use super::series::{LiveState, SeriesId};
use crate::domain::approval::History;
use crate::domain::{Code, NewObservation, Period, StoredObservation, Target};
use crate::store::{DynStore, StoreResult, TargetVersion};

/// One target's state after a replay: what a live engine holds in its slot, and the flag of its
/// series' latest value.
pub(super) struct Replayed {
    pub(super) slot: Slot,
    pub(super) anomaly: Option<Anomaly>,
}

/// A stored revision as the engine applies it.
struct Known {
    row: NewObservation,
    revision: i32,
    known_at: DateTime<Utc>,
}

impl Known {
    /// The revision as `history` reads it: known at its `reported_at`, or for the official
    /// figures from the moment it became one (ARCHITECTURE §8).
    fn from_stored(stored: &StoredObservation, history: History) -> Option<Self> {
        let known_at = match history {
            History::Latest => stored.reported_at,
            History::Official => stored.reported_at.max(stored.official_at?),
        };
        Some(Self {
            row: stored.as_committed()?,
            revision: stored.revision,
            known_at,
        })
    }
}

/// The first multiple of `tick` from the Unix epoch at or after `at`.
pub fn tick_at_or_after(at: DateTime<Utc>, tick: Duration) -> DateTime<Utc> {
    let Some(step) = tick.num_microseconds().filter(|step| *step > 0) else {
        return at;
    };
    let micros = at.timestamp_micros();
    let ticks = micros.div_euclid(step) + i64::from(micros.rem_euclid(step) != 0);
    DateTime::from_timestamp_micros(ticks.saturating_mul(step)).unwrap_or(at)
}

/// What the release calendar says of a target's year at an instant. Each part only ever moves
/// forward in time, so two equal keys mean no crossing lies between their instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CalendarKey {
    expected: Option<Period>,
    closed: bool,
    year_over: bool,
}

/// The state of one target's replay besides its slot.
struct Run<'a> {
    engine: &'a Engine,
    live: LiveState,
    anomalies: HashMap<SeriesId, Anomaly>,
    frames: Frames,
    /// The revision applied for each unit's period, so that a lower revision known later (a
    /// back-dated correction of an older figure) does not replace a higher one. A parent of an
    /// indicator that rolls up learns its children's figures too.
    held: HashMap<(Code, DateTime<Utc>, DateTime<Utc>), i32>,
    /// The calendar's key at the last evaluation.
    last_key: Option<CalendarKey>,
}

impl Run<'_> {
    /// Applies rows that became known at `at`; returns whether any was new.
    fn learn(&mut self, known: &[&Known], at: DateTime<Utc>) -> bool {
        let mut rows: Vec<&NewObservation> = Vec::with_capacity(known.len());
        for k in known {
            let held = self
                .held
                .entry((k.row.unit.clone(), k.row.period_start, k.row.period_end))
                .or_insert(i32::MIN);
            if k.revision > *held {
                *held = k.revision;
                rows.push(&k.row);
            }
        }
        if rows.is_empty() {
            return false;
        }
        let engine = self.engine;
        flag_anomalies(
            &self.live,
            &mut self.anomalies,
            &rows,
            &engine.anomaly,
            engine.zone,
            at,
        );
        self.live.apply(&rows);
        true
    }

    fn key(&self, slot: &Slot, at: DateTime<Utc>) -> CalendarKey {
        let engine = self.engine;
        let year = slot.target.year;
        let indicator = slot
            .indicator
            .and_then(|i| engine.catalogue.indicators.get(i));
        let Some(indicator) = indicator else {
            return CalendarKey {
                expected: None,
                closed: false,
                year_over: false,
            };
        };
        // The indicator's own calendar, as the live engine's frame of it judges by.
        let calendar = engine.calendar.for_indicator(indicator);
        let periodicity = indicator.periodicity;
        CalendarKey {
            expected: calendar.expected_period(periodicity, year, at, engine.zone),
            closed: calendar.year_closed(periodicity, year, at, engine.zone),
            year_over: at >= YearSpan::of(year, engine.zone).end,
        }
    }

    /// Evaluates the target at `at`, as the live engine does.
    fn judge(&mut self, slot: &mut Slot, at: DateTime<Utc>) {
        let engine = self.engine;
        let Some(indicator) = slot
            .indicator
            .and_then(|i| engine.catalogue.indicators.get(i))
        else {
            return;
        };
        slot.series = self
            .live
            .id(slot.target.indicator.as_str(), slot.target.unit.as_str());
        slot.values = self
            .live
            .judged_id(slot.target.indicator.as_str(), slot.target.unit.as_str());
        self.frames.prepare(
            indicator,
            slot.target.year,
            &engine.calendar,
            engine.zone,
            at,
        );
        let pass = Pass {
            catalogue: &engine.catalogue,
            hysteresis: &engine.hysteresis,
            live: &self.live,
            anomalies: &self.anomalies,
            frames: &self.frames,
            now: at,
            rollup_difference: engine.rollup_difference,
        };
        pass.evaluate(slot);
        self.last_key = Some(self.key(slot, at));
    }

    /// The first tick in `[from, to]` at which the calendar's key differs from the one at the
    /// last evaluation. The key only moves forward, so a gallop and a bisection over the ticks
    /// find it without looking at each.
    fn next_crossing(
        &self,
        slot: &Slot,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let last = self.last_key?;
        let tick = self.engine.tick;
        let at = |n: i64| from + tick * i32::try_from(n).unwrap_or(i32::MAX);
        let count = (to - from).num_microseconds()? / tick.num_microseconds()? + 1;
        let moved = |n: i64| self.key(slot, at(n)) != last;
        if count <= 0 || !moved(count - 1) {
            return None;
        }
        // The key has not moved before tick `low` and has at tick `high`. Crossings are usually
        // near (the next due date), so gallop from the start before bisecting.
        let (mut low, mut high) = (0_i64, count - 1);
        let mut step = 1_i64;
        loop {
            let probe = low + step - 1;
            if probe >= high {
                break;
            }
            if moved(probe) {
                high = probe;
                break;
            }
            low = probe + 1;
            step = step.saturating_mul(2);
        }
        while low < high {
            let middle = low + (high - low) / 2;
            if moved(middle) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Some(at(low))
    }

    /// Runs the timer's ticks from `*next` up to `last` (inclusive), evaluating only those that
    /// can change something, and leaves `*next` at the tick after `last`.
    fn ticks(&mut self, slot: &mut Slot, next: &mut DateTime<Utc>, last: DateTime<Utc>) {
        let tick = self.engine.tick;
        while *next <= last {
            let crossing = self.next_crossing(slot, *next, last);
            let pending = slot
                .official
                .as_ref()
                .filter(|official| official.has_pending())
                .and_then(|official| official.earliest_ripening(&self.engine.hysteresis));
            let target = match pending {
                // A pending run can ripen from this tick on: every tick counts, one by one.
                Some(ripening) => {
                    let ripe = tick_at_or_after(ripening, tick).max(*next);
                    crossing.map_or(ripe, |c| c.min(ripe)).min(last)
                }
                // Nothing waits: only a crossing can change the judgement, and the last tick
                // leaves the evaluation time where the live engine's timer left it.
                None => crossing.unwrap_or(last),
            };
            let skipped = ticks_between(*next, target, tick);
            if skipped > 0 {
                if let Some(official) = slot.official.as_mut() {
                    official.count_unchanged(skipped);
                }
            }
            self.judge(slot, target);
            *next = target + tick;
        }
    }
}

/// How many ticks lie in `[from, to)`.
fn ticks_between(from: DateTime<Utc>, to: DateTime<Utc>, tick: Duration) -> u32 {
    match (
        (to - from).num_microseconds(),
        tick.num_microseconds().filter(|t| *t > 0),
    ) {
        (Some(span), Some(step)) if span > 0 => u32::try_from(span / step).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// The last tick at or before `at`.
fn tick_at_or_before(at: DateTime<Utc>, tick: Duration) -> DateTime<Utc> {
    let next = tick_at_or_after(at, tick);
    if next == at {
        at
    } else {
        next - tick
    }
}

/// The last tick strictly before `at`.
fn tick_before(at: DateTime<Utc>, tick: Duration) -> DateTime<Utc> {
    tick_at_or_after(at, tick) - tick
}

impl Engine {
    /// Every target of `year` that `filter` keeps (of `indicators` only, when given), as the live
    /// engine held it after its last evaluation at or before `until`, in indicator and unit
    /// order.
    pub(super) async fn replay_year(
        &self,
        store: &DynStore,
        year: i32,
        until: DateTime<Utc>,
        indicators: Option<&[String]>,
        filter: impl Fn(&Target) -> bool,
    ) -> StoreResult<Vec<Replayed>> {
        self.replay_year_in(History::Latest, store, year, until, indicators, filter)
            .await
    }

    /// [`Engine::replay_year`] over the revisions `history` reads.
    pub(super) async fn replay_year_in(
        &self,
        history: History,
        store: &DynStore,
        year: i32,
        until: DateTime<Utc>,
        indicators: Option<&[String]>,
        filter: impl Fn(&Target) -> bool,
    ) -> StoreResult<Vec<Replayed>> {
        let versions = store.target_versions(year).await?;
        let from = YearSpan::of(year - 1, self.zone).start;
        let to = YearSpan::of(year, self.zone).end;
        let stored = match history {
            History::Latest => store.known_between(from, to, until, indicators).await?,
            History::Official => store.official_between(from, to, until, indicators).await?,
        };
        let mut known: Vec<Known> = stored
            .iter()
            .filter_map(|s| Known::from_stored(s, history))
            .collect();
        // The store answers in this order already; a stable sort keeps its order within an
        // instant whatever a backend does with equal keys.
        known.sort_by_key(|k| k.known_at);
        let mut by_series: HashMap<(&str, &str), Vec<&Known>> = HashMap::new();
        for k in &known {
            by_series
                .entry((k.row.indicator.as_str(), k.row.unit.as_str()))
                .or_default()
                .push(k);
        }
        let mut out = Vec::new();
        // Versions come by indicator, unit and start: one run of them per target.
        let mut rest = versions.as_slice();
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take_while(|v| {
                    v.target.indicator == first.target.indicator
                        && v.target.unit == first.target.unit
                })
                .count();
            let (target_versions, tail) = rest.split_at(same);
            rest = tail;
            if !filter(&first.target) {
                continue;
            }
            let indicator = first.target.indicator.as_str();
            let unit = first.target.unit.as_str();
            // A parent of an indicator that rolls up is judged on its children's figures too:
            // every unit below it, merged in the order they became known.
            let below: Vec<&Known>;
            let series = if self.rollups.rolls_up(indicator, unit) {
                let mut merged: Vec<&Known> = by_series
                    .iter()
                    .filter(|((i, u), _)| *i == indicator && self.is_within(u, unit))
                    .flat_map(|(_, rows)| rows.iter().copied())
                    .collect();
                // The store's order: instant, unit, period, revision.
                merged.sort_by_key(|k| {
                    (
                        k.known_at,
                        k.row.unit.clone(),
                        k.row.period_start,
                        k.row.period_end,
                        k.revision,
                    )
                });
                below = merged;
                below.as_slice()
            } else {
                by_series
                    .get(&(indicator, unit))
                    .map_or(&[][..], Vec::as_slice)
            };
            if let Some(replayed) = self.replay_target(target_versions, series, until) {
                out.push(replayed);
            }
        }
        Ok(out)
    }

    /// [`Engine::evaluate_as_of`] over the revisions `history` reads: with
    /// [`History::Official`], what the engine would have said at `as_of` had it known only the
    /// official figures, each from the moment it became official (ARCHITECTURE §8, §12).
    pub async fn evaluate_as_of_in(
        &self,
        history: History,
        store: &DynStore,
        year: i32,
        as_of: DateTime<Utc>,
        filter: impl Fn(&Target) -> bool,
    ) -> StoreResult<Vec<TargetStatus>> {
        if history == History::Latest {
            return self.evaluate_as_of(store, year, as_of, filter).await;
        }
        let replayed = self
            .replay_year_in(history, store, year, as_of, None, filter)
            .await?;
        let mut out: Vec<TargetStatus> = replayed
            .into_iter()
            .filter_map(|replayed| replayed.slot.status)
            .collect();
        out.sort_by(|a, b| (&a.indicator, &a.unit).cmp(&(&b.indicator, &b.unit)));
        Ok(out)
    }

    /// Whether `unit` is `parent` or lies below it.
    fn is_within(&self, unit: &str, parent: &str) -> bool {
        let plan = &self.rollups;
        plan.unit(unit).is_some_and(|u| {
            plan.with_ancestors(u)
                .any(|a| plan.code(a).as_str() == parent)
        })
    }

    /// One target's evaluations up to `until` (see the module docs for when they happen).
    fn replay_target(
        &self,
        versions: &[TargetVersion],
        known: &[&Known],
        until: DateTime<Utc>,
    ) -> Option<Replayed> {
        let first = versions.first()?;
        // Before its first version the target is judged as it was set first, once, at `until`:
        // the live engine did not know it yet, so there is no history of evaluations to follow.
        let created = first.valid_from.min(until);
        let mut run = Run {
            engine: self,
            live: {
                let mut live = LiveState::default();
                live.set_rollups(self.rollups.clone());
                live
            },
            anomalies: HashMap::new(),
            frames: Frames::default(),
            held: HashMap::new(),
            last_key: None,
        };
        let mut slot = Slot::new(first.target.clone(), &self.catalogue, &run.live);
        slot.indicator?;

        // What was known before the target existed is its starting state.
        let mut k = 0;
        while k < known.len() && known[k].known_at < created {
            let at = known[k].known_at;
            let end = k + known[k..].iter().take_while(|x| x.known_at == at).count();
            run.learn(&known[k..end], at);
            k = end;
        }
        run.judge(&mut slot, created);
        let mut v = 1;
        let mut next_tick = tick_at_or_after(created, self.tick);
        loop {
            let next_version = versions
                .get(v)
                .map(|x| x.valid_from)
                .filter(|at| *at <= until);
            let next_data = known.get(k).map(|x| x.known_at).filter(|at| *at <= until);
            let next_change = match (next_version, next_data) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // The ticks before the next change, or up to `until` when none is left.
            let last_tick = match next_change {
                Some(at) => tick_before(at, self.tick),
                None => tick_at_or_before(until, self.tick),
            };
            run.ticks(&mut slot, &mut next_tick, last_tick);
            let Some(at) = next_change else {
                break;
            };
            if next_version == Some(at) {
                while versions.get(v).is_some_and(|x| x.valid_from == at) {
                    slot.target = versions[v].target.clone();
                    v += 1;
                }
                if let Some(status) = &mut slot.status {
                    status.target = slot.target.clone();
                }
                run.judge(&mut slot, at);
            }
            if next_data == Some(at) {
                let end = k + known[k..].iter().take_while(|x| x.known_at == at).count();
                let learned = run.learn(&known[k..end], at);
                k = end;
                if learned {
                    run.judge(&mut slot, at);
                }
            }
            next_tick = next_tick.max(tick_at_or_after(at, self.tick));
        }
        let anomaly = slot.series.and_then(|id| run.anomalies.get(&id)).cloned();
        Some(Replayed { slot, anomaly })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s)
            .single()
            .expect("a valid instant")
    }

    #[test]
    fn ticks_fall_on_multiples_of_the_interval() {
        let minute = Duration::minutes(1);
        assert_eq!(tick_at_or_after(at(10, 0, 0), minute), at(10, 0, 0));
        assert_eq!(tick_at_or_after(at(10, 0, 1), minute), at(10, 1, 0));
        assert_eq!(tick_before(at(10, 0, 0), minute), at(9, 59, 0));
        assert_eq!(tick_before(at(10, 0, 30), minute), at(10, 0, 0));
        assert_eq!(tick_at_or_before(at(10, 0, 0), minute), at(10, 0, 0));
        assert_eq!(tick_at_or_before(at(10, 0, 30), minute), at(10, 0, 0));
        assert_eq!(ticks_between(at(10, 0, 0), at(10, 3, 0), minute), 3);
        assert_eq!(ticks_between(at(10, 3, 0), at(10, 0, 0), minute), 0);
    }
}
