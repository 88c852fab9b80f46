//! Writes execution records off the caller's path: a bounded queue drained in batches by
//! one background task. A full queue makes callers wait rather than drop records; a failed
//! write is retried; shutdown flushes everything queued.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use super::model::Execution;
use crate::store::ToolStore;

/// Records written per database round trip at most.
const MAX_BATCH: usize = 256;
const RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

enum Message {
    Record(Box<Execution>),
    /// Write everything queued before this message, then answer.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct ExecutionRecorder {
    queue: mpsc::Sender<Message>,
}

impl ExecutionRecorder {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn ToolStore>, capacity: usize) -> Self {
        let (queue, inbox) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_loop(store, inbox));
        Self { queue }
    }

    pub async fn record(&self, execution: Execution) {
        if self
            .queue
            .send(Message::Record(Box::new(execution)))
            .await
            .is_err()
        {
            tracing::error!("execution recorder has stopped; a record was not written");
        }
    }

    /// Waits until every record queued so far is written (or given up at shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Arc<dyn ToolStore>, mut inbox: mpsc::Receiver<Message>) {
    let mut batch: Vec<Execution> = Vec::with_capacity(MAX_BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(execution) => batch.push(*execution),
                Message::Flush(done) => waiting.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = inbox.try_recv().ok();
            }
        }
        write_with_retry(store.as_ref(), &batch, inbox.is_closed()).await;
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Retries until the batch is written: the database may be restarting. Records are only
/// given up when the store has been closed for shutdown.
async fn write_with_retry(store: &dyn ToolStore, batch: &[Execution], closing: bool) {
    if batch.is_empty() {
        return;
    }
    let mut delay = RETRY_DELAY;
    let mut attempts = 0u32;
    loop {
        match store.record_executions(batch).await {
            Ok(()) => {
                metrics::counter!("execution_records_written_total").increment(batch.len() as u64);
                return;
            }
            Err(err) => {
                attempts += 1;
                let closed = matches!(&err, crate::store::StoreError::Unavailable(m) if m.contains("closed"));
                if closed || (closing && attempts >= 3) {
                    tracing::error!(%err, records = batch.len(), "execution records could not be written");
                    metrics::counter!("execution_records_lost_total").increment(batch.len() as u64);
                    return;
                }
                tracing::warn!(%err, attempts, "writing execution records failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}
