//! Roll-up across units (ARCHITECTURE §2): a parent unit's value of an indicator that rolls up is
//! formed, period by period, from its children's latest values, unless the parent reports the
//! period itself. Computed values are derived, never stored: the live state keeps them beside
//! the reported ones (`rules/series.rs`) and a replay derives them again from the same revisions,
//! so `as_of` says what the live engine said (ARCHITECTURE §8).
//!
//! - `sum`: the sum of the children that reported;
//! - `mean`: their plain mean;
//! - `weighted_mean`: their mean weighted by each unit's `population` in
//!   `config/catalogue/units.toml` (a unit without one weighs what its own children weigh
//!   together; a child with no weight at all cannot be weighted and is left out).
//!
//! A child counts as reported for a period when it has a value for it: its own, or one rolled
//! up from its own children. Coverage says how many of the parent's children that is.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::code::CodeHash;
use crate::domain::number::tidy;
use crate::domain::{Catalogue, Code, Rollup};

/// The relative difference between a parent's own figure and its children's above which the
/// two are flagged, unless the settings say otherwise (`rules.rollup_difference`).
pub const DEFAULT_DIFFERENCE: f64 = 0.05;

/// A unit's position in the plan.
pub type UnitId = usize;

#[derive(Debug, Clone)]
struct Node {
    code: Code,
    parent: Option<UnitId>,
    children: Vec<UnitId>,
    depth: u32,
    weight: Option<f64>,
}

/// The unit tree and the indicators that roll up, as the live state reads them.
#[derive(Debug, Clone, Default)]
pub struct RollupPlan {
    nodes: Vec<Node>,
    index: HashMap<Code, UnitId, CodeHash>,
    rollups: HashMap<Code, Rollup, CodeHash>,
}

impl RollupPlan {
    pub fn new(catalogue: &Catalogue) -> Self {
        let index: HashMap<Code, UnitId, CodeHash> = catalogue
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.code.clone(), i))
            .collect();
        let mut nodes: Vec<Node> = catalogue
            .units
            .iter()
            .map(|u| Node {
                code: u.code.clone(),
                parent: u.parent.as_ref().and_then(|p| index.get(p).copied()),
                children: Vec::new(),
                depth: 0,
                weight: u.population.map(|p| p as f64),
            })
            .collect();
        for i in 0..nodes.len() {
            if let Some(parent) = nodes[i].parent {
                nodes[parent].children.push(i);
            }
        }
        // Depths and missing weights, bounded by the unit count so that a cycle (refused by
        // the catalogue's checks) cannot loop.
        for i in 0..nodes.len() {
            let (mut depth, mut at) = (0, nodes[i].parent);
            while let Some(p) = at {
                depth += 1;
                if depth as usize > nodes.len() {
                    break;
                }
                at = nodes[p].parent;
            }
            nodes[i].depth = depth;
        }
        let mut order: Vec<UnitId> = (0..nodes.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(nodes[i].depth));
        for i in order {
            if nodes[i].weight.is_none() && !nodes[i].children.is_empty() {
                let weights: Option<Vec<f64>> =
                    nodes[i].children.iter().map(|&c| nodes[c].weight).collect();
                nodes[i].weight = weights.map(|w| w.iter().sum());
            }
        }
        let rollups = catalogue
            .indicators
            .iter()
            .filter(|i| i.rollup != Rollup::None)
            .map(|i| (i.code.clone(), i.rollup))
            .collect();
        Self {
            nodes,
            index,
            rollups,
        }
    }

    /// How `indicator` rolls up, when it does.
    pub fn rollup(&self, indicator: &str) -> Option<Rollup> {
        self.rollups.get(indicator).copied()
    }

    pub fn unit(&self, code: &str) -> Option<UnitId> {
        self.index.get(code).copied()
    }

    pub fn code(&self, unit: UnitId) -> &Code {
        &self.nodes[unit].code
    }

    pub fn children(&self, unit: UnitId) -> &[UnitId] {
        self.nodes.get(unit).map_or(&[], |n| n.children.as_slice())
    }

    pub fn depth(&self, unit: UnitId) -> u32 {
        self.nodes.get(unit).map_or(0, |n| n.depth)
    }

    pub fn weight(&self, unit: UnitId) -> Option<f64> {
        self.nodes.get(unit).and_then(|n| n.weight)
    }

    /// Whether `unit`'s value of `indicator` is formed from its children's.
    pub fn rolls_up(&self, indicator: &str, unit: &str) -> bool {
        self.rollup(indicator).is_some()
            && self
                .unit(unit)
                .is_some_and(|u| !self.children(u).is_empty())
    }

    /// `unit` and the units above it, nearest first.
    pub fn with_ancestors(&self, unit: UnitId) -> impl Iterator<Item = UnitId> + '_ {
        let mut at = Some(unit);
        let mut left = self.nodes.len() + 1;
        std::iter::from_fn(move || {
            let here = at?;
            left = left.checked_sub(1)?;
            at = self.nodes.get(here).and_then(|n| n.parent);
            Some(here)
        })
    }

    /// The units whose targets of `indicator` a figure of `unit` feeds: the unit itself, and
    /// the units above it when the indicator rolls up.
    pub fn fed_units(&self, indicator: &str, unit: &str) -> Vec<Code> {
        match (self.rollup(indicator), self.unit(unit)) {
            (Some(_), Some(id)) => self
                .with_ancestors(id)
                .map(|u| self.nodes[u].code.clone())
                .collect(),
            _ => Code::parse(unit).map(|c| vec![c]).unwrap_or_default(),
        }
    }
}

