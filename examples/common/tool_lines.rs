//! The tool lines of a `tools.jsonl` as the registry takes them: shared by the examples
//! that load such a file (`eval_retrieval`, `retrieval_lab`).

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
