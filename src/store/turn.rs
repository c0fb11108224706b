//! The order of a writer's commits when it has more than one group in flight (ARCHITECTURE §7).

use std::time::Duration;

use tokio::sync::watch;

/// The group before this one, in the order the writer took them. A group may be written while
/// that one is still being written, but commits only once it has ended (committed, or failed
/// and rolled back), so commits keep the writer's order: the engine, the screens and the
/// callers see groups as they were taken, and a later group's stamp is never committed before
/// an earlier one's.
#[derive(Debug, Default)]
pub struct Turn {
    previous: Option<watch::Receiver<bool>>,
}

/// Tells the group after this one that this one has ended; dropped unsent (a panic), it
/// tells the same.
#[derive(Debug)]
pub struct TurnEnded(watch::Sender<bool>);

impl TurnEnded {
    pub fn send(self) {
        let _ = self.0.send(true);
    }
}

impl Turn {
    /// The turn of a new group after the one `last` watches (none for the first group), and
    /// what tells its own end; `last` then watches the new group.
    pub fn next(last: &mut Option<watch::Receiver<bool>>) -> (Self, TurnEnded) {
        let (sender, receiver) = watch::channel(false);
        let turn = Self {
            previous: last.replace(receiver),
        };
        (turn, TurnEnded(sender))
    }

    /// Waits until the group before has ended.
    pub async fn wait(&mut self) {
        if let Some(previous) = &mut self.previous {
            // An error is a sender dropped: that group has ended too.
            let _ = previous.wait_for(|ended| *ended).await;
        }
        self.previous = None;
    }

    /// [`Turn::wait`] for at most `limit`; false when the group before has not ended by then.
    pub async fn wait_at_most(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_comes_once_the_group_before_has_ended_or_gone() {
        let short = Duration::from_millis(10);
        let mut last = None;
        let (mut first, first_ended) = Turn::next(&mut last);
        assert!(
            first.wait_at_most(short).await,
            "nothing before the first group"
        );
        let (mut second, second_ended) = Turn::next(&mut last);
        assert!(!second.wait_at_most(short).await);
        first_ended.send();
        assert!(second.wait_at_most(short).await);
        let (mut third, _third_ended) = Turn::next(&mut last);
        assert!(!third.wait_at_most(short).await);
        // A group whose writing panicked never says it ended; its dropped sender does.
        drop(second_ended);
        assert!(third.wait_at_most(short).await);
    }
}
