//! In-memory live state: the latest value of every period of every series, kept current by
//! ingest so the rules engine never needs a database round trip per evaluation.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{Code, NewObservation, Period, StoredObservation};
use crate::rules::rollup::{aggregate, PeriodRollup, RollupPlan, UnitId};
use crate::rules::status::Point;

/// A series (one indicator in one unit) by its position in the live state; series are never
/// removed, so it stays valid for the state's lifetime.
pub type SeriesId = usize;

/// The latest value of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub period: Period,
    /// The period's end instant, kept so evaluations never convert time zones per point.
    pub end: DateTime<Utc>,
    pub value: f64,
}

/// One series' periods in (start, period) order, kept as two columns so that the periods of a
/// year are a slice of each: evaluations borrow them instead of copying them out of a map.
#[derive(Debug, Default)]
struct Series {
    keys: Vec<(DateTime<Utc>, Period)>,
    /// The end instant and latest value of the period at the same position in `keys`.
    points: Vec<Point>,
    /// A parent's series of an indicator that rolls up: its own figure and its children's of
    /// the period at the same position in `keys`. Empty for a series of reported values.
    rollup: Vec<PeriodRollup>,
}

impl Series {
    /// The latest value of one period.
    fn get(&self, start: DateTime<Utc>, period: Period) -> Option<Point> {
        let i = self.keys.binary_search(&(start, period)).ok()?;
        self.points.get(i).copied()
    }

    /// Records a parent's value of one period with what it was formed from.
    fn insert_rolled(
        &mut self,
        start: DateTime<Utc>,
        period: Period,
        point: Point,
        rollup: PeriodRollup,
    ) {
        match self.keys.binary_search(&(start, period)) {
            Ok(i) => {
                self.points[i] = point;
                self.rollup[i] = rollup;
            }
            Err(i) => {
                self.keys.insert(i, (start, period));
                self.points.insert(i, point);
                self.rollup.insert(i, rollup);
            }
        }
    }

    /// Forgets a parent's period that neither it nor any child has a value for.
    fn remove_rolled(&mut self, start: DateTime<Utc>, period: Period) {
        if let Ok(i) = self.keys.binary_search(&(start, period)) {
            self.keys.remove(i);
            self.points.remove(i);
            self.rollup.remove(i);
        }
    }

    /// Records the latest value of one period, replacing an earlier revision.
    fn insert(&mut self, start: DateTime<Utc>, period: Period, point: Point) {
        match self.keys.binary_search(&(start, period)) {
            Ok(i) => self.points[i] = point,
            Err(i) => {
                self.keys.insert(i, (start, period));
                self.points.insert(i, point);
            }
        }
    }

    /// Forgets a period whose value was withdrawn.
    fn remove(&mut self, start: DateTime<Utc>, period: Period) {
        if let Ok(i) = self.keys.binary_search(&(start, period)) {
            self.keys.remove(i);
            self.points.remove(i);
        }
    }

    /// Position of the first period starting at or after `instant`.
    fn first_from(&self, instant: DateTime<Utc>) -> usize {
        self.keys.partition_point(|(start, _)| *start < instant)
    }

    /// Positions of the periods starting in `[from, to)`. A series usually lies within the span
    /// asked for (only the target years are live), which its ends tell without a search.
    fn range_within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> std::ops::Range<usize> {
        let (Some((first, _)), Some((last, _))) = (self.keys.first(), self.keys.last()) else {
            return 0..0;
        };
        let start = if *first >= from {
            0
        } else {
            self.first_from(from)
        };
        let end = if *last < to {
            self.keys.len()
        } else {
            self.first_from(to)
        };
        start..end.max(start)
    }
}

/// The periods of one series that start within some span, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeriesSlice<'a> {
    keys: &'a [(DateTime<Utc>, Period)],
    points: &'a [Point],
}

