//! Late tasks as alerts (ARCHITECTURE §5): a task past its due date and not done fires a
//! `task_overdue` alert, labelled with its owning department (what routing sends it by), its
//! group, its code and its directive; it resolves when the task is recorded done. Silences,
//! acknowledgements, routing, receivers and the outbox treat it as any other alert. Its state
//! is judged on the city's day at the instant given, as every rule's is.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::AlertManager;
use crate::domain::alert::{Alert, AlertState, Severity, Silence};
use crate::domain::task::{Task, TaskStatus};
use crate::domain::Catalogue;
use crate::metrics;
use crate::store::StoreResult;

/// The rule and the `alertname` of a late task.
pub const RULE: &str = "task_overdue";

/// "Nhiệm vụ quá hạn: …" and "Overdue task: …".
pub fn summaries(task: &Task, catalogue: &Catalogue) -> (String, String) {
    let def = &task.def;
    let directive = &task.directive;
    let owner = catalogue.department(def.owner.as_str());
    let owner_vi = owner.map_or(def.owner.as_str(), |d| d.name_vi.as_str());
    let owner_en = owner.map_or(def.owner.as_str(), |d| d.name_en.as_str());
    (
        format!(
            "Nhiệm vụ quá hạn: {} ({}, theo {} số {}) – hạn hoàn thành {}, {} chủ trì",
            def.title_vi,
            def.code,
            directive.kind.name_vi(),
            directive.number,
            def.due.format("%d/%m/%Y"),
            owner_vi
        ),
        format!(
            "Overdue task: {} ({}, under {} {}) – due {}, led by {}",
            def.title_en,
            def.code,
            directive.kind.name_en(),
            directive.number,
            def.due.format("%Y-%m-%d"),
            owner_en
        ),
    )
}

/// The labels of a task's alerts and reminders. A late task is its owning department's to act
/// on (audience `department`): the wall already counts late tasks in its header, and its ticker
/// stays the city's targets, so that its count and the header's target counters agree.
pub fn labels(task: &Task, alertname: &str, severity: Severity) -> BTreeMap<String, String> {
    [
        ("alertname", alertname.to_owned()),
        (
            crate::alerts::audience::LABEL,
            crate::alerts::audience::Audience::Department
                .as_str()
                .to_owned(),
        ),
        ("severity", severity.as_str().to_owned()),
        ("group", task.def.group.to_string()),
        ("department", task.def.owner.to_string()),
        ("task", task.def.code.to_string()),
        ("directive", task.directive.number.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The task's page on the operations screen.
pub fn link(base_url: &str, task: &Task) -> String {
    format!(
        "{}/#/tasks/{}",
        base_url.trim_end_matches('/'),
        task.def.code
    )
}

fn fingerprint(task: &Task) -> String {
    format!("{RULE}:{}", task.def.code)
}

impl AlertManager {
    /// Brings the `task_overdue` alerts in line with `tasks` judged on `today` (the city's day
    /// at `now`) and commits the changes with their outbox events in one transaction; returns
    /// the changed alerts. Every task is looked at: the alerts of tasks not given resolve.
    pub async fn reconcile_tasks(
        &self,
        tasks: &[Task],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Alert>> {
        let mut active = self.active.lock().await;
        let overdue: HashMap<String, &Task> = tasks
            .iter()
            .filter(|t| t.status(today) == TaskStatus::Overdue)
            .map(|t| (fingerprint(t), t))
            .collect();
        let mut changed: Vec<Alert> = Vec::new();
        for (fingerprint, task) in &overdue {
            if active.contains_key(fingerprint) {
                continue;
            }
            let (summary_vi, summary_en) = summaries(task, &self.catalogue);
            changed.push(Alert {
                fingerprint: fingerprint.clone(),
                rule: RULE.to_owned(),
                severity: Severity::Warning,
                state: AlertState::Firing,
                labels: labels(task, RULE, Severity::Warning),
                summary_vi,
                summary_en,
                link: link(&self.base_url, task),
                starts_at: now,
                fired_at: Some(now),
                ends_at: None,
                updated_at: now,
                ack: None,
                working: None,
            });
        }
        for (fingerprint, old) in active.iter() {
            if old.rule != RULE || overdue.contains_key(fingerprint) {
                continue;
            }
            let mut alert = old.clone();
            alert.state = AlertState::Resolved;
            alert.ends_at = Some(now);
            alert.updated_at = now;
            changed.push(alert);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        // Each change is news: a task alert fires or resolves, never waits.
        let silences: Vec<Silence> = self.store.silences().await?;
        let events = self.events_for(changed.iter(), &silences, now);
        self.store.commit_alerts(&changed, &events, now).await?;
        for alert in &changed {
            metrics::alert_transition(&alert.rule, alert.state);
            if alert.state == AlertState::Resolved {
                active.remove(&alert.fingerprint);
            } else {
                active.insert(alert.fingerprint.clone(), alert.clone());
            }
        }
        super::publish_active(&active);
        tracing::info!(
            alerts = changed.len(),
            events = events.len(),
            "task alerts committed"
        );
        Ok(changed)
    }
}
