//! What screens see: target views with their year's points, alerts and feed events, built into
//! per-topic snapshots and deltas and handed to the [`Hub`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::approvals::{figure_state, ApprovalStates};
use super::explanations::Explanations;
use super::feeds::{FeedHealth, FeedHealthRegistry};
use super::tasks::Tasks;
use super::{Hub, SnapshotReason, Topic};
use crate::alerts::manager::AlertManager;
use crate::domain::alert::Alert;
use crate::domain::explanation::Explanation;
use crate::domain::{ApprovalState, Catalogue, Code, Kind, NewObservation};
use crate::rules::engine::{Engine, StatusChange, TargetKey, TargetStatus};

/// Feed events kept for the `feeds` snapshot.
const FEEDS_KEPT: usize = 50;

/// How long a built snapshot may be handed out again while no delta was published; bounded
/// so that projections moved by the passage of time reach new screens.
const SNAPSHOT_REUSE: Duration = Duration::from_secs(1);

/// One point of a sparkline.
#[derive(Debug, Clone, Serialize)]
pub struct PointView {
    pub period: String,
    pub end: DateTime<Utc>,
    pub value: f64,
    /// Left out while the figure is preliminary, as most are.
    #[serde(skip_serializing_if = "ApprovalState::is_preliminary")]
    pub state: ApprovalState,
}

/// A target's status with its year's points.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    #[serde(flatten)]
    pub status: TargetStatus,
    pub points: Vec<PointView>,
    /// How far the year's figure is approved (ARCHITECTURE §8): screens mark it unless official.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ApprovalState>,
    /// The department's current explanation of the target, when it has given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// A series of a unit that has no target of its own: its values, for the per-unit ranking.
#[derive(Debug, Clone, Serialize)]
pub struct UntargetedView {
    pub indicator: Code,
    pub unit: Code,
    pub year: i32,
    /// Always null: what tells this view from a [`TargetView`].
    pub target: Option<()>,
    /// The year's value so far: the sum of a flow, the mean of an average, else the latest.
    pub actual: Option<f64>,
    pub points: Vec<PointView>,
    /// How far the year's figure is approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ApprovalState>,
}

/// One value as it arrived.
#[derive(Debug, Clone, Serialize)]
pub struct ObservationView {
    pub indicator: Code,
    pub unit: Code,
    pub period: String,
    /// `null` when the period's value was withdrawn.
    pub value: Option<f64>,
}

/// One accepted batch, for the freshness display and the feed log.
#[derive(Debug, Clone, Serialize)]
pub struct FeedEvent {
    pub at: DateTime<Utc>,
    /// The department that pushed, or `admin`.
    pub source: String,
    pub format: String,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub indicators: Vec<Code>,
}

/// Everything one event changed; any part may be empty.
#[derive(Debug, Default)]
pub struct Update<'a> {
    pub observations: &'a [&'a NewObservation],
    pub changes: &'a [StatusChange],
    /// Targets whose definition changed.
    pub targets: &'a [TargetKey],
    pub alerts: &'a [Alert],
    pub feed: Option<FeedEvent>,
}

/// The per-topic data of one delta about targets.
#[derive(Debug, Default, Serialize)]
struct TargetsDelta {
    targets: Vec<Value>,
    /// Units without a target of their own (only on `indicator:` topics).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    untargeted: Vec<Value>,
    observations: Vec<ObservationView>,
    changes: Vec<StatusChange>,
}

struct CachedSnapshot {
    seq: u64,
    built: Instant,
    data: Arc<str>,
}

/// Builds the screens' payloads from the engine and the alerts, and publishes them.
pub struct Publisher {
    hub: Arc<Hub>,
    catalogue: Arc<Catalogue>,
    engine: Arc<Engine>,
    alerts: Arc<AlertManager>,
    zone: Tz,
    city: Code,
    feeds: Mutex<VecDeque<FeedEvent>>,
    /// The collectors' health, in the `feeds` snapshot beside the events.
    feed_health: Arc<FeedHealthRegistry>,
    snapshots: Mutex<HashMap<Topic, CachedSnapshot>>,
    /// The current explanation of each target, shown in its view.
    explanations: Explanations,
    /// How far each figure shown is approved.
    approvals: ApprovalStates,
    /// The directives' tasks, on `overview`, `department:` and `indicator:` topics.
    tasks: Tasks,
    /// Cancelled at shutdown: connections say goodbye instead of being cut.
    closing: CancellationToken,
}

