//! Metrics of the rules engine: evaluation passes, their duration, and the official statuses of
//! the targets by year and sector group.
//!
//! The engine is benchmarked at 110,000 targets, so nothing here runs per target: a pass is
//! recorded once, and statuses are counted from the changes a pass returns (a handful after the
//! first pass) and published once per pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

use super::METRICS;
use crate::domain::{Catalogue, Code, Status};

pub struct RuleMetrics {
    pub targets_evaluated: IntCounterVec,
    pub duration: HistogramVec,
    pub last_full: Gauge,
    pub targets: IntGaugeVec,
}

/// A partial pass re-judges a few targets in microseconds, a full one 110,000 targets in tens
/// of milliseconds: the buckets span both.
const PASS_BUCKETS: &[f64] = &[
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// Every status, in the order of [`status_slot`].
const STATUSES: [Status; 7] = [
    Status::Achieved,
    Status::OnTrack,
    Status::AtRisk,
    Status::OffTrack,
    Status::Missed,
    Status::Stale,
    Status::NoData,
];

/// The position of `status` in [`STATUSES`]; the exhaustive match makes a new status a
/// compile error here rather than a silently missing series.
fn status_slot(status: Status) -> usize {
    match status {
        Status::Achieved => 0,
        Status::OnTrack => 1,
        Status::AtRisk => 2,
        Status::OffTrack => 3,
        Status::Missed => 4,
        Status::Stale => 5,
        Status::NoData => 6,
    }
}

pub(super) fn build(registry: &Registry) -> Result<RuleMetrics, prometheus::Error> {
    let targets_evaluated = IntCounterVec::new(
        Opts::new(
            "ktxh_rule_targets_evaluated_total",
            "Targets judged by the rules engine, by pass (full: every target, on the timer and at start; partial: the targets an ingest or a target change touched).",
        ),
        &["pass"],
    )?;
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "ktxh_rule_evaluation_duration_seconds",
            "Time to judge the targets of one evaluation pass, by pass (full, partial).",
        )
        .buckets(PASS_BUCKETS.to_vec()),
        &["pass"],
    )?;
    let last_full = Gauge::new(
        "ktxh_rule_last_full_evaluation_timestamp_seconds",
        "Unix time at which the last full evaluation of every target finished.",
    )?;
    let targets = IntGaugeVec::new(
        Opts::new(
            "ktxh_targets",
            "Targets by year, sector group and official status, as of the latest evaluation.",
        ),
        &["year", "group", "status"],
    )?;
    // Both passes are shown from the start, so rates and alerts see a series before the first
    // ingest.
    for pass in [Pass::Full, Pass::Partial] {
        targets_evaluated.with_label_values(&[pass.as_str()]);
        duration.with_label_values(&[pass.as_str()]);
    }
    registry.register(Box::new(targets_evaluated.clone()))?;
    registry.register(Box::new(duration.clone()))?;
    registry.register(Box::new(last_full.clone()))?;
    registry.register(Box::new(targets.clone()))?;
    Ok(RuleMetrics {
        targets_evaluated,
        duration,
        last_full,
        targets,
    })
}

/// Which targets an evaluation pass judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every target: at start and on the timer.
    Full,
    /// The targets an ingest or a target change touched.
    Partial,
}

impl Pass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Partial => "partial",
        }
    }
}

struct PassMetrics {
    targets: IntCounter,
    duration: Histogram,
}

impl PassMetrics {
    fn of(pass: Pass) -> Self {
        let label = [pass.as_str()];
        Self {
            targets: METRICS.rules.targets_evaluated.with_label_values(&label),
            duration: METRICS.rules.duration.with_label_values(&label),
        }
    }
}

// Resolved once: a partial pass runs on every ingest, and a label look-up would cost a
// noticeable share of its few microseconds.
static FULL_PASS: LazyLock<PassMetrics> = LazyLock::new(|| PassMetrics::of(Pass::Full));
static PARTIAL_PASS: LazyLock<PassMetrics> = LazyLock::new(|| PassMetrics::of(Pass::Partial));

/// Records one evaluation pass that judged `targets` targets in `elapsed`.
pub fn evaluation_pass(pass: Pass, targets: usize, elapsed: Duration) {
    let metrics = match pass {
        Pass::Full => &*FULL_PASS,
        Pass::Partial => &*PARTIAL_PASS,
    };
    metrics.targets.inc_by(targets as u64);
    metrics.duration.observe(elapsed.as_secs_f64());
    if pass == Pass::Full {
        // Wall-clock time, not the instant evaluated: the alert on a stalled timer compares it
        // with Prometheus' own clock.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        METRICS.rules.last_full.set(now.as_secs_f64());
    }
}

