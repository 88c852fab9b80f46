//! Storage: a few traits of one concern each (the catalogue, embeddings, the execution log,
//! health), two backends proven equal by one contract suite, and the one mirror both keep
//! in step with their writes.

mod catalogue;
mod embeddings;
mod error;
mod execution_log;
pub mod mirror;
pub mod postgres;
pub mod sqlite;
mod tool_cache;

use async_trait::async_trait;
use uuid::Uuid;

pub use catalogue::Catalogue;
pub use embeddings::{Embeddings, ToolVectors};
pub use error::{StoreError, StoreResult};
pub use execution_log::ExecutionLog;
pub use postgres::PostgresStore;
pub use sqlite::EmbeddedStore;
pub use tool_cache::ToolCache;

use crate::domain::{Tool, ToolVersion};
pub use crate::index::{Facets, vector::estimated_bytes_per_vector};

/// What a conditional update (`ToolStore::update_if`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Written,
    /// No tool has that id.
    NotFound,
    /// The stored tool is no longer the one expected; nothing was written.
    Changed,
}

/// A tool to store in place of the stored row `replaces` (the same tool, as read before).
#[derive(Debug, Clone)]
pub struct Replacement {
    pub tool: Tool,
    pub replaces: Tool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EmbeddingCounts {
    pub indexed: u64,
    pub pending: u64,
}

/// Where a store searches vectors, and why: chosen when it opens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VectorSearchChoice {
    /// `memory` (every vector in this process, searched exactly) or `index` (pgvector's
    /// HNSW index, in the database).
    pub place: &'static str,
    pub reason: String,
}

/// What the health report asks of a store, and its end.
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// A short name of the backend, for health reports.
    fn backend(&self) -> &'static str;
    /// Connections of the store's pool: (open, idle).
    fn pool_connections(&self) -> (u32, usize);
    /// Cheap round trip proving the storage answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Releases connections; called once at shutdown.
    async fn close(&self);
}

/// The whole store, as the application holds it: each concern's trait, one backend.
pub trait ToolStore: Catalogue + Embeddings + ExecutionLog + StoreHealth {}

impl<T: Catalogue + Embeddings + ExecutionLog + StoreHealth> ToolStore for T {}

/// Pairs ids (each with what goes along, such as a score) with their tools, in the ids'
/// order; a tool deleted between choosing the ids and reading the rows simply drops out.
pub(crate) fn in_order<T>(keyed: Vec<(Uuid, T)>, mut tools: Vec<Tool>) -> Vec<(Tool, T)> {
    keyed
        .into_iter()
        .filter_map(|(id, along)| {
            let at = tools.iter().position(|t| t.id == id)?;
            Some((tools.swap_remove(at), along))
        })
        .collect()
}

/// A `tool_versions` row, read with the tool columns (see each store's `VERSION_COLUMNS`:
/// `tool_id` as `id`, `changed_at` as `updated_at`), as the version it records.
pub(crate) fn version_from_tool(tool: Tool) -> ToolVersion {
    let changed_at = tool.updated_at;
    ToolVersion::replaced(tool, changed_at)
}

/// Refuses a vector whose length is not the store's dimension.
pub(crate) fn check_dimensions(vector: &[f32], dimensions: usize) -> StoreResult<()> {
    if vector.len() == dimensions {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "vector has {} dimensions, the store holds {dimensions}",
            vector.len()
        )))
    }
}

/// Linear-interpolated percentile of sorted values, as PostgreSQL's `percentile_cont`.
pub(crate) fn percentile_cont(sorted: &[f64], fraction: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = fraction * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let weight = position - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * weight)
}

#[cfg(test)]
mod tests {
    use super::percentile_cont;

    #[test]
    fn percentile_interpolates_between_neighbours() {
        assert_eq!(percentile_cont(&[], 0.5), None);
        assert_eq!(percentile_cont(&[4.0], 0.95), Some(4.0));
        assert_eq!(percentile_cont(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        let p95 = percentile_cont(&[0.0, 10.0], 0.95).unwrap();
        assert!((p95 - 9.5).abs() < 1e-12);
    }
}
