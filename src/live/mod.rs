//! The live hub: numbers every delta, keeps the latest ones in a ring for resuming screens and
//! fans them out to connections without ever waiting for one.
//!
//! One broadcast channel carries every frame in `seq` order; a connection keeps the frames of
//! the topics it joined. The channel's capacity is each connection's queue: a connection that
//! falls that far behind is told it lagged and catches up with a snapshot instead, so a slow
//! screen costs the hub nothing. Frames are serialized once, here, and shared by reference.
//!
//! Deltas are published after the live state has changed, and carry absolute values (a
//! target's whole view, an alert's whole record), so applying one twice is harmless; a
//! snapshot taken at `seq` = Q contains everything published up to Q.

pub mod approvals;
pub mod connection;
pub mod explanations;
pub mod feeds;
pub mod tasks;
pub mod ticket;
pub mod topic;
pub mod view;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use topic::{Topic, TopicError};

/// Sizes of the hub's buffers.
#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    /// Deltas kept for connections that resume with their last `seq`.
    pub ring_capacity: usize,
    /// Deltas a connection may fall behind before it gets a snapshot instead.
    pub queue_capacity: usize,
}

/// One serialized delta of one topic.
#[derive(Debug)]
pub struct Frame {
    pub seq: u64,
    pub topic: Topic,
    pub text: Utf8Bytes,
}

/// Why a connection receives a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    Subscribe,
    /// The deltas after the client's `seq` are no longer in the ring (or never were).
    ResumeGap,
    /// The connection's queue overflowed.
    Overflow,
}

/// How the topics joined by one connection start.
#[derive(Debug)]
pub struct Joined {
    /// The last `seq` given out at the join: the starts cover every delta up to it.
    pub from: u64,
    /// The deltas the resuming topics missed, all topics together in `seq` order, so that a
    /// client which keeps only its highest `seq` loses nothing when the connection drops
    /// halfway through.
    pub replay: Vec<Arc<Frame>>,
    /// The topics that start from a snapshot at `from`, and why.
    pub snapshots: Vec<(Topic, SnapshotReason)>,
}

pub struct Hub {
    tx: broadcast::Sender<Arc<Frame>>,
    state: Mutex<State>,
}

struct State {
    /// The last `seq` given out.
    seq: u64,
    /// The `seq` the hub started from: a `since` below it was given out elsewhere.
    first: u64,
    ring: VecDeque<Arc<Frame>>,
    ring_capacity: usize,
    watches: HashMap<Topic, Watch>,
    /// The `seq` at which a topic last changed while nobody watched it, so no frame was made:
    /// a client resuming from before that needs a snapshot.
    unrecorded: HashMap<Topic, u64>,
}

/// Who watches a topic. A topic keeps getting frames for a while after its last connection
/// left, so a screen that reconnects within that time resumes from the ring.
struct Watch {
    connections: usize,
    idle_since: Option<Instant>,
}

/// How long a topic nobody watches keeps getting frames.
const RETAIN_UNWATCHED: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct DeltaFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a Topic,
    seq: u64,
    at: DateTime<Utc>,
    data: &'a T,
}

impl Hub {
    pub fn new(settings: HubSettings) -> Self {
        // Each hub counts from its own random origin, a multiple of 2^32 below 2^52 (a screen's
        // JavaScript holds it exactly): a `seq` given out by another instance, or by this one
        // before a restart, lies outside this hub's range and gets a snapshot, never a replay
        // of unrelated deltas (ARCHITECTURE §9).
        let first = {
            use rand::Rng as _;
            u64::from(rand::rng().random_range(1u32..(1 << 20))) << 32
        };
        Self::counting_from(settings, first)
    }

