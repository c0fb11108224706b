//! Reminders to the department that owns a figure: a notice `lead_days` before the figure is
//! due, and another when its due date passes without it (ARCHITECTURE §4, §5).
//!
//! A figure is a period of a series that has a target. The due dates are the release calendar's,
//! the indicator's own when it has one (`release` in the catalogue), so a yearly index
//! published in May is reminded of in May, not in January. Each check looks, for every target,
//! at the one period of its year that falls due next (within the lead time) and the one that
//! fell due last; a period already reported is left alone. Daily figures come from machine
//! feeds, whose silence the staleness alert reports: they get no reminders.
//!
//! A reminder is an alert-like message (rule `reminder`, labels `alertname` = `figure_due` or
//! `figure_late`, `department`, `indicator`, `unit`, `year`, `period`), routed by the alerts'
//! routing tree, muted by their silences and delivered by their outbox and receivers. Its
//! record and its notifications commit together, keyed by (indicator, unit, period, kind): it
//! is sent once, across restarts and instances, and only the leader checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

mod tasks;

use super::message::{AlertMessage, Notification};
use super::receivers::text::Language;
use super::routing::{AlertingConfig, Route};
use crate::domain::alert::{AlertState, Severity};
use crate::domain::calendar::ReleaseCalendar;
use crate::domain::{Catalogue, Code, Indicator, Period, Periodicity};
use crate::rules::engine::Engine;
use crate::store::{DynStore, QueuedNotification, ReminderRecord, StoreResult};

const fn default_lead_days() -> u32 {
    3
}

const fn default_true() -> bool {
    true
}

const fn default_check_interval_seconds() -> u64 {
    300
}

/// The longest lead time: a reminder further ahead than a quarter reminds of nothing useful.
pub const MAX_LEAD_DAYS: u32 = 92;

/// `[reminders]` of `config/alerting.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersConfig {
    /// Days before a figure is due that its department is reminded; 0 sends no such notice.
    #[serde(default = "default_lead_days")]
    pub lead_days: u32,
    /// Whether the department is told when a figure's due date has passed without it.
    #[serde(default = "default_true")]
    pub late: bool,
    /// How often the due dates are looked at.
    #[serde(default = "default_check_interval_seconds")]
    pub check_interval_seconds: u64,
    /// Days before a task (nhiệm vụ) is due that its owning department is reminded; 0 sends
    /// no such notice.
    #[serde(default = "default_task_lead_days")]
    pub task_lead_days: u32,
}

const fn default_task_lead_days() -> u32 {
    7
}

impl Default for RemindersConfig {
    fn default() -> Self {
        Self {
            lead_days: default_lead_days(),
            late: default_true(),
            check_interval_seconds: default_check_interval_seconds(),
            task_lead_days: default_task_lead_days(),
        }
    }
}

impl RemindersConfig {
    /// The first problem with these settings: its key and what is wrong.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.lead_days > MAX_LEAD_DAYS {
            return Some((
                "reminders.lead_days",
                format!("{} is not 0 to {MAX_LEAD_DAYS} days", self.lead_days),
            ));
        }
        if self.task_lead_days > MAX_LEAD_DAYS {
            return Some((
                "reminders.task_lead_days",
                format!("{} is not 0 to {MAX_LEAD_DAYS} days", self.task_lead_days),
            ));
        }
        if !(10..=86_400).contains(&self.check_interval_seconds) {
            return Some((
                "reminders.check_interval_seconds",
                format!("{} is not 10 to 86400 seconds", self.check_interval_seconds),
            ));
        }
        None
    }
}

/// What a reminder says of its figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderKind {
    /// The due date is within the lead time.
    Due,
    /// The due date has passed without the figure.
    Late,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Late => "late",
        }
    }

    fn alertname(self) -> &'static str {
        match self {
            Self::Due => "figure_due",
            Self::Late => "figure_late",
        }
    }

    fn severity(self) -> Severity {
        match self {
            Self::Due => Severity::Info,
            Self::Late => Severity::Warning,
        }
    }
}

/// Checks the due dates and queues the reminders they call for.
pub struct Reminders {
    store: DynStore,
    engine: Arc<Engine>,
    catalogue: Arc<Catalogue>,
    route: Route,
    base_url: String,
    /// Each receiver's language, as the outbox writes its notifications in.
    languages: HashMap<String, String>,
    calendar: ReleaseCalendar,
    zone: Tz,
    config: RemindersConfig,
}

/// One figure to remind of.
struct Figure<'a> {
    indicator: &'a Indicator,
    unit: &'a str,
    year: i32,
    period: Period,
    due_at: DateTime<Utc>,
    kind: ReminderKind,
}

