//! How far each figure on the screens has been approved (ARCHITECTURE §8): screens show the
//! latest revisions and mark the ones not yet official. Loaded from the store at start, then
//! kept by the pipeline: an approval (here or on another instance) raises a period's state, and a
//! new revision of a period starts preliminary again.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::approval::ApprovedRevision;
use crate::domain::{ApprovalState, Kind, NewObservation};
use crate::rules::plan::YearSpan;
use crate::store::{DynStore, StoreResult};

/// `(indicator, unit)` → period text → state, of the latest revisions that are not preliminary.
type States = HashMap<(String, String), HashMap<String, ApprovalState>>;

/// The approval state of the latest revision of every period the screens may show.
#[derive(Debug, Default)]
pub struct ApprovalStates {
    states: Mutex<States>,
}

impl ApprovalStates {
    /// The states of the latest revisions of last year's and this year's periods (in the city's
    /// zone at `now`): what the screens follow (a year without targets yet shows the last).
    pub async fn load(store: &DynStore, zone: Tz, now: DateTime<Utc>) -> StoreResult<Self> {
        Ok(Self {
            states: Mutex::new(read_states(store, zone, now).await?),
        })
    }

    /// Reads the states again, as [`Self::load`] does: after approvals of a whole history, one
    /// read instead of one per approval.
    pub async fn reload(&self, store: &DynStore, zone: Tz, now: DateTime<Utc>) -> StoreResult<()> {
        let states = read_states(store, zone, now).await?;
        *self.lock() = states;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, States> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revisions were approved. The states are read back from the store rather than raised
    /// from the approval itself: an approval that reaches this instance after a newer revision
    /// of the same period (the writer answers one group behind, another instance commits
    /// meanwhile) names a revision that is no longer the latest, and the newer one must stay
    /// preliminary. A revision committed after this read is still marked preliminary by
    /// [`Self::revised`] when its commit is applied, so either order leaves the latest state.
    /// When the store cannot be read the approval's own states are taken, and the next start
    /// reads the states again.
    pub async fn approve(&self, store: &DynStore, revisions: &[ApprovedRevision]) {
        let named: std::collections::HashSet<(&str, &str, &str)> = revisions
            .iter()
            .map(|r| (r.indicator.as_str(), r.unit.as_str(), r.period.as_str()))
            .collect();
        match latest_of(store, revisions).await {
            Ok(rows) => {
                let mut states = self.lock();
                for row in rows.iter().filter(|row| {
                    named.contains(&(
                        row.indicator.as_str(),
                        row.unit.as_str(),
                        row.period.as_str(),
                    ))
                }) {
                    let key = (row.indicator.clone(), row.unit.clone());
                    if row.state.is_preliminary() {
                        if let Some(series) = states.get_mut(&key) {
                            series.remove(&row.period);
                        }
                    } else {
                        states
                            .entry(key)
                            .or_default()
                            .insert(row.period.clone(), row.state);
                    }
                }
                states.retain(|_, series| !series.is_empty());
            }
            Err(error) => {
                tracing::warn!(%error, "approval states not read back; taken from the approval");
                let mut states = self.lock();
                for r in revisions {
                    let series = states
                        .entry((r.indicator.clone(), r.unit.clone()))
                        .or_default();
                    let state = series.entry(r.period.clone()).or_default();
                    *state = (*state).max(r.state);
                }
            }
        }
    }

    /// New revisions were committed: each starts preliminary.
    pub fn revised(&self, rows: &[&NewObservation]) {
        let mut states = self.lock();
        // Only verified or official periods are held; an append of fresh periods finds none,
        // and is spared building a key for each of its rows.
        if states.is_empty() {
            return;
        }
        for row in rows {
            let key = (row.indicator.to_string(), row.unit.to_string());
            if let Some(series) = states.get_mut(&key) {
                series.remove(&row.period.to_string());
                if series.is_empty() {
                    states.remove(&key);
                }
            }
        }
    }

    /// The state of each period of one series, in the order given.
    pub fn of_points<'a>(
        &self,
        indicator: &str,
        unit: &str,
        periods: impl Iterator<Item = &'a str>,
    ) -> Vec<ApprovalState> {
        let states = self.lock();
        let series = states.get(&(indicator.to_owned(), unit.to_owned()));
        periods
            .map(|period| {
                series
                    .and_then(|s| s.get(period))
                    .copied()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// The periods of one series an approval names, as `[from, to)` of their starts.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Series read one by one below this many; above it one read of every series over the span
/// (a department's bulk approval of a period) costs less than as many queries.
const SERIES_READ_APART: usize = 32;

/// The latest revisions of the periods an approval names: per series when they are few, else
/// of every series over the span they cover. Periods start in `[from, to)` in both reads; an
/// instant's end is its start, so each is widened by the smallest step the stores keep.
async fn read_states(store: &DynStore, zone: Tz, now: DateTime<Utc>) -> StoreResult<States> {
    let year = chrono::Datelike::year(&now.with_timezone(&zone));
    let rows = store
        .latest_between(
            YearSpan::of(year - 1, zone).start,
            YearSpan::of(year, zone).end,
            Some(now),
        )
        .await?;
    let mut states = States::new();
    for row in rows.into_iter().filter(|r| !r.state.is_preliminary()) {
        states
            .entry((row.indicator, row.unit))
            .or_default()
            .insert(row.period, row.state);
    }
    Ok(states)
}

async fn latest_of(
    store: &DynStore,
    revisions: &[ApprovedRevision],
) -> StoreResult<Vec<crate::domain::StoredObservation>> {
    let step = chrono::Duration::microseconds(1);
    let mut spans: HashMap<(&str, &str), Span> = HashMap::new();
    for r in revisions {
        let end = r.period_end.max(r.period_start + step);
        spans
            .entry((r.indicator.as_str(), r.unit.as_str()))
            .and_modify(|(from, to)| {
                *from = (*from).min(r.period_start);
                *to = (*to).max(end);
            })
            .or_insert((r.period_start, end));
    }
    if spans.len() > SERIES_READ_APART {
        let from = spans.values().map(|(from, _)| *from).min();
        let to = spans.values().map(|(_, to)| *to).max();
        return match (from, to) {
            (Some(from), Some(to)) => store.latest_between(from, to, None).await,
            _ => Ok(Vec::new()),
        };
    }
    let mut rows = Vec::new();
    for ((indicator, unit), (from, to)) in spans {
        let query = crate::store::ObservationQuery {
            indicator: indicator.to_owned(),
            unit: unit.to_owned(),
            from: Some(from),
            to: Some(to),
            as_of: None,
        };
        rows.extend(store.observations(&query).await?);
    }
    Ok(rows)
}

/// How far the year's figure of a series is approved: a sum or a mean is only as far as its
/// least approved period; a latest value (level, growth, a cumulative total) is its own.
pub fn figure_state(kind: Kind, points: &[ApprovalState]) -> Option<ApprovalState> {
    match kind {
        Kind::Flow | Kind::Average => points.iter().copied().min(),
        Kind::Cumulative | Kind::Level | Kind::Growth => points.last().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApprovalState::*;

    #[test]
    fn a_sum_is_as_approved_as_its_least_approved_period_and_a_level_as_its_latest() {
        let points = [Official, Preliminary, Verified];
        assert_eq!(figure_state(Kind::Flow, &points), Some(Preliminary));
        assert_eq!(figure_state(Kind::Average, &points), Some(Preliminary));
        assert_eq!(figure_state(Kind::Level, &points), Some(Verified));
        assert_eq!(figure_state(Kind::Flow, &[]), None);
    }
}