/// The children's value of one period: what they add up to, and how many took part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub value: f64,
    pub reported: u32,
}

/// Aggregates the values of the children that reported, each with its weight.
pub fn aggregate(
    rollup: Rollup,
    values: impl IntoIterator<Item = (f64, Option<f64>)>,
) -> Option<Aggregate> {
    let (mut total, mut weights, mut reported) = (0.0, 0.0, 0u32);
    for (value, weight) in values {
        match rollup {
            Rollup::Sum | Rollup::Mean => {
                total += value;
                weights += 1.0;
            }
            Rollup::WeightedMean => {
                let Some(weight) = weight.filter(|w| w.is_finite() && *w > 0.0) else {
                    continue;
                };
                total += value * weight;
                weights += weight;
            }
            Rollup::None => return None,
        }
        reported += 1;
    }
    if reported == 0 {
        return None;
    }
    let value = match rollup {
        Rollup::Sum => tidy(total),
        _ => total / weights,
    };
    value.is_finite().then_some(Aggregate { value, reported })
}

/// What the live state keeps of one period of a parent's series besides its value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeriodRollup {
    /// The parent's own figure, when it reported the period.
    pub own: Option<f64>,
    /// The children's value, when any of them reported.
    pub computed: Option<f64>,
    /// Children that reported.
    pub reported: u32,
}

/// Whether a parent's own figure and its children's differ enough to be flagged. A sum over
/// only some children is expected to fall short of the parent's total, so then only a total
/// below what the children already add up to is flagged; a mean is compared at any coverage.
pub fn differs(
    rollup: Rollup,
    own: f64,
    computed: f64,
    partial: bool,
    threshold: f64,
) -> (Option<f64>, bool) {
    if computed == 0.0 {
        // No relative difference from zero: any own figure but zero differs.
        return if own == 0.0 {
            (Some(0.0), false)
        } else {
            (None, true)
        };
    }
    let difference = (own - computed) / computed.abs();
    let flagged = match (rollup, partial) {
        (Rollup::Sum, true) => own < computed && difference.abs() > threshold,
        _ => difference.abs() > threshold,
    };
    (difference.is_finite().then_some(difference), flagged)
}

/// How much of a parent's value its children's reports cover (the latest period of the target's
/// year), and how the parent's own figure compares with theirs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Coverage {
    /// The latest period of the year with a value; absent while nothing is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Children with a value for that period.
    pub reported: u32,
    /// The unit's children.
    pub expected: u32,
    /// Fewer children than expected reported that period.
    pub partial: bool,
    /// Periods of the year whose children's value came from only some of them.
    pub partial_periods: u32,
    /// `computed` when the value judged is the children's, `reported` when it is the unit's
    /// own figure.
    #[schema(value_type = Option<String>, example = "computed")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// The children's value of that period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<f64>,
    /// The unit's own figure of that period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_value: Option<f64>,
    /// `(reported_value − computed) / |computed|`, when both are there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<f64>,
    /// The difference is larger than the configured threshold.
    pub flagged: bool,
}

