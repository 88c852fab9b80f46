//! The three tools `MCP_TOOLS=meta` shows: `find_tool`, `call_tool` and `list_tools`. They
//! let an agent reach a catalogue of any size through a context of three tool definitions.
//!
//! Mistakes the model can fix (a bad argument, an unknown tool name) come back as results
//! with `isError: true` and a message naming what to change, not as protocol errors.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    http::{
        extract::from_value,
        mcp_rest::{FindToolRequest, ListToolsRequest},
    },
    registry::{
        ToolRegistry,
        model::{CallResult, ExecutionStatus, Tool as RegisteredTool},
        served::ServedTool,
    },
};

pub const FIND_TOOL: &str = "find_tool";
pub const CALL_TOOL: &str = "call_tool";
pub const LIST_TOOLS: &str = "list_tools";

pub fn is_meta_tool(name: &str) -> bool {
    matches!(name, FIND_TOOL | CALL_TOOL | LIST_TOOLS)
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("meta tool schemas are object literals"),
    }
}

/// The definitions `tools/list` shows for the meta tools.
pub fn definitions() -> Vec<Tool> {
    vec![
        Tool::new(
            FIND_TOOL,
            "Find the registered tools that fit a task. Describe the task in plain words; \
             the answer ranks tools by relevance and gives each one's input schema, so the \
             best one can be run with call_tool.",
            schema(json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 2000,
                              "description": "The task, in plain words"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5,
                              "description": "How many tools to return"},
                    "category": {"type": "string", "description": "Only tools of this category"},
                    "mode": {"type": "string", "enum": ["hybrid", "semantic", "text"],
                             "default": "hybrid", "description": "How to match"},
                    "explain": {"type": "boolean", "default": false,
                                "description": "Say why each tool ranks where it does"}
                },
                "required": ["query"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            CALL_TOOL,
            "Run a registered tool by name with its arguments (a JSON object that must fit \
             the tool's input schema, as find_tool or list_tools show it).",
            schema(json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's name"},
                    "arguments": {"type": "object", "description": "The tool's arguments",
                                  "default": {}}
                },
                "required": ["name"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            LIST_TOOLS,
            "List registered tools by name, optionally of one category or with any of some \
             tags, a page at a time.",
            schema(json!({
                "type": "object",
                "properties": {
                    "category": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    "offset": {"type": "integer", "minimum": 0, "default": 0}
                },
                "additionalProperties": false
            })),
        ),
    ]
}

/// Runs a meta tool. `Err` only for faults of the service itself (storage down).
pub async fn run(
    registry: &ToolRegistry,
    name: &str,
    arguments: JsonObject,
) -> Result<CallToolResult, ApiError> {
    let arguments = Value::Object(arguments);
    match name {
        FIND_TOOL => find_tool(registry, arguments).await,
        CALL_TOOL => call_tool(registry, arguments).await,
        LIST_TOOLS => list_tools(registry, arguments).await,
        other => Ok(correctable(format!("no meta tool named '{other}'"))),
    }
}

async fn find_tool(registry: &ToolRegistry, arguments: Value) -> Result<CallToolResult, ApiError> {
    let search = match from_value::<FindToolRequest>(arguments).and_then(|r| r.into_search()) {
        Ok(search) => search,
        Err(err) => return model_mistake(err),
    };
    let found = match registry.find(&search).await {
        Ok(found) => found,
        Err(err) => return model_mistake(err),
    };
    let mut tools = Vec::with_capacity(found.tools.len());
    for hit in &found.tools {
        let mut tool = summary(&decoded(&hit.tool)?);
        tool["score"] = json!(hit.score);
        if let Some(explain) = &hit.explain {
            tool["explain"] = json!(explain);
        }
        tools.push(tool);
    }
    Ok(CallToolResult::structured(json!({
        "tools": tools,
        "mode": found.mode,
        "took_ms": found.took_ms,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallArguments {
    name: String,
    #[serde(default)]
    arguments: JsonObject,
}

async fn call_tool(registry: &ToolRegistry, arguments: Value) -> Result<CallToolResult, ApiError> {
    let call = match from_value::<CallArguments>(arguments) {
        Ok(call) => call,
        Err(err) => return model_mistake(err),
    };
    if is_meta_tool(&call.name) {
        return Ok(correctable(format!(
            "'{}' is a meta tool: call it directly, not through call_tool",
            call.name
        )));
    }
    match registry
        .call_tool(&call.name, Value::Object(call.arguments))
        .await
    {
        Ok(outcome) => Ok(call_result(outcome)),
        Err(err @ ApiError::NotFound { .. }) => Ok(correctable(format!(
            "{err}; use find_tool to look for a tool that fits the task"
        ))),
        Err(err) => model_mistake(err),
    }
}

async fn list_tools(registry: &ToolRegistry, arguments: Value) -> Result<CallToolResult, ApiError> {
    let (filter, page) =
        match from_value::<ListToolsRequest>(arguments).and_then(|r| r.into_query()) {
            Ok(query) => query,
            Err(err) => return model_mistake(err),
        };
    let paged = registry.list_served(&filter, page).await?;
    let tools = paged
        .items
        .iter()
        .map(|tool| decoded(tool).map(|tool| summary(&tool)))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(CallToolResult::structured(json!({
        "tools": tools,
        "total": paged.total,
        "limit": page.limit,
        "offset": page.offset,
    })))
}

/// The fields of a tool as served; it was encoded from a tool, so this fails only on a bug.
fn decoded(tool: &ServedTool) -> Result<RegisteredTool, ApiError> {
    tool.decode()
        .map_err(|err| ApiError::Internal(format!("a served tool does not decode: {err}")))
}

fn summary(tool: &RegisteredTool) -> Value {
    json!({
        "name": tool.name,
        "description": tool.description,
        "category": tool.category,
        "tags": tool.tags,
        "input_schema": tool.input_schema,
    })
}

/// A registered tool's outcome as an MCP result: an upstream MCP tool's result unchanged;
/// otherwise the JSON result as structured content (wrapped as `{"result": …}` when it is
/// not an object, which MCP requires), or `isError` with the message when it failed.
pub fn call_result(outcome: CallResult) -> CallToolResult {
    if let Some(upstream) = outcome.upstream {
        return upstream;
    }
    match outcome.status {
        ExecutionStatus::Success => {
            let value = outcome.result.unwrap_or(Value::Null);
            let structured = if value.is_object() {
                value
            } else {
                json!({ "result": value })
            };
            CallToolResult::structured(structured)
        }
        ExecutionStatus::Error | ExecutionStatus::Timeout => {
            CallToolResult::structured_error(json!({
                "status": outcome.status.as_str(),
                "error": outcome.error,
                "execution_id": outcome.execution_id,
            }))
        }
    }
}

/// Faults of the request the model can correct become `isError` results; faults of the
/// service (storage down, internal errors) stay errors.
pub fn model_mistake(err: ApiError) -> Result<CallToolResult, ApiError> {
    match err {
        ApiError::Validation { field, message } => Ok(CallToolResult::structured_error(json!({
            "error": "invalid_arguments",
            "field": field,
            "message": message,
        }))),
        ApiError::NotFound { .. } => Ok(correctable(err.to_string())),
        other => Err(other),
    }
}

fn correctable(message: String) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": message }))
}
