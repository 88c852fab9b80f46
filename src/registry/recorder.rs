//! Writes execution records in batches from one background task: concurrent calls share a
//! round trip (and, in durable mode, a commit that each of them waits for before answering).
//!
//! One record must never stop the others: a batch the database refuses is split until the
//! refused record is found, which is then stored without its result (and the reason in its
//! `note`). A database that does not answer is retried for `EXECUTION_RETRY_MS`, after which
//! the records are counted lost. Backlog, losses and the last failure are reported to
//! `/health` and `/metrics`.

use std::{
    collections::{BTreeSet, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream::FuturesUnordered};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::{
    domain::Execution,
    store::{StoreError, ToolStore},
};

/// When a call's execution record is written, relative to its answer
/// (`EXECUTION_RECORDING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionRecording {
    /// Before the answer: an answered `execution_id` survives a crash of the process.
    /// Concurrent calls share one commit.
    Durable,
    /// After the answer, by the background writer as soon as it is free: a crash loses
    /// the records still queued.
    Deferred,
}

/// Records written per database round trip at most.
const MAX_BATCH: usize = 256;
const RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// A write that takes longer counts as the database not answering (and is retried: writes
/// of a record twice keep the first).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest reason kept in a record's note.
const MAX_REASON_CHARS: usize = 300;

enum Message {
    /// A record, who waits for it to be written (durable mode), and the span of the call
    /// it records (with tracing on), which the batch write links to.
    Record(
        Box<Execution>,
        Option<oneshot::Sender<()>>,
        Option<crate::telemetry::otel::Caller>,
    ),
    /// Write everything queued before this message, then answer.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Records that may wait in the queue; callers wait when it is full.
    pub capacity: usize,
    pub mode: ExecutionRecording,
    /// How long a write the database does not take is retried.
    pub retry_for: Duration,
}

/// What the writer has done since the process started, for `/health`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecorderHealth {
    /// `durable` or `deferred` (`EXECUTION_RECORDING`).
    pub mode: &'static str,
    /// Records queued or being written.
    pub backlog: u64,
    pub capacity: u64,
    pub written: u64,
    /// Written without their result (or arguments and error) because the database refused
    /// the record as it was.
    pub reduced: u64,
    /// Given up: the database did not take them within `EXECUTION_RETRY_MS`, or the
    /// shutdown deadline came first.
    pub lost: u64,
    /// The last write failed and none has succeeded since.
    pub failing: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Counters {
    backlog: AtomicU64,
    written: AtomicU64,
    reduced: AtomicU64,
    lost: AtomicU64,
    failure: Mutex<Failure>,
}

#[derive(Default)]
struct Failure {
    failing: bool,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
}

impl Counters {
    fn queued(&self, n: u64) {
        let backlog = self.backlog.fetch_add(n, Ordering::SeqCst) + n;
        metrics::gauge!("execution_records_backlog").set(backlog as f64);
    }

    fn settled(&self, n: u64) {
        let backlog = self.backlog.fetch_sub(n, Ordering::SeqCst) - n;
        metrics::gauge!("execution_records_backlog").set(backlog as f64);
    }

    fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("execution_records_written_total").increment(n);
        self.failure.lock().expect("not poisoned").failing = false;
    }

    fn reduced(&self) {
        self.reduced.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("execution_records_reduced_total").increment(1);
    }

    fn lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("execution_records_lost_total").increment(n);
    }

    fn failed(&self, err: &StoreError) {
        metrics::counter!("execution_record_write_failures_total").increment(1);
        let mut failure = self.failure.lock().expect("not poisoned");
        failure.failing = true;
        failure.last_error = Some(err.to_string());
        failure.last_error_at = Some(Utc::now());
    }
}

#[derive(Clone)]
pub struct ExecutionRecorder {
    queue: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    mode: ExecutionRecording,
    capacity: usize,
}

/// Takes a queued record off the backlog if the caller goes away before it is queued.
struct Unqueued<'a>(Option<&'a Counters>);

impl Drop for Unqueued<'_> {
    fn drop(&mut self) {
        if let Some(counters) = self.0 {
            counters.settled(1);
        }
    }
}

