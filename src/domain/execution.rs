//! Tool calls: their records, statistics and answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Success,
    Error,
    Timeout,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Self::Success),
            "error" => Some(Self::Error),
            "timeout" => Some(Self::Timeout),
            _ => None,
        }
    }
}

/// The record of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub id: Uuid,
    pub tool_id: Uuid,
    pub tool_name: String,
    pub status: ExecutionStatus,
    pub arguments: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: f64,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// Set when the record is not exactly what the tool returned: what storing it changed
    /// or left out, and why (e.g. NUL characters PostgreSQL cannot hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionFilter {
    pub tool_id: Option<Uuid>,
    pub tool_name: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub since: Option<DateTime<Utc>>,
}

/// Call statistics of one tool.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ToolStats {
    pub tool_id: Uuid,
    pub calls: u64,
    pub successes: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// `successes / calls`, or `None` before the first call.
    pub success_rate: Option<f64>,
    pub mean_duration_ms: Option<f64>,
    pub p50_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
    pub last_called_at: Option<DateTime<Utc>>,
}

/// Calls started in one interval of a time series (`ToolStore::call_buckets`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallBucket {
    /// The interval's start; it lasts the series' `bucket_seconds`.
    pub start: DateTime<Utc>,
    pub calls: u64,
    /// Calls that failed (status `error`).
    pub errors: u64,
    /// Calls that ran out of time (status `timeout`).
    pub timeouts: u64,
    /// Median duration (linear interpolation, as PostgreSQL's `percentile_cont`); absent
    /// for an interval without calls.
    pub p50_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
}

/// What `call_tool` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallResult {
    pub execution_id: Uuid,
    pub tool: String,
    pub status: ExecutionStatus,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: f64,
    /// An upstream MCP tool's result as the upstream sent it, so MCP clients get it unchanged.
    #[serde(skip)]
    pub upstream: Option<rmcp::model::CallToolResult>,
}