impl Coverage {
    /// Coverage from the periods of the year (`last` the latest), for a unit with `expected`
    /// children.
    pub fn of(
        rollup: Rollup,
        expected: u32,
        periods: &[PeriodRollup],
        last_period: Option<String>,
        threshold: f64,
    ) -> Self {
        let partial_periods = periods
            .iter()
            .filter(|p| p.computed.is_some() && p.reported < expected)
            .count() as u32;
        let last = periods.last().copied().unwrap_or_default();
        let partial = last.reported < expected;
        let (difference, flagged) = match (last.own, last.computed) {
            (Some(own), Some(computed)) => differs(rollup, own, computed, partial, threshold),
            _ => (None, false),
        };
        let source = match (last.own, last.computed) {
            (Some(_), _) => Some("reported"),
            (None, Some(_)) => Some("computed"),
            _ => None,
        };
        Self {
            period: last_period,
            reported: last.reported,
            expected,
            partial,
            partial_periods,
            source,
            computed: last.computed,
            reported_value: last.own,
            difference,
            flagged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_means_take_only_the_children_that_reported() {
        let three = [(10.0, Some(1.0)), (20.0, Some(1.0)), (30.0, Some(2.0))];
        assert_eq!(
            aggregate(Rollup::Sum, three),
            Some(Aggregate {
                value: 60.0,
                reported: 3
            })
        );
        assert_eq!(aggregate(Rollup::Mean, three).map(|a| a.value), Some(20.0));
        // (10 + 20 + 60) / 4
        assert_eq!(
            aggregate(Rollup::WeightedMean, three).map(|a| a.value),
            Some(22.5)
        );
        assert_eq!(aggregate(Rollup::Sum, []), None);
    }

    #[test]
    fn a_child_without_a_weight_is_left_out_of_a_weighted_mean() {
        let values = [(10.0, Some(1.0)), (99.0, None)];
        assert_eq!(
            aggregate(Rollup::WeightedMean, values),
            Some(Aggregate {
                value: 10.0,
                reported: 1
            })
        );
    }

    #[test]
    fn a_partial_sum_is_flagged_only_when_the_total_falls_below_it() {
        assert!(!differs(Rollup::Sum, 200.0, 100.0, true, 0.05).1);
        assert!(differs(Rollup::Sum, 90.0, 100.0, true, 0.05).1);
        assert!(differs(Rollup::Sum, 200.0, 100.0, false, 0.05).1);
        assert!(!differs(Rollup::Sum, 104.0, 100.0, false, 0.05).1);
        assert!(differs(Rollup::Mean, 110.0, 100.0, true, 0.05).1);
        assert_eq!(differs(Rollup::Sum, 110.0, 100.0, false, 0.05).0, Some(0.1));
    }
}

/// One period of a parent's series as read through the observations API: the value judged and
/// what it was formed from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RolledUpPeriod {
    pub period: String,
    /// The unit's own figure when it reported the period, else its children's.
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_value: Option<f64>,
    /// Children with a value for the period.
    pub reported: u32,
    pub expected: u32,
    pub partial: bool,
}

/// A parent's periods formed from the stored revisions `rows` (any order, any revisions: the
/// highest of each unit's period wins), as the engine forms them: derived, never stored.
pub fn rolled_up_periods(
    plan: std::sync::Arc<RollupPlan>,
    indicator: &str,
    unit: &str,
    rows: &[crate::domain::StoredObservation],
) -> Vec<RolledUpPeriod> {
    let Some(expected) = plan
        .unit(unit)
        .map(|u| u32::try_from(plan.children(u).len()).unwrap_or(u32::MAX))
    else {
        return Vec::new();
    };
    // The highest revision of each unit's period.
    let mut latest: HashMap<
        (
            &str,
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
        ),
        &crate::domain::StoredObservation,
    > = HashMap::new();
    for row in rows.iter().filter(|r| r.indicator == indicator) {
        let key = (row.unit.as_str(), row.period_start, row.period_end);
        if latest
            .get(&key)
            .is_none_or(|held| held.revision < row.revision)
        {
            latest.insert(key, row);
        }
    }
    let committed: Vec<crate::domain::NewObservation> = latest
        .values()
        .filter_map(|row| row.as_committed())
        .collect();
    let mut live = super::series::LiveState::default();
    live.set_rollups(plan);
    live.apply(&committed.iter().collect::<Vec<_>>());
    let Some(id) = live.judged_id(indicator, unit) else {
        return Vec::new();
    };
    let (from, to) = (
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
        chrono::DateTime::<chrono::Utc>::MAX_UTC,
    );
    live.starting_within(id, from, to)
        .latest()
        .zip(live.rollup_within(id, from, to))
        .map(|(point, rolled)| RolledUpPeriod {
            period: point.period.to_string(),
            value: point.value,
            computed: rolled.computed,
            reported_value: rolled.own,
            reported: rolled.reported,
            expected,
            partial: rolled.reported < expected,
        })
        .collect()
}
