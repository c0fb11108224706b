//! What happens after anything changes (ARCHITECTURE §3): committed rows, a changed target,
//! the clock's tick. Each goes the same way — the engine re-judges what the change touched, the
//! alerts of the targets whose status or pending state moved are brought in line, and the
//! screens get one delta per topic — so ingest, the target API and the timer cannot drift
//! apart in what they do after a write.
//!
//! Changes are applied one at a time, in the order they arrive; the writer hands over its
//! groups in commit order, so the live state always ends at the latest committed revision.

pub mod follow;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{watch, Mutex};

use crate::alerts::manager::AlertManager;
use crate::domain::alert::Alert;
use crate::domain::approval::ApprovedRevision;
use crate::domain::code::CodeHash;
use crate::domain::explanation::Explanation;
use crate::domain::{NewObservation, Status, Target};
use crate::live::view::{FeedEvent, Publisher, Update};
use crate::rules::engine::{Engine, StatusChange, TargetKey, TargetStatus};
use crate::store::DynStore;

/// One batch of a committed write group, as the pipeline needs it.
#[derive(Debug, Clone)]
pub struct CommittedBatch {
    /// The rows stored as new revisions (duplicates left out).
    pub rows: Vec<NewObservation>,
    /// When the writer stored them: what a row without its own `reported_at` is known from.
    pub received_at: DateTime<Utc>,
    /// What the feed log and the freshness display show of the batch.
    pub feed: FeedEvent,
}

/// Something that changed, to be carried to the engine, the alerts and the screens. A revision's
/// approval (ARCHITECTURE §8) is to come as one more kind, through the same path.
#[derive(Debug, Clone)]
pub enum Change {
    /// One write group, committed: its batches in the order they were written.
    Committed(Vec<CommittedBatch>),
    /// Targets set or replaced (the API, a configuration reload) at `at`.
    TargetsChanged {
        targets: Vec<Target>,
        at: DateTime<Utc>,
    },
    /// The timer: staleness and the passage of time, for every target.
    Tick(DateTime<Utc>),
    /// Revisions were approved (ARCHITECTURE §8), here or on another instance: nothing is
    /// judged again, since the engine and the screens follow the latest revisions whatever their
    /// state, but the screens showing them mark the new state at once.
    Approved(Vec<ApprovedRevision>),
    /// A department explained a target (giải trình): nothing is judged again, but the
    /// screens showing the target get its view with the explanation at once.
    Explained(Explanation),
    /// A task was created, redefined or moved on, here or on another instance: its alert is
    /// brought in line and the screens showing it get it at once.
    Task(Box<crate::domain::task::Task>),
}

/// What a change led to.
#[derive(Debug, Default)]
pub struct Applied {
    /// Official statuses that changed.
    pub changes: Vec<StatusChange>,
    /// Alerts that changed.
    pub alerts: Vec<Alert>,
    /// Targets whose alerts were looked at.
    pub reconciled: usize,
}

/// Applies a group's rows to the engine at the instants they became known, oldest first: the
/// rows without their own `reported_at` at the group's, the others at theirs. A row known before
/// the targets it touches were last evaluated still goes into the live state, and the engine
/// leaves those targets to the replay ([`Pipeline::catch_up`]).
fn apply_in_order(engine: &Engine, batches: &[CommittedBatch]) -> Vec<StatusChange> {
    let mut rows: Vec<(DateTime<Utc>, &NewObservation)> = batches
        .iter()
        .flat_map(|b| {
            b.rows
                .iter()
                .map(move |r| (r.reported_at.unwrap_or(b.received_at), r))
        })
        .collect();
    rows.sort_by_key(|(at, _)| *at);
    let mut changes = Vec::new();
    for chunk in rows.chunk_by(|a, b| a.0 == b.0) {
        let at = chunk[0].0;
        let group: Vec<&NewObservation> = chunk.iter().map(|(_, row)| *row).collect();
        changes.extend(engine.apply(&group, at));
    }
    changes
}

