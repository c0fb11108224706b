//! Collectors: feeds the service fetches (HTTP pull on a schedule) or subscribes to (MQTT, NATS),
//! and back-fill from files. Each one hands its rows to the same [`crate::ingest::Ingestor`] as a
//! push, so validation, scoping and everything downstream are the same.
//!
//! Every configured collector has a [`FeedHealth`] in the shared [`FeedHealthRegistry`]: the
//! feeds API reads it, the metrics mirror it and the screens' `feeds` topic is told when it
//! changes. [`Collectors::spawn`] starts them all with the app's shutdown token.

pub mod import;
pub mod pull;
pub mod schedule;
pub mod stream;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::config::feeds::FeedsConfig;
use crate::config::Settings;
use crate::domain::{Catalogue, Code};
use crate::ingest::{Format, Ingestor};
use crate::live::view::Publisher;
use crate::metrics;
use crate::store::{DynStore, IngestReceipt};

/// A stream feed's health is pushed to screens at most this often, unless its state changes:
/// every message already publishes its own feed event.
const STREAM_HEALTH_PUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Longest error message kept in a feed's health.
const MAX_ERROR_LEN: usize = 500;

/// Longest feed name: it labels metrics, feed state rows and log lines.
const MAX_FEED_NAME_LEN: usize = 64;

/// Which kind of collector a feed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Pull,
    Mqtt,
    Nats,
}

/// How a feed is doing, as the screens and the API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Not run (pull) or not connected (stream) since the service started.
    NeverRun,
    Ok,
    Failing,
}

/// Rows of one run, or of every run since the service started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowCounts {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
}

impl RowCounts {
    pub fn of(receipt: &IngestReceipt) -> Self {
        Self {
            accepted: receipt.accepted,
            duplicates: receipt.duplicates,
            rejected: receipt.rejected.len(),
        }
    }

    pub fn add(&mut self, other: Self) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
    }
}

/// Messages a stream feed received since the service started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageCounts {
    pub received: u64,
    /// Messages whose body could not be read, or whose rows were refused as a whole.
    pub invalid: u64,
}

/// The latest error, kept after recovery so operators can see what happened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FeedError {
    pub at: DateTime<Utc>,
    pub message: String,
}

impl FeedError {
    /// Keeps at most [`MAX_ERROR_LEN`] bytes: a message may quote a topic or a server's text.
    pub fn new(at: DateTime<Utc>, mut message: String) -> Self {
        truncate(&mut message, MAX_ERROR_LEN);
        Self { at, message }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// One collector's health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FeedHealth {
    pub name: String,
    pub kind: FeedKind,
    pub department: Code,
    /// The push format of its bodies: `json`, `csv`, `sdmx-csv`, `sdmx-json`, `dhis2`,
    /// `dhis2-csv` or `line`.
    #[schema(value_type = String)]
    pub format: &'static str,
    /// `every 15m` or `cron 0 */5 * * * *` (pull collectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub state: FeedState,
    /// Whether the stream is connected to its broker (stream feeds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// When the last run started (pull) or the last message arrived (stream).
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<FeedError>,
    pub consecutive_failures: u32,
    /// Rows of the last successful fetch or message.
    pub last_run: Option<RowCounts>,
    pub total: RowCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageCounts>,
    /// Seconds since the last success, as of when this view was taken.
    pub lag_seconds: Option<i64>,
    /// When a pull collector runs next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,
}

impl FeedHealth {
    fn new(name: &str, kind: FeedKind, department: &Code, format: Format) -> Self {
        let stream = kind != FeedKind::Pull;
        Self {
            name: name.to_owned(),
            kind,
            department: department.clone(),
            format: format.name(),
            schedule: None,
            state: FeedState::NeverRun,
            connected: stream.then_some(false),
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
            consecutive_failures: 0,
            last_run: None,
            total: RowCounts::default(),
            messages: stream.then(MessageCounts::default),
            lag_seconds: None,
            next_run_at: None,
        }
    }

    fn with_lag(mut self, now: DateTime<Utc>) -> Self {
        self.lag_seconds = self
            .last_success_at
            .map(|at| (now - at).num_seconds().max(0));
        self
    }

