//! Reminders of tasks (nhiệm vụ) falling due: `task_lead_days` before a task not yet done is
//! due, its owning department is told once (rule `reminder`, `alertname` = `task_due`, labels
//! `department`, `group`, `task`, `directive`), through the same routing, silences, record and
//! outbox as the reminders of figures. That the due date passed is the `task_overdue` alert's
//! to say (`alerts::manager::tasks`), not a reminder's.

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::Reminders;
use crate::alerts::manager::tasks::{labels, link};
use crate::alerts::message::AlertMessage;
use crate::domain::alert::{Alert, AlertState, Severity};
use crate::domain::task::{Task, TaskStatus};
use crate::store::{QueuedNotification, ReminderRecord, StoreResult};

const ALERTNAME: &str = "task_due";

impl Reminders {
    /// The end of a task's due day in the city: when it falls due.
    fn task_due_at(&self, task: &Task) -> Option<DateTime<Utc>> {
        let next_day = task.def.due.succ_opt()?;
        next_day
            .and_time(NaiveTime::MIN)
            .and_local_timezone(self.zone)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    }

    fn task_message(&self, task: &Task, due_at: DateTime<Utc>) -> AlertMessage {
        let def = &task.def;
        let directive = &task.directive;
        let alert = Alert {
            fingerprint: format!("reminder:{ALERTNAME}:{}:{}", def.code, def.due),
            rule: "reminder".to_owned(),
            severity: Severity::Info,
            state: AlertState::Firing,
            labels: labels(task, ALERTNAME, Severity::Info),
            summary_vi: format!(
                "Nhắc hạn nhiệm vụ: {} ({}, theo {} số {}): hạn hoàn thành đến hết ngày {}",
                def.title_vi,
                def.code,
                directive.kind.name_vi(),
                directive.number,
                def.due.format("%d/%m/%Y")
            ),
            summary_en: format!(
                "Task reminder: {} ({}, under {} {}): due by the end of {}",
                def.title_en,
                def.code,
                directive.kind.name_en(),
                directive.number,
                def.due.format("%Y-%m-%d")
            ),
            link: link(&self.base_url, task),
            starts_at: due_at,
            fired_at: Some(due_at),
            ends_at: None,
            updated_at: due_at,
            ack: None,
            working: None,
        };
        AlertMessage::from(&alert)
    }

    /// Queues the reminders of the tasks due within `task_lead_days` of `now` and not done,
    /// each once; returns how many were queued.
    pub(super) async fn task_reminders(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        if self.config.task_lead_days == 0 {
            return Ok(0);
        }
        let lead = Duration::days(i64::from(self.config.task_lead_days));
        let today = now.with_timezone(&self.zone).date_naive();
        let due: Vec<(Task, DateTime<Utc>)> = self
            .store
            .tasks(None)
            .await?
            .into_iter()
            .filter(|task| {
                !task.status(today).is_done() && task.status(today) != TaskStatus::Overdue
            })
            .filter_map(|task| {
                let due_at = self.task_due_at(&task)?;
                (now < due_at && now >= due_at - lead).then_some((task, due_at))
            })
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let silences = self.store.silences().await?;
        let mut sent = 0;
        for (task, due_at) in &due {
            let message = self.task_message(task, *due_at);
            let destinations = self.route.destinations(&message.labels);
            if destinations.is_empty() {
                continue;
            }
            let muted = silences.iter().any(|s| s.mutes(&message.labels, now));
            let notifications: Vec<QueuedNotification> = if muted {
                Vec::new()
            } else {
                destinations
                    .into_iter()
                    .map(|d| self.queued(&d.receiver, &d.group_key, &message, now))
                    .collect()
            };
            // Keyed apart from the figures' (`task:` is no indicator code), by the due date: a
            // task given a new due date is reminded of again.
            let record = ReminderRecord {
                indicator: format!("task:{}", task.def.code),
                unit: task.def.owner.to_string(),
                period: task.def.due.to_string(),
                kind: "due".to_owned(),
                due_at: *due_at,
            };
            if self
                .store
                .record_reminder(&record, &notifications, now)
                .await?
                && !muted
            {
                sent += 1;
                tracing::info!(task = %task.def.code, due = %task.def.due, "task reminder queued");
            }
        }
        Ok(sent)
    }
}
