//! Other instances' commits, carried through this instance's pipeline (ARCHITECTURE §7): a
//! figure pushed to any instance reaches the engine and the screens of every other.
//!
//! The follower reads the commits table from a cursor up to a bound below which every
//! transaction has ended, so it misses nothing and reads nothing twice; PostgreSQL's NOTIFY
//! only wakes it. A lost LISTEN connection costs nothing: the follower reads from its cursor
//! again once it listens again, and every few seconds in any case. Commits of other instances
//! arrive in transaction order, which need not be the order of their instants; the engine
//! replays a target that a commit reaches out of order (ARCHITECTURE §8).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Change, CommittedBatch, Pipeline};
use crate::domain::{Code, NewObservation, StoredObservation};
use crate::live::view::FeedEvent;
use crate::store::{CommitKind, DynStore, RemoteCommit, StoreResult};

/// How often the follower reads the table even without a notification.
const POLL: Duration = Duration::from_secs(5);
/// How long it waits before listening again after the connection failed.
const RELISTEN: Duration = Duration::from_secs(1);
/// The first wait before reading again when a commit it heard of lies beyond the horizon (a
/// transaction older than it, in any database of the server, is still open); it doubles up to
/// [`POLL`].
const BEYOND_HORIZON: Duration = Duration::from_millis(5);

/// Follows other instances' commits from `cursor` until `shutdown`.
pub fn spawn(
    store: DynStore,
    pipeline: Arc<Pipeline>,
    cursor: u64,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut follower = Follower {
            store,
            pipeline,
            cursor,
        };
        follower.run(shutdown).await;
    })
}

struct Follower {
    store: DynStore,
    pipeline: Arc<Pipeline>,
    cursor: u64,
}

impl Follower {
    async fn run(&mut self, shutdown: CancellationToken) {
        let mut listener = None;
        // The newest transaction id heard of, until the horizon passes it, and how long to wait
        // before reading for it again.
        let mut heard_of: Option<u64> = None;
        let mut retry = BEYOND_HORIZON;
        loop {
            if listener.is_none() {
                match self.store.listen_commits().await {
                    Ok(Some(l)) => listener = Some(l),
                    Ok(None) => return, // a backend with one instance only
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for other instances' commits; reading the table meanwhile");
                    }
                }
            }
            if let Err(error) = self.catch_up().await {
                tracing::warn!(%error, "reading other instances' commits failed; trying again");
            }
            // Without this a commit that ended while an older transaction was still open would
            // wait for the next notification or poll, seconds on a quiet system.
            let wait = match heard_of {
                Some(xid) if xid >= self.cursor => {
                    let wait = retry;
                    retry = (retry * 2).min(POLL);
                    wait
                }
                _ => {
                    heard_of = None;
                    retry = BEYOND_HORIZON;
                    POLL
                }
            };
            let heard = async {
                match listener.as_mut() {
                    Some(l) => match l.try_recv().await {
                        // A notification, or the connection lost (it reconnects on the next
                        // call): either way the table says what happened.
                        Ok(notification) => {
                            // Everything already heard is covered by one read.
                            let mut newest = notification.and_then(|n| n.payload().parse().ok());
                            while let Some(n) = l.next_buffered() {
                                newest = newest.max(n.payload().parse().ok());
                            }
                            Some(newest)
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the LISTEN connection failed");
                            None
                        }
                    },
                    None => {
                        tokio::time::sleep(RELISTEN).await;
                        Some(None)
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                heard = heard => match heard {
                    None => listener = None,
                    Some(xid) => {
                        if xid.is_some() && xid > heard_of {
                            heard_of = xid;
                            retry = BEYOND_HORIZON;
                        }
                    }
                },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads and applies every commit from the cursor on.
    async fn catch_up(&mut self) -> StoreResult<()> {
        let (commits, until) = self.store.commits_from(self.cursor).await?;
        for commit in commits {
            self.apply(commit).await?;
        }
        self.cursor = until;
        Ok(())
    }

    async fn apply(&self, commit: RemoteCommit) -> StoreResult<()> {
        match commit.kind {
            CommitKind::Observations => {
                let rows: Vec<NewObservation> = commit
                    .rows
                    .iter()
                    .filter_map(StoredObservation::as_committed)
                    .collect();
                if rows.is_empty() {
                    return Ok(());
                }
                let mut indicators: Vec<Code> = rows.iter().map(|r| r.indicator.clone()).collect();
                indicators.sort();
                indicators.dedup();
                let feed = FeedEvent {
                    at: commit.at,
                    source: commit
                        .rows
                        .first()
                        .map(|r| r.recorded_by.clone())
                        .unwrap_or_default(),
                    format: "instance".into(),
                    accepted: rows.len(),
                    duplicates: 0,
                    rejected: 0,
                    indicators,
                };
                self.pipeline
                    .apply(Change::Committed(vec![CommittedBatch {
                        rows,
                        received_at: commit.at,
                        feed,
                    }]))
                    .await;
            }
            CommitKind::Target => {
                let Some((year, indicator, unit)) = commit.subject.as_deref().and_then(target_key)
                else {
                    return Ok(());
                };
                let targets: Vec<_> = self
                    .store
                    .targets(Some(year))
                    .await?
                    .into_iter()
                    .map(|row| row.target)
                    .filter(|t| t.indicator.as_str() == indicator && t.unit.as_str() == unit)
                    .collect();
                if !targets.is_empty() {
                    self.pipeline
                        .apply(Change::TargetsChanged {
                            targets,
                            at: commit.at,
                        })
                        .await;
                }
            }
            CommitKind::Alerts => self.pipeline.alerts_changed(commit.at).await,
            CommitKind::Explanation => {
                let Some((year, indicator, unit)) = commit.subject.as_deref().and_then(target_key)
                else {
                    return Ok(());
                };
                // Explanations are only appended: the newest is the one this commit added, or
                // one added since, which this instance will hear of anyway.
                let newest = self
                    .store
                    .explanations(year, indicator, unit)
                    .await?
                    .into_iter()
                    .next();
                if let Some(explanation) = newest {
                    self.pipeline.apply(Change::Explained(explanation)).await;
                }
            }
            CommitKind::Approval => {
                if !commit.approvals.is_empty() {
                    self.pipeline
                        .apply(Change::Approved(commit.approvals.clone()))
                        .await;
                }
            }
            CommitKind::Task => {
                let Some(code) = commit.subject.as_deref() else {
                    return Ok(());
                };
                if let Some(task) = self.store.tasks(Some(code)).await?.pop() {
                    self.pipeline.apply(Change::Task(Box::new(task))).await;
                }
            }
            CommitKind::Token => {
                if let Some(id) = &commit.subject {
                    self.store.forget_token(id);
                }
            }
        }
        tracing::debug!(group = commit.group_id, instance = %commit.instance, "applied another instance's commit");
        Ok(())
    }
}

/// `year/indicator/unit`.
fn target_key(subject: &str) -> Option<(i32, &str, &str)> {
    let mut parts = subject.splitn(3, '/');
    let year = parts.next()?.parse().ok()?;
    Some((year, parts.next()?, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_subject_names_year_indicator_and_unit() {
        assert_eq!(
            target_key("2026/GRDP_GROWTH/HCM"),
            Some((2026, "GRDP_GROWTH", "HCM"))
        );
        assert_eq!(target_key("GRDP_GROWTH/HCM"), None);
    }
}