/// What a target's alerts depend on: its official status, the worse status waiting for its
/// `for`, which figure is flagged as unusual, if any (a new one is news to its department), and
/// which period is late (its alert names it). Other figures are left out: a write reconciles the targets whose judgement moved, and the
/// timer's tick, which looks at every target, brings the texts of the others' alerts up to
/// their figures (ARCHITECTURE §5).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AlertInputs {
    official: Status,
    pending: Option<Status>,
    /// The flagged figure's period and value, hashed.
    anomaly: Option<u64>,
    /// The period a late-figure alert names.
    overdue: Option<String>,
}

impl AlertInputs {
    fn of(status: &TargetStatus) -> Self {
        use std::hash::{Hash, Hasher};
        Self {
            official: status.evaluation.status,
            pending: status.pending.as_ref().map(|p| p.status),
            anomaly: status.anomaly.as_ref().map(|flagged| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                flagged.period.hash(&mut hasher);
                flagged.value.to_bits().hash(&mut hasher);
                hasher.finish()
            }),
            overdue: status.overdue_period.clone(),
        }
    }
}

pub struct Pipeline {
    engine: Arc<Engine>,
    /// What the engine replays targets from when a change reached them out of order.
    store: DynStore,
    alerts: Arc<AlertManager>,
    publisher: Arc<Publisher>,
    zone: Tz,
    /// Held while a change goes through: changes never interleave, and come out in the order
    /// they went in.
    order: Mutex<()>,
    /// Whether this instance leads ([`crate::leader`]): only the leader commits alert changes;
    /// the others judge and publish statuses for their own screens.
    leading: watch::Receiver<bool>,
    /// Holds of the replay ([`Pipeline::hold_replays`]): while any is alive, the targets
    /// reached out of order wait in the engine.
    replays_held: Arc<AtomicUsize>,
}

/// Keeps [`Pipeline::catch_up`] from replaying until dropped; see [`Pipeline::hold_replays`].
pub struct ReplayHold(Arc<AtomicUsize>);

impl Drop for ReplayHold {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pipeline {
    pub fn new(
        engine: Arc<Engine>,
        store: DynStore,
        alerts: Arc<AlertManager>,
        publisher: Arc<Publisher>,
        zone: Tz,
    ) -> Self {
        Self {
            engine,
            store,
            alerts,
            publisher,
            zone,
            order: Mutex::new(()),
            replays_held: Arc::new(AtomicUsize::new(0)),
            // Alone on its database until told otherwise: a receiver whose sender is gone
            // keeps `true`.
            leading: watch::channel(true).1,
        }
    }

    /// Commits alert changes only while `leading` says this instance leads.
    pub fn with_leadership(mut self, leading: watch::Receiver<bool>) -> Self {
        self.leading = leading;
        self
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }

    /// This instance has just become the leader: another instance committed the alerts until
    /// now, so they are read again from the store and every target's are brought in line, as on
    /// a tick but without evaluating (a tick only comes at its own instant, ARCHITECTURE §8).
    pub async fn lead(&self, now: DateTime<Utc>) -> Applied {
        let _order = self.order.lock().await;
        if let Err(error) = self.alerts.reload().await {
            tracing::error!(%error, "reading the alerts on taking the lead failed; the next tick retries");
            return Applied::default();
        }
        let statuses = self.engine.statuses(|_| true);
        let mut alerts = match self.alerts.reconcile(&statuses, now).await {
            Ok(alerts) => alerts,
            Err(error) => {
                tracing::error!(%error, "alert reconciliation on taking the lead failed");
                Vec::new()
            }
        };
        // The late tasks too: the former leader committed their alerts until now.
        alerts.extend(self.reconcile_tasks(now).await);
        self.publisher.publish(
            Update {
                alerts: &alerts,
                ..Update::default()
            },
            now,
        );
        Applied {
            alerts,
            reconciled: statuses.len(),
            ..Applied::default()
        }
    }

