//! Schemas of the meta tools, derived from the request types of `registry::requests`, which
//! the REST routes deserialise too, so what `tools/list` declares is what `tools/call`
//! accepts.
//!
//! rmcp's generator writes optional fields as `"type": ["integer", "null"]`, names enums
//! through `$defs` and adds Rust formats such as `uint32`; model APIs reject or mangle all
//! three. The schemas are made portable: single types (a missing field and `null` mean the
//! same), subschemas inlined, only standard formats.

use std::sync::Arc;

use rmcp::{handler::server::common::schema_for_type, model::JsonObject};
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// Formats of JSON Schema itself; others (`uint32`, `double`) are Rust details.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

/// The portable input schema of `T`.
pub fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut schema = schema_for_type::<T>().as_ref().clone();
    let definitions = schema.remove("$defs").unwrap_or(Value::Null);
    schema.remove("$schema");
    // The request type's name and doc comment are noise to a model.
    schema.remove("title");
    schema.remove("description");
    let mut value = Value::Object(schema);
    make_portable(&mut value, &definitions);
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("an object schema stays an object"),
    }
}

fn make_portable(value: &mut Value, definitions: &Value) {
    let Value::Object(map) = value else {
        return;
    };
    if let Some(Value::String(reference)) = map.get("$ref").cloned()
        && let Some(name) = reference.strip_prefix("#/$defs/")
        && let Some(Value::Object(target)) = definitions.get(name)
    {
        map.remove("$ref");
        for (key, sub) in target {
            map.entry(key.clone()).or_insert_with(|| sub.clone());
        }
    }
    collapse_nullable(map);
    if map
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| !STANDARD_FORMATS.contains(&format))
    {
        map.remove("format");
    }
    for sub in map.values_mut() {
        match sub {
            Value::Object(_) => make_portable(sub, definitions),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| make_portable(item, definitions)),
            _ => {}
        }
    }
}

/// `"type": ["integer", "null"]` becomes `"type": "integer"`, and an `anyOf` of one schema
/// and `{"type": "null"}` becomes that schema.
fn collapse_nullable(map: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = map.get("type") {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if kept.len() == 1 {
            map.insert("type".into(), kept[0].clone());
        }
    }
    if let Some(Value::Array(options)) = map.get("anyOf") {
        let kept: Vec<&Value> = options
            .iter()
            .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if kept.len() == 1
            && let Value::Object(only) = kept[0].clone()
        {
            map.remove("anyOf");
            for (key, sub) in only {
                map.entry(key).or_insert(sub);
            }
        }
    }
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
}
