//! Spikes of rejected data as alerts (ARCHITECTURE §5, [`crate::rules::rejects`]): a feed
//! spiking is a pending `rejected_spike` alert of its department, firing once the spike has
//! lasted `for_minutes` and resolving when the feed's window no longer spikes. Labelled with the
//! department (what routing sends it by) and the feed; only firing and the resolution of a
//! fired alert are news for the receivers.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::AlertManager;
use crate::alerts::audience::{self, Audience};
use crate::domain::alert::{Alert, AlertState, Severity, Silence};
use crate::metrics;
use crate::rules::rejects::{self, Names, Spike, RULE};
use crate::store::StoreResult;

fn fingerprint(department: &str, feed: &str) -> String {
    format!("{RULE}:{department}:{feed}")
}

impl AlertManager {
    /// Brings the `rejected_spike` alerts in line with `spikes` (every feed spiking at `now`)
    /// and commits the changes with their outbox events in one transaction; returns the
    /// changed alerts. The alerts of feeds not given resolve.
    pub async fn reconcile_rejects(
        &self,
        spikes: &[Spike],
        config: &rejects::RejectedSpikeConfig,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Alert>> {
        let mut active = self.active.lock().await;
        let wanted: HashMap<String, &Spike> = spikes
            .iter()
            .map(|s| (fingerprint(&s.rows.department, &s.rows.feed), s))
            .collect();
        let lasting = chrono::Duration::minutes(i64::from(config.for_minutes));
        let mut changed: Vec<Alert> = Vec::new();
        let mut news: Vec<String> = Vec::new();
        for (fingerprint, spike) in &wanted {
            let (summary_vi, summary_en) = self.spike_summaries(spike, config.window_minutes);
            let alert = match active.get(fingerprint) {
                None => {
                    let fires = lasting <= chrono::Duration::zero();
                    Alert {
                        fingerprint: fingerprint.clone(),
                        rule: RULE.to_owned(),
                        severity: Severity::Warning,
                        state: if fires {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        labels: self.spike_labels(spike),
                        summary_vi,
                        summary_en,
                        link: format!(
                            "{}/#/department/{}",
                            self.base_url.trim_end_matches('/'),
                            spike.rows.department
                        ),
                        starts_at: now,
                        fired_at: fires.then_some(now),
                        ends_at: None,
                        updated_at: now,
                        ack: None,
                        working: None,
                    }
                }
                Some(old) if old.state == AlertState::Pending && now - old.starts_at >= lasting => {
                    // The text says what the window holds as the alert fires.
                    let mut alert = old.clone();
                    alert.state = AlertState::Firing;
                    alert.fired_at = Some(now);
                    alert.summary_vi = summary_vi;
                    alert.summary_en = summary_en;
                    alert.updated_at = now;
                    alert
                }
                // Pending still, or firing already: nothing new to tell.
                Some(_) => continue,
            };
            if alert.state == AlertState::Firing {
                news.push(fingerprint.clone());
            }
            changed.push(alert);
        }
        for (fingerprint, old) in active.iter() {
            if old.rule != RULE || wanted.contains_key(fingerprint) {
                continue;
            }
            let mut alert = old.clone();
            alert.state = AlertState::Resolved;
            alert.ends_at = Some(now);
            alert.updated_at = now;
            if old.state == AlertState::Firing {
                // Only a firing alert was announced, so only it gets a resolved notice.
                news.push(fingerprint.clone());
            }
            changed.push(alert);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        let silences: Vec<Silence> = if news.is_empty() {
            Vec::new()
        } else {
            self.store.silences().await?
        };
        let events = self.events_for(
            changed
                .iter()
                .filter(|alert| news.contains(&alert.fingerprint)),
            &silences,
            now,
        );
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
            "rejected-data alerts committed"
        );
        Ok(changed)
    }

    fn spike_labels(&self, spike: &Spike) -> BTreeMap<String, String> {
        let audience = Audience::for_alert(RULE, None, self.city());
        [
            ("alertname", RULE.to_owned()),
            (audience::LABEL, audience.as_str().to_owned()),
            ("severity", Severity::Warning.as_str().to_owned()),
            ("department", spike.rows.department.clone()),
            ("feed", spike.rows.feed.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn spike_summaries(&self, spike: &Spike, window_minutes: u32) -> (String, String) {
        let code = spike.rows.department.as_str();
        let department = self.catalogue.department(code);
        let names = Names {
            department_vi: department.map_or(code, |d| d.name_vi.as_str()),
            department_en: department.map_or(code, |d| d.name_en.as_str()),
        };
        rejects::summaries(spike, &names, window_minutes)
    }
}