impl<'a> SeriesSlice<'a> {
    /// Each period's end instant and latest value, as the status rules read them.
    pub fn points(&self) -> &'a [Point] {
        self.points
    }

    pub fn latest(&self) -> impl Iterator<Item = Latest> + 'a {
        self.keys
            .iter()
            .zip(self.points)
            .map(|((_, period), point)| Latest {
                period: *period,
                end: point.end,
                value: point.value,
            })
    }

    pub fn last_period(&self) -> Option<&'a Period> {
        self.keys.last().map(|(_, period)| period)
    }

    /// Each period's start and end instants, oldest first.
    pub fn bounds(&self) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + 'a {
        self.keys
            .iter()
            .zip(self.points)
            .map(|((start, _), point)| (*start, point.end))
    }
}

/// A parent's period whose value is to be formed again: deepest units first, so that an
/// intermediate parent's value is current before its own parent reads it.
type RollupKey = (std::cmp::Reverse<u32>, Code, UnitId, DateTime<Utc>, Period);

/// The latest values of every series, by period start.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Series by indicator, then unit: nested so a look-up borrows the codes it is given.
    index: HashMap<Code, HashMap<Code, SeriesId>>,
    series: Vec<Series>,
    /// The unit tree and the indicators that roll up; none, no roll-up.
    rollups: Option<Arc<RollupPlan>>,
    /// The series a parent is judged on, for indicators that roll up: per period its own
    /// figure, or else its children's (ARCHITECTURE §2). Derived, never stored.
    derived: HashMap<Code, HashMap<Code, SeriesId>>,
    derived_count: usize,
}

impl LiveState {
    /// Builds the state from stored latest revisions; rows with unknown codes or periods are
    /// skipped (the catalogue may have dropped an indicator since they were stored).
    pub fn from_stored(rows: &[StoredObservation]) -> Self {
        let mut state = Self::default();
        for row in rows {
            let (Ok(period), Some(value)) = (row.period.parse::<Period>(), row.value) else {
                continue;
            };
            let id = match state.id(&row.indicator, &row.unit) {
                Some(id) => id,
                None => {
                    let (Ok(indicator), Ok(unit)) =
                        (Code::parse(&row.indicator), Code::parse(&row.unit))
                    else {
                        continue;
                    };
                    state.create(indicator, unit)
                }
            };
            state.series[id].insert(
                row.period_start,
                period,
                Point {
                    end: row.period_end,
                    value,
                },
            );
        }
        state
    }

    /// Forms the parents' values of the indicators that roll up from what the state holds,
    /// and keeps them current from then on.
    pub fn set_rollups(&mut self, plan: Arc<RollupPlan>) {
        let mut keys = BTreeSet::new();
        for (indicator, units) in &self.index {
            if plan.rollup(indicator.as_str()).is_none() {
                continue;
            }
            for (unit, &id) in units {
                for (start, period) in &self.series[id].keys {
                    rollup_keys(&plan, &mut keys, indicator, unit.as_str(), *start, *period);
                }
            }
        }
        self.rollups = Some(plan);
        self.roll_up(keys);
    }

    /// The unit tree the state rolls up along, when it does.
    pub fn rollups(&self) -> Option<&Arc<RollupPlan>> {
        self.rollups.as_ref()
    }

    /// Records accepted observations (each the new latest revision of its period); a
    /// retraction removes its period. The values of the parents above each row's unit are
    /// formed again.
    pub fn apply(&mut self, rows: &[&NewObservation]) {
        self.apply_reported(rows);
        if let Some(plan) = self.rollups.clone() {
            let mut keys = BTreeSet::new();
            for row in rows {
                rollup_keys(
                    &plan,
                    &mut keys,
                    &row.indicator,
                    row.unit.as_str(),
                    row.period_start,
                    row.period,
                );
            }
            self.roll_up(keys);
        }
    }

    fn roll_up(&mut self, keys: BTreeSet<RollupKey>) {
        let Some(plan) = self.rollups.clone() else {
            return;
        };
        for (_, indicator, unit, start, period) in keys {
            self.roll_up_one(&plan, &indicator, unit, start, period);
        }
    }