    /// What a screen reacts to; counters and timestamps move on every run and are pushed at
    /// a bounded rate instead.
    fn signal(&self) -> (FeedState, Option<bool>, u32, Option<String>) {
        (
            self.state,
            self.connected,
            self.consecutive_failures,
            self.last_error.as_ref().map(|e| e.message.clone()),
        )
    }
}

struct Entry {
    health: FeedHealth,
    pushed: Option<Instant>,
}

/// The health of every configured collector, shared by the collectors, the feeds API and the
/// screens' `feeds` topic.
#[derive(Default)]
pub struct FeedHealthRegistry {
    // A std mutex: held only to copy or update a small record, never across an await.
    feeds: Mutex<BTreeMap<String, Entry>>,
}

impl FeedHealthRegistry {
    /// Registers every collector of `feeds` as never run, after checking the names are unique
    /// and each department exists in the catalogue.
    pub fn for_config(feeds: &FeedsConfig, catalogue: &Catalogue) -> Result<Self, FeedConfigError> {
        let mut initial = Vec::new();
        for pull in &feeds.pull {
            let mut health =
                FeedHealth::new(&pull.name, FeedKind::Pull, &pull.department, pull.format.0);
            health.schedule = Some(pull.schedule.to_string());
            initial.push(health);
        }
        for mqtt in &feeds.mqtt {
            initial.push(FeedHealth::new(
                &mqtt.name,
                FeedKind::Mqtt,
                &mqtt.department,
                mqtt.format.0,
            ));
        }
        for nats in &feeds.nats {
            initial.push(FeedHealth::new(
                &nats.name,
                FeedKind::Nats,
                &nats.department,
                nats.format.0,
            ));
        }
        let mut registered = BTreeMap::new();
        for health in initial {
            if catalogue.department(health.department.as_str()).is_none() {
                return Err(FeedConfigError::UnknownDepartment {
                    feed: health.name,
                    department: health.department.to_string(),
                });
            }
            let name = health.name.clone();
            let entry = Entry {
                health,
                pushed: None,
            };
            if registered.insert(name.clone(), entry).is_some() {
                return Err(FeedConfigError::DuplicateName(name));
            }
        }
        for entry in registered.values() {
            metrics::feed_up(&entry.health.name, false);
        }
        Ok(Self {
            feeds: Mutex::new(registered),
        })
    }

    /// Every collector's health as of `now`, by name.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<FeedHealth> {
        self.lock()
            .values()
            .map(|entry| entry.health.clone().with_lag(now))
            .collect()
    }

    pub fn get(&self, name: &str, now: DateTime<Utc>) -> Option<FeedHealth> {
        self.lock()
            .get(name)
            .map(|entry| entry.health.clone().with_lag(now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to the feed's health; returns the new health when screens should be
    /// told about it.
    fn update(
        &self,
        name: &str,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut FeedHealth),
    ) -> Option<FeedHealth> {
        let mut feeds = self.lock();
        let entry = feeds.get_mut(name)?;
        let before = entry.health.signal();
        change(&mut entry.health);
        let changed = before != entry.health.signal();
        let quiet_long_enough = entry
            .pushed
            .is_none_or(|at| at.elapsed() >= STREAM_HEALTH_PUSH_INTERVAL);
        // Pull runs are rare enough that every run is worth a push.
        let push = changed || entry.health.kind == FeedKind::Pull || quiet_long_enough;
        if !push {
            return None;
        }
        entry.pushed = Some(Instant::now());
        Some(entry.health.clone().with_lag(now))
    }
}

/// A collector configuration the catalogue contradicts.
#[derive(Debug, thiserror::Error)]
pub enum FeedConfigError {
    #[error("feeds.toml: the feed name `{0}` is used more than once (names are unique across [[pull]], [[mqtt]] and [[nats]])")]
    DuplicateName(String),
    #[error("feeds.toml: feed `{feed}` belongs to `{department}`, which is not a department of the catalogue")]
    UnknownDepartment { feed: String, department: String },
}

/// What a collector needs from the running service.
#[derive(Clone)]
pub struct FeedContext {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub ingestor: Arc<Ingestor>,
    pub publisher: Arc<Publisher>,
    pub health: Arc<FeedHealthRegistry>,
}

impl FeedContext {
    /// Updates one feed's health, its metrics, and the screens when they should know.
    fn report(&self, name: &str, now: DateTime<Utc>, change: impl FnOnce(&mut FeedHealth)) {
        let Some(health) = self.health.update(name, now, change) else {
            return;
        };
        let up = health.state == FeedState::Ok && health.connected != Some(false);
        metrics::feed_up(name, up);
        metrics::feed_consecutive_failures(name, health.consecutive_failures);
        if let Some(at) = health.last_success_at {
            metrics::feed_last_success(name, at);
        }
        self.publisher.publish_feed_health(&health, now);
    }

    fn record_rows(&self, name: &str, rows: RowCounts) {
        metrics::feed_rows(name, "accepted", rows.accepted);
        metrics::feed_rows(name, "duplicate", rows.duplicates);
        metrics::feed_rows(name, "rejected", rows.rejected);
    }

    /// A success: rows stored (or nothing new), the feed is ok; `also` adds to the same
    /// update.
    fn succeeded(
        &self,
        name: &str,
        now: DateTime<Utc>,
        rows: Option<RowCounts>,
        also: impl FnOnce(&mut FeedHealth),
    ) {
        if let Some(rows) = rows {
            self.record_rows(name, rows);
        }
        self.report(name, now, |health| {
            health.state = FeedState::Ok;
            health.last_success_at = Some(now);
            health.consecutive_failures = 0;
            if let Some(rows) = rows {
                health.last_run = Some(rows);
                health.total.add(rows);
            }
            also(health);
        });
    }

    /// A failure of the feed itself (unreachable, refused, unreadable): it is failing.
    fn failed(
        &self,
        name: &str,
        now: DateTime<Utc>,
        message: String,
        also: impl FnOnce(&mut FeedHealth),
    ) {
        self.report(name, now, |health| {
            health.state = FeedState::Failing;
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            health.last_error = Some(FeedError::new(now, message));
            also(health);
        });
    }

    /// A stream connected (`Ok`) or lost its connection.
    fn connection(&self, name: &str, outcome: Result<(), String>) {
        let now = Utc::now();
        match outcome {
            Ok(()) => self.report(name, now, |health| {
                health.state = FeedState::Ok;
                health.connected = Some(true);
                health.consecutive_failures = 0;
            }),
            Err(message) => self.failed(name, now, message, |health| {
                health.connected = Some(false);
            }),
        }
    }
}

/// The principal a collector writes as: a department token of the feed's department, so its
/// rows are scoped exactly as that department's own pushes. Its audit label reads
/// `department:<DEPT>:feed:<name>`.
pub fn feed_principal(name: &str, department: &Code) -> Principal {
    Principal {
        token_id: format!("feed:{name}"),
        name: format!("feed:{name}"),
        role: Role::Department,
        department: Some(department.clone()),
    }
}

/// Exponential backoff with jitter: attempt 1 waits about `base`, each further attempt twice
/// as long, capped at `max`; the wait is drawn from its upper half so that collectors failing
/// together do not retry in lockstep.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    let ceiling = base.saturating_mul(factor).min(max);
    let half = ceiling / 2;
    let spread = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=spread))
}