    /// A hub whose first `seq` given out is `first + 1`.
    fn counting_from(settings: HubSettings, first: u64) -> Self {
        let (tx, _) = broadcast::channel(settings.queue_capacity.max(1));
        Self {
            tx,
            state: Mutex::new(State {
                seq: first,
                first,
                ring: VecDeque::with_capacity(settings.ring_capacity),
                ring_capacity: settings.ring_capacity.max(1),
                watches: HashMap::new(),
                unrecorded: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last `seq` given out.
    pub fn seq(&self) -> u64 {
        self.state().seq
    }

    /// A new connection's feed of every frame published from now on.
    pub fn receiver(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }

    /// Which of `topics` someone watches. The others are noted as changed without a frame, so
    /// their payloads need not be built at all.
    pub fn watched(&self, topics: &[Topic]) -> Vec<bool> {
        let mut state = self.state();
        let seq = state.seq;
        let now = Instant::now();
        topics
            .iter()
            .map(|topic| {
                let watched = match state.watches.get(topic) {
                    Some(watch) => watch
                        .idle_since
                        .is_none_or(|idle| now.duration_since(idle) < RETAIN_UNWATCHED),
                    None => false,
                };
                if !watched {
                    state.watches.remove(topic);
                    state.unrecorded.insert(topic.clone(), seq);
                }
                watched
            })
            .collect()
    }

    /// Publishes one delta per topic, in order, and returns how many frames went out.
    pub fn publish<T: Serialize>(&self, at: DateTime<Utc>, deltas: &[(Topic, T)]) -> usize {
        if deltas.is_empty() {
            return 0;
        }
        let mut state = self.state();
        for (topic, data) in deltas {
            let seq = state.seq + 1;
            let frame = DeltaFrame {
                kind: "delta",
                topic,
                seq,
                at,
                data,
            };
            let text = match serde_json::to_string(&frame) {
                Ok(text) => text,
                Err(error) => {
                    tracing::error!(%error, %topic, "cannot serialize a delta");
                    continue;
                }
            };
            state.seq = seq;
            let frame = Arc::new(Frame {
                seq,
                topic: topic.clone(),
                text: text.into(),
            });
            if state.ring.len() == state.ring_capacity {
                state.ring.pop_front();
            }
            state.ring.push_back(frame.clone());
            // Sent under the lock so that connections see frames in `seq` order; an error only
            // means that no connection is open.
            let _ = self.tx.send(frame);
        }
        deltas.len()
    }

    /// Joins `topics` for one connection, resuming after `since` the topics for which the ring
    /// still holds every delta since then.
    pub fn join(&self, topics: &[Topic], since: Option<u64>) -> Joined {
        let mut state = self.state();
        let current = state.seq;
        let covered = since.is_some_and(|since| {
            since >= state.first
                && since <= current
                && state
                    .ring
                    .front()
                    .is_none_or(|oldest| oldest.seq <= since + 1)
        });
        let mut resuming: Vec<&Topic> = Vec::new();
        let mut snapshots = Vec::new();
        for topic in topics {
            let reason = match since {
                None => SnapshotReason::Subscribe,
                Some(since)
                    if covered
                        && state
                            .unrecorded
                            .get(topic)
                            .is_none_or(|&changed| changed < since) =>
                {
                    resuming.push(topic);
                    continue;
                }
                Some(_) => SnapshotReason::ResumeGap,
            };
            snapshots.push((topic.clone(), reason));
        }
        // The ring is in `seq` order: one pass keeps that order across topics.
        let replay = match since {
            Some(since) if !resuming.is_empty() => state
                .ring
                .iter()
                .filter(|frame| frame.seq > since && resuming.contains(&&frame.topic))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        for topic in topics {
            let watch = state.watches.entry(topic.clone()).or_insert(Watch {
                connections: 0,
                idle_since: None,
            });
            watch.connections += 1;
            watch.idle_since = None;
        }
        Joined {
            from: current,
            replay,
            snapshots,
        }
    }

    /// Leaves topics joined earlier (also when a connection closes).
    pub fn leave(&self, topics: &[Topic]) {
        let mut state = self.state();
        for topic in topics {
            if let Some(watch) = state.watches.get_mut(topic) {
                watch.connections = watch.connections.saturating_sub(1);
                if watch.connections == 0 {
                    watch.idle_since = Some(Instant::now());
                }
            }
        }
    }

    /// Connections watching each topic, for metrics.
    pub fn subscriber_counts(&self) -> Vec<(String, usize)> {
        let state = self.state();
        let mut counts: Vec<(String, usize)> = state
            .watches
            .iter()
            .filter(|(_, watch)| watch.connections > 0)
            .map(|(topic, watch)| (topic.to_string(), watch.connections))
            .collect();
        counts.sort();
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(ring: usize) -> Hub {
        Hub::counting_from(
            HubSettings {
                ring_capacity: ring,
                queue_capacity: 16,
            },
            0,
        )
    }

    #[test]
    fn a_seq_given_out_by_another_hub_gets_a_snapshot() {
        let settings = HubSettings {
            ring_capacity: 16,
            queue_capacity: 16,
        };
        let (a, b) = (Hub::new(settings), Hub::new(settings));
        for hub in [&a, &b] {
            hub.join(&[Topic::Overview], None);
            for i in 0..3 {
                hub.publish(Utc::now(), &[(Topic::Overview, i)]);
            }
        }
        assert_ne!(a.seq(), b.seq(), "each hub counts from its own origin");
        let gap = vec![("overview".to_owned(), SnapshotReason::ResumeGap)];
        let elsewhere = b.join(&[Topic::Overview], Some(a.seq()));
        assert_eq!(snapshots(&elsewhere), gap);
        assert!(elsewhere.replay.is_empty());
        assert_eq!(
            seqs(&a.join(&[Topic::Overview], Some(a.seq() - 2))).len(),
            2
        );
    }

    /// The `seq` and topic of each replayed frame.
    fn replayed(joined: &Joined) -> Vec<(u64, String)> {
        joined
            .replay
            .iter()
            .map(|frame| (frame.seq, frame.topic.to_string()))
            .collect()
    }

    fn seqs(joined: &Joined) -> Vec<u64> {
        joined.replay.iter().map(|frame| frame.seq).collect()
    }

    fn snapshots(joined: &Joined) -> Vec<(String, SnapshotReason)> {
        joined
            .snapshots
            .iter()
            .map(|(topic, reason)| (topic.to_string(), *reason))
            .collect()
    }

    #[test]
    fn frames_are_numbered_in_order_and_reach_receivers() {
        let hub = hub(8);
        let mut rx = hub.receiver();
        hub.join(&[Topic::Overview], None);
        hub.publish(Utc::now(), &[(Topic::Overview, 1), (Topic::Alerts, 2)]);
        let first = rx.try_recv().unwrap();
        let second = rx.try_recv().unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        assert!(first
            .text
            .as_str()
            .contains(r#""topic":"overview","seq":1"#));
        assert_eq!(hub.seq(), 2);
    }

    #[test]
    fn subscribing_without_seq_starts_every_topic_from_a_snapshot() {
        let hub = hub(8);
        hub.publish(Utc::now(), &[(Topic::Overview, 0)]);
        let joined = hub.join(&[Topic::Overview, Topic::Alerts], None);
        assert!(joined.replay.is_empty());
        assert_eq!(
            snapshots(&joined),
            vec![
                ("overview".to_owned(), SnapshotReason::Subscribe),
                ("alerts".to_owned(), SnapshotReason::Subscribe)
            ]
        );
        assert_eq!(joined.from, 1);
    }

    #[test]
    fn resuming_within_the_ring_replays_only_the_topics_frames_after_seq() {
        let hub = hub(8);
        hub.join(&[Topic::Overview, Topic::Alerts], None);
        for i in 0..4 {
            hub.publish(Utc::now(), &[(Topic::Overview, i), (Topic::Alerts, i)]);
        }
        let joined = hub.join(&[Topic::Overview], Some(4));
        assert_eq!(seqs(&joined), vec![5, 7]);
        assert!(joined.snapshots.is_empty());
        assert_eq!(joined.from, 8);
        let up_to_date = hub.join(&[Topic::Overview], Some(8));
        assert!(up_to_date.replay.is_empty());
        assert!(up_to_date.snapshots.is_empty());
    }

    #[test]
    fn a_resume_of_several_topics_replays_their_frames_interleaved_in_seq_order() {
        let hub = hub(16);
        let unit = Topic::Unit(crate::domain::Code::parse("HCM").unwrap());
        hub.join(&[Topic::Overview, Topic::Alerts, unit.clone()], None);
        // 1 overview, 2 alerts, 3 unit, 4 overview, 5 feeds (not resumed), 6 unit, 7 alerts, …
        hub.publish(Utc::now(), &[(Topic::Overview, 0), (Topic::Alerts, 0)]);
        hub.publish(Utc::now(), &[(unit.clone(), 0), (Topic::Overview, 1)]);
        hub.publish(Utc::now(), &[(Topic::Feeds, 0), (unit.clone(), 1)]);
        hub.publish(Utc::now(), &[(Topic::Alerts, 1), (Topic::Overview, 2)]);
        let joined = hub.join(&[unit, Topic::Alerts, Topic::Overview], Some(1));
        assert_eq!(
            replayed(&joined),
            vec![
                (2, "alerts".to_owned()),
                (3, "unit:HCM".to_owned()),
                (4, "overview".to_owned()),
                (6, "unit:HCM".to_owned()),
                (7, "alerts".to_owned()),
                (8, "overview".to_owned()),
            ]
        );
        assert!(joined.snapshots.is_empty());
        assert_eq!(joined.from, 8);
    }

    #[test]
    fn resuming_past_the_ring_or_from_the_future_gets_a_snapshot() {
        let hub = hub(3);
        hub.join(&[Topic::Overview], None);
        for i in 0..5 {
            hub.publish(Utc::now(), &[(Topic::Overview, i)]);
        }
        // The ring holds 3, 4 and 5: resuming after 2 is complete, after 1 is not.
        assert_eq!(seqs(&hub.join(&[Topic::Overview], Some(2))), vec![3, 4, 5]);
        let gap = vec![("overview".to_owned(), SnapshotReason::ResumeGap)];
        let too_old = hub.join(&[Topic::Overview], Some(1));
        assert_eq!(snapshots(&too_old), gap);
        assert!(too_old.replay.is_empty());
        // A seq from before a restart.
        assert_eq!(snapshots(&hub.join(&[Topic::Overview], Some(99))), gap);
    }

    #[test]
    fn a_topic_that_changed_unwatched_needs_a_snapshot_to_resume() {
        let hub = hub(8);
        hub.join(&[Topic::Alerts], None);
        hub.publish(Utc::now(), &[(Topic::Alerts, 0)]);
        // Nobody watches the overview when it changes: no frame is made for it.
        assert_eq!(
            hub.watched(&[Topic::Overview, Topic::Alerts]),
            vec![false, true]
        );
        hub.publish(Utc::now(), &[(Topic::Alerts, 1)]);
        let joined = hub.join(&[Topic::Overview, Topic::Alerts], Some(1));
        assert_eq!(
            snapshots(&joined),
            vec![("overview".to_owned(), SnapshotReason::ResumeGap)]
        );
        assert_eq!(seqs(&joined), vec![2]);
    }

    #[test]
    fn a_topic_left_by_its_last_connection_keeps_its_frames_for_a_reconnect() {
        let hub = hub(8);
        hub.join(&[Topic::Feeds], None);
        hub.publish(Utc::now(), &[(Topic::Feeds, 0)]);
        hub.leave(&[Topic::Feeds]);
        assert!(hub.subscriber_counts().is_empty());
        assert_eq!(hub.watched(&[Topic::Feeds]), vec![true]);
        hub.publish(Utc::now(), &[(Topic::Feeds, 1)]);
        assert_eq!(seqs(&hub.join(&[Topic::Feeds], Some(1))), vec![2]);
        assert_eq!(hub.subscriber_counts(), vec![("feeds".to_owned(), 1)]);
    }
}
