//! One writer per instance (ARCHITECTURE §7): requests hand their validated batches over a
//! bounded queue and await the answer; the writer takes what is queued, writes it as one group
//! (one transaction, one commit), hands the committed rows to the [`Pipeline`] and only then
//! answers each request with its own outcome — so a client that reads a status after its 200
//! sees its figure.
//!
//! The pipeline and the answers of one group run beside the writing of the next (ARCHITECTURE
//! §7): a second task takes the committed groups in commit order, one at a time, so the
//! database is not left idle while the engine judges a group, and nothing is answered before
//! its group has committed and gone through the pipeline.
//!
//! A request that goes away (a client hanging up) only drops its end of the answer: a batch
//! is queued whole or not at all, and once queued it is written whole. A full queue answers at
//! once, so a burst costs callers a retry, never the service its memory.

mod metrics;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::code::CodeHash;
use crate::domain::Code;
use crate::live::view::FeedEvent;
use crate::pipeline::{Change, CommittedBatch, Pipeline};
use crate::store::activity::PushNote;
use crate::store::{DynStore, StoreError, Turn, WriteBatch, WriteOutcome};

pub use metrics::WriterMetrics;

/// How much may wait for the writer, and how much it writes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterSettings {
    /// Batches that may wait in the queue.
    pub queue_batches: usize,
    /// Rows that may wait in the queue; a batch larger than this is still taken when the
    /// queue is empty, so the largest request allowed always gets through.
    pub queue_rows: usize,
    /// A group stops taking batches once it holds this many rows…
    pub group_rows: usize,
    /// …or this many batches.
    pub group_batches: usize,
    /// How long the writer waits for more batches after the first of a group; zero writes what
    /// is queued at once (batches queue up anyway while the previous group commits).
    pub group_wait: Duration,
    /// What a client refused with a full queue is told to wait, in seconds.
    pub retry_after_seconds: u64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue_batches: 1024,
            queue_rows: 200_000,
            group_rows: 50_000,
            group_batches: 256,
            group_wait: Duration::from_millis(2),
            retry_after_seconds: 1,
        }
    }
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the write queue is full; try again in {retry_after} s")]
    QueueFull { retry_after: u64 },
    #[error("the writer has stopped")]
    Closed,
    /// The writer took the batch but could not answer: whether it was stored is unknown.
    #[error("the writer took the batch and could not answer")]
    Lost,
    /// The store failed the whole group for a cause every batch shares (it is unreachable).
    #[error("the store is not reachable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a batch came from, for the feed log.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The department that pushed, or `admin`.
    pub source: String,
    pub format: String,
}

struct Job {
    batch: WriteBatch,
    origin: Origin,
    /// The push's activity, filed with its rows.
    note: Option<PushNote>,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

/// Counts kept per writer, for tests and diagnostics (the metrics are per process).
#[derive(Debug, Default)]
struct Counters {
    /// Batches taken into the queue, and batches answered.
    queued: AtomicU64,
    answered: AtomicU64,
    groups: AtomicU64,
    batches: AtomicU64,
    largest_group: AtomicUsize,
}

/// What one writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches taken into the queue so far.
    pub queued: u64,
    /// Batches answered so far; `queued - answered` are waiting or being written.
    pub answered: u64,
    pub groups: u64,
    pub batches: u64,
    /// The most batches one group has held.
    pub largest_group: usize,
}

