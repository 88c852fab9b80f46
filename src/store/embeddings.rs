//! Embeddings: the vector of each tool, by the model that made it, and the nearest ones.

use async_trait::async_trait;
use uuid::Uuid;

use super::{EmbeddingCounts, StoreResult, VectorSearchChoice};
use crate::domain::{Tool, ToolFilter};

/// A tool's vectors to store, made by one model: of its whole document
/// (`document::embedded_text`) and of its description alone
/// (`document::description_text`), which tools stored before it existed lack until re-embedded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolVectors<'a> {
    pub id: Uuid,
    pub document: &'a [f32],
    pub description: Option<&'a [f32]>,
}

/// The vectors of the catalogue's tools.
///
/// Scores returned by `nearest_ids` are unit scores (`index::fusion::unit_score`).
#[async_trait]
pub trait Embeddings: Send + Sync + 'static {
    /// The dimension of the vectors this store holds.
    fn dimensions(&self) -> usize;

    /// Where this store searches vectors, and why.
    fn vector_search(&self) -> VectorSearchChoice;

    /// Stores the vectors of tools made by `model`, in one transaction (both of a tool's
    /// together: a vector without a description vector clears the one stored); for each, whether
    /// its tool (still) exists.
    async fn set_embeddings(
        &self,
        model: &str,
        embeddings: &[ToolVectors<'_>],
    ) -> StoreResult<Vec<bool>>;

    /// Stores the document vector of a tool, without a description vector, and the model that
    /// made it; false if no such tool.
    async fn set_embedding(&self, id: Uuid, embedding: &[f32], model: &str) -> StoreResult<bool> {
        let vectors = ToolVectors {
            id,
            document: embedding,
            description: None,
        };
        let written = self.set_embeddings(model, &[vectors]).await?;
        Ok(written.first() == Some(&true))
    }
    /// A tool's stored vector when `model` made it (its direction: a store may keep it
    /// normalised); None for a tool without one, with another model's, or unknown.
    async fn embedding(&self, id: Uuid, model: &str) -> StoreResult<Option<Vec<f32>>>;
    /// Tools without an embedding from `model` (missing first, then stale, then those with
    /// `model`'s document vector but no description vector), up to `limit`.
    async fn tools_needing_embedding(&self, model: &str, limit: u32) -> StoreResult<Vec<Tool>>;
    /// The `k` tools nearest to `query` by their vector score (`index::vector::tool_score`
    /// of the document's and the description vector's cosines, as a unit score), among tools whose
    /// vectors were made by `model` (vectors of two models are never compared), as
    /// (id, score) pairs, best first, without reading the tools.
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