/// Sleeps for `delay` unless shut down first; false when shut down.
async fn pause(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Reads a secret from the environment variable the configuration names.
pub fn secret_from_env(variable: &str) -> Result<String, String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(format!("the environment variable {variable} is empty")),
        Err(_) => Err(format!("the environment variable {variable} is not set")),
    }
}

/// A format named in `feeds.toml` (`json`, `csv`, `sdmx-csv`, `sdmx-json`, `dhis2`, `line`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedFormat(pub Format);

impl<'de> Deserialize<'de> for FeedFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Format::from_name(&name).map(FeedFormat).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown format `{name}`: expected one of {}",
                Format::NAMES.join(", ")
            ))
        })
    }
}

/// A duration written as `30s`, `15m`, `1h30m` in `feeds.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        schedule::parse_duration(&raw)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Checks a feed name: it becomes a metric label and a key in the store.
fn check_feed_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_FEED_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "feed name `{name}`: use 1 to {MAX_FEED_NAME_LEN} characters among a-z, 0-9, - and _"
        ))
    }
}

/// The collectors of a running service.
pub struct Collectors {
    tasks: JoinSet<()>,
}

impl Collectors {
    /// Starts every configured collector; each stops when `shutdown` is cancelled.
    pub fn spawn(context: FeedContext, shutdown: CancellationToken) -> Self {
        let mut tasks = JoinSet::new();
        let feeds = &context.settings.feeds;
        for collector in &feeds.pull {
            tasks.spawn(pull::run(
                collector.clone(),
                context.clone(),
                shutdown.clone(),
            ));
        }
        for feed in &feeds.mqtt {
            tasks.spawn(stream::run_mqtt(
                feed.clone(),
                context.clone(),
                shutdown.clone(),
            ));
        }
        for feed in &feeds.nats {
            tasks.spawn(stream::run_nats(
                feed.clone(),
                context.clone(),
                shutdown.clone(),
            ));
        }
        if !tasks.is_empty() {
            tracing::info!(
                pull = feeds.pull.len(),
                mqtt = feeds.mqtt.len(),
                nats = feeds.nats.len(),
                "collectors started"
            );
        }
        Self { tasks }
    }

    /// Waits for every collector to finish after shutdown, so that none writes after the
    /// service said it stopped.
    pub async fn stopped(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a collector task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_within_its_cap_and_jitters_in_the_upper_half() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..200 {
            let first = backoff_delay(1, base, max);
            assert!(
                (Duration::from_millis(50)..=base).contains(&first),
                "{first:?}"
            );
            let third = backoff_delay(3, base, max);
            assert!(
                (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third),
                "{third:?}"
            );
            let late = backoff_delay(40, base, max);
            assert!((max / 2..=max).contains(&late), "{late:?}");
        }
    }

    #[test]
    fn feed_names_are_short_lowercase_labels() {
        assert!(check_feed_name("customs-trade_2").is_ok());
        for bad in ["", "Customs", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_feed_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_feed_writes_as_its_department() {
        let finance = Code::parse("FINANCE").expect("code");
        let principal = feed_principal("budget", &finance);
        assert_eq!(principal.role, Role::Department);
        assert!(principal.may_write_department(&finance));
        assert_eq!(principal.label(), "department:FINANCE:feed:budget");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        // "ồ" takes 3 bytes: 500 falls inside the 167th, so the cut moves back to 498.
        let mut text = "ồ".repeat(400);
        truncate(&mut text, 500);
        assert_eq!(text.len(), 498 + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}
