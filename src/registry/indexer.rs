//! Keeps every tool's vectors made by the current model: a background task embeds tools
//! whose embedding is pending (the embedder was down when they were written), stale (made
//! by another model) or without a description vector (stored before there were any), and can
//! re-embed the whole catalogue on request.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use super::embeddings::{embed_tools, tool_vectors};
use crate::{
    domain::{Page, Tool, ToolFilter, document},
    embedding::Embedder,
    store::ToolStore,
};

/// How often pending tools are retried while the embedder is failing.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// How often the task looks for work when nobody asked.
const IDLE_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Serialize)]
pub struct IndexerProgress {
    pub running: bool,
    /// The last look found no tool waiting for a vector of the current model and tool text.
    pub caught_up: bool,
    pub embedded: u64,
    pub failed_batches: u64,
}

pub struct Indexer {
    store: Arc<dyn ToolStore>,
    embedder: Arc<dyn Embedder>,
    /// The tag of the vectors it makes (`document::vector_model`).
    vector_model: String,
    batch_size: usize,
    wake: Notify,
    full_pass_requested: AtomicBool,
    running: AtomicBool,
    /// See [`Indexer::caught_up`].
    caught_up: AtomicBool,
    embedded: AtomicU64,
    failed_batches: AtomicU64,
    /// Tools a registration is embedding itself: the task leaves them alone.
    claimed: Mutex<HashSet<Uuid>>,
}

/// A registration's claim on embedding some tools itself; dropped, the indexer may take
/// whatever of them is still pending.
pub struct Claim {
    indexer: Arc<Indexer>,
    ids: Vec<Uuid>,
    fulfilled: bool,
}

impl Claim {
    /// Every claimed tool got its embedding: nothing is left for the task.
    pub fn fulfilled(mut self) {
        self.fulfilled = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claimed = self.indexer.claimed();
        for id in &self.ids {
            claimed.remove(id);
        }
        drop(claimed);
        if !self.fulfilled {
            // Whatever the claimant could not embed is the task's now.
            self.indexer.wake();
        }
    }
}

impl Indexer {
    pub fn new(
        store: Arc<dyn ToolStore>,
        embedder: Arc<dyn Embedder>,
        batch_size: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            vector_model: document::vector_model(embedder.model_id()),
            store,
            embedder,
            batch_size: batch_size.max(1),
            wake: Notify::new(),
            full_pass_requested: AtomicBool::new(false),
            running: AtomicBool::new(false),
            caught_up: AtomicBool::new(false),
            embedded: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            claimed: Mutex::default(),
        })
    }

    /// Keeps the task off these tools while the caller embeds them.
    pub fn claim(self: &Arc<Self>, ids: Vec<Uuid>) -> Claim {
        self.claimed().extend(ids.iter().copied());
        Claim {
            indexer: self.clone(),
            ids,
            fulfilled: false,
        }
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.claimed.lock().expect("indexer claims lock poisoned")
    }

    /// Starts the background task; it runs until the process ends.
    pub fn spawn(self: &Arc<Self>) {
        let indexer = self.clone();
        tokio::spawn(async move { indexer.run().await });
    }

    /// Asks the task to look for pending tools now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the task to re-embed every tool, pending and stale ones first.
    pub fn request_full_pass(&self) {
        self.full_pass_requested.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// The tag of the vectors it makes and the registry searches: the embedder's model and
    /// the version of the tool text.
    pub fn vector_model(&self) -> &str {
        &self.vector_model
    }

    /// Whether the last look found no tool waiting for a vector (false until the first look
    /// ends, and while the embedder fails). While tools wait (a start with another model or
    /// a new tool text re-embeds the catalogue), the current vectors cover only part of it.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::SeqCst)
    }

    pub fn progress(&self) -> IndexerProgress {
        IndexerProgress {
            running: self.running.load(Ordering::SeqCst),
            caught_up: self.caught_up(),
            embedded: self.embedded.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            self.running.store(true, Ordering::SeqCst);
            let caught_up = self.embed_pending().await;
            if caught_up && self.full_pass_requested.swap(false, Ordering::SeqCst) {
                self.embed_everything().await;
            }
            self.running.store(false, Ordering::SeqCst);
            let pause = if caught_up {
                IDLE_INTERVAL
            } else {
                RETRY_INTERVAL
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Embeds pending and stale tools until none are left (true) or a batch fails (false);
    /// what [`Indexer::caught_up`] says after it.
    pub async fn embed_pending(&self) -> bool {
        let caught_up = self.embed_pending_batches().await;
        self.caught_up.store(caught_up, Ordering::SeqCst);
        caught_up
    }

    async fn embed_pending_batches(&self) -> bool {
        loop {
            // Read past the claimed tools, so that a claim never hides the rest.
            let claimed = self.claimed().len();
            let limit = (self.batch_size + claimed) as u32;
            let mut batch = match self
                .store
                .tools_needing_embedding(&self.vector_model, limit)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(%err, "cannot read tools that need embeddings");
                    return false;
                }
            };
            {
                let claimed = self.claimed();
                batch.retain(|tool| !claimed.contains(&tool.id));
            }
            batch.truncate(self.batch_size);
            if batch.is_empty() {
                return true;
            }
            self.caught_up.store(false, Ordering::SeqCst);
            if !self.embed_batch(&batch).await {
                return false;
            }
        }
    }

    async fn embed_everything(&self) {
        let mut offset = 0;
        loop {
            let page = Page {
                limit: self.batch_size as u32,
                offset,
            };
            let tools = match self.store.list(&ToolFilter::default(), page).await {
                Ok(paged) => paged.items,
                Err(err) => {
                    tracing::warn!(%err, "re-embedding stopped: cannot list tools");
                    return;
                }
            };
            if tools.is_empty() || !self.embed_batch(&tools).await {
                return;
            }
            offset += tools.len() as u32;
        }
    }

    /// Embeds and stores one batch; false when the embedder or the store failed.
    pub async fn embed_batch(&self, tools: &[Tool]) -> bool {
        let vectors = match embed_tools(self.embedder.as_ref(), tools).await {
            Ok(vectors) => vectors,
            Err(err) => {
                self.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%err, tools = tools.len(), "embedding pending tools failed; will retry");
                return false;
            }
        };
        let embeddings = tool_vectors(tools, &vectors);
        match self
            .store
            .set_embeddings(&self.vector_model, &embeddings)
            .await
        {
            Ok(written) => {
                let stored = written.iter().filter(|written| **written).count();
                self.embedded.fetch_add(stored as u64, Ordering::Relaxed);
            }
            Err(err) => {
                tracing::warn!(%err, tools = tools.len(), "cannot store embeddings");
                return false;
            }
        }
        true
    }
}