impl ExecutionRecorder {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn ToolStore>, options: RecorderOptions) -> Self {
        let capacity = options.capacity.max(1);
        let (queue, inbox) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        tokio::spawn(write_loop(
            store,
            inbox,
            counters.clone(),
            options.retry_for,
        ));
        Self {
            queue,
            counters,
            mode: options.mode,
            capacity,
        }
    }

    /// Queues a call's record; in durable mode, returns once it is written (or given up).
    pub async fn record(&self, execution: Execution) {
        self.counters.queued(1);
        let mut unqueued = Unqueued(Some(&self.counters));
        let (written, wait) = match self.mode {
            ExecutionRecording::Durable => {
                let (done, wait) = oneshot::channel();
                (Some(done), Some(wait))
            }
            ExecutionRecording::Deferred => (None, None),
        };
        if self
            .queue
            .send(Message::Record(
                Box::new(execution),
                written,
                crate::telemetry::otel::caller(),
            ))
            .await
            .is_err()
        {
            self.counters.lost(1);
            tracing::error!("execution recorder has stopped; a record was not written");
            return;
        }
        unqueued.0 = None;
        if let Some(wait) = wait {
            let _ = wait.await;
        }
    }

    /// Waits until every record queued so far is written or given up.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Waits until the records of every call answered so far are written or given up, so
    /// that a read of executions sees them; free when nothing is waiting to be written.
    pub async fn caught_up(&self) {
        if self.backlog() > 0 {
            self.flush().await;
        }
    }

    /// Records queued or being written.
    pub fn backlog(&self) -> u64 {
        self.counters.backlog.load(Ordering::SeqCst)
    }

    /// Counts records that will not be written: the process stops before they are.
    pub fn abandon_backlog(&self) -> u64 {
        let left = self.backlog();
        if left > 0 {
            self.counters.lost(left);
        }
        left
    }

    pub fn health(&self) -> RecorderHealth {
        let failure = self.counters.failure.lock().expect("not poisoned");
        RecorderHealth {
            mode: match self.mode {
                ExecutionRecording::Durable => "durable",
                ExecutionRecording::Deferred => "deferred",
            },
            backlog: self.backlog(),
            capacity: self.capacity as u64,
            written: self.counters.written.load(Ordering::Relaxed),
            reduced: self.counters.reduced.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
            failing: failure.failing,
            last_error: failure.last_error.clone(),
            last_error_at: failure.last_error_at,
        }
    }
}

async fn write_loop(
    store: Arc<dyn ToolStore>,
    mut inbox: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
    retry_for: Duration,
) {
    let at_once = store.concurrent_record_writes().max(1);
    // Batches being written, by their number in the order they were gathered; each one's
    // callers are answered when it is written, whatever the others do.
    let mut writing = FuturesUnordered::new();
    let mut unfinished: BTreeSet<u64> = BTreeSet::new();
    // Flushes with the number of the batch they came in: one is answered once that batch
    // and every one before it are done.
    let mut flushes: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
    let mut gathered: u64 = 0;
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some(finished) = writing.next(), if !writing.is_empty() => {
                unfinished.remove(&finished);
                let oldest = unfinished.first().copied().unwrap_or(u64::MAX);
                while flushes.front().is_some_and(|(batch, _)| *batch < oldest) {
                    let (_, done) = flushes.pop_front().expect("just looked");
                    let _ = done.send(());
                }
            }
            message = inbox.recv(), if open && writing.len() < at_once => match message {
                Some(first) => {
                    let (batch, flushers) = Batch::gather(first, &mut inbox);
                    let number = gathered;
                    gathered += 1;
                    unfinished.insert(number);
                    flushes.extend(flushers.into_iter().map(|done| (number, done)));
                    let write = batch.write(store.as_ref(), &counters, retry_for);
                    writing.push(async move {
                        write.await;
                        number
                    });
                }
                None => open = false,
            },
            else => break,
        }
    }
}

/// Records written together, who waits for them, and the spans of their calls.
struct Batch {
    records: Vec<Execution>,
    writers: Vec<oneshot::Sender<()>>,
    callers: Vec<crate::telemetry::otel::Caller>,
}

