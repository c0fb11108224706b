//! Collectors: feeds the service fetches (HTTP pull on a schedule) or subscribes to (MQTT, NATS),
//! and back-fill from files. Each one hands its rows to the same [`crate::ingest::Ingestor`] as a
//! push, so validation, scoping and everything downstream are the same.
//!
//! Every configured collector has a [`FeedHealth`] in the shared [`FeedHealthRegistry`]: the
//! feeds API reads it, the metrics mirror it and the screens' `feeds` topic is told when it
//! changes. [`Collectors::spawn`] starts them all with the app's shutdown token.

pub mod feeds;
pub mod import;
pub mod pull;
pub mod schedule;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::feeds::FeedsConfig;
use crate::auth::{Principal, Role};
use crate::config::Settings;
use crate::domain::{Catalogue, Code};
use crate::ingest::{Format, Ingestor};
use crate::live::feeds::{
    FeedConfigError, FeedError, FeedHealth, FeedHealthRegistry, FeedKind, FeedState, RowCounts,
};
use crate::live::view::Publisher;
use crate::metrics;
use crate::store::DynStore;

/// Longest feed name: it labels metrics, feed state rows and log lines.
const MAX_FEED_NAME_LEN: usize = 64;

// Built here, where `feeds.toml` is read; the registry itself is the live view's.
impl FeedHealthRegistry {
    /// Registers every collector of `feeds` as never run, after checking the names are unique
    /// and each department exists in the catalogue.
    pub fn for_config(feeds: &FeedsConfig, catalogue: &Catalogue) -> Result<Self, FeedConfigError> {
        let mut initial = Vec::new();
        for pull in &feeds.pull {
            let mut health = FeedHealth::new(
                &pull.name,
                FeedKind::Pull,
                &pull.department,
                pull.format.0.name(),
            );
            health.schedule = Some(pull.schedule.to_string());
            initial.push(health);
        }
        for mqtt in &feeds.mqtt {
            initial.push(FeedHealth::new(
                &mqtt.name,
                FeedKind::Mqtt,
                &mqtt.department,
                mqtt.format.0.name(),
            ));
        }
        for nats in &feeds.nats {
            initial.push(FeedHealth::new(
                &nats.name,
                FeedKind::Nats,
                &nats.department,
                nats.format.0.name(),
            ));
        }
        Self::new(initial, catalogue)
    }
}

/// What a collector needs from the running service.
#[derive(Clone)]
pub struct FeedContext {
    pub settings: Arc<Settings>,
    /// `feeds.toml`: the collectors to run and the mappings their formats read.
    pub feeds: Arc<FeedsConfig>,
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
        let feeds = context.feeds.clone();
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

    /// Runs the collectors while `leading` says this instance leads (`crate::leader`): they
    /// start when it comes to lead and stop when it no longer does, each from the cursor the
    /// last leader saved, so one instance fetches and subscribes for all.
    pub fn spawn_while_leading(
        context: FeedContext,
        shutdown: CancellationToken,
        mut leading: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let mut tasks = JoinSet::new();
        let feeds = &context.feeds;
        if feeds.pull.is_empty() && feeds.mqtt.is_empty() && feeds.nats.is_empty() {
            return Self { tasks };
        }
        tasks.spawn(async move {
            while crate::leader::until_leading(&mut leading, &shutdown).await {
                let term = shutdown.child_token();
                let running = Self::spawn(context.clone(), term.clone());
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = crate::leader::until_not_leading(&mut leading) => {
                        tracing::info!("collectors stopping: this instance no longer leads");
                    }
                }
                term.cancel();
                running.stopped().await;
            }
        });
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
}
