//! Scheduled reports (`[[report]]` in `config/alerting.toml`): each period's report is mailed
//! to its email receivers when the period's figures are due, once, across restarts.
//!
//! What was sent is kept in the store (`report:<schedule>:<receiver>`), so a restart neither
//! sends a report twice nor skips the one that fell due while the service was down. A first
//! start sends only the latest report due, not the whole history.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::text::{self, words};
use super::{Lang, ReportFormat, ReportRequest, Sources};
use crate::alerts::receivers::text::Language;
use crate::alerts::receivers::{Receivers, ReportMail};
use crate::alerts::reports::{Every, ReportSchedule};
use crate::config::Settings;
use crate::domain::{Catalogue, Period};
use crate::rules::engine::Engine;
use crate::store::DynStore;

/// How often schedules are looked at; a report goes out at most this long after it is due.
const TICK: Duration = Duration::from_secs(60);

/// The file a schedule attaches: xlsx unless it says otherwise, nothing for `none`.
fn attachment(schedule: &ReportSchedule) -> Option<ReportFormat> {
    match schedule.attach.as_deref() {
        None => Some(ReportFormat::Xlsx),
        Some("none") => None,
        Some(other) => ReportFormat::parse(other),
    }
}

fn schedule_lang(schedule: &ReportSchedule) -> Lang {
    schedule
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or_default()
}

/// Every problem of the schedules, as `(key, message)`, so start-up names them all.
pub fn problems(
    schedules: &[ReportSchedule],
    receivers: &Receivers,
    catalogue: &Catalogue,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, schedule) in schedules.iter().enumerate() {
        let key = |field: &str| format!("report[{i}].{field}");
        if schedule.name.trim().is_empty() {
            problems.push((key("name"), "must not be empty".into()));
        }
        if schedules[..i].iter().any(|s| s.name == schedule.name) {
            problems.push((key("name"), format!("`{}` is used twice", schedule.name)));
        }
        if schedule.receivers.is_empty() {
            problems.push((key("receivers"), "lists no receiver".into()));
        }
        for name in &schedule.receivers {
            if !receivers.is_email(name) {
                problems.push((
                    key("receivers"),
                    format!("`{name}` is not an email receiver of [[receiver]]"),
                ));
            }
        }
        if let Some(attach) = schedule.attach.as_deref() {
            if attach != "none" && ReportFormat::parse(attach).is_none() {
                problems.push((key("attach"), "use xlsx, csv, html or none".into()));
            }
        }
        if let Some(lang) = schedule.lang.as_deref() {
            if Lang::parse(lang).is_none() {
                problems.push((key("lang"), "use vi or en".into()));
            }
        }
        if let Some(unit) = schedule.unit.as_deref() {
            if catalogue.unit(unit).is_none() {
                problems.push((key("unit"), format!("unknown unit `{unit}`")));
            }
        }
    }
    problems
}

/// The most recent period of `every` whose report is due at `now`.
pub fn latest_due(every: Every, sources: &Sources<'_>, now: DateTime<Utc>) -> Option<Period> {
    let local = now.with_timezone(&sources.zone);
    let (year, month) = (local.year(), local.month());
    let candidates: Vec<Period> = match every {
        Every::Month => (0..14)
            .map(|back| {
                let index = year * 12 + month as i32 - 1 - back;
                Period::Month(index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
            })
            .collect(),
        Every::Quarter => (0..6)
            .map(|back| {
                let index = year * 4 + (month as i32 - 1) / 3 - back;
                Period::Quarter(index.div_euclid(4), index.rem_euclid(4) as u32 + 1)
            })
            .collect(),
        Every::Year => (0..3).map(|back| Period::Year(year - back)).collect(),
    };
    candidates.into_iter().find(|p| sources.cutoff(p) <= now)
}

/// What the store remembers of one schedule and receiver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sent {
    period: Option<String>,
    sent_at: Option<DateTime<Utc>>,
    /// A period that cannot be sent (a permanent failure), so it is not tried every minute.
    given_up: Option<String>,
    error: Option<String>,
}

/// Mails the scheduled reports; spawned once per service.
pub struct Scheduler {
    pub schedules: Vec<ReportSchedule>,
    pub receivers: Arc<Receivers>,
    pub settings: Arc<Settings>,
    pub catalogue: Arc<Catalogue>,
    pub engine: Arc<Engine>,
    pub store: DynStore,
}

