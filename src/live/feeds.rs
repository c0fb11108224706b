//! The health of every configured collector (ARCHITECTURE §10, §11): the collectors update it,
//! the feeds API and the metrics read it, and the screens' `feeds` topic shows it beside the
//! accepted batches. It is kept here, with the rest of what the screens are shown, so the live
//! view reads it without depending on the collectors that write it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Catalogue, Code};
use crate::metrics;
use crate::store::IngestReceipt;

/// A stream feed's health is pushed to screens at most this often, unless its state changes:
/// every message already publishes its own feed event.
const STREAM_HEALTH_PUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Longest error message kept in a feed's health.
const MAX_ERROR_LEN: usize = 500;

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
    /// `format` is the push format's name (`Format::name`).
    pub fn new(name: &str, kind: FeedKind, department: &Code, format: &'static str) -> Self {
        let stream = kind != FeedKind::Pull;
        Self {
            name: name.to_owned(),
            kind,
            department: department.clone(),
            format,
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
    /// Registers `initial` as never run, after checking the names are unique and each
    /// department exists in the catalogue.
    pub fn new(initial: Vec<FeedHealth>, catalogue: &Catalogue) -> Result<Self, FeedConfigError> {
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
    pub fn update(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        // "ồ" takes 3 bytes: 500 falls inside the 167th, so the cut moves back to 498.
        let mut text = "ồ".repeat(400);
        truncate(&mut text, 500);
        assert_eq!(text.len(), 498 + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}
