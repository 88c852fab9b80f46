//! The three tools `MCP_TOOLS=meta` shows: `find_tool`, `call_tool` and `list_tools`. They
//! let an agent reach a catalogue of any size through a context of three tool definitions.
//!
//! Mistakes the model can fix (a bad argument, an unknown tool name) come back as results
//! with `isError: true` and a message naming what to change, not as protocol errors.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};

use super::schemas;
use serde_json::{Value, json};

use crate::{
    domain::{
        CallResult, ErrorCode, ExecutionStatus, RegistryError, ServedTool, Tool as RegisteredTool,
        input::from_value,
    },
    registry::{
        ToolRegistry,
        requests::{CallToolRequest, FindToolRequest, ListToolsRequest},
    },
};

pub const FIND_TOOL: &str = "find_tool";
pub const CALL_TOOL: &str = "call_tool";
pub const LIST_TOOLS: &str = "list_tools";

/// The meta tools' names: reserved, so no registered tool is shown under one of them.
pub const NAMES: [&str; 3] = [FIND_TOOL, CALL_TOOL, LIST_TOOLS];

pub fn is_meta_tool(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The definitions `tools/list` shows for the meta tools: input schemas derived from the
/// REST request types, output schemas of their results, titles and hints.
pub fn definitions() -> Vec<Tool> {
    let reads = |title: &str| {
        ToolAnnotations::with_title(title)
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false)
    };
    vec![
        Tool::new(
            FIND_TOOL,
            "Find the registered tools that fit a task. Describe the task in plain words; \
             the answer ranks tools by relevance and gives each one's input schema, so the \
             best one can be run with call_tool.",
            schemas::input_schema::<FindToolRequest>(),
        )
        .with_title("Find a tool for a task")
        .with_annotations(reads("Find a tool for a task"))
        .with_raw_output_schema(object_schema(json!({
            "type": "object",
            "properties": {
                "tools": {"type": "array", "description": "The best tools first",
                          "items": summary_schema(true)},
                "mode": {"type": "string", "enum": ["hybrid", "semantic", "text"],
                         "description": "The mode that answered (text when embeddings are unavailable)"},
                "took_ms": {"type": "number", "description": "Time taken in milliseconds"},
                "note": {"type": "string", "description": "Why nothing was found, when a category matched nothing"}
            },
            "required": ["tools", "mode", "took_ms"]
        }))),
        Tool::new(
            CALL_TOOL,
            "Run a registered tool by name with its arguments (a JSON object that must fit \
             the tool's input schema, as find_tool or list_tools show it).",
            schemas::input_schema::<CallToolRequest>(),
        )
        .with_title("Call a registered tool")
        .with_annotations(
            ToolAnnotations::with_title("Call a registered tool")
                .read_only(false)
                .open_world(true),
        )
        .with_raw_output_schema(object_schema(json!({
            "type": "object",
            "description": "The called tool's result: an object as it returned it, or {\"result\": value} for any other value"
        }))),
        Tool::new(
            LIST_TOOLS,
            "List registered tools by name, optionally of one category or with any of some \
             tags, a page at a time.",
            schemas::input_schema::<ListToolsRequest>(),
        )
        .with_title("List the registered tools")
        .with_annotations(reads("List the registered tools"))
        .with_raw_output_schema(object_schema(json!({
            "type": "object",
            "properties": {
                "tools": {"type": "array", "description": "One page of tools, by name",
                          "items": summary_schema(false)},
                "total": {"type": "integer", "description": "How many tools match in all"},
                "limit": {"type": "integer", "description": "The page size"},
                "offset": {"type": "integer", "description": "How many were skipped"},
                "note": {"type": "string", "description": "Why nothing was listed, when a category matched nothing"}
            },
            "required": ["tools", "total", "limit", "offset"]
        }))),
    ]
}

/// The schema of one tool in find_tool's and list_tools' answers.
fn summary_schema(scored: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The name to give call_tool"},
            "description": {"type": "string"},
            "category": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "input_schema": {"type": "object", "description": "What call_tool's arguments must fit"}
        },
        "required": ["name", "description", "category", "tags", "input_schema"]
    });
    if scored {
        schema["properties"]["score"] =
            json!({"type": "number", "description": "Relevance, higher is better"});
        schema["required"]
            .as_array_mut()
            .expect("required is a list")
            .push(json!("score"));
    }
    schema
}

fn object_schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("output schemas are object literals"),
    }
}

/// Runs a meta tool. `Err` only for faults of the service itself (storage down).
pub async fn run(
    registry: &ToolRegistry,
    name: &str,
    arguments: JsonObject,
) -> Result<CallToolResult, RegistryError> {
    // Models send `null` for optional fields they leave out (strict modes make them).
    let arguments: JsonObject = arguments
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect();
    match name {
        FIND_TOOL => find_tool(registry, arguments).await,
        CALL_TOOL => call_tool(registry, arguments).await,
        LIST_TOOLS => list_tools(registry, arguments).await,
        other => Ok(mistake(
            "tool_not_found",
            format!("no meta tool named '{other}'"),
            None,
        )),
    }
}