impl Publisher {
    pub fn new(
        hub: Arc<Hub>,
        catalogue: Arc<Catalogue>,
        engine: Arc<Engine>,
        alerts: Arc<AlertManager>,
        zone: Tz,
    ) -> anyhow::Result<Self> {
        let city = catalogue
            .root_unit()
            .map(|unit| unit.code.clone())
            .context("the catalogue has no city (a unit without parent)")?;
        Ok(Self {
            hub,
            catalogue,
            engine,
            alerts,
            zone,
            city,
            feeds: Mutex::new(VecDeque::with_capacity(FEEDS_KEPT)),
            feed_health: Arc::new(FeedHealthRegistry::default()),
            snapshots: Mutex::new(HashMap::new()),
            explanations: Explanations::default(),
            approvals: ApprovalStates::default(),
            tasks: Tasks::default(),
            closing: CancellationToken::new(),
        })
    }

    /// Shows the collectors of `registry` on the `feeds` topic.
    pub fn with_feed_health(mut self, registry: Arc<FeedHealthRegistry>) -> Self {
        self.feed_health = registry;
        self
    }

    /// Tells `feeds` screens that a collector's health changed: a delta `{"collector": …}`
    /// beside the `{"feed": …}` deltas of accepted batches.
    pub fn publish_feed_health(&self, health: &FeedHealth, now: DateTime<Utc>) -> usize {
        let topics = [Topic::Feeds];
        if !self.hub.watched(&topics).first().copied().unwrap_or(false) {
            return 0;
        }
        self.hub
            .publish(now, &[(Topic::Feeds, json!({ "collector": health }))])
    }

    /// The targets' current explanations, as the store has them at start.
    pub fn with_explanations(self, current: Vec<Explanation>) -> Self {
        self.explanations.replace_all(current);
        self
    }

    /// The approval states of the figures, as the store has them at start.
    pub fn with_approvals(mut self, states: ApprovalStates) -> Self {
        self.approvals = states;
        self
    }

    /// The tasks as the store has them at start.
    pub fn with_tasks(self, tasks: Vec<crate::domain::task::Task>) -> Self {
        self.tasks.replace_all(tasks);
        self
    }

    /// The tasks, which [`crate::pipeline`] keeps up to date.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Tells the screens showing `task` that it changed: a `{"task": …}` delta, judged on the
    /// city's day at `now`, to each watched topic that shows it.
    pub fn publish_task(&self, task: &crate::domain::task::Task, now: DateTime<Utc>) -> usize {
        let topics = super::tasks::topics(task);
        let watched: Vec<Topic> = topics
            .iter()
            .zip(self.hub.watched(&topics))
            .filter(|(_, watched)| *watched)
            .map(|(topic, _)| topic.clone())
            .collect();
        if watched.is_empty() {
            return 0;
        }
        let today = now.with_timezone(&self.zone).date_naive();
        let view = crate::domain::task_view::TaskView::of(task, today);
        let deltas: Vec<(Topic, Value)> = watched
            .into_iter()
            .map(|topic| (topic, json!({ "task": view })))
            .collect();
        self.hub.publish(now, &deltas)
    }

    /// The approval state of each figure, which [`crate::pipeline`] keeps up to date.
    pub fn approvals(&self) -> &ApprovalStates {
        &self.approvals
    }

    /// The current explanation of each target, which [`crate::pipeline`] keeps up to date.
    pub fn explanations(&self) -> &Explanations {
        &self.explanations
    }

    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn city(&self) -> &Code {
        &self.city
    }

    /// The year screens follow: the current calendar year in the city, or while that year has
    /// no targets yet (early January), the last year that has, whose final figures are still
    /// arriving.
    pub fn year(&self, now: DateTime<Utc>) -> i32 {
        let current = now.with_timezone(&self.zone).year();
        self.engine.target_year_up_to(current).unwrap_or(current)
    }

    /// A series' points with their approval states, and the state of the year's figure.
    fn points(
        &self,
        indicator: &Code,
        unit: &Code,
        year: i32,
    ) -> (Vec<PointView>, Option<ApprovalState>) {
        let mut points: Vec<PointView> = self
            .engine
            .year_points(indicator, unit, year)
            .into_iter()
            .map(|latest| PointView {
                period: latest.period.to_string(),
                end: latest.end,
                value: latest.value,
                state: ApprovalState::Preliminary,
            })
            .collect();
        let states = self.approvals.of_points(
            indicator.as_str(),
            unit.as_str(),
            points.iter().map(|p| p.period.as_str()),
        );
        for (point, state) in points.iter_mut().zip(&states) {
            point.state = *state;
        }
        let state = self
            .catalogue
            .indicator(indicator.as_str())
            .and_then(|found| figure_state(found.kind, &states));
        (points, state)
    }

    fn view(&self, status: TargetStatus) -> TargetView {
        let (points, state) = self.points(&status.indicator, &status.unit, status.year);
        let explanation =
            self.explanations
                .get(&(status.year, status.indicator.clone(), status.unit.clone()));
        TargetView {
            status,
            points,
            state,
            explanation,
        }
    }

