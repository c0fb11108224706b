//! The working a target's alert carries for the full form of its text (ARCHITECTURE §5): the
//! figures of the evaluation that changed it, and the target version in force.

use std::collections::HashMap;

use super::AlertManager;
use crate::domain::alert::{Alert, AlertWorking};
use crate::domain::{Indicator, TargetValue};
use crate::rules::engine::TargetStatus;
use crate::store::TargetVersion;

/// The figures of `status` in `indicator`'s measure, without the target's version (the store
/// knows it; [`AlertManager::attach_working`] adds it).
pub fn working_of(status: &TargetStatus, indicator: &Indicator) -> AlertWorking {
    let evaluation = &status.evaluation;
    let (target, target_low, target_high) = match status.target.value {
        TargetValue::Point { value } => (Some(value), None, None),
        TargetValue::Band { lo, hi } => (None, Some(lo), Some(hi)),
    };
    AlertWorking {
        measure_vi: indicator.measure_vi.clone(),
        measure_en: indicator.measure_en.clone(),
        actual: evaluation.actual,
        expected: evaluation.expected,
        projection: evaluation.projection,
        interval: evaluation.interval.map(|(low, high)| [low, high]),
        probability: evaluation.probability,
        target,
        target_low,
        target_high,
        target_since: None,
        target_reason: None,
        target_source: status.target.source.clone(),
    }
}

impl AlertManager {
    /// Gives each changed target alert the working of its target's status in `statuses`, with
    /// the version of the target in force: a resolved one the figures that resolved it, so its
    /// notice tells the recovery. A staleness alert has none; one whose target is no longer
    /// judged keeps the working it had. The versions are read only when such an alert
    /// changed, once per year; a store that cannot say leaves the version out rather than hold
    /// the alerts back.
    pub(super) async fn attach_working(&self, changed: &mut [Alert], statuses: &[TargetStatus]) {
        let by_target: HashMap<(String, &str, &str), &TargetStatus> = statuses
            .iter()
            .map(|s| {
                (
                    (s.year.to_string(), s.indicator.as_str(), s.unit.as_str()),
                    s,
                )
            })
            .collect();
        let mut versions: HashMap<i32, Vec<TargetVersion>> = HashMap::new();
        for alert in changed.iter_mut() {
            if alert.rule == "staleness" {
                // A figure owed is told by its period, firing or resolved; the working of the
                // judgement it holds up would read as a slip.
                alert.working = None;
                continue;
            }
            if alert.rule != "slippage" {
                continue;
            }
            let label = |name: &str| alert.labels.get(name).map_or("", String::as_str);
            let key = (label("year").to_owned(), label("indicator"), label("unit"));
            let Some(status) = by_target.get(&key).copied() else {
                continue;
            };
            let Some(indicator) = self.catalogue.indicator(status.indicator.as_str()) else {
                continue;
            };
            let mut working = working_of(status, indicator);
            if let std::collections::hash_map::Entry::Vacant(entry) = versions.entry(status.year) {
                let read = match self.store.target_versions(status.year).await {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::warn!(%error, year = status.year, "reading target versions for alert texts failed");
                        Vec::new()
                    }
                };
                entry.insert(read);
            }
            let in_force = versions.get(&status.year).and_then(|all| {
                all.iter().find(|v| {
                    v.valid_to.is_none()
                        && v.target.indicator == status.indicator
                        && v.target.unit == status.unit
                })
            });
            if let Some(version) = in_force {
                working.target_since = Some(version.valid_from);
                working.target_reason.clone_from(&version.reason);
            }
            alert.working = Some(working);
        }
    }
}