impl Reminders {
    pub fn new(
        store: DynStore,
        engine: Arc<Engine>,
        catalogue: Arc<Catalogue>,
        alerting: &AlertingConfig,
        calendar: ReleaseCalendar,
        zone: Tz,
    ) -> Self {
        let languages = alerting
            .receiver
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.language.clone().unwrap_or_else(|| "vi".into()),
                )
            })
            .collect();
        Self {
            store,
            engine,
            catalogue,
            route: alerting.route.clone(),
            base_url: alerting.links_to().to_owned(),
            languages,
            calendar,
            zone,
            config: alerting.reminders.clone(),
        }
    }

    /// Checks every `check_interval_seconds` while this instance leads (`crate::leader`),
    /// until `shutdown`.
    pub fn spawn(
        self: Arc<Self>,
        shutdown: CancellationToken,
        mut leading: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = Duration::from_secs(self.config.check_interval_seconds.max(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if !crate::leader::until_leading(&mut leading, &shutdown).await {
                    return;
                }
                match self.run(Utc::now()).await {
                    Ok(0) => {}
                    Ok(sent) => tracing::info!(reminders = sent, "reminders queued"),
                    Err(error) => tracing::error!(%error, "checking the figures due failed"),
                }
            }
        });
    }

    /// Queues the reminders due at `now` that were not sent before; returns how many.
    pub async fn run(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let tasks_sent = self.task_reminders(now).await?;
        let figures = self.figures(now);
        if figures.is_empty() {
            return Ok(tasks_sent);
        }
        let silences = self.store.silences().await?;
        let mut sent = tasks_sent;
        for figure in &figures {
            let message = self.message(figure);
            let destinations = self.route.destinations(&message.labels);
            if destinations.is_empty() {
                continue; // nobody to tell: left for when a receiver is configured
            }
            // A silenced reminder is recorded unsent, as a silenced alert is never announced.
            let muted = silences.iter().any(|s| s.mutes(&message.labels, now));
            let notifications: Vec<QueuedNotification> = if muted {
                Vec::new()
            } else {
                destinations
                    .into_iter()
                    .map(|d| self.queued(&d.receiver, &d.group_key, &message, now))
                    .collect()
            };
            let record = ReminderRecord {
                indicator: figure.indicator.code.to_string(),
                unit: figure.unit.to_owned(),
                period: figure.period.to_string(),
                kind: figure.kind.as_str().to_owned(),
                due_at: figure.due_at,
            };
            if self
                .store
                .record_reminder(&record, &notifications, now)
                .await?
                && !muted
            {
                sent += 1;
                tracing::info!(
                    indicator = %record.indicator,
                    unit = %record.unit,
                    period = %record.period,
                    kind = %record.kind,
                    "reminder queued"
                );
            }
        }
        Ok(sent)
    }

    /// The figures a reminder is called for at `now`: for each target, the period of its year
    /// that falls due next if that is within the lead time, and the period that fell due last,
    /// when not reported.
    fn figures(&self, now: DateTime<Utc>) -> Vec<Figure<'_>> {
        let lead = chrono::Duration::days(i64::from(self.config.lead_days));
        let mut out = Vec::new();
        for status in self.engine.statuses(|_| true) {
            let Some(indicator) = self.catalogue.indicator(status.indicator.as_str()) else {
                continue;
            };
            if indicator.periodicity == Periodicity::Daily {
                continue;
            }
            let Some(unit) = self.catalogue.unit(status.unit.as_str()) else {
                continue;
            };
            // Due dates without grace: a reminder speaks of the date the figure is due.
            let calendar = ReleaseCalendar {
                grace: chrono::Duration::zero(),
                ..self.calendar.for_indicator(indicator).into_owned()
            };
            let mut wanted = Vec::new();
            if self.config.lead_days > 0 {
                let ahead = now.checked_add_signed(lead).unwrap_or(now);
                if let Some(period) =
                    calendar.latest_due_period(indicator.periodicity, ahead, self.zone)
                {
                    let due_at = calendar.due_at(&period, self.zone);
                    if due_at > now {
                        wanted.push((period, due_at, ReminderKind::Due));
                    }
                }
            }
            if self.config.late {
                if let Some(period) =
                    calendar.latest_due_period(indicator.periodicity, now, self.zone)
                {
                    let due_at = calendar.due_at(&period, self.zone);
                    // A figure due before lateness is judged from (the first start, or
                    // `staleness_from`) is not owed: no one is told it is late.
                    let owed = self.calendar.judged_from.is_none_or(|from| due_at >= from);
                    if owed {
                        wanted.push((period, due_at, ReminderKind::Late));
                    }
                }
            }
            for (period, due_at, kind) in wanted {
                // Each target reminds of its own year's periods.
                if period.year(self.zone) != status.year {
                    continue;
                }
                if self.reported(indicator, &unit.code, status.year, &period) {
                    continue;
                }
                out.push(Figure {
                    indicator,
                    unit: unit.code.as_str(),
                    year: status.year,
                    period,
                    due_at,
                    kind,
                });
            }
        }
        out
    }

    /// Whether the series has a value for `period`, or for a later or coarser period that
    /// covers it (as staleness reads a report).
    fn reported(&self, indicator: &Indicator, unit: &Code, year: i32, period: &Period) -> bool {
        let end = period.end(self.zone);
        self.engine
            .year_points(&indicator.code, unit, year)
            .iter()
            .any(|point| point.period == *period || point.end >= end)
    }

    fn message(&self, figure: &Figure<'_>) -> AlertMessage {
        let kind = figure.kind;
        let indicator = figure.indicator;
        let period = figure.period.to_string();
        let labels: BTreeMap<String, String> = [
            ("alertname", kind.alertname().to_owned()),
            // A reminder is the owning department's work (`alerts::audience`).
            (
                super::audience::LABEL,
                super::audience::Audience::Department.as_str().to_owned(),
            ),
            ("severity", kind.severity().as_str().to_owned()),
            ("group", indicator.group.to_string()),
            ("department", indicator.department.to_string()),
            ("unit", figure.unit.to_owned()),
            ("indicator", indicator.code.to_string()),
            ("year", figure.year.to_string()),
            ("period", period.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let unit = self.catalogue.unit(figure.unit);
        let unit_vi = unit.map_or(figure.unit, |u| u.name_vi.as_str());
        let unit_en = unit.map_or(figure.unit, |u| u.name_en.as_str());
        // "Due by the 6th" is due at the end of the 6th: the day shown is the one before the
        // due instant.
        let due_day = (figure.due_at - chrono::Duration::seconds(1))
            .with_timezone(&self.zone)
            .date_naive();
        let due_vi = due_day.format("%d/%m/%Y");
        let due_en = due_day.format("%Y-%m-%d");
        let (summary_vi, summary_en) = match kind {
            ReminderKind::Due => (
                format!(
                    "Nhắc hạn báo cáo: {} – {}, kỳ {period}: hạn gửi số liệu đến hết ngày {due_vi}",
                    indicator.name_vi, unit_vi
                ),
                format!(
                    "Reminder: {} – {}, {period}: the figure is due by the end of {due_en}",
                    indicator.name_en, unit_en
                ),
            ),
            ReminderKind::Late => (
                format!(
                    "Quá hạn báo cáo: {} – {}, kỳ {period}: chưa nhận số liệu, hạn gửi là hết ngày {due_vi}",
                    indicator.name_vi, unit_vi
                ),
                format!(
                    "Overdue: {} – {}, {period}: the figure was due by the end of {due_en} and has not arrived",
                    indicator.name_en, unit_en
                ),
            ),
        };
        AlertMessage {
            fingerprint: format!(
                "reminder:{}:{}:{}:{period}",
                kind.as_str(),
                indicator.code,
                figure.unit
            ),
            rule: "reminder".to_owned(),
            severity: kind.severity(),
            state: AlertState::Firing,
            labels,
            summary_vi,
            summary_en,
            link: format!(
                "{}/#/indicator/{}?unit={}&year={}",
                self.base_url, indicator.code, figure.unit, figure.year
            ),
            starts_at: figure.due_at,
            ends_at: None,
            sequence: None,
            working: None,
        }
    }

    fn queued(
        &self,
        receiver: &str,
        group_key: &str,
        message: &AlertMessage,
        now: DateTime<Utc>,
    ) -> QueuedNotification {
        // Apart from the alerts' groups: a reminder neither waits for nor delays their
        // notifications (group_interval is counted per receiver and group key).
        let group_key = format!("reminder:{group_key}");
        let language = self
            .languages
            .get(receiver)
            .and_then(|l| Language::parse(l))
            .unwrap_or_default();
        let notification = Notification {
            id: 0,
            receiver: receiver.to_owned(),
            group_key: group_key.clone(),
            status: AlertState::Firing,
            alerts: vec![message.clone()],
            language: language.as_str().to_owned(),
            created_at: now,
        };
        QueuedNotification {
            receiver: receiver.to_owned(),
            group_key,
            payload: serde_json::to_value(&notification).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_read_with_defaults_and_refuse_what_cannot_work() {
        let empty: RemindersConfig = toml::from_str("").unwrap();
        assert_eq!(empty, RemindersConfig::default());
        assert_eq!(empty.problem(), None);
        let long: RemindersConfig = toml::from_str("lead_days = 93").unwrap();
        assert_eq!(long.problem().map(|p| p.0), Some("reminders.lead_days"));
        let fast: RemindersConfig = toml::from_str("check_interval_seconds = 1").unwrap();
        assert_eq!(
            fast.problem().map(|p| p.0),
            Some("reminders.check_interval_seconds")
        );
        assert!(toml::from_str::<RemindersConfig>("lead = 3").is_err());
    }
}