    /// The year's values of a unit's series that has no target; `None` when it has no values.
    fn untargeted(&self, indicator: &Code, unit: &Code, year: i32) -> Option<UntargetedView> {
        let kind = self.catalogue.indicator(indicator.as_str())?.kind;
        let (points, state) = self.points(indicator, unit, year);
        let last = points.last()?.value;
        let actual = match kind {
            Kind::Flow => points.iter().map(|p| p.value).sum(),
            Kind::Average => points.iter().map(|p| p.value).sum::<f64>() / points.len() as f64,
            Kind::Cumulative | Kind::Level | Kind::Growth => last,
        };
        Some(UntargetedView {
            indicator: indicator.clone(),
            unit: unit.clone(),
            year,
            target: None,
            actual: Some(actual),
            points,
            state,
        })
    }

    /// The topics a target's news goes to.
    fn target_topics(&self, indicator: &Code, unit: &Code) -> Vec<Topic> {
        let mut topics = vec![
            Topic::Indicator(indicator.clone()),
            Topic::Unit(unit.clone()),
        ];
        if *unit == self.city {
            topics.push(Topic::Overview);
            if let Some(found) = self.catalogue.indicator(indicator.as_str()) {
                topics.push(Topic::Group(found.group.clone()));
            }
        }
        topics
    }

    /// Publishes one delta per watched topic that `update` touches.
    pub fn publish(&self, update: Update<'_>, now: DateTime<Utc>) -> usize {
        let year = self.year(now);
        let mut by_topic: BTreeMap<Topic, TargetsDelta> = BTreeMap::new();
        let mut touched: BTreeMap<TargetKey, Vec<Topic>> = BTreeMap::new();
        for row in update.observations {
            if row.period.year(self.zone) != year {
                continue;
            }
            let topics = self.target_topics(&row.indicator, &row.unit);
            for topic in &topics {
                by_topic
                    .entry(topic.clone())
                    .or_default()
                    .observations
                    .push(ObservationView {
                        indicator: row.indicator.clone(),
                        unit: row.unit.clone(),
                        period: row.period.to_string(),
                        value: row.value,
                    });
            }
            touched.insert((year, row.indicator.clone(), row.unit.clone()), topics);
            // The parents a ward's figure rolls up into show their new value too.
            let rollups = self.engine.rollups();
            for unit in rollups.fed_units(row.indicator.as_str(), row.unit.as_str()) {
                if unit != row.unit {
                    let topics = self.target_topics(&row.indicator, &unit);
                    for topic in &topics {
                        by_topic.entry(topic.clone()).or_default();
                    }
                    touched.insert((year, row.indicator.clone(), unit), topics);
                }
            }
        }
        for change in update.changes.iter().filter(|c| c.year == year) {
            let topics = self.target_topics(&change.indicator, &change.unit);
            for topic in &topics {
                by_topic
                    .entry(topic.clone())
                    .or_default()
                    .changes
                    .push(change.clone());
            }
            touched.insert(
                (year, change.indicator.clone(), change.unit.clone()),
                topics,
            );
        }

        for key in update.targets.iter().filter(|key| key.0 == year) {
            let topics = self.target_topics(&key.1, &key.2);
            for topic in &topics {
                by_topic.entry(topic.clone()).or_default();
            }
            touched.insert(key.clone(), topics);
        }

        let mut candidates: Vec<Topic> = by_topic.keys().cloned().collect();
        if !update.alerts.is_empty() {
            candidates.push(Topic::Alerts);
        }
        if let Some(feed) = &update.feed {
            let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            if feeds.len() == FEEDS_KEPT {
                feeds.pop_front();
            }
            feeds.push_back(feed.clone());
            candidates.push(Topic::Feeds);
        }
        let watched: Vec<Topic> = candidates
            .iter()
            .zip(self.hub.watched(&candidates))
            .filter(|(_, watched)| *watched)
            .map(|(topic, _)| topic.clone())
            .collect();
        if watched.is_empty() {
            return 0;
        }

        // Each target's view is built once, however many topics carry it.
        for (key, topics) in &touched {
            if !topics.iter().any(|t| watched.contains(t)) {
                continue;
            }
            let built = match self.engine.status(key) {
                Some(status) => serde_json::to_value(self.view(status)).map(|v| (v, false)),
                // A unit without a target of its own still ranks in its indicator's comparison.
                None => match self.untargeted(&key.1, &key.2, key.0) {
                    Some(view) => serde_json::to_value(view).map(|v| (v, true)),
                    None => continue,
                },
            };
            let (view, untargeted) = match built {
                Ok(built) => built,
                Err(error) => {
                    tracing::error!(%error, "cannot serialize a target view");
                    continue;
                }
            };
            let carriers = topics
                .iter()
                .filter(|t| watched.contains(t))
                .filter(|t| !untargeted || matches!(t, Topic::Indicator(_)));
            for topic in carriers {
                if let Some(delta) = by_topic.get_mut(topic) {
                    let list = if untargeted {
                        &mut delta.untargeted
                    } else {
                        &mut delta.targets
                    };
                    list.push(view.clone());
                }
            }
        }

        let mut deltas: Vec<(Topic, Value)> = Vec::with_capacity(watched.len());
        for topic in watched {
            let data = match &topic {
                Topic::Alerts => json!({ "alerts": update.alerts }),
                Topic::Feeds => json!({ "feed": update.feed }),
                other => match by_topic.remove(other).map(serde_json::to_value) {
                    Some(Ok(data)) => data,
                    Some(Err(error)) => {
                        tracing::error!(%error, "cannot serialize a delta");
                        continue;
                    }
                    None => continue,
                },
            };
            deltas.push((topic, data));
        }
        self.hub.publish(now, &deltas)
    }