impl Scheduler {
    /// Mails what is due until `shutdown`, while `leading` says this instance leads
    /// (`crate::leader`): one instance mails for all.
    pub fn spawn(
        self,
        shutdown: CancellationToken,
        mut leading: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.schedules.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if !crate::leader::until_leading(&mut leading, &shutdown).await {
                    return;
                }
                self.tick(Utc::now()).await;
            }
        });
    }

    fn sources(&self) -> Sources<'_> {
        Sources {
            catalogue: &self.catalogue,
            engine: &self.engine,
            store: &self.store,
            calendar: &self.settings.release_calendar,
            zone: self.settings.zone(),
            city_vi: &self.settings.city.name_vi,
            city_en: &self.settings.city.name_en,
        }
    }

    /// Sends every report that is due and not yet sent.
    pub async fn tick(&self, now: DateTime<Utc>) {
        for schedule in &self.schedules {
            if let Err(error) = self.run_schedule(schedule, now).await {
                tracing::warn!(schedule = %schedule.name, %error, "scheduled report not sent");
            }
        }
    }

    async fn run_schedule(
        &self,
        schedule: &ReportSchedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sources = self.sources();
        let Some(period) = latest_due(schedule.every, &sources, now) else {
            return Ok(());
        };
        let period_text = period.to_string();
        let mut pending = Vec::new();
        for receiver in &schedule.receivers {
            let key = format!("report:{}:{receiver}", schedule.name);
            let sent: Sent = match self.store.feed_state(&key).await? {
                Some(state) => serde_json::from_value(state).unwrap_or_default(),
                None => Sent::default(),
            };
            let done = sent.period.as_deref() == Some(&period_text)
                || sent.given_up.as_deref() == Some(&period_text);
            if !done {
                pending.push((receiver, key, sent));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }

        let lang = schedule_lang(schedule);
        let request = ReportRequest {
            period,
            unit: schedule.unit.clone(),
            as_of: None,
            history: self.settings.approval.report_history,
        };
        let report = sources.build(&request, lang, now).await?;
        let zone = self.settings.zone();
        let html = String::from_utf8(report.render(ReportFormat::Html, zone)?)?;
        let attachment = match attachment(schedule) {
            Some(format) => Some((
                report.file_name(format),
                format.media_type().to_owned(),
                report.render(format, zone)?,
            )),
            None => None,
        };
        let w = words(lang);
        let share = report.tally.share().map(text::percent).unwrap_or_default();
        let headline = format!(
            "{}/{} {} ({share})",
            report.tally.met, report.tally.total, w.met_of
        );
        let mut summary = format!(
            "{} – {}\n{} · {}: {}\n{}: {}\n\n{headline}\n",
            w.title,
            report.period_label,
            report.city,
            w.unit,
            report.unit_name,
            w.cutoff,
            text::local_time(report.cutoff, zone, lang),
        );
        for group in &report.groups {
            summary.push_str(&format!(
                "- {}: {}/{}\n",
                group.name, group.tally.met, group.tally.total
            ));
        }
        let language = match lang {
            Lang::Vi => Language::Vi,
            Lang::En => Language::En,
        };

        for (receiver, key, mut sent) in pending {
            let mail = ReportMail {
                subject: format!("[KT-XH] {} – {}: {headline}", w.title, report.period_label),
                text: summary.clone(),
                html: html.clone(),
                attachment: attachment.clone(),
                key: format!("{}.{}.{}", schedule.name, period_text, receiver),
                language,
                date: now,
            };
            match self.receivers.send_report(receiver, &mail).await {
                Ok(()) => {
                    tracing::info!(schedule = %schedule.name, %receiver, period = %period_text, "report sent");
                    sent = Sent {
                        period: Some(period_text.clone()),
                        sent_at: Some(now),
                        ..Sent::default()
                    };
                }
                Err(error) if error.is_permanent() => {
                    tracing::error!(schedule = %schedule.name, %receiver, period = %period_text, %error, "report cannot be sent; giving up on this period");
                    sent.given_up = Some(period_text.clone());
                    sent.error = Some(error.to_string());
                }
                Err(error) => {
                    // Tried again on the next tick.
                    tracing::warn!(schedule = %schedule.name, %receiver, period = %period_text, %error, "report not sent; will retry");
                    continue;
                }
            }
            self.store
                .put_feed_state(&key, &serde_json::to_value(&sent)?, now)
                .await?;
        }
        Ok(())
    }
}
