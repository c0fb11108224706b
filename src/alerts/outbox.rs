//! The outbox: a dispatcher groups committed alert events into notifications (group_wait,
//! group_interval, repeat_interval), and delivery lanes, one per receiver, send them with
//! exponential backoff and jitter, logging every attempt. Both read only the database, so after
//! a crash they resume where they were; a notification recorded as delivered is never sent
//! again. A group's notifications reach their receiver in the order they were queued: a later
//! one waits while an older one is pending (its retry included), and each alert in a message
//! carries its number at the receiver (ARCHITECTURE §5).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::manager::AlertManager;
use super::message::{AlertMessage, Notification};
use super::routing::{AlertingConfig, Destination};
use crate::domain::alert::{Alert, AlertEvent, AlertState, OutboxNotification};
use crate::metrics::{self, DeliveryOutcome, OutboxStage};
use crate::store::{DynStore, StoreResult};

/// How often the delivery backlog is measured: a scrape interval apart is plenty.
const BACKLOG_REFRESH: Duration = Duration::from_secs(15);

/// The most notifications one receiver's lane sends before it makes way for a new round.
const DELIVERIES_PER_ROUND: usize = 20;

/// How long one send may take before it counts as a failed attempt: longer than any
/// receiver's own timeout (30 s for mail), so it only cuts a send that hangs past them.
const SEND_DEADLINE: Duration = Duration::from_secs(45);

/// How long a claimed notification stays this instance's: longer than a send may take plus
/// recording it, so no other instance takes a notification still being delivered. A new
/// leader does not wait for it: it takes over every claim as it comes to lead
/// ([`Outbox::take_over_claims`]); the lease only bounds a claim nobody takes over (an outbox
/// that delivers without a leadership, as in the tests) (ARCHITECTURE §5).
const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Who claims notifications when the outbox is not told its instance's name: this process,
/// named apart from a restart of itself, whose claims are those of a process that may have
/// died mid-delivery.
static INSTANCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "pid{}-{:08x}",
        std::process::id(),
        rand::rng().random::<u32>()
    )
});

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

/// Sends one notification to its receiver.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, notification: &Notification) -> Result<(), SendError>;
    /// The receiver's language for human text (`vi` or `en`).
    fn language(&self, receiver: &str) -> String;
}

/// How long an alert fires without an event of its own before a dispatch announces it anyway
/// (a silence lifted): far longer than an alert's commit takes to reach the events.
const UNANNOUNCED_AFTER: chrono::Duration = chrono::Duration::seconds(60);

pub struct Outbox {
    store: DynStore,
    alerts: Arc<AlertManager>,
    sender: Arc<dyn Sender>,
    config: AlertingConfig,
    /// What its claims are marked with (`claimed_by`).
    instance: String,
}

