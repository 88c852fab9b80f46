//! Calling a tool by name, and reading the record of calls.

use std::time::Instant;

use chrono::{DateTime, Utc};

use serde_json::Value;
use uuid::Uuid;

use super::ToolRegistry;
use crate::{
    domain::{
        CallBucket, CallResult, ErrorCode, Execution, ExecutionFilter, ExecutionStatus, Page,
        Paged, RegistryError, Tool, ToolStats, input, now_micros,
    },
    execution::Outcome,
};

impl ToolRegistry {
    /// The tool a call by name runs, as served (no database read while the tool cache holds
    /// it), so it is switched off for calls when it is for listings and searches.
    async fn callable(&self, name: &str) -> Result<std::sync::Arc<Tool>, RegistryError> {
        let served = self
            .store
            .served_by_name(name)
            .await?
            .ok_or_else(|| RegistryError::tool_not_found(format_args!("named '{name}'")))?;
        served.decoded().map_err(|err| {
            RegistryError::internal(format!("the stored tool '{name}' cannot be read: {err}"))
        })
    }

    /// Validates the arguments, runs the tool and queues its execution record. A tool that
    /// fails is a result with status `error`, not an `Err`.
    #[tracing::instrument(level = "debug", name = "registry.call_tool", skip_all, fields(
        gen_ai.tool.name = name))]
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<CallResult, RegistryError> {
        let tool = self.callable(name).await?;
        if !tool.is_active {
            return Err(RegistryError::new(
                ErrorCode::ToolInactive,
                format!("the tool '{name}' is deactivated"),
            ));
        }
        input::without_nul("arguments", &arguments)?;
        self.executor.validate_arguments(&tool, &arguments)?;
        let started_at = now_micros();
        let clock = Instant::now();
        let outcome = self.executor.run(&tool, arguments.clone()).await?;
        let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let completed_at =
            started_at + chrono::Duration::microseconds((duration_ms * 1000.0).round() as i64);
        let mut upstream = None;
        let (status, result, error) = match outcome {
            Outcome::Success(value) => (ExecutionStatus::Success, Some(value), None),
            Outcome::Error(message) => (ExecutionStatus::Error, None, Some(message)),
            Outcome::Timeout(message) => (ExecutionStatus::Timeout, None, Some(message)),
            Outcome::Upstream(answer) => {
                let value = serde_json::to_value(&answer).ok();
                let failed = answer.is_error == Some(true);
                let message = failed.then(|| upstream_error_text(&answer));
                upstream = Some(answer);
                let status = if failed {
                    ExecutionStatus::Error
                } else {
                    ExecutionStatus::Success
                };
                (status, value, message)
            }
        };
        let execution = Execution {
            id: Uuid::new_v4(),
            tool_id: tool.id,
            tool_name: tool.name.clone(),
            status,
            arguments,
            result: result.clone(),
            error: error.clone(),
            duration_ms,
            started_at,
            completed_at,
            note: None,
        };
        metrics::counter!("tool_executions_total",
            "tool" => execution.tool_name.clone(), "status" => status.as_str())
        .increment(1);
        metrics::histogram!("tool_execution_duration_seconds", "tool" => execution.tool_name.clone())
            .record(duration_ms / 1000.0);
        let answer = CallResult {
            execution_id: execution.id,
            tool: tool.name.clone(),
            status,
            result,
            error,
            duration_ms,
            upstream,
        };
        self.recorder.record(execution).await;
        Ok(answer)
    }

    /// Executions, newest first, including those of every call this process has answered.
    pub async fn executions(
        &self,
        filter: &ExecutionFilter,
        page: Page,
    ) -> Result<Paged<Execution>, RegistryError> {
        self.recorder.caught_up().await;
        Ok(self.store.list_executions(filter, page).await?)
    }

    pub async fn execution(&self, id: Uuid) -> Result<Execution, RegistryError> {
        self.recorder.caught_up().await;
        self.store.get_execution(id).await?.ok_or_else(|| {
            RegistryError::new(
                ErrorCode::ExecutionNotFound,
                format!("no execution with id {id}"),
            )
        })
    }

    /// Calls per interval of `width` from `since`, `count` intervals (those without calls
    /// included), of one tool (a name or an id) or of every tool, counting every call this
    /// process has answered. An id counts the calls of a deleted tool too: the history
    /// outlives it.
    pub async fn call_series(
        &self,
        tool: Option<&str>,
        since: DateTime<Utc>,
        width: chrono::Duration,
        count: i64,
    ) -> Result<(Option<Uuid>, Vec<CallBucket>), RegistryError> {
        let tool_id = match tool {
            None => None,
            Some(tool) => match Uuid::parse_str(tool) {
                Ok(id) => Some(id),
                Err(_) => Some(
                    self.store
                        .get_by_name(tool)
                        .await?
                        .ok_or_else(|| {
                            RegistryError::tool_not_found(format_args!("named '{tool}'"))
                        })?
                        .id,
                ),
            },
        };
        self.recorder.caught_up().await;
        let stored = self.store.call_buckets(tool_id, since, width).await?;
        let buckets = (0..count)
            .map(|slot| {
                let start = since + width * slot as i32;
                stored
                    .iter()
                    .find(|bucket| bucket.start == start)
                    .cloned()
                    .unwrap_or(CallBucket {
                        start,
                        calls: 0,
                        errors: 0,
                        timeouts: 0,
                        p50_duration_ms: None,
                        p95_duration_ms: None,
                    })
            })
            .collect();
        Ok((tool_id, buckets))
    }

    /// Call statistics counting every call this process has answered.
    pub async fn stats(&self, id: Uuid) -> Result<ToolStats, RegistryError> {
        self.get(id).await?;
        self.recorder.caught_up().await;
        Ok(self.store.tool_stats(id).await?)
    }
}

/// The text blocks of an upstream error result, for the execution record's `error`.
fn upstream_error_text(answer: &rmcp::model::CallToolResult) -> String {
    let text: Vec<&str> = answer
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect();
    if text.is_empty() {
        "the upstream tool reported an error".to_owned()
    } else {
        text.join("\n")
    }
}
