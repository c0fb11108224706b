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

/// How a joined topic starts on a connection.
#[derive(Debug)]
pub enum Start {
    /// The deltas the client missed, oldest first; nothing was lost.
    Replay(Vec<Arc<Frame>>),
    Snapshot(SnapshotReason),
}

/// A topic joined by a connection: deltas up to `from` are covered by the start.
#[derive(Debug)]
pub struct Joined {
    pub topic: Topic,
    pub from: u64,
    pub start: Start,
}

pub struct Hub {
    tx: broadcast::Sender<Arc<Frame>>,
    state: Mutex<State>,
}

struct State {
    /// The last `seq` given out.
    seq: u64,
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
        let (tx, _) = broadcast::channel(settings.queue_capacity.max(1));
        Self {
            tx,
            state: Mutex::new(State {
                seq: 0,
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

    /// Joins `topics` for one connection, resuming after `since` when the ring still holds
    /// every delta since then.
    pub fn join(&self, topics: &[Topic], since: Option<u64>) -> Vec<Joined> {
        let mut state = self.state();
        let current = state.seq;
        let covered = |since: u64| {
            since <= current
                && state
                    .ring
                    .front()
                    .is_none_or(|oldest| oldest.seq <= since + 1)
        };
        let mut joined = Vec::with_capacity(topics.len());
        for topic in topics {
            let start = match since {
                None => Start::Snapshot(SnapshotReason::Subscribe),
                Some(since)
                    if covered(since)
                        && state
                            .unrecorded
                            .get(topic)
                            .is_none_or(|&changed| changed < since) =>
                {
                    Start::Replay(
                        state
                            .ring
                            .iter()
                            .filter(|frame| frame.seq > since && frame.topic == *topic)
                            .cloned()
                            .collect(),
                    )
                }
                Some(_) => Start::Snapshot(SnapshotReason::ResumeGap),
            };
            joined.push(Joined {
                topic: topic.clone(),
                from: current,
                start,
            });
        }
        for topic in topics {
            let watch = state.watches.entry(topic.clone()).or_insert(Watch {
                connections: 0,
                idle_since: None,
            });
            watch.connections += 1;
            watch.idle_since = None;
        }
        joined
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
        Hub::new(HubSettings {
            ring_capacity: ring,
            queue_capacity: 16,
        })
    }

    fn replayed(joined: &Joined) -> Vec<u64> {
        match &joined.start {
            Start::Replay(frames) => frames.iter().map(|f| f.seq).collect(),
            Start::Snapshot(reason) => panic!("expected a replay, got a snapshot ({reason:?})"),
        }
    }

    fn reason(joined: &Joined) -> SnapshotReason {
        match &joined.start {
            Start::Snapshot(reason) => *reason,
            Start::Replay(_) => panic!("expected a snapshot"),
        }
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
    fn resuming_within_the_ring_replays_only_the_topics_frames_after_seq() {
        let hub = hub(8);
        hub.join(&[Topic::Overview, Topic::Alerts], None);
        for i in 0..4 {
            hub.publish(Utc::now(), &[(Topic::Overview, i), (Topic::Alerts, i)]);
        }
        let joined = hub.join(&[Topic::Overview], Some(4));
        assert_eq!(replayed(&joined[0]), vec![5, 7]);
        assert_eq!(joined[0].from, 8);
        let up_to_date = hub.join(&[Topic::Overview], Some(8));
        assert!(replayed(&up_to_date[0]).is_empty());
    }

    #[test]
    fn resuming_past_the_ring_or_from_the_future_gets_a_snapshot() {
        let hub = hub(3);
        hub.join(&[Topic::Overview], None);
        for i in 0..5 {
            hub.publish(Utc::now(), &[(Topic::Overview, i)]);
        }
        // The ring holds 3, 4 and 5: resuming after 2 is complete, after 1 is not.
        assert_eq!(
            replayed(&hub.join(&[Topic::Overview], Some(2))[0]),
            vec![3, 4, 5]
        );
        assert_eq!(
            reason(&hub.join(&[Topic::Overview], Some(1))[0]),
            SnapshotReason::ResumeGap
        );
        // A seq from before a restart.
        assert_eq!(
            reason(&hub.join(&[Topic::Overview], Some(99))[0]),
            SnapshotReason::ResumeGap
        );
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
        assert_eq!(reason(&joined[0]), SnapshotReason::ResumeGap);
        assert_eq!(replayed(&joined[1]), vec![2]);
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
        assert_eq!(replayed(&hub.join(&[Topic::Feeds], Some(1))[0]), vec![2]);
        assert_eq!(hub.subscriber_counts(), vec![("feeds".to_owned(), 1)]);
    }
}
