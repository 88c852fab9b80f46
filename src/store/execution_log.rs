//! The execution log: what each call did, and per tool statistics.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;
use chrono::{DateTime, Utc};

use crate::domain::{CallBucket, Execution, ExecutionFilter, Page, Paged, ToolStats};

/// The record of every call.
#[async_trait]
pub trait ExecutionLog: Send + Sync + 'static {
    /// Stores records in one transaction; a record whose id is stored already is skipped.
    /// What a tool returned is stored as it is where the database can hold it; where it
    /// cannot (NUL characters in PostgreSQL), it is altered and the record's note says so.
    async fn record_executions(&self, executions: &[Execution]) -> StoreResult<()>;
    /// Writes of records worth running at once: the recorder starts a batch while this many
    /// less one are being written, so a batch need not wait for the commit before it.
    fn concurrent_record_writes(&self) -> usize {
        1
    }
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
        since: DateTime<Utc>,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<CallBucket>>;
}