    /// Holds the replay of targets reached out of order until the hold is dropped, for a
    /// back-fill written in many groups: each group's replay reads every earlier figure of the
    /// targets it reached, so replaying them once, at the next change after the hold (a tick),
    /// costs one group's replay instead of one per group. The statuses in between are the
    /// forward ones; nothing is lost, as the engine keeps the targets it owes a replay.
    pub fn hold_replays(&self) -> ReplayHold {
        self.replays_held.fetch_add(1, Ordering::AcqRel);
        ReplayHold(self.replays_held.clone())
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Carries `change` through the engine, the alerts and the screens. Never fails: the change
    /// itself is already stored, so a failed alert commit is logged and left to the next tick,
    /// which looks at every target again.
    pub async fn apply(&self, change: Change) -> Applied {
        let _order = self.order.lock().await;
        match change {
            Change::Committed(batches) => self.committed(batches).await,
            Change::TargetsChanged { targets, at } => self.targets_changed(targets, at).await,
            Change::Tick(now) => self.tick(now).await,
            Change::Explained(explanation) => self.explained(explanation),
            Change::Approved(revisions) => self.approved(&revisions).await,
            Change::Task(task) => self.task_changed(*task).await,
        }
    }

    async fn committed(&self, batches: Vec<CommittedBatch>) -> Applied {
        let now = batches
            .iter()
            .map(|b| b.received_at)
            .max()
            .unwrap_or_else(Utc::now);
        if batches.iter().all(|b| b.rows.is_empty()) {
            // Only duplicates: nothing to judge, but the feed log still shows the pushes.
            for batch in batches {
                self.publish_feed(batch.feed, now);
            }
            return Applied::default();
        }
        let keys = self.touched_keys(&batches);
        let before = self.alert_inputs(&keys);
        // A large back-fill takes the engine a while: off the async workers.
        let engine = self.engine.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let changes = apply_in_order(&engine, &batches);
            (batches, changes)
        })
        .await;
        let (batches, mut changes) = match judged {
            Ok(judged) => judged,
            Err(error) => {
                tracing::error!(%error, "the engine failed on a committed group");
                return Applied::default();
            }
        };
        changes.extend(self.catch_up().await);
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), "target statuses changed");
        }
        let moved = self.moved(&keys, &before);
        let alerts = self.reconcile(&moved, now).await;
        let mut batches = batches.into_iter();
        if let Some(first) = batches.next() {
            let rows: Vec<&NewObservation> = std::iter::once(&first)
                .chain(batches.as_slice())
                .flat_map(|b| &b.rows)
                .collect();
            // A new revision starts preliminary again.
            self.publisher.approvals().revised(&rows);
            self.publisher.publish(
                Update {
                    observations: &rows,
                    changes: &changes,
                    alerts: &alerts,
                    feed: Some(first.feed.clone()),
                    ..Update::default()
                },
                now,
            );
        }
        for batch in batches {
            self.publish_feed(batch.feed, now);
        }
        Applied {
            changes,
            alerts,
            reconciled: moved.len(),
        }
    }

    async fn targets_changed(&self, targets: Vec<Target>, at: DateTime<Utc>) -> Applied {
        let mut changes = Vec::new();
        let mut keys = Vec::with_capacity(targets.len());
        for target in targets {
            keys.push((target.year, target.indicator.clone(), target.unit.clone()));
            changes.extend(self.engine.set_target(target, at));
        }
        changes.extend(self.catch_up().await);
        // A new value, band or tolerance moves the thresholds: every changed target's alerts
        // are looked at, whether or not its status moved yet.
        let statuses: Vec<TargetStatus> =
            keys.iter().filter_map(|k| self.engine.status(k)).collect();
        let alerts = self.reconcile(&statuses, at).await;
        self.publisher.publish(
            Update {
                targets: &keys,
                changes: &changes,
                alerts: &alerts,
                ..Update::default()
            },
            at,
        );
        Applied {
            changes,
            alerts,
            reconciled: statuses.len(),
        }
    }

    async fn tick(&self, now: DateTime<Utc>) -> Applied {
        let engine = self.engine.clone();
        let changes = match tokio::task::spawn_blocking(move || engine.evaluate_all(now)).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::error!(%error, "evaluation task failed");
                Vec::new()
            }
        };
        let mut changes = changes;
        changes.extend(self.catch_up().await);
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), "statuses changed on the timer");
        }
        // Staleness and pending runs ripening with time can move any target, and a failed
        // alert commit earlier is caught up here: every target is looked at.
        let statuses = self.engine.statuses(|_| true);
        let alerts = if self.leads() {
            // An acknowledgement may have come through another instance since the last tick.
            if let Err(error) = self.alerts.reload().await {
                tracing::warn!(%error, "reading the alerts again failed");
            }
            let mut alerts = match self.alerts.reconcile(&statuses, now).await {
                Ok(alerts) => alerts,
                Err(error) => {
                    tracing::error!(%error, "alert reconciliation failed");
                    Vec::new()
                }
            };
            // A task falls overdue with the passing of its due day.
            alerts.extend(self.reconcile_tasks(now).await);
            alerts
        } else {
            // The leader commits the alerts; this instance's list of them (the API, new
            // screens' snapshots) follows the store one tick behind at most.
            if let Err(error) = self.alerts.reload().await {
                tracing::warn!(%error, "reading the leader's alerts failed");
            }
            Vec::new()
        };
        self.publisher.publish(
            Update {
                changes: &changes,
                alerts: &alerts,
                ..Update::default()
            },
            now,
        );
        Applied {
            changes,
            alerts,
            reconciled: statuses.len(),
        }
    }

    async fn approved(&self, revisions: &[ApprovedRevision]) -> Applied {
        let Some(at) = revisions.iter().map(|r| r.approved_at).max() else {
            return Applied::default();
        };
        self.publisher
            .approvals()
            .approve(&self.store, revisions)
            .await;
        let keys: BTreeSet<TargetKey> = revisions
            .iter()
            .filter_map(|r| {
                let indicator = crate::domain::Code::parse(&r.indicator).ok()?;
                let unit = crate::domain::Code::parse(&r.unit).ok()?;
                let year = r
                    .period
                    .parse::<crate::domain::Period>()
                    .ok()?
                    .year(self.zone);
                Some((year, indicator, unit))
            })
            .collect();
        let keys: Vec<TargetKey> = keys.into_iter().collect();
        self.publisher.publish(
            Update {
                targets: &keys,
                ..Update::default()
            },
            at.max(Utc::now()),
        );
        Applied::default()
    }

    fn explained(&self, explanation: Explanation) -> Applied {
        let at = explanation.created_at;
        let key = self.publisher.explanations().add(explanation);
        self.publisher.publish(
            Update {
                targets: std::slice::from_ref(&key),
                ..Update::default()
            },
            at.max(Utc::now()),
        );
        Applied::default()
    }

    async fn task_changed(&self, task: crate::domain::task::Task) -> Applied {
        let now = Utc::now().max(task.updated_at);
        self.publisher.tasks().put(task.clone());
        let alerts = self.reconcile_tasks(now).await;
        self.publisher.publish_task(&task, now);
        if !alerts.is_empty() {
            self.publisher.publish(
                Update {
                    alerts: &alerts,
                    ..Update::default()
                },
                now,
            );
        }
        Applied {
            alerts,
            ..Applied::default()
        }
    }

    /// The late tasks' alerts, judged on the city's day at `now`; the leader's to commit.
    async fn reconcile_tasks(&self, now: DateTime<Utc>) -> Vec<Alert> {
        if !self.leads() {
            return Vec::new();
        }
        let today = now.with_timezone(&self.zone).date_naive();
        let tasks = self.publisher.tasks().all();
        match self.alerts.reconcile_tasks(&tasks, today, now).await {
            Ok(alerts) => alerts,
            Err(error) => {
                tracing::error!(%error, "task alert reconciliation failed; the next tick retries");
                Vec::new()
            }
        }
    }

    /// Another instance changed alerts (a commit, an acknowledgement, a silence): this
    /// instance's alert list and its screens follow.
    pub async fn alerts_changed(&self, at: DateTime<Utc>) {
        let _order = self.order.lock().await;
        match self.alerts.reload_changed(at).await {
            Ok(alerts) if !alerts.is_empty() => {
                self.publisher.publish(
                    Update {
                        alerts: &alerts,
                        ..Update::default()
                    },
                    at,
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "reading the alerts another instance changed failed");
            }
        }
    }

    /// Replays from the store the targets a change reached out of order (an instant before
    /// their last evaluation: a back-dated figure, or a commit that crossed a tick), so that
    /// their state is the one a replay gives (ARCHITECTURE §8). A failed read leaves them as
    /// they are until the next change that reaches them out of order, or a restart.
    async fn catch_up(&self) -> Vec<StatusChange> {
        if self.replays_held.load(Ordering::Acquire) > 0 {
            return Vec::new();
        }
        let behind = self.engine.take_behind();
        if behind.is_empty() {
            return Vec::new();
        }
        match self.engine.replay_targets(&self.store, &behind).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::error!(%error, targets = behind.len(), "replaying targets reached out of order failed");
                Vec::new()
            }
        }
    }

    /// The targets the engine re-judges for these rows: each row's year, and the next year,
    /// whose seasonal plan it sets.
    fn touched_keys(&self, batches: &[CommittedBatch]) -> BTreeSet<TargetKey> {
        let mut keys = BTreeSet::new();
        // A batch holds many periods of few series: each series and year is looked up once.
        let mut seen: HashSet<(&str, &str, i32), CodeHash> = HashSet::default();
        for row in batches.iter().flat_map(|b| &b.rows) {
            let year = row.period.year(self.zone);
            if !seen.insert((row.indicator.as_str(), row.unit.as_str(), year)) {
                continue;
            }
            // A ward's figure also moves the parents it rolls up into (ARCHITECTURE §2).
            let units = self
                .engine
                .rollups()
                .fed_units(row.indicator.as_str(), row.unit.as_str());
            for unit in units {
                for year in [year, year + 1] {
                    keys.insert((year, row.indicator.clone(), unit.clone()));
                }
            }
        }
        keys
    }

    fn alert_inputs(&self, keys: &BTreeSet<TargetKey>) -> HashMap<TargetKey, AlertInputs> {
        keys.iter()
            .filter_map(|key| {
                let status = self.engine.status(key)?;
                Some((key.clone(), AlertInputs::of(&status)))
            })
            .collect()
    }

    /// The statuses among `keys` whose alert inputs differ from `before`.
    fn moved(
        &self,
        keys: &BTreeSet<TargetKey>,
        before: &HashMap<TargetKey, AlertInputs>,
    ) -> Vec<TargetStatus> {
        keys.iter()
            .filter_map(|key| self.engine.status(key))
            .filter(|status| {
                let key = (status.year, status.indicator.clone(), status.unit.clone());
                before.get(&key) != Some(&AlertInputs::of(status))
            })
            .collect()
    }

    async fn reconcile(&self, statuses: &[TargetStatus], now: DateTime<Utc>) -> Vec<Alert> {
        if !self.leads() {
            return Vec::new();
        }
        match self.alerts.reconcile_targets(statuses, now).await {
            Ok(alerts) => alerts,
            Err(error) => {
                tracing::error!(%error, targets = statuses.len(), "alert reconciliation failed; the next tick retries");
                Vec::new()
            }
        }
    }

    fn publish_feed(&self, feed: FeedEvent, now: DateTime<Utc>) {
        self.publisher.publish(
            Update {
                feed: Some(feed),
                ..Update::default()
            },
            now,
        );
    }
}
