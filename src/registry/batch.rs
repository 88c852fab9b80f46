//! Registering many tools in one request. Each definition is checked as a single
//! registration checks it; then all are stored in one transaction (all of them or none) and
//! embedded in batches of `EMBEDDING_BATCH_SIZE`, so a catalogue loads at the embedder's pace
//! instead of paying a commit and an embedding round trip per tool.
//!
//! Embedding a thousand tools with a local model takes longer than a request may: the
//! answer waits for embeddings until a deadline only, and tools not embedded by then are
//! answered with their embeddings pending; the background indexer embeds them.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    ToolRegistry,
    model::{NewTool, Tool},
};
use crate::{error::ApiError, store::StoreError};

/// The most tools one batch may hold.
pub const MAX_BATCH: usize = 1_000;

/// `POST /admin/tools/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToolBatch {
    /// 1 to 1,000 definitions, each as `POST /admin/tools` takes it (`upsert` aside), with
    /// names unique in the batch and not yet registered.
    pub tools: Vec<NewTool>,
}

/// The tools a batch registered, in the order given.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredBatch {
    pub tools: Vec<Tool>,
}

impl ToolRegistry {
    /// Registers new tools together: none is stored unless every one is valid and its name
    /// free. Errors name the offending item's field (`tools[3].name`). Embeddings are waited
    /// for up to `embedding_wait`.
    pub async fn register_many(
        &self,
        batch: NewToolBatch,
        embedding_wait: Duration,
    ) -> Result<RegisteredBatch, ApiError> {
        let count = batch.tools.len();
        if !(1..=MAX_BATCH).contains(&count) {
            return Err(ApiError::validation(
                "tools",
                format!("a batch holds 1 to {MAX_BATCH} tools, not {count}"),
            ));
        }
        let mut tools = Vec::with_capacity(count);
        let mut position_of_name = HashMap::with_capacity(count);
        for (at, new) in batch.tools.into_iter().enumerate() {
            let item = format!("tools[{at}]");
            if new.upsert {
                return Err(ApiError::validation(
                    format!("{item}.upsert"),
                    "a batch only registers new tools; send a tool to update with POST /admin/tools",
                ));
            }
            let tool = self.new_tool(new).map_err(|err| err.within(&item))?;
            if let Some(first) = position_of_name.insert(tool.name.clone(), at) {
                return Err(ApiError::validation(
                    format!("{item}.name"),
                    format!("tools[{first}] has the name '{}' too", tool.name),
                ));
            }
            tools.push(tool);
        }
        match self.store.create_many(&tools).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(name)) => {
                return Err(ApiError::Conflict {
                    field: position_of_name
                        .get(&name)
                        .map(|at| format!("tools[{at}].name")),
                    message: format!(
                        "a tool named '{name}' already exists; no tool of the batch was registered"
                    ),
                });
            }
            Err(err) => return Err(err.into()),
        }
        let deadline = tokio::time::Instant::now() + embedding_wait;
        for chunk in tools.chunks_mut(self.indexer.batch_size()) {
            // Only the embedder's work is cut short at the deadline, never a store's write.
            let Ok(vectors) = tokio::time::timeout_at(deadline, self.embed_texts(chunk)).await
            else {
                tracing::info!("batch answered before its embeddings; the indexer makes the rest");
                self.indexer.wake();
                break;
            };
            // The embedder failed: the indexer retries when it answers again.
            let Some(vectors) = vectors else { break };
            self.store_vectors(chunk, &vectors).await;
        }
        tracing::info!(tools = tools.len(), "tools registered in a batch");
        Ok(RegisteredBatch { tools })
    }
}
