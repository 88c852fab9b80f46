//! The application service: every rule of the catalogue lives here, between the adapters
//! (HTTP, MCP, the command line) and the store. One file per use case:
//!
//! - `catalogue`: register, read, update, activate, delete, list; built-ins kept in step;
//! - `batch`: many new tools at once, all or none;
//! - `versions`: a tool's history, rollback and `upsert`;
//! - `import`: the tools of an upstream MCP server;
//! - `find` (with `search`, its request and answer, and `steps`): finding tools for a task,
//!   and similar tools;
//! - `calls`: running a tool, and the record of its calls;
//! - `embeddings`: embedding tools as they are written;
//! - `requests`: what callers send, shared by REST and MCP;
//! - `stdio`: starting the stdio upstream servers active tools name;
//! - `indexer`: embeddings made in the background;
//! - `recorder`: execution records written in the background;
//! - `writes`: every change of the catalogue runs to its end, whoever asked for it.
//!
//! Every method answers a [`RegistryError`] with its code; the adapters translate it.

pub mod batch;
pub mod calls;
pub mod catalogue;
pub mod embeddings;
pub mod find;
pub mod import;
pub mod indexer;
pub mod literals;
pub mod recorder;
pub mod requests;
pub mod search;
pub mod stdio;
pub mod steps;
pub mod versions;
pub mod writes;

use std::sync::Arc;

use crate::{
    domain::RegistryError,
    embedding::Embedder,
    execution::Executor,
    store::{StoreError, ToolStore},
};
use indexer::Indexer;
use recorder::ExecutionRecorder;
pub use versions::Registered;

pub struct ToolRegistry {
    store: Arc<dyn ToolStore>,
    executor: Arc<Executor>,
    recorder: ExecutionRecorder,
    embedder: Arc<dyn Embedder>,
    indexer: Arc<Indexer>,
}

impl ToolRegistry {
    pub fn new(
        store: Arc<dyn ToolStore>,
        executor: Arc<Executor>,
        recorder: ExecutionRecorder,
        embedder: Arc<dyn Embedder>,
        indexer: Arc<Indexer>,
    ) -> Self {
        Self {
            store,
            executor,
            recorder,
            embedder,
            indexer,
        }
    }

    /// The tag of the vectors this process makes and searches: the embedder's model and
    /// the version of the tool text (see [`crate::domain::document::vector_model`]).
    pub fn vector_model(&self) -> &str {
        self.indexer.vector_model()
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn indexer(&self) -> &Arc<Indexer> {
        &self.indexer
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    pub fn recorder(&self) -> &ExecutionRecorder {
        &self.recorder
    }

    pub fn store(&self) -> &Arc<dyn ToolStore> {
        &self.store
    }
}

/// A storage failure as the registry reports it: a taken name is a conflict on `name`, an
/// unreachable database is worth retrying, anything else is the service's fault.
impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate(name) => {
                RegistryError::duplicate("name", format!("a tool named '{name}' already exists"))
            }
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                RegistryError::unavailable("the database is unavailable; try again shortly")
            }
            StoreError::Other(detail) => RegistryError::internal(detail),
        }
    }
}