impl Batch {
    /// `first` and what is queued behind it, up to `MAX_BATCH` records, and the flushes
    /// among them.
    fn gather(
        first: Message,
        inbox: &mut mpsc::Receiver<Message>,
    ) -> (Self, Vec<oneshot::Sender<()>>) {
        let mut batch = Self {
            records: Vec::new(),
            writers: Vec::new(),
            callers: Vec::new(),
        };
        let mut flushers = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(execution, written, caller) => {
                    batch.records.push(*execution);
                    batch.writers.extend(written);
                    batch.callers.extend(caller);
                }
                Message::Flush(done) => flushers.push(done),
            }
            if batch.records.len() < MAX_BATCH {
                next = inbox.try_recv().ok();
            }
        }
        (batch, flushers)
    }

    /// Writes the records and answers their callers once they are written (or given up).
    async fn write(self, store: &dyn ToolStore, counters: &Counters, retry_for: Duration) {
        let span = tracing::debug_span!(
            "recorder.write_batch",
            recorder.batch_size = self.records.len() as i64
        );
        crate::telemetry::otel::link_callers(&span, self.callers.into_iter());
        write_batch(store, &self.records, counters, retry_for)
            .instrument(span)
            .await;
        counters.settled(self.records.len() as u64);
        for done in self.writers {
            let _ = done.send(());
        }
    }
}

/// How one write attempt ended for good.
enum Refusal {
    /// The database answered and refused these records (bad data, a constraint).
    Refused(StoreError),
    /// The database did not take them within the retry time, or the store is closed.
    GaveUp(StoreError),
}

/// Writes a batch; a part the database refuses is halved until each refused record is
/// alone, and that one is stored reduced.
async fn write_batch(
    store: &dyn ToolStore,
    batch: &[Execution],
    counters: &Counters,
    retry_for: Duration,
) {
    let mut parts: Vec<&[Execution]> = vec![batch];
    while let Some(part) = parts.pop() {
        if part.is_empty() {
            continue;
        }
        match write_retrying(store, part, counters, retry_for).await {
            Ok(()) => counters.written(part.len() as u64),
            Err(Refusal::Refused(_)) if part.len() > 1 => {
                let (head, tail) = part.split_at(part.len() / 2);
                parts.push(tail);
                parts.push(head);
            }
            Err(Refusal::Refused(err)) => {
                write_reduced(store, &part[0], &err, counters, retry_for).await;
            }
            Err(Refusal::GaveUp(err)) => {
                tracing::error!(%err, records = part.len(), "execution records could not be written; given up");
                counters.lost(part.len() as u64);
            }
        }
    }
}

/// Stores a record the database refused without its result; if it is still refused, also
/// without its arguments and error. The note says what was left out and why.
async fn write_reduced(
    store: &dyn ToolStore,
    execution: &Execution,
    refusal: &StoreError,
    counters: &Counters,
    retry_for: Duration,
) {
    let reason = short_reason(refusal);
    let mut reduced = execution.clone();
    reduced.result = None;
    reduced.note = Some(format!(
        "stored without its result: the database refused the record ({reason})"
    ));
    let outcome =
        match write_retrying(store, std::slice::from_ref(&reduced), counters, retry_for).await {
            Err(Refusal::Refused(_)) => {
                reduced.arguments = serde_json::json!({});
                reduced.error = None;
                reduced.note = Some(format!(
                    "stored without its result, arguments and error: the database refused the \
                 record ({reason})"
                ));
                write_retrying(store, std::slice::from_ref(&reduced), counters, retry_for).await
            }
            other => other,
        };
    match outcome {
        Ok(()) => {
            tracing::warn!(execution = %execution.id, %reason, "execution record stored reduced");
            counters.written(1);
            counters.reduced();
        }
        Err(Refusal::Refused(err) | Refusal::GaveUp(err)) => {
            tracing::error!(execution = %execution.id, %err, "execution record could not be written; given up");
            counters.lost(1);
        }
    }
}

fn short_reason(err: &StoreError) -> String {
    err.to_string()
        .replace('\0', "\u{FFFD}")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect()
}

/// One write, retried while the database does not answer, for `retry_for` at most.
async fn write_retrying(
    store: &dyn ToolStore,
    records: &[Execution],
    counters: &Counters,
    retry_for: Duration,
) -> Result<(), Refusal> {
    let started = tokio::time::Instant::now();
    let mut delay = RETRY_DELAY;
    loop {
        let attempt =
            match tokio::time::timeout(WRITE_TIMEOUT, store.record_executions(records)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable("writing timed out".into())),
            };
        let err = match attempt {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        counters.failed(&err);
        let StoreError::Unavailable(message) = &err else {
            tracing::warn!(%err, records = records.len(), "the database refused execution records");
            return Err(Refusal::Refused(err));
        };
        let left = retry_for.saturating_sub(started.elapsed());
        if message.contains("closed") || left.is_zero() {
            return Err(Refusal::GaveUp(err));
        }
        tracing::warn!(%err, "writing execution records failed; retrying");
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}
