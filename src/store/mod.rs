//! Storage: one async trait, two backends proven equal by one contract suite.

mod best_k;
mod catalogue_index;
pub mod embedded;
pub(crate) mod lexical;
mod own_changes;
mod planner_statistics;
pub mod postgres;
mod replica_vectors;
mod similarity;
mod tool_cache;
mod vector_index;

use async_trait::async_trait;
use uuid::Uuid;

pub use embedded::EmbeddedStore;
pub use postgres::PostgresStore;
pub use tool_cache::ToolCache;
pub use vector_index::estimated_bytes_per_vector;

pub use crate::domain::Facets;
use crate::domain::{
    CallBucket, Execution, ExecutionFilter, Page, Paged, ServedTool, Tool, ToolFilter, ToolStats,
    ToolVersion,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another tool already has this name.
    #[error("a tool named '{0}' already exists")]
    Duplicate(String),
    /// The database cannot be reached right now; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a conditional update (`ToolStore::update_if`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Written,
    /// No tool has that id.
    NotFound,
    /// The stored tool is no longer the one expected; nothing was written.
    Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EmbeddingCounts {
    pub indexed: u64,
    pub pending: u64,
}

impl StoreError {
    /// Classifies a driver error; `name` is the tool name a unique violation refers to.
    pub(crate) fn from_sqlx(err: sqlx::Error, name: Option<&str>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Duplicate(name.unwrap_or_default().to_owned())
            }
            // A protocol error is the server answering garbage, as one does while it shuts
            // down or starts (e.g. to the TLS request of a new connection).
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if is_connection_loss(db.code().as_deref()) => {
                Self::Unavailable(err.to_string())
            }
            _ => Self::Other(err.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_sqlx(err, None)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Other(other.to_string()),
        }
    }
}

/// SQLSTATE classes that mean the server went away or is shutting down
/// (08: connection exception, 57P0x: operator intervention / shutdown).
fn is_connection_loss(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
}

/// Where a store searches vectors, and why: chosen when it opens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VectorSearchChoice {
    /// `memory` (every vector in this process, searched exactly) or `index` (pgvector's
    /// HNSW index, in the database).
    pub place: &'static str,
    pub reason: String,
}