/// The handle requests submit through; cheap to share.
pub struct Writer {
    queue: mpsc::Sender<Job>,
    queued_rows: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    settings: WriterSettings,
    closing: CancellationToken,
    stopped: CancellationToken,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: DynStore, pipeline: Arc<Pipeline>, settings: WriterSettings) -> Self {
        let settings = WriterSettings {
            queue_batches: settings.queue_batches.max(1),
            group_rows: settings.group_rows.max(1),
            group_batches: settings.group_batches.max(1),
            ..settings
        };
        let (queue, receiver) = mpsc::channel(settings.queue_batches);
        let queued_rows = Arc::new(AtomicUsize::new(0));
        let counters = Arc::new(Counters::default());
        let closing = CancellationToken::new();
        let stopped = CancellationToken::new();
        metrics::METRICS.init(store.backend());
        // The finisher's queue: a group written while the one before it is still in the
        // pipeline waits here, so at most this many groups are committed and not yet answered.
        let (finished, finishing) = mpsc::channel(FINISHING);
        let in_pipeline = Arc::new(InPipeline::default());
        let task = Task {
            receiver,
            store,
            finished,
            in_pipeline: in_pipeline.clone(),
            settings,
            queued_rows: queued_rows.clone(),
            counters: counters.clone(),
            closing: closing.clone(),
            closed: false,
            stamped: chrono::DateTime::<Utc>::MIN_UTC,
            last_turn: None,
            writing: Arc::new(Writing::default()),
        };
        let finisher = Finisher {
            receiver: finishing,
            pipeline,
            in_pipeline,
            counters: counters.clone(),
        };
        let guard = stopped.clone().drop_guard();
        run_apart(task);
        tokio::spawn(async move {
            // Dropped when the finisher ends, however it ends: `stopped` then fires. The
            // finisher ends after the writer, once it has answered every group written.
            let _guard = guard;
            finisher.run().await;
        });
        Self {
            queue,
            queued_rows,
            counters,
            settings,
            closing,
            stopped,
        }
    }

    /// Queues `batch` and waits for its outcome. Refused at once when the queue is full or the
    /// writer has stopped. Dropping the returned future after it has queued the batch does not
    /// take the batch back.
    pub async fn submit(
        &self,
        batch: WriteBatch,
        origin: Origin,
    ) -> Result<WriteOutcome, WriteError> {
        self.submit_noted(batch, origin, None).await
    }

    /// [`Self::submit`], with the push's activity filed under its departments in the
    /// transaction that commits its rows (ARCHITECTURE §1).
    pub async fn submit_noted(
        &self,
        batch: WriteBatch,
        origin: Origin,
        note: Option<PushNote>,
    ) -> Result<WriteOutcome, WriteError> {
        let answer = self.enqueue(batch, origin, note)?;
        answer.await.map_err(|_| WriteError::Lost)?
    }

    /// Queues without waiting: all or nothing, with no await point in between, so a caller
    /// cancelled at any time has either queued its batch whole or not at all.
    fn enqueue(
        &self,
        batch: WriteBatch,
        origin: Origin,
        note: Option<PushNote>,
    ) -> Result<oneshot::Receiver<Result<WriteOutcome, WriteError>>, WriteError> {
        if self.closing.is_cancelled() {
            metrics::METRICS.refused("closed");
            return Err(WriteError::Closed);
        }
        let rows = batch.rows.len();
        let limit = self.settings.queue_rows;
        let reserved =
            self.queued_rows
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                    (queued == 0 || queued.saturating_add(rows) <= limit).then(|| queued + rows)
                });
        if reserved.is_err() {
            metrics::METRICS.refused("full");
            return Err(WriteError::QueueFull {
                retry_after: self.settings.retry_after_seconds,
            });
        }
        let (reply, answer) = oneshot::channel();
        // Counted before the writer can take it, so no count ever runs ahead of another.
        self.counters.queued.fetch_add(1, Ordering::AcqRel);
        metrics::METRICS.queued(1, rows);
        match self.queue.try_send(Job {
            batch,
            origin,
            note,
            reply,
        }) {
            Ok(()) => Ok(answer),
            Err(refused) => {
                self.counters.queued.fetch_sub(1, Ordering::AcqRel);
                metrics::METRICS.dequeued(1, rows);
                self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
                match refused {
                    mpsc::error::TrySendError::Full(_) => {
                        metrics::METRICS.refused("full");
                        Err(WriteError::QueueFull {
                            retry_after: self.settings.retry_after_seconds,
                        })
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        metrics::METRICS.refused("closed");
                        Err(WriteError::Closed)
                    }
                }
            }
        }
    }

    /// Stops taking batches; what is queued is still written and answered.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Whether [`Self::close`] was called: new batches are refused.
    pub fn is_closed(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Resolves once the writer task has ended (after [`Self::close`], with its queue drained).
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            queued: self.counters.queued.load(Ordering::Acquire),
            answered: self.counters.answered.load(Ordering::Acquire),
            groups: self.counters.groups.load(Ordering::Acquire),
            batches: self.counters.batches.load(Ordering::Acquire),
            largest_group: self.counters.largest_group.load(Ordering::Acquire),
        }
    }

    pub fn settings(&self) -> WriterSettings {
        self.settings
    }
}