async fn find_tool(
    registry: &ToolRegistry,
    arguments: JsonObject,
) -> Result<CallToolResult, RegistryError> {
    let search = match from_value::<FindToolRequest>(Value::Object(arguments))
        .and_then(|r| r.into_search())
    {
        Ok(search) => search,
        Err(err) => return model_mistake(err),
    };
    let (found, note) = match registry.find_for_agent(search).await {
        Ok(answer) => answer,
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
    let mut answer = json!({
        "tools": tools,
        "mode": found.mode,
        "took_ms": found.took_ms,
    });
    if let Some(note) = note {
        answer["note"] = json!(note);
    }
    Ok(CallToolResult::structured(answer))
}

async fn call_tool(
    registry: &ToolRegistry,
    arguments: JsonObject,
) -> Result<CallToolResult, RegistryError> {
    // A model that spreads the tool's arguments beside `name` gets told where they go.
    let flattened = arguments
        .keys()
        .any(|key| key != "name" && key != "arguments");
    let call = match from_value::<CallToolRequest>(Value::Object(arguments)) {
        Ok(call) => call,
        Err(RegistryError {
            code: ErrorCode::ValidationFailed,
            field: Some(field),
            message,
        }) if flattened => {
            return Ok(mistake(
                "invalid_arguments",
                format!(
                    "{message}: put the tool's arguments inside `arguments`, as in \
                     {{\"name\": \"calculator\", \"arguments\": {{\"expression\": \"6*7\"}}}}"
                ),
                Some(&field),
            ));
        }
        Err(err) => return model_mistake(err),
    };
    let tool_arguments = match call.arguments_object() {
        Ok(arguments) => arguments,
        Err(err) => return model_mistake(err),
    };
    if is_meta_tool(&call.name) {
        return Ok(mistake(
            "invalid_arguments",
            format!(
                "'{}' is a meta tool: call it directly, not through call_tool",
                call.name
            ),
            Some("name"),
        ));
    }
    match registry.call_tool(&call.name, tool_arguments).await {
        Ok(outcome) => Ok(call_result(outcome)),
        Err(err) if err.code.is_not_found() => Ok(mistake(
            err.code.as_str(),
            format!("{err}; use find_tool to look for a tool that fits the task"),
            Some("name"),
        )),
        Err(err) => model_mistake(err),
    }
}

async fn list_tools(
    registry: &ToolRegistry,
    arguments: JsonObject,
) -> Result<CallToolResult, RegistryError> {
    let (filter, page) = match from_value::<ListToolsRequest>(Value::Object(arguments))
        .and_then(|r| r.into_query())
    {
        Ok(query) => query,
        Err(err) => return model_mistake(err),
    };
    let (paged, note) = registry.list_for_agent(filter, page).await?;
    let tools = paged
        .items
        .iter()
        .map(|tool| decoded(tool).map(|tool| summary(&tool)))
        .collect::<Result<Vec<Value>, RegistryError>>()?;
    let mut answer = json!({
        "tools": tools,
        "total": paged.total,
        "limit": page.limit,
        "offset": page.offset,
    });
    if let Some(note) = note {
        answer["note"] = json!(note);
    }
    Ok(CallToolResult::structured(answer))
}

/// The fields of a tool as served; it was encoded from a tool, so this fails only on a bug.
fn decoded(tool: &ServedTool) -> Result<RegisteredTool, RegistryError> {
    tool.decode()
        .map_err(|err| RegistryError::internal(format!("a served tool does not decode: {err}")))
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
            let code = if outcome.status == ExecutionStatus::Timeout {
                "tool_timeout"
            } else {
                "tool_failed"
            };
            CallToolResult::structured_error(json!({
                "code": code,
                "message": outcome.error.unwrap_or_else(|| "the tool failed".into()),
                "execution_id": outcome.execution_id,
            }))
        }
    }
}

/// Faults of the request the model can correct become `isError` results; faults of the
/// service (storage down, internal errors) stay errors. Every such result has the shape
/// `{code, message, field?, execution_id?}`.
pub fn model_mistake(err: RegistryError) -> Result<CallToolResult, RegistryError> {
    match err.code {
        ErrorCode::ValidationFailed => Ok(mistake(
            "invalid_arguments",
            err.message,
            err.field.as_deref(),
        )),
        code if code.is_not_found() => Ok(mistake(code.as_str(), err.message, None)),
        _ => Err(err),
    }
}

fn mistake(code: &str, message: String, field: Option<&str>) -> CallToolResult {
    let mut error = json!({ "code": code, "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    CallToolResult::structured_error(error)
}
