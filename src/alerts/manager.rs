//! The alert state machine: derives the alerts the target statuses call for, moves each through
//! pending → firing → resolved, and commits every change together with its outbox events.

pub mod rejects;
pub mod tasks;
mod working;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::audience::{self, Audience};
use super::receivers::text::Language;
use super::receivers::working as figure_text;
use super::routing::Route;
use super::year_close::{self, Closing};
use crate::domain::alert::{
    Ack, Alert, AlertState, AlertWorking, NewAlertEvent, Severity, Silence,
};
use crate::domain::{Catalogue, Indicator, Status};
use crate::metrics;
use crate::rules::engine::TargetStatus;
use crate::store::{AuditEvent, DynStore, StoreResult};

/// Mirrors the alerts not resolved in the `ktxh_alerts` gauges (a few thousand at most, counted
/// after a reconcile that already looked at every target).
fn publish_active(active: &HashMap<String, Alert>) {
    metrics::active_alerts(
        active
            .values()
            .map(|alert| (alert.rule.as_str(), alert.state, alert.severity)),
    );
}

/// What the statuses call for, before comparing with the alerts that exist.
struct Desired {
    rule: &'static str,
    severity: Severity,
    state: AlertState,
    labels: BTreeMap<String, String>,
    summary_vi: String,
    summary_en: String,
    link: String,
    /// The figures a target alert's working shows, without the target's version (the store
    /// knows it): what a quiet refresh compares.
    figures: Option<AlertWorking>,
}

/// The status, among `statuses`, of the target `alert` is about, as its labels name it.
fn recovered_status<'s>(statuses: &'s [TargetStatus], alert: &Alert) -> Option<&'s TargetStatus> {
    let label = |name: &str| alert.labels.get(name).map_or("", String::as_str);
    statuses.iter().find(|s| {
        s.year.to_string() == label("year")
            && s.indicator.as_str() == label("indicator")
            && s.unit.as_str() == label("unit")
    })
}

/// Whether `stored` (an alert's working, with its target version) shows `figures`.
fn same_figures(stored: Option<&AlertWorking>, figures: Option<&AlertWorking>) -> bool {
    match (stored, figures) {
        (Some(stored), Some(figures)) => {
            let mut bare = stored.clone();
            bare.target_since = None;
            bare.target_reason = None;
            &bare == figures
        }
        (None, Some(_)) => false,
        // An anomaly's alert has no working.
        (_, None) => true,
    }
}

fn status_vi(status: Status) -> &'static str {
    match status {
        Status::Achieved => "đã đạt",
        Status::OnTrack => "đúng tiến độ",
        Status::AtRisk => "có nguy cơ không đạt",
        Status::OffTrack => "chậm tiến độ",
        Status::Missed => "không đạt",
        Status::Stale => "thiếu số liệu",
        Status::NoData => "chưa có số liệu",
    }
}

fn status_en(status: Status) -> &'static str {
    match status {
        Status::Achieved => "achieved",
        Status::OnTrack => "on track",
        Status::AtRisk => "at risk",
        Status::OffTrack => "off track",
        Status::Missed => "missed",
        Status::Stale => "stale",
        Status::NoData => "no data",
    }
}

pub struct AlertManager {
    store: DynStore,
    catalogue: Arc<Catalogue>,
    route: Route,
    base_url: String,
    /// Alerts not resolved, by fingerprint. An async lock: a reconcile awaits its commit while
    /// holding it, so two reconciles never interleave their changes.
    active: Mutex<HashMap<String, Alert>>,
}

impl AlertManager {
    pub async fn load(
        store: DynStore,
        catalogue: Arc<Catalogue>,
        route: Route,
        base_url: String,
    ) -> StoreResult<Self> {
        let active = store
            .alerts(false, i64::MAX)
            .await?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        publish_active(&active);
        Ok(Self {
            store,
            catalogue,
            route,
            base_url: base_url.trim_end_matches('/').to_owned(),
            active: Mutex::new(active),
        })
    }

