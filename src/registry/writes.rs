//! Every change of the catalogue runs to its end. A caller that goes away (a client that
//! hangs up, a request's deadline) drops its request; a write dropped between the
//! database's commit and the in-memory indexes that follow it would leave those behind
//! the database. So each public write runs on a task of its own, whoever calls it.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::{
    Registered, ToolRegistry,
    batch::{NewToolBatch, RegisteredBatch},
    import::{ImportReport, ImportRequest},
    requests::{NewTool, ToolPatch},
};
use crate::domain::{RegistryError, Tool};

impl ToolRegistry {
    /// Runs `change` on a task of its own and waits for it; the change finishes even when
    /// nobody waits any more.
    async fn to_the_end<T, F>(
        self: &Arc<Self>,
        change: impl FnOnce(Arc<Self>) -> F,
    ) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(change(self.clone()))
            .await
            .map_err(|err| RegistryError::internal(format!("a catalogue change failed: {err}")))?
    }

    /// Registers a new tool, or with `upsert` updates the tool of that name.
    pub async fn register(self: &Arc<Self>, new: NewTool) -> Result<Registered, RegistryError> {
        self.to_the_end(|registry| async move { registry.register_now(new).await })
            .await
    }

    /// Registers new tools together: none is stored unless every one is valid and its name
    /// free. Errors name the offending item's field (`tools[3].name`). Embeddings are waited
    /// for up to `embedding_wait`.
    pub async fn register_many(
        self: &Arc<Self>,
        batch: NewToolBatch,
        embedding_wait: Duration,
    ) -> Result<RegisteredBatch, RegistryError> {
        self.to_the_end(|registry| async move {
            registry.register_many_now(batch, embedding_wait).await
        })
        .await
    }

    /// Registers (or brings up to date) the tools of an upstream MCP server.
    pub async fn import_upstream(
        self: &Arc<Self>,
        request: ImportRequest,
        embedding_wait: Duration,
    ) -> Result<ImportReport, RegistryError> {
        self.to_the_end(
            |registry| async move { registry.import_now(request, embedding_wait).await },
        )
        .await
    }

    /// Applies a partial update. A `version`, when given, must not go down, and must go up
    /// if the definition changes: both checked against the row the update replaces.
    pub async fn update(
        self: &Arc<Self>,
        id: Uuid,
        patch: ToolPatch,
    ) -> Result<Tool, RegistryError> {
        self.to_the_end(|registry| async move { registry.update_now(id, patch).await })
            .await
    }

    /// Makes the newest earlier definition with `version` the current one; the definition
    /// it replaces joins the history.
    pub async fn rollback(
        self: &Arc<Self>,
        id: Uuid,
        version: &str,
    ) -> Result<Tool, RegistryError> {
        let version = version.to_owned();
        self.to_the_end(|registry| async move { registry.rollback_now(id, &version).await })
            .await
    }

    pub async fn delete(self: &Arc<Self>, id: Uuid) -> Result<(), RegistryError> {
        self.to_the_end(|registry| async move { registry.delete_now(id).await })
            .await
    }

    pub async fn set_active(
        self: &Arc<Self>,
        id: Uuid,
        active: bool,
    ) -> Result<Tool, RegistryError> {
        self.to_the_end(|registry| async move { registry.set_active_now(id, active).await })
            .await
    }

    /// Re-embeds one tool now; `service_unavailable` when the embedder is unavailable.
    pub async fn reindex_tool(self: &Arc<Self>, id: Uuid) -> Result<Tool, RegistryError> {
        self.to_the_end(|registry| async move { registry.reindex_now(id).await })
            .await
    }
}