/// Official statuses counted by (year, sector group), mirrored in `ktxh_targets`.
///
/// The engine records the status changes of each pass (every target once after the first
/// pass, a few afterwards) and then publishes: only the cells that changed touch a gauge.
#[derive(Debug, Default)]
pub struct StatusTally {
    /// Each indicator's sector group, as a position in `groups`.
    group_of: HashMap<Code, usize>,
    groups: Vec<Code>,
    counts: BTreeMap<(i32, usize), [i64; STATUSES.len()]>,
    changed: BTreeSet<(i32, usize)>,
}

impl StatusTally {
    /// A tally with every (year, group) of `years` at zero, so that a group without targets in
    /// some status still shows a zero rather than no series.
    pub fn new(catalogue: &Catalogue, years: impl IntoIterator<Item = i32>) -> Self {
        let groups: Vec<Code> = catalogue.groups.iter().map(|g| g.code.clone()).collect();
        let group_of = catalogue
            .indicators
            .iter()
            .filter_map(|indicator| {
                let group = groups.iter().position(|g| *g == indicator.group)?;
                Some((indicator.code.clone(), group))
            })
            .collect();
        let mut tally = Self {
            group_of,
            groups,
            ..Self::default()
        };
        for year in years {
            for group in 0..tally.groups.len() {
                tally.counts.insert((year, group), [0; STATUSES.len()]);
                tally.changed.insert((year, group));
            }
        }
        tally
    }

    /// Moves one target of `indicator` in `year` from `from` (`None`: judged for the first
    /// time) to `to`.
    pub fn record(&mut self, year: i32, indicator: &Code, from: Option<Status>, to: Status) {
        let Some(&group) = self.group_of.get(indicator) else {
            return; // not in the catalogue: the engine never judges it either
        };
        let counts = self
            .counts
            .entry((year, group))
            .or_insert([0; STATUSES.len()]);
        if let Some(from) = from {
            counts[status_slot(from)] -= 1;
        }
        counts[status_slot(to)] += 1;
        self.changed.insert((year, group));
    }

    /// Sets the gauges of the (year, group) cells changed since the last publication.
    pub fn publish(&mut self) {
        for (year, group) in std::mem::take(&mut self.changed) {
            let (Some(counts), Some(code)) =
                (self.counts.get(&(year, group)), self.groups.get(group))
            else {
                continue;
            };
            let year = year.to_string();
            for (status, count) in STATUSES.iter().zip(counts) {
                METRICS
                    .rules
                    .targets
                    .with_label_values(&[year.as_str(), code.as_str(), status.as_str()])
                    .set(*count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        crate::config::load_catalogue(&dir).expect("the shipped catalogue is valid")
    }

    fn gauge(year: &str, group: &str, status: Status) -> i64 {
        METRICS
            .rules
            .targets
            .with_label_values(&[year, group, status.as_str()])
            .get()
    }

    // Years no other test uses: the registry is shared by the whole test process.
    #[test]
    fn the_status_gauges_follow_the_changes_once_published() {
        let catalogue = catalogue();
        let indicator = &catalogue.indicators[0];
        let group = indicator.group.as_str();
        let mut tally = StatusTally::new(&catalogue, [1901]);
        tally.publish();
        assert_eq!(gauge("1901", group, Status::OnTrack), 0);

        tally.record(1901, &indicator.code, None, Status::OnTrack);
        tally.record(1901, &indicator.code, None, Status::OnTrack);
        assert_eq!(
            gauge("1901", group, Status::OnTrack),
            0,
            "not yet published"
        );
        tally.publish();
        assert_eq!(gauge("1901", group, Status::OnTrack), 2);

        tally.record(1901, &indicator.code, Some(Status::OnTrack), Status::AtRisk);
        tally.publish();
        assert_eq!(gauge("1901", group, Status::OnTrack), 1);
        assert_eq!(gauge("1901", group, Status::AtRisk), 1);
    }

    #[test]
    fn every_group_of_a_year_with_targets_shows_zeros_before_any_evaluation() {
        let catalogue = catalogue();
        let mut tally = StatusTally::new(&catalogue, [1902]);
        tally.publish();
        let series = METRICS
            .registry
            .gather()
            .into_iter()
            .find(|family| family.name() == "ktxh_targets")
            .map(|family| {
                family
                    .get_metric()
                    .iter()
                    .filter(|m| m.get_label().iter().any(|l| l.value() == "1902"))
                    .count()
            });
        assert_eq!(series, Some(catalogue.groups.len() * STATUSES.len()));
    }

    #[test]
    fn a_target_of_an_unknown_indicator_is_not_counted() {
        let catalogue = catalogue();
        let mut tally = StatusTally::new(&catalogue, [1903]);
        let unknown = Code::parse("NOT_IN_THE_CATALOGUE").expect("a code");
        tally.record(1903, &unknown, None, Status::Missed);
        tally.publish();
        let total: i64 = catalogue
            .groups
            .iter()
            .map(|g| gauge("1903", g.code.as_str(), Status::Missed))
            .sum();
        assert_eq!(total, 0);
    }
}
