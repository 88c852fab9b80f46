//! Registering many tools in one request. Each definition is checked as a single
//! registration checks it; then all are stored in one transaction (all of them or none) and
//! embedded in one embedder call, so a catalogue loads at the embedder's pace instead of
//! paying a commit and an embedding round trip per tool.
//!
//! Embedding a thousand tools with a local model takes longer than a request may: the
//! answer waits for the embeddings until a deadline only, and answers tools not embedded by
//! then with their embeddings pending; the embedding goes on after the answer.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{ToolRegistry, requests::NewTool};
use crate::domain::Tool;
use crate::{
    domain::{ErrorCode, RegistryError},
    store::StoreError,
};
use tokio::sync::oneshot;
use uuid::Uuid;

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
    pub(super) async fn register_many_now(
        self: &Arc<Self>,
        batch: NewToolBatch,
        embedding_wait: Duration,
    ) -> Result<RegisteredBatch, RegistryError> {
        let count = batch.tools.len();
        if !(1..=MAX_BATCH).contains(&count) {
            return Err(RegistryError::invalid(
                "tools",
                format!("a batch holds 1 to {MAX_BATCH} tools, not {count}"),
            ));
        }
        let mut tools = Vec::with_capacity(count);
        let mut position_of_name = HashMap::with_capacity(count);
        for (at, new) in batch.tools.into_iter().enumerate() {
            let item = format!("tools[{at}]");
            if new.upsert {
                return Err(RegistryError::invalid(
                    format!("{item}.upsert"),
                    "a batch only registers new tools; send a tool to update with POST /admin/tools",
                ));
            }
            let tool = self.new_tool(new).map_err(|err| err.within(&item))?;
            if let Some(first) = position_of_name.insert(tool.name.clone(), at) {
                return Err(RegistryError::invalid(
                    format!("{item}.name"),
                    format!("tools[{first}] has the name '{}' too", tool.name),
                ));
            }
            tools.push(tool);
        }
        match self.store.create_many(&tools).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(name)) => {
                return Err(RegistryError {
                    code: ErrorCode::DuplicateTool,
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
        let embedded = self.clone().embed_in_background(tools.clone());
        if let Ok(Ok(stored)) = tokio::time::timeout(embedding_wait, embedded).await {
            let stored: HashSet<Uuid> = stored.into_iter().collect();
            let model = self.vector_model();
            for tool in tools.iter_mut().filter(|tool| stored.contains(&tool.id)) {
                tool.embedding_model = Some(model.to_owned());
            }
        }
        tracing::info!(tools = tools.len(), "tools registered in a batch");
        Ok(RegisteredBatch { tools })
    }

    /// Embeds tools in one embedder call (the local model sorts them by length, so its
    /// batches pad little; an HTTP embedder sends them in `EMBEDDING_BATCH_SIZE` chunks) on
    /// a task of its own, which the indexer leaves alone and which runs to its end even when
    /// nobody waits any more: no embedder work is thrown away. The stored ids are sent when
    /// done.
    pub(super) fn embed_in_background(
        self: Arc<Self>,
        mut tools: Vec<Tool>,
    ) -> oneshot::Receiver<Vec<Uuid>> {
        let (sender, receiver) = oneshot::channel();
        let claim = self
            .indexer
            .claim(tools.iter().map(|tool| tool.id).collect());
        tokio::spawn(async move {
            // On failure the claim goes back and the indexer retries when it can.
            let Some(vectors) = self.embed_texts(&tools).await else {
                return;
            };
            self.store_vectors(&mut tools, &vectors).await;
            let stored: Vec<Uuid> = tools
                .iter()
                .filter(|tool| tool.embedding_model.is_some())
                .map(|tool| tool.id)
                .collect();
            if stored.len() == tools.len() {
                claim.fulfilled();
            }
            let _ = sender.send(stored);
        });
        receiver
    }
}