/// Runs the writer task on a thread of its own, with its own runtime (ARCHITECTURE §7): on
/// the shared workers it waited behind every request's task at each of a group's round trips
/// to the store, so under many small senders the one task everything else waits for was the
/// one served last. Where a thread cannot be had, the task runs on the shared workers.
fn run_apart(task: Task) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "no runtime of its own for the writer; sharing the workers");
            tokio::spawn(task.run());
            return;
        }
    };
    let handed = Arc::new(std::sync::Mutex::new(Some(task)));
    let taken = handed.clone();
    let started = std::thread::Builder::new()
        .name("ktxh-writer".into())
        .spawn(move || {
            let task = taken.lock().ok().and_then(|mut task| task.take());
            if let Some(task) = task {
                runtime.block_on(task.run());
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "no thread of its own for the writer; sharing the workers");
        if let Some(task) = handed.lock().ok().and_then(|mut task| task.take()) {
            tokio::spawn(task.run());
        }
    }
}

/// Groups committed and not yet through the pipeline, at most: one in the pipeline and one
/// waiting while the writer writes the next.
const FINISHING: usize = 1;

/// A group smaller than this keeps gathering while the group before it is in the pipeline.
/// Small batches (many senders of a few rows each) are waiting for their answers then, so few
/// would be queued: written at once, the group would cost a commit for a handful of rows, and
/// the commit (its flush to disk) is what such groups spend most on. A group this large is
/// worth its commit, and is written beside the pipeline.
const OVERLAP_ROWS: usize = 1_000;

/// How many committed groups the [`Finisher`] has not yet answered, and a wake-up when one is.
#[derive(Default)]
struct InPipeline {
    groups: AtomicUsize,
    answered: tokio::sync::Notify,
}

/// A wake-up when a group being written is done.
#[derive(Default)]
struct Writing {
    written: tokio::sync::Notify,
}

struct Task {
    receiver: mpsc::Receiver<Job>,
    store: DynStore,
    /// Committed groups, in commit order, to the [`Finisher`].
    finished: mpsc::Sender<Finished>,
    in_pipeline: Arc<InPipeline>,
    settings: WriterSettings,
    queued_rows: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    closing: CancellationToken,
    /// Whether the queue was closed, new batches refused, the queued ones still to go.
    closed: bool,
    /// The instant the last group was stamped with.
    stamped: chrono::DateTime<Utc>,
    /// The end of the last group taken, which the next one commits after.
    last_turn: Option<tokio::sync::watch::Receiver<bool>>,
    /// Groups being written, and a wake-up when one is done.
    writing: Arc<Writing>,
}

/// A group handed to its write lane: what is answered once it is written.
struct InFlight {
    written: tokio::task::JoinHandle<Written>,
    replies: Vec<(Origin, oneshot::Sender<Result<WriteOutcome, WriteError>>)>,
    stamp: chrono::DateTime<Utc>,
}

/// A group's batches and their outcomes, back from its write lane.
struct Written {
    batches: Vec<WriteBatch>,
    outcomes: Vec<Result<WriteOutcome, WriteError>>,
    elapsed: Duration,
}