    /// Forms one parent's value of one period again from its own figure and its children's.
    fn roll_up_one(
        &mut self,
        plan: &RollupPlan,
        indicator: &Code,
        unit: UnitId,
        start: DateTime<Utc>,
        period: Period,
    ) {
        let Some(rollup) = plan.rollup(indicator.as_str()) else {
            return;
        };
        let code = plan.code(unit);
        let own = self
            .id(indicator.as_str(), code.as_str())
            .and_then(|id| self.series[id].get(start, period));
        let children: Vec<(Point, Option<f64>)> = plan
            .children(unit)
            .iter()
            .filter_map(|&child| {
                let point = self.effective_point(plan, indicator.as_str(), child, start, period)?;
                Some((point, plan.weight(child)))
            })
            .collect();
        let computed = aggregate(rollup, children.iter().map(|(p, w)| (p.value, *w)));
        let end = own
            .map(|p| p.end)
            .or_else(|| children.first().map(|(p, _)| p.end));
        let value = own.map(|p| p.value).or(computed.map(|c| c.value));
        let existing = self
            .derived
            .get(indicator.as_str())
            .and_then(|units| units.get(code.as_str()))
            .copied();
        match (value, end) {
            (Some(value), Some(end)) => {
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let id = self.series.len();
                        self.series.push(Series::default());
                        self.derived
                            .entry(indicator.clone())
                            .or_default()
                            .insert(code.clone(), id);
                        self.derived_count += 1;
                        id
                    }
                };
                self.series[id].insert_rolled(
                    start,
                    period,
                    Point { end, value },
                    PeriodRollup {
                        own: own.map(|p| p.value),
                        computed: computed.map(|c| c.value),
                        reported: computed.map_or(0, |c| c.reported),
                    },
                );
            }
            _ => {
                if let Some(id) = existing {
                    self.series[id].remove_rolled(start, period);
                }
            }
        }
    }

    /// The value a unit contributes to its parent for one period: its own figure or, for a
    /// parent, the one formed for it.
    fn effective_point(
        &self,
        plan: &RollupPlan,
        indicator: &str,
        unit: UnitId,
        start: DateTime<Utc>,
        period: Period,
    ) -> Option<Point> {
        let code = plan.code(unit).as_str();
        let id = if plan.children(unit).is_empty() {
            self.id(indicator, code)?
        } else {
            *self.derived.get(indicator)?.get(code)?
        };
        self.series[id].get(start, period)
    }

    /// The series a target of `indicator` in `unit` is judged on: the one formed from its
    /// children for a parent of an indicator that rolls up, otherwise its reported values.
    pub fn judged_id(&self, indicator: &str, unit: &str) -> Option<SeriesId> {
        match &self.rollups {
            Some(plan) if plan.rolls_up(indicator, unit) => {
                self.derived.get(indicator)?.get(unit).copied()
            }
            _ => self.id(indicator, unit),
        }
    }

    /// What each period of a parent's series starting in `[from, to)` was formed from, in the
    /// order of `starting_within`; empty for a series of reported values.
    pub fn rollup_within(
        &self,
        id: SeriesId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> &[PeriodRollup] {
        let Some(series) = self.series.get(id) else {
            return &[];
        };
        if series.rollup.is_empty() {
            return &[];
        }
        &series.rollup[series.range_within(from, to)]
    }

    fn apply_reported(&mut self, rows: &[&NewObservation]) {
        for row in rows {
            let Some(value) = row.value else {
                if let Some(id) = self.id(row.indicator.as_str(), row.unit.as_str()) {
                    self.series[id].remove(row.period_start, row.period);
                }
                continue;
            };
            let id = match self.id(row.indicator.as_str(), row.unit.as_str()) {
                Some(id) => id,
                None => self.create(row.indicator.clone(), row.unit.clone()),
            };
            self.series[id].insert(
                row.period_start,
                row.period,
                Point {
                    end: row.period_end,
                    value,
                },
            );
        }
    }

    fn create(&mut self, indicator: Code, unit: Code) -> SeriesId {
        let id = self.series.len();
        self.series.push(Series::default());
        self.index.entry(indicator).or_default().insert(unit, id);
        id
    }

    /// The series of `indicator` in `unit`, once it has a value.
    pub fn id(&self, indicator: &str, unit: &str) -> Option<SeriesId> {
        self.index.get(indicator)?.get(unit).copied()
    }

    /// The periods of a series that start in `[from, to)`, oldest first.
    pub fn starting_within(
        &self,
        id: SeriesId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> SeriesSlice<'_> {
        let Some(series) = self.series.get(id) else {
            return SeriesSlice::default();
        };
        let range = series.range_within(from, to);
        SeriesSlice {
            keys: &series.keys[range.clone()],
            points: &series.points[range],
        }
    }

    /// The last `n` values of a series for periods starting in `[not_before, start)`, oldest
    /// first.
    pub fn recent_before(
        &self,
        id: SeriesId,
        not_before: DateTime<Utc>,
        start: DateTime<Utc>,
        n: usize,
    ) -> Vec<f64> {
        let Some(series) = self.series.get(id) else {
            return Vec::new();
        };
        let end = series.first_from(start);
        let first = series
            .first_from(not_before)
            .max(end.saturating_sub(n))
            .min(end);
        series.points[first..end]
            .iter()
            .map(|point| point.value)
            .collect()
    }

    /// Whether no period of the series starts after `start`.
    pub fn is_latest(&self, id: SeriesId, start: DateTime<Utc>) -> bool {
        self.series
            .get(id)
            .and_then(|series| series.keys.last())
            .is_none_or(|(last_start, _)| *last_start <= start)
    }

    /// Series of reported values: the parents' formed series are not counted.
    pub fn series_count(&self) -> usize {
        self.series.len() - self.derived_count
    }
}