/// The catalogue and the execution log.
///
/// Scores returned by the search methods lie in [0, 1], higher is better.
#[async_trait]
pub trait ToolStore: Send + Sync + 'static {
    /// A short name of the backend, for health reports.
    fn backend(&self) -> &'static str;

    /// The dimension of the vectors this store holds.
    fn dimensions(&self) -> usize;

    /// Where this store searches vectors, and why.
    fn vector_search(&self) -> VectorSearchChoice;

    /// Connections of the store's pool: (open, idle).
    fn pool_connections(&self) -> (u32, usize);

    /// A signal each time the catalogue changes (a tool created, updated, switched on or
    /// off, deleted). With PostgreSQL it covers changes made through any replica; signals
    /// close together may arrive as one, and a lost listener connection counts as a change.
    fn catalogue_changes(&self) -> tokio::sync::broadcast::Receiver<()>;

    /// Inserts new tools in one transaction: all of them or none. `StoreError::Duplicate`
    /// names the first taken name met.
    async fn create_many(&self, tools: &[Tool]) -> StoreResult<()>;

    /// Inserts a new tool; `StoreError::Duplicate` when the name is taken.
    async fn create(&self, tool: &Tool) -> StoreResult<()> {
        self.create_many(std::slice::from_ref(tool)).await
    }
    async fn get(&self, id: Uuid) -> StoreResult<Option<Tool>>;
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Tool>>;
    /// Replaces the stored tool with the same id. When `tool.embedding_model` is `None`
    /// the stored embedding is dropped (its text changed). When the definition changes
    /// (see `Tool::definition`) the one replaced is kept as a version, in the same
    /// transaction. Returns false if no such tool.
    async fn update(&self, tool: &Tool) -> StoreResult<bool> {
        Ok(self.update_if(tool, None).await? == Updated::Written)
    }
    /// `update`, written only while the stored tool still equals `expected` (when given):
    /// the comparison and the write share one transaction holding the row (PostgreSQL's
    /// `FOR UPDATE`, SQLite's write lock), so a change decided on an earlier read never
    /// overwrites one made since. `Updated::Changed` writes nothing.
    async fn update_if(&self, tool: &Tool, expected: Option<&Tool>) -> StoreResult<Updated>;
    /// The definitions a tool had before, newest first; they go with the tool.
    async fn versions(&self, id: Uuid) -> StoreResult<Vec<ToolVersion>>;
    async fn delete(&self, id: Uuid) -> StoreResult<bool>;
    async fn set_active(&self, id: Uuid, active: bool) -> StoreResult<Option<Tool>>;
    /// The tools with these ids, in any order; ids of tools that do not exist are skipped.
    async fn get_many(&self, ids: &[Uuid]) -> StoreResult<Vec<Tool>>;
    /// The ids of one page of tools ordered by name, and how many tools match the filter.
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>>;

    /// Tools ordered by name, read from the database.
    async fn list(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Tool>> {
        let ids = self.list_ids(filter, page).await?;
        let tools = self.get_many(&ids.items).await?;
        let keyed = ids.items.into_iter().map(|id| (id, ())).collect();
        Ok(Paged {
            items: in_order(keyed, tools)
                .into_iter()
                .map(|(tool, ())| tool)
                .collect(),
            total: ids.total,
        })
    }

    /// Tools ordered by name, as served (from the tool cache where it has them).
    async fn list_served(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<ServedTool>> {
        let ids = self.list_ids(filter, page).await?;
        Ok(Paged {
            items: self.served_many(&ids.items).await?,
            total: ids.total,
        })
    }

    /// The tools served from this store: the store drops a tool from it on every change.
    fn tool_cache(&self) -> &ToolCache;

    /// The tools with these ids as served, in the ids' order; ids of tools that do not
    /// exist are skipped. The cache answers what it holds, the database the rest.
    async fn served_many(&self, ids: &[Uuid]) -> StoreResult<Vec<ServedTool>> {
        let cache = self.tool_cache();
        let mut found: Vec<Option<ServedTool>> = ids.iter().map(|id| cache.get(id)).collect();
        let missing: Vec<Uuid> = ids
            .iter()
            .zip(&found)
            .filter(|(_, tool)| tool.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let start = cache.read_start();
            let read: Vec<ServedTool> = self
                .get_many(&missing)
                .await?
                .iter()
                .map(ServedTool::from)
                .collect();
            cache.keep(start, &read);
            for tool in read {
                if let Some(at) = ids.iter().position(|id| *id == tool.id()) {
                    found[at] = Some(tool);
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn count(&self, filter: &ToolFilter) -> StoreResult<u64>;

    /// The id of the tool of this name in the store's catalogue index (kept current with
    /// every change the store makes or hears of), without a database read.
    fn indexed_id_named(&self, name: &str) -> Option<Uuid>;

    /// The tool of this name as served: found through the catalogue index and the tool
    /// cache, so a call needs no database read; the database answers what they cannot.
    /// As fresh as listings and searches: a change by another replica counts once its
    /// notification has arrived.
    async fn served_by_name(&self, name: &str) -> StoreResult<Option<ServedTool>> {
        if let Some(id) = self.indexed_id_named(name)
            && let Some(tool) = self.served_many(&[id]).await?.pop()
            && tool.name() == name
        {
            return Ok(Some(tool));
        }
        let cache = self.tool_cache();
        let start = cache.read_start();
        let Some(tool) = self.get_by_name(name).await? else {
            return Ok(None);
        };
        let served = ServedTool::from(&tool);
        cache.keep(start, [&served]);
        Ok(Some(served))
    }

    /// Stores the embeddings of tools made by `model`, in one transaction; for each,
    /// whether its tool (still) exists.
    async fn set_embeddings(
        &self,
        model: &str,
        embeddings: &[(Uuid, &[f32])],
    ) -> StoreResult<Vec<bool>>;

    /// Stores the embedding of a tool and the model that made it; false if no such tool.
    async fn set_embedding(&self, id: Uuid, embedding: &[f32], model: &str) -> StoreResult<bool> {
        let written = self.set_embeddings(model, &[(id, embedding)]).await?;
        Ok(written.first() == Some(&true))
    }
    /// A tool's stored vector when `model` made it (its direction: a store may keep it
    /// normalised); None for a tool without one, with another model's, or unknown.
    async fn embedding(&self, id: Uuid, model: &str) -> StoreResult<Option<Vec<f32>>>;
    /// Tools without an embedding from `model` (missing first, then stale), up to `limit`.
    async fn tools_needing_embedding(&self, model: &str, limit: u32) -> StoreResult<Vec<Tool>>;
    /// The `k` tools nearest to `query` by cosine similarity (clamped to [0, 1]), among
    /// tools whose vector was made by `model` (vectors of two models are never compared),
    /// as (id, cosine) pairs, best first, without reading the tools.
    async fn nearest_ids(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>>;
    /// How many tools have a vector from `model`, and how many do not.
    async fn embedding_counts(&self, model: &str) -> StoreResult<EmbeddingCounts>;
    /// Full-text search over name, tags, description and parameters, as (id, score) pairs,
    /// best first, without reading the tools.
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>>;

    /// Stores records in one transaction; a record whose id is stored already is skipped.
    /// What a tool returned is stored as it is where the database can hold it; where it
    /// cannot (NUL characters in PostgreSQL), it is altered and the record's note says so.
    async fn record_executions(&self, executions: &[Execution]) -> StoreResult<()>;
    async fn get_execution(&self, id: Uuid) -> StoreResult<Option<Execution>>;
    /// Newest first.
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
        page: Page,
    ) -> StoreResult<Paged<Execution>>;
    async fn tool_stats(&self, tool_id: Uuid) -> StoreResult<ToolStats>;
    /// Calls started at or after `since` (of one tool, or all), in consecutive intervals of
    /// `bucket` from `since`: only intervals with calls, earliest first.
    async fn call_buckets(
        &self,
        tool_id: Option<Uuid>,
        since: chrono::DateTime<chrono::Utc>,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<CallBucket>>;

    /// Cheap round trip proving the storage answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Releases connections; called once at shutdown.
    async fn close(&self);
}

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
    use super::{StoreError, percentile_cont};

    #[test]
    fn lost_or_garbled_connections_are_unavailable_not_internal() {
        let classify = |err: sqlx::Error| StoreError::from_sqlx(err, None);
        assert!(matches!(
            classify(sqlx::Error::Protocol(
                "unexpected response from SSLRequest: 0x00".into()
            )),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn percentile_interpolates_between_neighbours() {
        assert_eq!(percentile_cont(&[], 0.5), None);
        assert_eq!(percentile_cont(&[4.0], 0.95), Some(4.0));
        assert_eq!(percentile_cont(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        let p95 = percentile_cont(&[0.0, 10.0], 0.95).unwrap();
        assert!((p95 - 9.5).abs() < 1e-12);
    }
}
