//! A tool: how it runs, its definition and its state in the catalogue.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::StdioServer;

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

impl Implementation {
    /// `builtin`, `http` or `mcp`, as the definition's `kind` says.
    pub fn kind(&self) -> &'static str {
        match self {
            Implementation::Builtin { .. } => "builtin",
            Implementation::Http { .. } => "http",
            Implementation::Mcp { .. } => "mcp",
        }
    }
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

/// Timestamps are kept at microsecond precision, the finest both backends store.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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