    /// The text of a snapshot frame for `topic` at `seq`.
    pub async fn snapshot(
        &self,
        topic: &Topic,
        seq: u64,
        reason: SnapshotReason,
        now: DateTime<Utc>,
    ) -> Result<Utf8Bytes, serde_json::Error> {
        let data = self.snapshot_data(topic, seq, now).await?;
        let head = json!({
            "type": "snapshot",
            "topic": topic,
            "seq": seq,
            "reason": reason,
        })
        .to_string();
        // `head` is a JSON object: splice the shared data in without re-serializing it.
        let mut text = String::with_capacity(head.len() + data.len() + 10);
        text.push_str(&head[..head.len() - 1]);
        text.push_str(",\"data\":");
        text.push_str(&data);
        text.push('}');
        Ok(text.into())
    }

    async fn snapshot_data(
        &self,
        topic: &Topic,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Result<Arc<str>, serde_json::Error> {
        {
            let cache = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cached) = cache.get(topic) {
                if cached.seq == seq && cached.built.elapsed() < SNAPSHOT_REUSE {
                    return Ok(cached.data.clone());
                }
            }
        }
        let year = self.year(now);
        let targets = |filter: &dyn Fn(&TargetStatus) -> bool| -> Vec<TargetView> {
            self.engine
                .statuses(|s| s.year == year && filter(s))
                .into_iter()
                .map(|status| self.view(status))
                .collect()
        };
        let city = &self.city;
        let today = now.with_timezone(&self.zone).date_naive();
        let data = match topic {
            Topic::Overview => serde_json::to_string(&json!({
                "year": year,
                "unit": city,
                "targets": targets(&|s| s.unit == *city),
                "tasks": self.tasks.for_topic(topic, today),
            }))?,
            Topic::Group(group) => serde_json::to_string(&json!({
                "year": year,
                "unit": city,
                "group": group,
                "targets": targets(&|s| s.unit == *city && s.group == *group),
            }))?,
            Topic::Unit(unit) => serde_json::to_string(&json!({
                "year": year,
                "unit": unit,
                "targets": targets(&|s| s.unit == *unit),
            }))?,
            Topic::Indicator(indicator) => {
                let with_targets = targets(&|s| s.indicator == *indicator);
                let untargeted: Vec<UntargetedView> = self
                    .catalogue
                    .indicator(indicator.as_str())
                    .map(|found| self.catalogue.reporting_units(found))
                    .into_iter()
                    .flatten()
                    .filter(|unit| !with_targets.iter().any(|v| v.status.unit == unit.code))
                    .filter_map(|unit| self.untargeted(indicator, &unit.code, year))
                    .collect();
                serde_json::to_string(&json!({
                    "year": year,
                    "indicator": indicator,
                    "targets": with_targets,
                    "untargeted": untargeted,
                    "tasks": self.tasks.for_topic(topic, today),
                }))?
            }
            Topic::Alerts => serde_json::to_string(&json!({
                "alerts": self.alerts.active().await,
            }))?,
            Topic::Department(department) => {
                let tasks = self.tasks.for_topic(topic, today);
                let summary = crate::domain::task_view::summarize(&tasks, &self.catalogue);
                serde_json::to_string(&json!({
                    "department": department,
                    "summary": summary,
                    "tasks": tasks,
                }))?
            }
            Topic::Feeds => {
                let feeds: Vec<FeedEvent> = self
                    .feeds
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                let collectors = self.feed_health.list(now);
                serde_json::to_string(&json!({ "feeds": feeds, "collectors": collectors }))?
            }
        };
        let data: Arc<str> = data.into();
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                topic.clone(),
                CachedSnapshot {
                    seq,
                    built: Instant::now(),
                    data: data.clone(),
                },
            );
        Ok(data)
    }
}
