//! The tool lines of a `tools.jsonl` as the registry takes them: shared by the examples
//! that load such a file (`eval_retrieval`, `retrieval_lab`, `explain_cost`).

use serde_json::{Value, json};

/// The registry name of a tool line: `qualified_name` with `/` as `.`, else `name`.
pub fn tool_name(line: &Value) -> String {
    let raw = line["qualified_name"]
        .as_str()
        .or(line["name"].as_str())
        .unwrap_or_default();
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else if c == '/' {
                '.'
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

/// A tool line as a registration body: description, schema and tags within the
/// registry's limits, an invalid schema replaced by an open one.
pub fn definition(line: &Value) -> Value {
    let name = tool_name(line);
    let description = line["description"]
        .as_str()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(&name);
    let schema = match &line["input_schema"] {
        Value::Object(_) if jsonschema::meta::is_valid(&line["input_schema"]) => {
            line["input_schema"].clone()
        }
        _ => json!({"type": "object"}),
    };
    let tags: Vec<String> = line["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str())
                .map(|t| t.chars().take(64).collect())
                .take(32)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": name,
        "description": description.chars().take(8000).collect::<String>(),
        "tags": tags,
        "input_schema": schema,
        "implementation": {"kind": "http", "url": "https://tools.invalid/run"}
    })
}

/// A tool line as the registry would store it, under a fixed id: for the examples that rank
/// tools without a registry (`retrieval_lab`, `explain_cost`).
#[allow(dead_code)] // `eval_retrieval` registers through the API instead.
pub fn stored_tool(line: &Value, n: usize) -> tool_registry::domain::Tool {
    let mut stored = definition(line);
    let extra = json!({
        "id": uuid::Uuid::from_u128(n as u128 + 1), "category": "general", "version": "1",
        "metadata": {}, "is_active": true, "embedding_model": null,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        stored[key] = value.clone();
    }
    serde_json::from_value(stored).expect("a tool line makes a tool")
}