/// `at + wait`, saturating: a wait too long to represent never elapses.
fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| at.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Outbox {
    pub fn new(
        store: DynStore,
        alerts: Arc<AlertManager>,
        sender: Arc<dyn Sender>,
        config: AlertingConfig,
    ) -> Self {
        for receiver in &config.receiver {
            metrics::outbox_receiver(&receiver.name);
        }
        Self {
            store,
            alerts,
            sender,
            config,
            instance: INSTANCE.clone(),
        }
    }

    /// Marks this outbox's claims with `instance`, the name the instance goes by elsewhere
    /// (`/readyz`, the leader's lock), so an operator can tell whose a claim is.
    pub fn claiming_as(mut self, instance: &str) -> Self {
        instance.clone_into(&mut self.instance);
        self
    }

    /// The metric label of a receiver: its name when configured; stored notifications may
    /// name one that no longer is, which must not add label values.
    fn receiver_label<'a>(&'a self, receiver: &'a str) -> &'a str {
        if self.config.receiver.iter().any(|r| r.name == receiver) {
            receiver
        } else {
            metrics::UNKNOWN_RECEIVER
        }
    }

    /// Measures the notifications waiting for delivery (due or waiting for a retry): how many,
    /// and the age of the oldest.
    pub async fn measure_delivery_backlog(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let (pending, oldest) = self.store.notification_backlog().await?;
        metrics::outbox_backlog(
            OutboxStage::Delivery,
            usize::try_from(pending).unwrap_or(usize::MAX),
            age(oldest, now),
        );
        Ok(())
    }

    /// Runs the dispatcher and the delivery worker until `shutdown`, while `leading` says
    /// this instance leads (`crate::leader`): one instance delivers for all. Each time it comes
    /// to lead it first takes over the claims its predecessors left ([`Self::take_over_claims`]),
    /// and when it stops leading it stops delivering at once, a send in flight included, so
    /// that its own claims are its successor's to take over in turn.
    pub fn spawn(
        self: Arc<Self>,
        shutdown: CancellationToken,
        mut leading: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = Duration::from_millis(self.config.dispatch_interval_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut measured: Option<Instant> = None;
            // Leading from the start is a term too: a predecessor, or this instance before a
            // restart, may have left claims.
            let mut new_term = true;
            // Each receiver's delivery runs on its own, so a receiver that hangs until the send
            // deadline holds up only itself; a lane still busy is left to finish.
            let mut lanes: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                // Leadership only changes by stepping down or up: any change seen since the last
                // round means a term ended, even when this instance leads again by now.
                if leading.has_changed().unwrap_or(false) {
                    new_term = true;
                }
                if !crate::leader::until_leading(&mut leading, &shutdown).await {
                    return;
                }
                let round = async {
                    if new_term {
                        // The lanes of a term that ended stopped with it; they are gone before
                        // the claims are taken over, so none records over a claim retaken.
                        stop_lanes(&mut lanes).await;
                        match self.take_over_claims().await {
                            Ok(_) => new_term = false,
                            Err(error) => {
                                tracing::error!(%error, "taking over notification claims failed");
                                return;
                            }
                        }
                    }
                    if let Err(error) = self.dispatch(Utc::now()).await {
                        tracing::error!(%error, "dispatching alert notifications failed");
                    }
                    if let Err(error) = self.start_lanes(&mut lanes, &leading, &shutdown).await {
                        tracing::error!(%error, "delivering alert notifications failed");
                    }
                    if measured.is_none_or(|at| at.elapsed() >= BACKLOG_REFRESH) {
                        measured = Some(Instant::now());
                        if let Err(error) = self.measure_delivery_backlog(Utc::now()).await {
                            tracing::warn!(%error, "measuring the notification backlog failed");
                        }
                    }
                };
                if crate::leader::while_leading(&leading, round)
                    .await
                    .is_none()
                {
                    tracing::warn!(
                        "no longer leads: notification delivery stopped, claims left to the next leader"
                    );
                }
            }
        });
    }

    /// Releases the claims of every pending notification, for this instance that has just
    /// come to lead; its deliveries then take them in turn, at once rather than when their
    /// lease ends. Whoever held them no longer leads and no longer delivers (ARCHITECTURE §7,
    /// [`crate::store::Store::release_notification_claims`]). A send its holder made but did
    /// not record is made again, under the same idempotency key.
    pub async fn take_over_claims(&self) -> StoreResult<usize> {
        let released = self.store.release_notification_claims().await?;
        for (id, holder) in &released {
            tracing::info!(id, holder = %holder, instance = %self.instance,
                "notification claim taken over from an instance that no longer leads");
        }
        Ok(released.len())
    }

    /// Groups undispatched events into notifications once their group may be notified, and
    /// repeats notifications of groups still firing after their repeat interval.
    pub async fn dispatch(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let events = self.store.undispatched_events().await?;
        let last: HashMap<(String, String), DateTime<Utc>> = self
            .store
            .last_notifications()
            .await?
            .into_iter()
            .map(|(receiver, group, at)| ((receiver, group), at))
            .collect();
        // The stored alerts (resolved ones too) are needed only to describe new events; this
        // runs every dispatch interval, so an idle second must not decode them all.
        let known: HashMap<String, Alert> = if events.is_empty() {
            HashMap::new()
        } else {
            self.store
                .alerts(true, 10_000)
                .await?
                .into_iter()
                .map(|a| (a.fingerprint.clone(), a))
                .collect()
        };
        // Who was last told which alert fires: a resolved alert is news only to them.
        let told_firing = if events.is_empty() {
            std::collections::HashSet::new()
        } else {
            self.store.told_firing().await?
        };
        let silences = self.store.silences().await?;
        let active = self.alerts.active().await;

        // Firing, unsilenced alerts per (receiver, group), with the route that put them there.
        let mut firing: BTreeMap<(String, String), (Destination, Vec<&Alert>)> = BTreeMap::new();
        for alert in active.iter().filter(|a| a.state == AlertState::Firing) {
            if silences.iter().any(|s| s.mutes(&alert.labels, now)) {
                continue;
            }
            for destination in self.alerts.route().destinations(&alert.labels) {
                firing
                    .entry((destination.receiver.clone(), destination.group_key.clone()))
                    .or_insert_with(|| (destination.clone(), Vec::new()))
                    .1
                    .push(alert);
            }
        }

        let mut grouped: BTreeMap<(String, String), Vec<&AlertEvent>> = BTreeMap::new();
        for event in &events {
            grouped
                .entry((event.receiver.clone(), event.group_key.clone()))
                .or_default()
                .push(event);
        }
        let mut sent = 0;
        // Creation times of the events left for a later dispatch, for the backlog metrics.
        let mut waiting: Vec<DateTime<Utc>> = Vec::new();
        for (key, group_events) in &grouped {
            let destination = group_events
                .iter()
                .filter_map(|e| known.get(&e.fingerprint))
                .flat_map(|a| self.alerts.route().destinations(&a.labels))
                .find(|d| d.receiver == key.0 && d.group_key == key.1);
            // The route may have changed since the event was committed (a new configuration):
            // the event still goes to the receiver it was meant for, without waiting. A receiver
            // that no longer exists fails the delivery permanently, which the outbox records.
            let destination = destination.unwrap_or_else(|| Destination {
                receiver: key.0.clone(),
                group_key: key.1.clone(),
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat_interval: Duration::MAX,
            });
            let first = group_events
                .iter()
                .map(|e| e.created_at)
                .min()
                .unwrap_or(now);
            let ready = match last.get(key) {
                None => now >= after(first, destination.group_wait),
                Some(previous) => now >= after(*previous, destination.group_interval),
            };
            if !ready {
                waiting.extend(group_events.iter().map(|e| e.created_at));
                continue;
            }
            let mut alerts: BTreeMap<&str, &Alert> = BTreeMap::new();
            for event in group_events {
                if let Some(alert) = known.get(&event.fingerprint) {
                    alerts.insert(&alert.fingerprint, alert);
                }
            }
            if let Some((_, still_firing)) = firing.get(key) {
                for alert in still_firing {
                    alerts.insert(&alert.fingerprint, alert);
                }
            }
            // An alert that fired and resolved before it was ever announced here (within the
            // group's wait, or between two notifications after a resolved one) is not news to
            // this receiver: its end is not told, as Alertmanager does not (ARCHITECTURE §5).
            alerts.retain(|fingerprint, alert| {
                alert.state != AlertState::Resolved
                    || told_firing.contains(&(key.0.clone(), (*fingerprint).to_owned()))
            });
            let ids: Vec<i64> = group_events.iter().map(|e| e.id).collect();
            if alerts.is_empty() {
                self.store.settle_events(&ids, now).await?;
                tracing::info!(
                    receiver = %key.0,
                    group_key = %key.1,
                    events = ids.len(),
                    "alerts resolved before they were announced: nothing to tell"
                );
                continue;
            }
            self.queue(&key.0, &key.1, alerts.into_values().collect(), &ids, now)
                .await?;
            sent += 1;
        }
        for (key, (destination, alerts)) in &firing {
            if grouped.contains_key(key) {
                continue;
            }
            let previous = last.get(key);
            // An alert that began firing after the group's last notification, with no event of
            // its own to announce it, was never told: it fired under a silence since lifted (or
            // before a route sent it here). It is told once the group may be notified. The
            // margin keeps off an alert whose event committed after this pass read the events.
            let unannounced = alerts.iter().any(|alert| {
                alert.fired_at.is_some_and(|fired| {
                    fired + UNANNOUNCED_AFTER <= now && previous.is_none_or(|last| fired > *last)
                })
            });
            let due = if unannounced {
                previous.is_none_or(|last| now >= after(*last, destination.group_interval))
            } else {
                previous.is_some_and(|last| now >= after(*last, destination.repeat_interval))
            };
            if due {
                self.queue(&key.0, &key.1, alerts.clone(), &[], now).await?;
                sent += 1;
            }
        }
        let oldest = waiting.iter().min().copied();
        metrics::outbox_backlog(OutboxStage::Grouping, waiting.len(), age(oldest, now));
        Ok(sent)
    }

    async fn queue(
        &self,
        receiver: &str,
        group_key: &str,
        alerts: Vec<&Alert>,
        event_ids: &[i64],
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let status = if alerts.iter().any(|a| a.state == AlertState::Firing) {
            AlertState::Firing
        } else {
            AlertState::Resolved
        };
        let notification = Notification {
            id: 0,
            receiver: receiver.to_owned(),
            group_key: group_key.to_owned(),
            status,
            alerts: alerts.iter().map(|a| AlertMessage::from(*a)).collect(),
            language: self.sender.language(receiver),
            created_at: now,
        };
        let payload = serde_json::to_value(&notification).unwrap_or_default();
        let id = self
            .store
            .dispatch(receiver, group_key, &payload, event_ids, now)
            .await?;
        tracing::info!(
            id,
            receiver,
            group_key,
            alerts = notification.alerts.len(),
            status = status.as_str(),
            "notification queued"
        );
        Ok(id)
    }

    /// Starts a delivery lane for each receiver with notifications due and no lane still
    /// running. A lane stops with the leadership or at `shutdown`, a send in flight included.
    async fn start_lanes(
        self: &Arc<Self>,
        lanes: &mut HashMap<String, tokio::task::JoinHandle<()>>,
        leading: &tokio::sync::watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> StoreResult<()> {
        lanes.retain(|_, lane| !lane.is_finished());
        for receiver in self.store.due_receivers(Utc::now()).await? {
            if lanes.contains_key(&receiver) {
                continue;
            }
            let (outbox, leading, shutdown) = (self.clone(), leading.clone(), shutdown.clone());
            let name = receiver.clone();
            let lane = tokio::spawn(async move {
                let work =
                    crate::leader::while_leading(&leading, outbox.deliver_to(&name, Utc::now()));
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    result = work => match result {
                        Some(Ok(_)) => {}
                        Some(Err(error)) => tracing::error!(%error, receiver = %name,
                            "delivering alert notifications failed"),
                        None => tracing::warn!(receiver = %name,
                            "no longer leads: notification delivery stopped, claims left to the next leader"),
                    },
                }
            });
            lanes.insert(receiver, lane);
        }
        Ok(())
    }

    /// Sends the notifications that are due, every receiver's at once, and returns when all
    /// are sent (or failed for now); how many were delivered. What the service runs is
    /// [`Self::spawn`], whose lanes do not wait for each other; this is one pass of them all.
    pub async fn deliver(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let receivers = self.store.due_receivers(now).await?;
        let lanes = receivers
            .iter()
            .map(|receiver| self.deliver_to(receiver, now));
        let mut delivered = 0;
        for result in futures::future::join_all(lanes).await {
            delivered += result?;
        }
        Ok(delivered)
    }

    /// Sends `receiver`'s notifications that are due, recording each attempt. Each is claimed
    /// before it is sent, one at a time, so that another instance delivering at the same moment
    /// never sends it too, and a claim's lease only has to cover one send. The claim passes
    /// over a notification whose group has an older one still pending, so a failed attempt
    /// holds its group's later notifications back until it is delivered or given up, while
    /// the receiver's other groups go on.
    pub async fn deliver_to(&self, receiver: &str, now: DateTime<Utc>) -> StoreResult<usize> {
        let mut delivered = 0;
        for _ in 0..DELIVERIES_PER_ROUND {
            let claimed = self
                .store
                .claim_receiver_notifications(&self.instance, receiver, now, CLAIM_LEASE, 1)
                .await?;
            let Some(row) = claimed.into_iter().next() else {
                break;
            };
            if self.send_claimed(row, now).await? {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Sends one claimed notification and records the attempt; true when it was delivered.
    async fn send_claimed(&self, row: OutboxNotification, now: DateTime<Utc>) -> StoreResult<bool> {
        let receiver = self.receiver_label(&row.receiver);
        let notification: Notification = match serde_json::from_value(row.payload.clone()) {
            Ok(n) => n,
            Err(error) => {
                metrics::outbox_delivery(receiver, DeliveryOutcome::Failed, None);
                self.record(
                    row.id,
                    now,
                    Some(&format!("unreadable payload: {error}")),
                    None,
                )
                .await?;
                return Ok(false);
            }
        };
        let attempt = row.attempts + 1;
        let started = Instant::now();
        let sent = tokio::time::timeout(SEND_DEADLINE, self.sender.send(&notification))
            .await
            .unwrap_or_else(|_| {
                Err(SendError {
                    message: format!("no answer within {} s", SEND_DEADLINE.as_secs()),
                    permanent: false,
                })
            });
        let elapsed = Some(started.elapsed());
        match sent {
            Ok(()) => {
                metrics::outbox_delivery(receiver, DeliveryOutcome::Delivered, elapsed);
                let recorded = self.record(row.id, Utc::now(), None, None).await?;
                if recorded {
                    tracing::info!(id = row.id, receiver = %row.receiver, attempt, "notification delivered");
                }
                Ok(recorded)
            }
            Err(error) => {
                let retry_at = (!error.permanent && attempt < self.config.max_attempts)
                    .then(|| Utc::now() + self.backoff(attempt));
                let outcome = if retry_at.is_some() {
                    DeliveryOutcome::Retry
                } else {
                    DeliveryOutcome::Failed
                };
                metrics::outbox_delivery(receiver, outcome, elapsed);
                if self
                    .record(row.id, Utc::now(), Some(&error.message), retry_at)
                    .await?
                {
                    tracing::warn!(id = row.id, receiver = %row.receiver, attempt, permanent = error.permanent,
                        retry_at = ?retry_at, error = %error.message, "notification delivery failed");
                }
                Ok(false)
            }
        }
    }

    /// Records an attempt at a notification this outbox claimed; false, with nothing
    /// recorded, when the claim was taken over meanwhile by a new leader, which sends the
    /// notification itself under the same idempotency key.
    async fn record(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let recorded = self
            .store
            .record_claimed_attempt(id, &self.instance, at, error, retry_at)
            .await?;
        if !recorded {
            tracing::warn!(
                id,
                instance = %self.instance,
                "notification claim taken over by another instance: this attempt is not recorded"
            );
        }
        Ok(recorded)
    }

    /// `base · 2^(attempt−1)`, capped, times a jitter in [0.5, 1.5) so that receivers coming
    /// back are not hit by every retry at once.
    fn backoff(&self, attempt: i32) -> chrono::Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let base = self
            .config
            .backoff_base_seconds
            .saturating_mul(1u64 << exponent);
        let capped = base.min(self.config.backoff_max_seconds) as f64;
        let jitter: f64 = rand::rng().random_range(0.5..1.5);
        chrono::Duration::milliseconds((capped * jitter * 1000.0) as i64)
    }
}

/// Stops every lane and waits until each is gone.
async fn stop_lanes(lanes: &mut HashMap<String, tokio::task::JoinHandle<()>>) {
    for (_, lane) in lanes.drain() {
        lane.abort();
        // A lane aborted (or one that ended) has nothing to report.
        let _ = lane.await;
    }
}

/// How long ago `oldest` was, at `now`; zero when nothing waits (or the clock went back).
fn age(oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    oldest
        .and_then(|at| (now - at).to_std().ok())
        .unwrap_or_default()
}

/// Delivers through the configured receivers.
pub struct ReceiverSender {
    receivers: super::receivers::Receivers,
    languages: HashMap<String, String>,
}

impl ReceiverSender {
    pub fn build(
        configs: &[super::receivers::ReceiverConfig],
        outbound: &Arc<crate::outbound::Policy>,
    ) -> anyhow::Result<Self> {
        let receivers = super::receivers::Receivers::build(configs, outbound)?;
        let languages = configs
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.language.clone().unwrap_or_else(|| "vi".into()),
                )
            })
            .collect();
        Ok(Self {
            receivers,
            languages,
        })
    }

    /// See [`super::receivers::Receivers::with_directory`].
    pub fn with_directory(mut self, directory: super::receivers::directory::Directory) -> Self {
        self.receivers = self.receivers.with_directory(directory);
        self
    }
}

#[async_trait]
impl Sender for ReceiverSender {
    async fn send(&self, notification: &Notification) -> Result<(), SendError> {
        self.receivers
            .deliver(notification)
            .await
            .map_err(|error| SendError {
                permanent: error.is_permanent(),
                message: error.to_string(),
            })
    }

    fn language(&self, receiver: &str) -> String {
        self.languages
            .get(receiver)
            .cloned()
            .unwrap_or_else(|| "vi".into())
    }
}
