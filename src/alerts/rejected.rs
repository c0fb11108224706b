//! Looks for spikes of rejected data on a timer, on the leader (ARCHITECTURE §5): each feed's
//! accepted and refused rows over the window come from the store's per-minute counts, which
//! every push adds to on whichever instance it lands, so the leader judges them all; the top
//! reasons of a spiking feed come from the refused rows the store keeps.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::manager::AlertManager;
use crate::domain::alert::Alert;
use crate::rules::rejects::{top_reasons, FeedRows, RejectedSpikeConfig, Spike};
use crate::store::activity::UNASSIGNED;
use crate::store::{DynStore, StoreResult};

pub struct RejectedSpikes {
    store: DynStore,
    alerts: Arc<AlertManager>,
    config: RejectedSpikeConfig,
}

impl RejectedSpikes {
    pub fn new(store: DynStore, alerts: Arc<AlertManager>, config: RejectedSpikeConfig) -> Self {
        Self {
            store,
            alerts,
            config,
        }
    }

    /// The feeds spiking at `now`, each with its top reasons.
    pub async fn spikes(&self, now: DateTime<Utc>) -> StoreResult<Vec<Spike>> {
        let since = now - chrono::Duration::minutes(i64::from(self.config.window_minutes));
        let counts = self.store.activity_counts(None, None, since).await?;
        let mut spikes = Vec::new();
        for count in counts {
            // Rows naming no indicator of the catalogue have no department to tell.
            if count.department == UNASSIGNED {
                continue;
            }
            let rows = FeedRows {
                department: count.department,
                feed: count.feed,
                accepted: count.accepted + count.duplicates,
                rejected: count.rejected,
            };
            if !rows.spikes(&self.config) {
                continue;
            }
            let reasons = self
                .store
                .refusal_reasons(&rows.department, Some(&rows.feed), since)
                .await?
                .into_iter()
                .map(|reason| (reason.code, reason.rows))
                .collect();
            spikes.push(Spike {
                rows,
                reasons: top_reasons(reasons),
            });
        }
        Ok(spikes)
    }

    /// Judges the windows ending at `now` and brings the alerts in line; returns the changed
    /// alerts. Switched off, any alert left resolves.
    pub async fn run(&self, now: DateTime<Utc>) -> StoreResult<Vec<Alert>> {
        let spikes = if self.config.enabled {
            self.spikes(now).await?
        } else {
            Vec::new()
        };
        self.alerts
            .reconcile_rejects(&spikes, &self.config, now)
            .await
    }

    /// Runs [`Self::run`] every `check_interval_seconds` while this instance leads.
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
                let run = crate::leader::while_leading(&leading, self.run(Utc::now()));
                if let Some(Err(error)) = run.await {
                    tracing::error!(%error, "looking for rejected-data spikes failed");
                }
            }
        });
    }
}
