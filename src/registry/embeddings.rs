//! Embedding tools as they are written: one embedder call per write, the vectors stored
//! in one transaction. A write never fails for want of an embedding: the tool waits for
//! the indexer instead.

use uuid::Uuid;

use super::ToolRegistry;
use crate::{
    domain::{
        RegistryError, Tool,
        document::{description_text, embedded_text},
    },
    embedding::{EmbedError, Embedder},
    store::ToolVectors,
};

/// A tool's two vectors: of its whole document and of its description.
pub(super) type TwoVectors = (Vec<f32>, Vec<f32>);

/// The vectors of tools' documents and descriptions, all made in one embedder call.
pub(super) async fn embed_tools(
    embedder: &dyn Embedder,
    tools: &[Tool],
) -> Result<Vec<TwoVectors>, EmbedError> {
    let documents: Vec<String> = tools.iter().map(embedded_text).collect();
    let texts: Vec<&str> = tools
        .iter()
        .zip(&documents)
        .flat_map(|(tool, document)| [document.as_str(), description_text(tool)])
        .collect();
    let vectors = embedder.embed_documents(&texts).await?;
    if vectors.len() != texts.len() {
        return Err(EmbedError::BadResponse(format!(
            "{} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    let mut vectors = vectors.into_iter();
    Ok(std::iter::from_fn(|| Some((vectors.next()?, vectors.next()?))).collect())
}

/// What the store takes of tools' vectors.
pub(super) fn tool_vectors<'a>(tools: &[Tool], vectors: &'a [TwoVectors]) -> Vec<ToolVectors<'a>> {
    tools
        .iter()
        .zip(vectors)
        .map(|(tool, (document, description))| ToolVectors {
            id: tool.id,
            document,
            description: Some(description),
        })
        .collect()
}

/// What a re-embedding pass started with.
#[derive(Debug, Clone, PartialEq)]
pub struct ReindexStart {
    /// The tag of the vectors being made: the model and the tool-text version
    /// (`…#text2`), as a tool's `embedding_model` shows it.
    pub model: String,
    /// Tools with a vector of that tag when the pass started.
    pub indexed: u64,
    /// Tools still waiting for one.
    pub pending: u64,
}

impl ToolRegistry {
    /// Starts re-embedding in the background: pending and stale tools, or with `all` every
    /// tool. Answers with the counts at the start; the indexer's health shows the progress.
    pub async fn start_reindex(&self, all: bool) -> Result<ReindexStart, RegistryError> {
        let model = self.vector_model();
        let counts = self.store.embedding_counts(model).await?;
        if all {
            self.indexer.request_full_pass();
        } else {
            self.indexer.wake();
        }
        Ok(ReindexStart {
            model: model.to_owned(),
            indexed: counts.indexed,
            pending: counts.pending,
        })
    }

    /// Embeds tools' texts in one embedder call and stores the vectors in one transaction.
    /// When the embedder or the store fails, the tools keep their embeddings pending and the
    /// indexer retries later; the writes themselves never fail.
    pub(super) async fn embed_now(&self, tools: &mut [Tool]) {
        if let Some(vectors) = self.embed_texts(tools).await {
            self.store_vectors(tools, &vectors).await;
        }
    }

    /// The vectors of tools' texts, or `None` (logged) when the embedder cannot make them.
    pub(super) async fn embed_texts(&self, tools: &[Tool]) -> Option<Vec<TwoVectors>> {
        match embed_tools(self.embedder.as_ref(), tools).await {
            Ok(vectors) => Some(vectors),
            Err(err @ EmbedError::BadResponse(_)) => {
                tracing::warn!(%err, tools = tools.len(), "embedder answered badly; pending");
                None
            }
            Err(err) => {
                tracing::warn!(%err, tools = tools.len(), "embeddings pending until the embedder answers");
                self.indexer.wake();
                None
            }
        }
    }

    /// Stores tools' vectors and marks the tools stored with the current model.
    pub(super) async fn store_vectors(&self, tools: &mut [Tool], vectors: &[TwoVectors]) {
        let model = self.vector_model();
        let embeddings = tool_vectors(tools, vectors);
        match self.store.set_embeddings(model, &embeddings).await {
            Ok(written) => {
                for (tool, written) in tools.iter_mut().zip(written) {
                    if written {
                        tool.embedding_model = Some(model.to_owned());
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, tools = tools.len(), "embeddings not stored; pending");
                self.indexer.wake();
            }
        }
    }

    /// Re-embeds one tool now; 503 when the embedder is unavailable.
    pub(super) async fn reindex_now(&self, id: Uuid) -> Result<Tool, RegistryError> {
        let tool = self.get(id).await?;
        if self.indexer.embed_batch(std::slice::from_ref(&tool)).await {
            self.get(id).await
        } else {
            Err(RegistryError::unavailable(
                "the embedder is unavailable; try again later",
            ))
        }
    }
}

pub(super) fn log_embed_failure(err: &EmbedError) {
    tracing::warn!(%err, "embedder failed; answering from full text");
}
