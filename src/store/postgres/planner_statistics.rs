//! Keeps PostgreSQL's planner statistics of `tools` current while embeddings pour in.
//!
//! Until `tools` is analysed with its embeddings in place, the planner may price the HNSW
//! index above a sequential scan and sort every vector for each search (measured: 30
//! instead of 600 semantic searches a second at 10,000 tools, for the minute until
//! autovacuum came by). So after every `ANALYZE_EVERY` share of the catalogue (at least
//! `ANALYZE_AT_LEAST` rows) has been given an embedding, the store analyses the table in
//! the background, one run at a time.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use sqlx::PgPool;

const ANALYZE_AT_LEAST: u64 = 200;
const ANALYZE_EVERY: u64 = 10; // one tenth

#[derive(Debug, Default)]
pub struct PlannerStatistics {
    /// Embeddings written since the last analysis started.
    written: AtomicU64,
    running: Arc<AtomicBool>,
}

impl PlannerStatistics {
    /// Counts embeddings written; starts `ANALYZE tools` when enough have been.
    pub fn embeddings_written(&self, pool: &PgPool, count: usize, catalogue_size: usize) {
        let written = self.written.fetch_add(count as u64, Ordering::Relaxed) + count as u64;
        let due = ANALYZE_AT_LEAST.max(catalogue_size as u64 / ANALYZE_EVERY);
        if written < due
            || self
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        self.written.store(0, Ordering::Relaxed);
        let (pool, running) = (pool.clone(), self.running.clone());
        tokio::spawn(async move {
            match sqlx::query("ANALYZE tools").execute(&pool).await {
                Ok(_) => tracing::debug!(after = written, "tools analysed after new embeddings"),
                Err(err) => tracing::warn!(%err, "ANALYZE tools failed; the next batch retries"),
            }
            running.store(false, Ordering::Release);
        });
    }
}