    /// Reads the unresolved alerts from the store again: while another instance led, it
    /// committed them, and what this one remembers is out of date (`crate::leader`).
    /// Reads the active alerts again after another instance changed them (ARCHITECTURE §7),
    /// and returns those that changed here: new or updated ones as stored, and those no longer
    /// active as resolved at `at`, so the screens can be told.
    pub async fn reload_changed(&self, at: DateTime<Utc>) -> StoreResult<Vec<Alert>> {
        let fresh: HashMap<String, Alert> = self
            .store
            .alerts(false, i64::MAX)
            .await?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let mut active = self.active.lock().await;
        let mut changed: Vec<Alert> = fresh
            .values()
            .filter(|a| active.get(&a.fingerprint) != Some(*a))
            .cloned()
            .collect();
        for (fingerprint, old) in active.iter() {
            if !fresh.contains_key(fingerprint) {
                let mut gone = old.clone();
                gone.state = AlertState::Resolved;
                gone.ends_at.get_or_insert(at);
                gone.updated_at = at;
                changed.push(gone);
            }
        }
        *active = fresh;
        publish_active(&active);
        Ok(changed)
    }

    pub async fn reload(&self) -> StoreResult<()> {
        let mut active = self.active.lock().await;
        *active = self
            .store
            .alerts(false, i64::MAX)
            .await?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        publish_active(&active);
        Ok(())
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    fn desired(&self, status: &TargetStatus) -> Vec<(String, Desired)> {
        let mut wanted: Vec<(String, Desired)> = self.judgement(status).into_iter().collect();
        wanted.extend(self.anomaly(status));
        wanted
    }

    /// The city's code: its own targets' slippage is the leadership's (`alerts::audience`).
    fn city(&self) -> Option<&str> {
        self.catalogue.root_unit().map(|unit| unit.code.as_str())
    }

    fn labels(
        &self,
        status: &TargetStatus,
        alertname: &str,
        severity: Severity,
    ) -> BTreeMap<String, String> {
        let audience = Audience::for_alert(alertname, Some(status.unit.as_str()), self.city());
        [
            ("alertname", alertname.to_owned()),
            (audience::LABEL, audience.as_str().to_owned()),
            ("severity", severity.as_str().to_owned()),
            ("group", status.group.to_string()),
            ("department", status.department.to_string()),
            ("unit", status.unit.to_string()),
            ("indicator", status.indicator.to_string()),
            ("year", status.year.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The status's unit by name in both languages; its code when the catalogue lacks it.
    fn unit_names<'s>(&'s self, status: &'s TargetStatus) -> (&'s str, &'s str) {
        match self.catalogue.unit(status.unit.as_str()) {
            Some(unit) => (unit.name_vi.as_str(), unit.name_en.as_str()),
            None => (status.unit.as_str(), status.unit.as_str()),
        }
    }

    fn link(&self, status: &TargetStatus) -> String {
        format!(
            "{}/#/indicator/{}?unit={}&year={}",
            self.base_url, status.indicator, status.unit, status.year
        )
    }

    /// A recovered target's slippage alert, in the words and figures that resolved it
    /// ("… năm 2026: đúng tiến độ; dự báo …"), so its resolved notice does not repeat the
    /// figures it fired with.
    fn recovered(&self, status: &TargetStatus) -> Option<(String, String)> {
        let indicator = self.catalogue.indicator(status.indicator.as_str())?;
        let figures = working::working_of(status, indicator);
        Some(self.target_summaries(status, indicator, status.evaluation.status, &figures))
    }

    /// A target alert's short form in both languages: the target, its year, `shown` in words and
    /// the projection (or actual) against the target.
    fn target_summaries(
        &self,
        status: &TargetStatus,
        indicator: &Indicator,
        shown: Status,
        figures: &AlertWorking,
    ) -> (String, String) {
        let (unit_vi, unit_en) = self.unit_names(status);
        (
            figure_text::slippage_summary(
                Language::Vi,
                &format!("{} – {unit_vi}", indicator.name_vi),
                status.year,
                status_vi(shown),
                figures,
            ),
            figure_text::slippage_summary(
                Language::En,
                &format!("{} – {unit_en}", indicator.name_en),
                status.year,
                status_en(shown),
                figures,
            ),
        )
    }

    /// A suspicious latest value: the robust z-score of its change is over k. Told as people
    /// check a figure, by its step against the usual step ("tăng 12.886 tỷ đồng so với kỳ
    /// trước; các kỳ gần đây thường tăng khoảng 100 tỷ đồng"); the score stays in the status's
    /// `anomaly` for those who want it.
    fn anomaly(&self, status: &TargetStatus) -> Option<(String, Desired)> {
        let flagged = status.anomaly.as_ref()?;
        let indicator = self.catalogue.indicator(status.indicator.as_str())?;
        let (step_vi, step_en) = (
            figure_text::unusual_step(Language::Vi, flagged, &indicator.measure_vi),
            figure_text::unusual_step(Language::En, flagged, &indicator.measure_en),
        );
        let (unit_vi, unit_en) = self.unit_names(status);
        let fingerprint = format!(
            "anomaly:{}:{}:{}",
            status.year, status.indicator, status.unit
        );
        let desired = Desired {
            rule: "anomaly",
            severity: Severity::Warning,
            state: AlertState::Firing,
            labels: self.labels(status, "value_anomaly", Severity::Warning),
            summary_vi: format!(
                "{} – {unit_vi}: số liệu kỳ {} ({}) thay đổi bất thường: {step_vi}; đề nghị kiểm tra lại",
                indicator.name_vi, flagged.period, figure_text::quantity(Language::Vi, Some(flagged.value), &indicator.measure_vi)
            ),
            summary_en: format!(
                "{} – {unit_en}: the figure for {} ({}) is unusual: {step_en}; please check it",
                indicator.name_en, flagged.period, figure_text::quantity(Language::En, Some(flagged.value), &indicator.measure_en)
            ),
            link: self.link(status),
            figures: None,
        };
        Some((fingerprint, desired))
    }

    fn judgement(&self, status: &TargetStatus) -> Option<(String, Desired)> {
        let indicator = self.catalogue.indicator(status.indicator.as_str())?;
        let official = status.evaluation.status;
        let pending_worse = status
            .pending
            .as_ref()
            .is_some_and(|p| p.status.severity() > official.severity());
        let closed = year_close::is_closed(status);
        let (rule, alertname, severity, state, shown) = match official {
            // A closed year's outcome is its report's, not a live alert (`alerts::year_close`);
            // a figure of it still missing is a data gap for the department.
            _ if closed && status.overdue_period.is_some() => (
                "staleness",
                "feed_stale",
                Severity::Warning,
                AlertState::Firing,
                Status::Stale,
            ),
            _ if closed => return None,
            Status::AtRisk => (
                "slippage",
                "target_slipping",
                Severity::Warning,
                AlertState::Firing,
                official,
            ),
            Status::OffTrack | Status::Missed => (
                "slippage",
                "target_slipping",
                Severity::Critical,
                AlertState::Firing,
                official,
            ),
            Status::Stale => (
                "staleness",
                "feed_stale",
                Severity::Warning,
                AlertState::Firing,
                official,
            ),
            // A total the figures in already settle (achieved before a month came) is still
            // owed that month: the department hears of it as of any other.
            _ if status.overdue_period.is_some() => (
                "staleness",
                "feed_stale",
                Severity::Warning,
                AlertState::Firing,
                Status::Stale,
            ),
            _ if pending_worse => {
                let pending = status.pending.as_ref()?.status;
                let severity = if pending == Status::AtRisk {
                    Severity::Warning
                } else {
                    Severity::Critical
                };
                (
                    "slippage",
                    "target_slipping",
                    severity,
                    AlertState::Pending,
                    pending,
                )
            }
            _ => return None,
        };
        let fingerprint = format!(
            "{rule}:{}:{}:{}",
            status.year, status.indicator, status.unit
        );
        let labels = self.labels(status, alertname, severity);
        let (unit_vi, unit_en) = self.unit_names(status);
        let figures = working::working_of(status, indicator);
        let (summary_vi, summary_en) = if rule == "staleness" {
            let period = status.overdue_period.clone().unwrap_or_default();
            (
                format!(
                    "{} – {}: chưa nhận số liệu kỳ {} đã đến hạn",
                    indicator.name_vi, unit_vi, period
                ),
                format!(
                    "{} – {}: the figure for {} is due and has not arrived",
                    indicator.name_en, unit_en, period
                ),
            )
        } else {
            // The short form (the wall, chat); an email adds the working under it.
            self.target_summaries(status, indicator, shown, &figures)
        };
        let link = self.link(status);
        Some((
            fingerprint,
            Desired {
                rule,
                severity,
                state,
                labels,
                summary_vi,
                summary_en,
                link,
                // A figure owed is told by its period; the working of a judgement it keeps
                // from being made would read as one.
                figures: (rule != "staleness").then_some(figures),
            },
        ))
    }

    /// Brings the alerts in line with `statuses` (every target's current status) and commits
    /// the changes with their outbox events in one transaction. Returns the changed alerts.
    pub async fn reconcile(
        &self,
        statuses: &[TargetStatus],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Alert>> {
        self.reconcile_scoped(statuses, None, now).await
    }

    /// As [`Self::reconcile`] for the targets of `statuses` alone: alerts of other targets are
    /// left as they are, so an ingest or a target change that touched a few targets costs a
    /// few, not every target of the city (the timer still looks at all of them).
    pub async fn reconcile_targets(
        &self,
        statuses: &[TargetStatus],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Alert>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let scope: HashSet<(String, String, String)> = statuses
            .iter()
            .map(|s| {
                (
                    s.year.to_string(),
                    s.indicator.to_string(),
                    s.unit.to_string(),
                )
            })
            .collect();
        self.reconcile_scoped(statuses, Some(&scope), now).await
    }

    /// `scope`, when given, holds the (year, indicator, unit) of the targets to look at, as an
    /// alert's labels spell them.
    async fn reconcile_scoped(
        &self,
        statuses: &[TargetStatus],
        scope: Option<&HashSet<(String, String, String)>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Alert>> {
        // A late task's alert is its own reconcile's (`tasks`), whatever the scope; so is a
        // spike of rejected data's (`rejects`).
        let in_scope = |alert: &Alert| {
            alert.rule != tasks::RULE
                && alert.rule != crate::rules::rejects::RULE
                && scope.is_none_or(|scope| {
                    let label = |name: &str| alert.labels.get(name).cloned().unwrap_or_default();
                    scope.contains(&(label("year"), label("indicator"), label("unit")))
                })
        };
        let mut active = self.active.lock().await;
        let desired: HashMap<String, Desired> =
            statuses.iter().flat_map(|s| self.desired(s)).collect();
        // The slippage alerts whose year closed resolve with its outcome.
        let closings: HashMap<String, Closing> = statuses
            .iter()
            .filter_map(|s| {
                let closing = year_close::closing(s, &self.catalogue)?;
                let fingerprint = format!("slippage:{}:{}:{}", s.year, s.indicator, s.unit);
                Some((fingerprint, closing))
            })
            .collect();
        let mut changed: Vec<Alert> = Vec::new();
        let mut notify: Vec<&Alert> = Vec::new();
        let mut notify_fingerprints = Vec::new();

        for (fingerprint, want) in &desired {
            // A firing anomaly whose text changed flags another figure (a new period, or a
            // revision still unusual): news to the department, told again, acknowledged anew.
            let renewed = active.get(fingerprint).is_some_and(|old| {
                old.rule == "anomaly"
                    && old.state == AlertState::Firing
                    && want.state == AlertState::Firing
                    && old.summary_en != want.summary_en
            });
            let alert = match active.get(fingerprint) {
                None => Alert {
                    fingerprint: fingerprint.clone(),
                    rule: want.rule.to_owned(),
                    severity: want.severity,
                    state: want.state,
                    labels: want.labels.clone(),
                    summary_vi: want.summary_vi.clone(),
                    summary_en: want.summary_en.clone(),
                    link: want.link.clone(),
                    starts_at: now,
                    fired_at: (want.state == AlertState::Firing).then_some(now),
                    ends_at: None,
                    updated_at: now,
                    ack: None,
                    working: None,
                },
                Some(old) if old.state != want.state || old.severity != want.severity => {
                    let escalated = want.severity > old.severity;
                    let mut alert = old.clone();
                    alert.state = want.state;
                    alert.severity = want.severity;
                    alert.labels = want.labels.clone();
                    alert.summary_vi = want.summary_vi.clone();
                    alert.summary_en = want.summary_en.clone();
                    alert.link = want.link.clone();
                    alert.updated_at = now;
                    if want.state == AlertState::Firing && alert.fired_at.is_none() {
                        alert.fired_at = Some(now);
                    }
                    if escalated {
                        // A worse alert needs a fresh acknowledgement.
                        alert.ack = None;
                    }
                    alert
                }
                Some(old) if renewed => {
                    let mut alert = old.clone();
                    alert.labels = want.labels.clone();
                    alert.summary_vi = want.summary_vi.clone();
                    alert.summary_en = want.summary_en.clone();
                    alert.link = want.link.clone();
                    alert.updated_at = now;
                    alert.ack = None;
                    alert
                }
                // The judgement held while its figures moved (a new month, a revision): the
                // texts and the working follow them quietly, so the wall and the next repeat
                // read today's projection, not the one it fired with (ARCHITECTURE §5). An
                // alert stored before a label existed (the audience) takes it the same way.
                Some(old)
                    if old.labels != want.labels
                        || old.summary_vi != want.summary_vi
                        || old.summary_en != want.summary_en
                        || old.link != want.link
                        || !same_figures(old.working.as_ref(), want.figures.as_ref()) =>
                {
                    let mut alert = old.clone();
                    alert.labels = want.labels.clone();
                    alert.summary_vi = want.summary_vi.clone();
                    alert.summary_en = want.summary_en.clone();
                    alert.link = want.link.clone();
                    alert.updated_at = now;
                    alert
                }
                Some(_) => continue,
            };
            let was_firing = active
                .get(fingerprint)
                .is_some_and(|a| a.state == AlertState::Firing);
            let severity_changed = active
                .get(fingerprint)
                .is_some_and(|a| a.severity != alert.severity);
            if alert.state == AlertState::Firing && (!was_firing || severity_changed || renewed) {
                notify_fingerprints.push(fingerprint.clone());
            }
            changed.push(alert);
        }
        for (fingerprint, old) in active.iter() {
            if desired.contains_key(fingerprint) || !in_scope(old) {
                continue;
            }
            let mut alert = old.clone();
            alert.state = AlertState::Resolved;
            alert.ends_at = Some(now);
            alert.updated_at = now;
            if let Some(closing) = closings.get(fingerprint) {
                alert.summary_vi.clone_from(&closing.summary_vi);
                alert.summary_en.clone_from(&closing.summary_en);
                alert
                    .labels
                    .insert("outcome".to_owned(), closing.outcome.to_owned());
            } else if let Some((vi, en)) = (old.rule == "slippage")
                .then(|| recovered_status(statuses, old))
                .flatten()
                .and_then(|status| self.recovered(status))
            {
                alert.summary_vi = vi;
                alert.summary_en = en;
            }
            if old.state == AlertState::Firing {
                // Only a firing alert was announced, so only it gets a resolved notice.
                notify_fingerprints.push(fingerprint.clone());
            }
            changed.push(alert);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        self.attach_working(&mut changed, statuses).await;
        for alert in &changed {
            if notify_fingerprints.contains(&alert.fingerprint) {
                notify.push(alert);
            }
        }
        let silences: Vec<Silence> = if notify.is_empty() {
            Vec::new()
        } else {
            self.store.silences().await?
        };
        let events = self.events_for(notify.iter().copied(), &silences, now);
        self.store.commit_alerts(&changed, &events, now).await?;
        for alert in &changed {
            let entered = active
                .get(&alert.fingerprint)
                .is_none_or(|old| old.state != alert.state);
            if entered {
                metrics::alert_transition(&alert.rule, alert.state);
            }
            if alert.state == AlertState::Resolved {
                active.remove(&alert.fingerprint);
            } else {
                active.insert(alert.fingerprint.clone(), alert.clone());
            }
        }
        publish_active(&active);
        if !events.is_empty() {
            tracing::info!(
                alerts = changed.len(),
                events = events.len(),
                "alert changes committed"
            );
        }
        Ok(changed)
    }

    /// The notifications `alerts` make: one per receiver their labels route to, unless a
    /// silence mutes them at `now`.
    fn events_for<'a>(
        &self,
        alerts: impl Iterator<Item = &'a Alert>,
        silences: &[Silence],
        now: DateTime<Utc>,
    ) -> Vec<NewAlertEvent> {
        alerts
            .filter(|alert| !silences.iter().any(|s| s.mutes(&alert.labels, now)))
            .flat_map(|alert| {
                self.route
                    .destinations(&alert.labels)
                    .into_iter()
                    .map(|d| NewAlertEvent {
                        receiver: d.receiver,
                        group_key: d.group_key,
                        fingerprint: alert.fingerprint.clone(),
                    })
            })
            .collect()
    }

    /// Alerts not resolved, newest change first.
    pub async fn active(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self.active.lock().await.values().cloned().collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.updated_at));
        alerts
    }

    /// Records an acknowledgement with its audit row; `None` when no such active alert exists.
    pub async fn acknowledge(
        &self,
        fingerprint: &str,
        ack: Ack,
        audit: &AuditEvent,
    ) -> StoreResult<Option<Alert>> {
        let mut active = self.active.lock().await;
        let Some(alert) = active.get(fingerprint) else {
            return Ok(None);
        };
        let mut alert = alert.clone();
        alert.updated_at = ack.at;
        alert.ack = Some(ack);
        self.store.commit_ack(&alert, audit).await?;
        active.insert(alert.fingerprint.clone(), alert.clone());
        Ok(Some(alert))
    }
}
