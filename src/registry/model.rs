//! Domain types shared by the registry, the stores and the HTTP layer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use super::stdio::StdioServer;

/// How a tool runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Implementation {
    /// Runs in-process; `handler` names a built-in tool.
    Builtin { handler: String },
    /// The arguments are sent as JSON to `url`.
    Http {
        url: String,
        #[serde(default = "default_http_method")]
        method: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Proxied to a tool of an upstream MCP server: a Streamable HTTP endpoint (`url`) or
    /// a server the registry starts and speaks to over stdio (`stdio`), one of the two.
    Mcp {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        url: String,
        tool: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdio: Option<StdioServer>,
    },
}

fn default_http_method() -> String {
    "POST".to_owned()
}

/// A tool as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tool {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    pub version: String,
    pub implementation: Implementation,
    pub metadata: Value,
    pub is_active: bool,
    /// The model that made the stored embedding; `None` while the embedding is pending.
    pub embedding_model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const DEFAULT_CATEGORY: &str = "general";
pub const DEFAULT_VERSION: &str = "1.0.0";

/// A tool definition as an operator submits it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "weather.current",
    "description": "Current weather for a city",
    "category": "weather",
    "tags": ["weather"],
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "implementation": {"kind": "http", "url": "https://weather.example/now", "timeout_ms": 5000}
}))]
pub struct NewTool {
    /// Unique.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$")]
    pub name: String,
    #[schema(min_length = 1, max_length = 8000)]
    pub description: String,
    /// Default `general`.
    #[serde(default)]
    #[schema(max_length = 128)]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<String>,
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub version: Option<String>,
    pub implementation: Implementation,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// When a tool of this name exists: `true` updates it with this definition (its
    /// version, when given, must not go down); `false` (the default) answers 409.
    #[serde(default)]
    pub upsert: bool,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

fn yes() -> bool {
    true
}

/// A partial update: fields that are present replace the stored ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub input_schema: Option<Value>,
    /// `null` clears the output schema; absence keeps it.
    #[serde(default, deserialize_with = "present_or_null")]
    pub output_schema: Option<Option<Value>>,
    pub version: Option<String>,
    pub implementation: Option<Implementation>,
    pub metadata: Option<Value>,
    pub is_active: Option<bool>,
}

fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(Some(if value.is_null() { None } else { Some(value) }))
}

/// An earlier definition of a tool, kept when an update replaced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolVersion {
    pub version: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    pub implementation: Implementation,
    pub metadata: Value,
    /// The model that had embedded this definition; `None` if it was never embedded.
    pub embedding_model: Option<String>,
    /// When this definition was replaced.
    pub changed_at: DateTime<Utc>,
}

impl Tool {
    /// Whether two tools have the same definition: what an operator writes, not the
    /// state (active, embedded) or the timestamps.
    pub fn same_definition(&self, other: &Tool) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.category == other.category
            && self.tags == other.tags
            && self.input_schema == other.input_schema
            && self.output_schema == other.output_schema
            && self.version == other.version
            && self.implementation == other.implementation
            && self.metadata == other.metadata
    }

    /// Takes the definition of an earlier version; state and timestamps stay.
    pub fn restore(&mut self, earlier: &ToolVersion) {
        self.name.clone_from(&earlier.name);
        self.description.clone_from(&earlier.description);
        self.category.clone_from(&earlier.category);
        self.tags.clone_from(&earlier.tags);
        self.input_schema.clone_from(&earlier.input_schema);
        self.output_schema.clone_from(&earlier.output_schema);
        self.version.clone_from(&earlier.version);
        self.implementation = earlier.implementation.clone();
        self.metadata.clone_from(&earlier.metadata);
    }
}

/// Filters of a catalogue listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolFilter {
    pub category: Option<String>,
    /// A tool matches when it carries any of these tags.
    pub tags: Vec<String>,
    pub active_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

/// One page of a listing and the total count matching its filters.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

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

/// Timestamps are kept at microsecond precision, the finest both backends store.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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

#[cfg(test)]
impl Tool {
    /// An active built-in tool with a new id and an empty object schema, for unit tests to
    /// adjust with struct update syntax.
    pub(crate) fn example(name: &str) -> Self {
        let now = now_micros();
        Self {
            id: Uuid::new_v4(),
            name: name.into(),
            description: String::new(),
            category: DEFAULT_CATEGORY.into(),
            tags: Vec::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            version: DEFAULT_VERSION.into(),
            implementation: Implementation::Builtin {
                handler: "calculator".into(),
            },
            metadata: serde_json::json!({}),
            is_active: true,
            embedding_model: None,
            created_at: now,
            updated_at: now,
        }
    }
}