/// Adds the parents' periods that a figure of `unit` for one period feeds: the unit's own when
/// it has children, and every unit above it.
fn rollup_keys(
    plan: &RollupPlan,
    keys: &mut BTreeSet<RollupKey>,
    indicator: &Code,
    unit: &str,
    start: DateTime<Utc>,
    period: Period,
) {
    if plan.rollup(indicator.as_str()).is_none() {
        return;
    }
    let Some(unit) = plan.unit(unit) else {
        return;
    };
    for at in plan.with_ancestors(unit) {
        if !plan.children(at).is_empty() {
            keys.insert((
                std::cmp::Reverse(plan.depth(at)),
                indicator.clone(),
                at,
                start,
                period,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn row(period: Period, value: f64) -> NewObservation {
        NewObservation {
            indicator: Code::parse("CPI").unwrap(),
            unit: Code::parse("HCM").unwrap(),
            period,
            period_start: period.start(HCM),
            period_end: period.end(HCM),
            value: Some(value),
            revision_label: None,
            source: None,
            reported_at: None,
        }
    }

    fn values(slice: SeriesSlice<'_>) -> Vec<f64> {
        slice.points().iter().map(|p| p.value).collect()
    }

    #[test]
    fn periods_are_kept_in_start_order_and_revisions_replace_values() {
        let rows = [
            row(Period::Month(2026, 3), 3.0),
            row(Period::Month(2025, 12), 12.0),
            row(Period::Month(2026, 1), 1.0),
            row(Period::Month(2026, 3), 30.0),
        ];
        let mut live = LiveState::default();
        live.apply(&rows.iter().collect::<Vec<_>>());
        let id = live.id("CPI", "HCM").unwrap();
        assert_eq!(live.series_count(), 1);

        let year = Period::Year(2026);
        let slice = live.starting_within(id, year.start(HCM), year.end(HCM));
        assert_eq!(values(slice), [1.0, 30.0]);
        assert_eq!(slice.last_period(), Some(&Period::Month(2026, 3)));

        let march = Period::Month(2026, 3).start(HCM);
        let long_ago = Period::Year(2000).start(HCM);
        assert_eq!(live.recent_before(id, long_ago, march, 1), [1.0]);
        assert_eq!(live.recent_before(id, long_ago, march, 5), [12.0, 1.0]);
        // The window stops where the caller says, whatever `n` allows.
        assert_eq!(live.recent_before(id, year.start(HCM), march, 5), [1.0]);
        assert!(live.is_latest(id, march));
        assert!(!live.is_latest(id, Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap()));
    }

    #[test]
    fn an_unknown_series_has_no_periods() {
        let live = LiveState::default();
        assert_eq!(live.id("CPI", "HCM"), None);
        let year = Period::Year(2026);
        assert!(live
            .starting_within(0, year.start(HCM), year.end(HCM))
            .points()
            .is_empty());
        assert!(live
            .recent_before(0, year.start(HCM), year.end(HCM), 3)
            .is_empty());
        assert!(live.is_latest(0, year.start(HCM)));
    }
}