impl Task {
    /// Takes groups from the queue while a write lane is free, and answers them in the order
    /// taken. Groups on different lanes are written at once but commit in that order (see
    /// [`Turn`]); a group that has not been answered holds its lane.
    async fn run(mut self) {
        let lanes = self.store.write_lanes().max(1);
        let mut in_flight: std::collections::VecDeque<InFlight> = Default::default();
        let mut next_lane = 0;
        let mut drained = false;
        loop {
            if in_flight
                .front()
                .is_some_and(|oldest| oldest.written.is_finished())
                || (!in_flight.is_empty() && (drained || in_flight.len() >= lanes))
            {
                if let Some(oldest) = in_flight.pop_front() {
                    self.answer(oldest).await;
                }
                continue;
            }
            if drained {
                break;
            }
            let writing = self.writing.clone();
            let first = tokio::select! {
                biased;
                // The oldest group is done: it is answered before another is taken.
                () = writing.written.notified(), if !in_flight.is_empty() => continue,
                job = self.next_job() => job,
            };
            let Some(first) = first else {
                drained = true;
                continue;
            };
            if first.batch.rows.len() < OVERLAP_ROWS {
                // A small batch makes a small group, which would commit after the one being
                // written anyway: it waits for that one, and what queues meanwhile stays in the
                // queue, where waiting batches are bounded. Large ones are written beside it.
                while let Some(oldest) = in_flight.pop_front() {
                    self.answer(oldest).await;
                }
            }
            let group = self.gather(first).await;
            in_flight.push_back(self.start(group, next_lane));
            next_lane = (next_lane + 1) % lanes;
        }
        tracing::info!("writer stopped, its queue drained");
    }

    /// The next batch queued; `None` once the queue is closed and empty. Closing refuses new
    /// batches from then on, and the queued ones still go.
    async fn next_job(&mut self) -> Option<Job> {
        loop {
            if self.closed {
                return self.receiver.recv().await;
            }
            tokio::select! {
                job = self.receiver.recv() => return job,
                () = self.closing.cancelled() => {
                    self.receiver.close();
                    self.closed = true;
                }
            }
        }
    }

    fn take(&self, job: &Job) {
        let rows = job.batch.rows.len();
        self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
        metrics::METRICS.dequeued(1, rows);
    }

    /// The group that starts with `first`: whatever is queued, up to the group's bounds, and
    /// what arrives within the group wait.
    async fn gather(&mut self, first: Job) -> Vec<Job> {
        self.take(&first);
        let mut rows = first.batch.rows.len();
        let mut group = vec![first];
        let deadline = tokio::time::Instant::now() + self.settings.group_wait;
        while rows < self.settings.group_rows && group.len() < self.settings.group_batches {
            let next = match self.receiver.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if self.settings.group_wait.is_zero() => None,
                // A group this large is worth its commit already: waiting for more would only
                // leave the store idle.
                Err(mpsc::error::TryRecvError::Empty) if rows >= OVERLAP_ROWS => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, self.receiver.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(job) = next else { break };
            self.take(&job);
            rows += job.batch.rows.len();
            group.push(job);
        }
        // A small group goes on gathering until the group before it has been answered, as
        // when the pipeline ran on the writer's own task (see [`OVERLAP_ROWS`]).
        while rows < OVERLAP_ROWS.min(self.settings.group_rows)
            && group.len() < self.settings.group_batches
            && self.in_pipeline.groups.load(Ordering::Acquire) > 0
        {
            // A wake-up given while nobody waited is kept (`notify_one`), so none is lost
            // between the check above and this wait.
            let job = tokio::select! {
                job = self.receiver.recv() => job,
                () = self.in_pipeline.answered.notified() => continue,
            };
            let Some(job) = job else { break };
            self.take(&job);
            rows += job.batch.rows.len();
            group.push(job);
        }
        group
    }

