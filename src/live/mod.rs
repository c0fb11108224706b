//! In-memory live state: the latest value of every period of every series, kept current by
//! ingest so the rules engine never needs a database round trip per evaluation.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::{Code, NewObservation, Period, StoredObservation};

/// A series is one indicator in one unit.
pub type SeriesKey = (Code, Code);

/// The latest value of one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub period: Period,
    /// The period's end instant, kept so evaluations never convert time zones per point.
    pub end: DateTime<Utc>,
    pub value: f64,
}

/// The smallest period in `Period`'s order, to bound ranges by start instant alone.
const FIRST_PERIOD: Period = Period::Year(i32::MIN);

/// One series' periods by (start, period), each with its end and latest value.
type Series = BTreeMap<(DateTime<Utc>, Period), (DateTime<Utc>, f64)>;

/// The latest values of every series, by period start.
#[derive(Debug, Default)]
pub struct LiveState {
    series: HashMap<SeriesKey, Series>,
}

impl LiveState {
    /// Builds the state from stored latest revisions; rows with unknown codes or periods are
    /// skipped (the catalogue may have dropped an indicator since they were stored).
    pub fn from_stored(rows: &[StoredObservation]) -> Self {
        let mut state = Self::default();
        for row in rows {
            let (Ok(indicator), Ok(unit), Ok(period)) = (
                Code::parse(&row.indicator),
                Code::parse(&row.unit),
                row.period.parse::<Period>(),
            ) else {
                continue;
            };
            state
                .series
                .entry((indicator, unit))
                .or_default()
                .insert((row.period_start, period), (row.period_end, row.value));
        }
        state
    }

    /// Records accepted observations (each the new latest revision of its period).
    pub fn apply(&mut self, rows: &[&NewObservation]) {
        for row in rows {
            self.series
                .entry((row.indicator.clone(), row.unit.clone()))
                .or_default()
                .insert((row.period_start, row.period), (row.period_end, row.value));
        }
    }

    /// The periods of `year` of one series (those starting within it), oldest first.
    pub fn year_of(&self, key: &SeriesKey, year: i32, zone: Tz) -> Vec<Latest> {
        let Some(series) = self.series.get(key) else {
            return Vec::new();
        };
        let year = Period::Year(year);
        let (start, end) = (year.start(zone), year.end(zone));
        series
            .range((start, FIRST_PERIOD)..(end, FIRST_PERIOD))
            .map(|((_, period), (end, value))| Latest {
                period: *period,
                end: *end,
                value: *value,
            })
            .collect()
    }

    /// The last `n` values of a series for periods starting before `start`, oldest first.
    pub fn recent_before(&self, key: &SeriesKey, start: DateTime<Utc>, n: usize) -> Vec<f64> {
        let Some(series) = self.series.get(key) else {
            return Vec::new();
        };
        let mut recent: Vec<f64> = series
            .iter()
            .rev()
            .filter(|((period_start, _), _)| *period_start < start)
            .take(n)
            .map(|(_, (_, value))| *value)
            .collect();
        recent.reverse();
        recent
    }

    /// Whether no period of the series starts after `start`.
    pub fn is_latest(&self, key: &SeriesKey, start: DateTime<Utc>) -> bool {
        self.series
            .get(key)
            .and_then(|series| series.keys().next_back())
            .is_none_or(|(last_start, _)| *last_start <= start)
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }
}
