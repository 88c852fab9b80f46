//! Embeddings: the vector of each tool, by the model that made it, and the nearest ones.

use async_trait::async_trait;
use uuid::Uuid;

use super::{EmbeddingCounts, StoreResult, VectorSearchChoice};
use crate::domain::{Tool, ToolFilter};

/// The vectors of the catalogue's tools.
///
/// Scores returned by `nearest_ids` are unit scores (`index::fusion::unit_score`).
#[async_trait]
pub trait Embeddings: Send + Sync + 'static {
    /// The dimension of the vectors this store holds.
    fn dimensions(&self) -> usize;

    /// Where this store searches vectors, and why.
    fn vector_search(&self) -> VectorSearchChoice;

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
    /// The `k` tools nearest to `query` by cosine similarity (as a unit score), among
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
}