    /// Hands `group` to write lane `lane`, to commit after the group taken before it.
    fn start(&mut self, group: Vec<Job>, lane: usize) -> InFlight {
        // One instant for the whole group, later than the last: the group's rows become known
        // together and after everything written before them, so the engine evaluates once for
        // the group, in commit order, at an instant a replay of the store finds again
        // (ARCHITECTURE §8).
        let stamp = Utc::now().max(self.stamped + chrono::Duration::microseconds(1));
        self.stamped = stamp;
        let mut notes = Vec::with_capacity(group.len());
        let (batches, replies): (Vec<WriteBatch>, Vec<(Origin, oneshot::Sender<_>)>) = group
            .into_iter()
            .map(|job| {
                let mut batch = job.batch;
                batch.received_at = stamp;
                notes.push(job.note);
                (batch, (job.origin, job.reply))
            })
            .unzip();
        let (mut turn, ended) = Turn::next(&mut self.last_turn);
        let store = self.store.clone();
        let writing = self.writing.clone();
        let written = tokio::spawn(async move {
            let started = Instant::now();
            let outcomes =
                std::panic::AssertUnwindSafe(outcomes(&store, &batches, &notes, lane, &mut turn))
                    .catch_unwind()
                    .await;
            // Told however the write ended, a panic included, so the next group is never
            // left waiting for its turn.
            ended.send();
            writing.written.notify_one();
            match outcomes {
                Ok(outcomes) => Written {
                    batches,
                    outcomes,
                    elapsed: started.elapsed(),
                },
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        InFlight {
            written,
            replies,
            stamp,
        }
    }

    /// Answers a group once written: its committed rows go through the pipeline, in the order
    /// the groups were taken, and then its callers are answered.
    async fn answer(&mut self, group: InFlight) {
        let InFlight {
            written,
            replies,
            stamp,
        } = group;
        let Written {
            batches,
            outcomes,
            elapsed,
        } = match written.await {
            Ok(written) => written,
            Err(error) => {
                // A panic while writing one group fails that group's requests (their answers
                // are dropped: 503, and a retry is idempotent) but must not leave the
                // instance with no writer at all.
                tracing::error!(%error, "the writer panicked on a group; going on with the next");
                return;
            }
        };
        let rows: usize = batches.iter().map(|b| b.rows.len()).sum();
        let ok = outcomes.iter().all(Result::is_ok);
        metrics::METRICS.group(self.store.backend(), batches.len(), rows, elapsed, ok);
        self.counters.groups.fetch_add(1, Ordering::AcqRel);
        self.counters
            .batches
            .fetch_add(batches.len() as u64, Ordering::AcqRel);
        self.counters
            .largest_group
            .fetch_max(batches.len(), Ordering::AcqRel);
        tracing::debug!(
            batches = batches.len(),
            rows,
            millis = elapsed.as_millis() as u64,
            "write group committed"
        );

        let committed: Vec<CommittedBatch> = batches
            .into_iter()
            .zip(&outcomes)
            .zip(&replies)
            .filter_map(|((batch, outcome), (origin, _))| match outcome {
                Ok(WriteOutcome::Written { receipt, accepted }) => {
                    Some(committed_batch(batch, accepted, receipt, origin, stamp))
                }
                _ => None,
            })
            .collect();
        let replies = replies
            .into_iter()
            .map(|(_, reply)| reply)
            .zip(outcomes)
            .collect();
        // Waits while the finisher is a group behind, so committed groups never pile up.
        self.in_pipeline.groups.fetch_add(1, Ordering::AcqRel);
        if let Err(refused) = self.finished.send(Finished { committed, replies }).await {
            // The finisher has gone (it panicked): the group is committed, so its callers
            // are answered now rather than left with nothing; the engine and the screens
            // catch up on the next tick or restart.
            tracing::error!("the writer's finisher has stopped; answering without the pipeline");
            for (reply, outcome) in refused.0.replies {
                let _ = reply.send(outcome);
                self.counters.answered.fetch_add(1, Ordering::AcqRel);
            }
            self.in_pipeline.groups.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Each batch's outcome, written on write lane `lane` and committed in `turn`. A group the
/// store refuses as a whole for a cause of one batch is written again batch by batch (after
/// the group before has ended, on the same lane), so one bad batch fails alone; an unreachable
/// store fails them all at once rather than being tried once per batch.
async fn outcomes(
    store: &DynStore,
    batches: &[WriteBatch],
    notes: &[Option<PushNote>],
    lane: usize,
    turn: &mut Turn,
) -> Vec<Result<WriteOutcome, WriteError>> {
    match store.write_group_in_turn(batches, notes, lane, turn).await {
        Ok(outcomes) if outcomes.len() == batches.len() => outcomes
            .into_iter()
            .map(|o| o.map_err(WriteError::from))
            .collect(),
        Ok(outcomes) => {
            tracing::error!(
                batches = batches.len(),
                outcomes = outcomes.len(),
                "the store answered a group with the wrong number of outcomes"
            );
            batches
                .iter()
                .map(|_| {
                    Err(WriteError::Store(StoreError::Corrupt {
                        table: "observations",
                        detail: "a write group was answered in part".into(),
                    }))
                })
                .collect()
        }
        Err(error) if batches.len() == 1 => vec![Err(WriteError::Store(error))],
        Err(StoreError::Database(error)) if crate::store::is_outage(&error) => {
            tracing::error!(%error, batches = batches.len(), "write group failed: store unreachable");
            let message = error.to_string();
            batches
                .iter()
                .map(|_| Err(WriteError::Unavailable(message.clone())))
                .collect()
        }
        Err(error) => {
            tracing::warn!(%error, batches = batches.len(), "write group failed; writing its batches one by one");
            // Still after the group before, which may not have ended yet.
            turn.wait().await;
            let mut outcomes = Vec::with_capacity(batches.len());
            for (batch, note) in batches.iter().zip(notes) {
                let mut ended = Turn::default();
                let one = store.write_group_in_turn(
                    std::slice::from_ref(batch),
                    std::slice::from_ref(note),
                    lane,
                    &mut ended,
                );
                let outcome = match one.await {
                    Ok(mut one) if one.len() == 1 => one.remove(0).map_err(WriteError::from),
                    Ok(_) => Err(WriteError::Store(StoreError::Corrupt {
                        table: "observations",
                        detail: "a write group was answered in part".into(),
                    })),
                    Err(error) => Err(WriteError::Store(error)),
                };
                outcomes.push(outcome);
            }
            outcomes
        }
    }
}

/// A committed group on its way through the pipeline to its callers.
struct Finished {
    committed: Vec<CommittedBatch>,
    replies: Vec<(Reply, Result<WriteOutcome, WriteError>)>,
}

type Reply = oneshot::Sender<Result<WriteOutcome, WriteError>>;

/// Carries committed groups through the [`Pipeline`] one at a time, in the order the writer
/// committed them, then answers their callers: a caller that reads after its 200 sees its
/// figure, and the engine sees groups in commit order.
struct Finisher {
    receiver: mpsc::Receiver<Finished>,
    pipeline: Arc<Pipeline>,
    in_pipeline: Arc<InPipeline>,
    counters: Arc<Counters>,
}

impl Finisher {
    async fn run(mut self) {
        while let Some(Finished { committed, replies }) = self.receiver.recv().await {
            if !committed.is_empty() {
                // A panic in the pipeline must not leave committed groups unanswered.
                let applied =
                    std::panic::AssertUnwindSafe(self.pipeline.apply(Change::Committed(committed)))
                        .catch_unwind()
                        .await;
                if applied.is_err() {
                    tracing::error!("the pipeline panicked on a committed group");
                }
            }
            for (reply, outcome) in replies {
                // The caller may have gone away; its batch is written all the same.
                let _ = reply.send(outcome);
                self.counters.answered.fetch_add(1, Ordering::AcqRel);
            }
            self.in_pipeline.groups.fetch_sub(1, Ordering::AcqRel);
            self.in_pipeline.answered.notify_one();
        }
    }
}

fn committed_batch(
    mut batch: WriteBatch,
    accepted: &[usize],
    receipt: &crate::store::IngestReceipt,
    origin: &Origin,
    now: chrono::DateTime<Utc>,
) -> CommittedBatch {
    let rows = if accepted.len() == batch.rows.len() {
        std::mem::take(&mut batch.rows)
    } else {
        accepted
            .iter()
            .filter_map(|&i| batch.rows.get(i).cloned())
            .collect()
    };
    // A batch of thousands of rows names a few indicators: those few are sorted, not the rows.
    let distinct: HashSet<&Code, CodeHash> = rows.iter().map(|r| &r.indicator).collect();
    let mut named: Vec<&Code> = distinct.into_iter().collect();
    named.sort_unstable();
    let indicators = named.into_iter().cloned().collect();
    CommittedBatch {
        rows,
        received_at: batch.received_at,
        feed: FeedEvent {
            at: now,
            source: origin.source.clone(),
            format: origin.format.clone(),
            accepted: receipt.accepted,
            duplicates: receipt.duplicates,
            rejected: receipt.rejected.len(),
            indicators,
        },
    }
}
