//! Whether a tool definition works with every common model API, not only with MCP.
//!
//! MCP accepts any JSON Schema, but model providers turn tool definitions into function
//! declarations with narrower rules: an object at the root without `oneOf`/`anyOf`/`allOf`
//! there, no `true`/`false` in place of a subschema, one `type` per schema, and function
//! names of `^[a-zA-Z0-9_-]{1,64}$`. One tool that breaks them can fail every request of an
//! agent that sees it. Registration warns about these; it does not refuse them.

use serde_json::{Map, Value};

/// Keywords whose value is one subschema.
const SUBSCHEMA: &[&str] = &[
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
];
/// Keywords whose value is a list of subschemas.
const SUBSCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const SUBSCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Combinators model APIs refuse at the root of a function's parameters.
const ROOT_COMBINATORS: &[&str] = &["oneOf", "anyOf", "allOf", "not", "if", "then", "else"];

/// Whether `name` is a valid function name for the common model APIs.
pub fn is_portable_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What keeps a tool of this name and input schema from being portable; empty when it is.
pub fn warnings(name: &str, input_schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if !is_portable_name(name) {
        found.push(format!(
            "name: '{name}' is not a valid function name for common model APIs \
             (^[a-zA-Z0-9_-]{{1,64}}$); MCP_PORTABLE_NAMES=true presents it portably"
        ));
    }
    let Value::Object(root) = input_schema else {
        found.push("input_schema: the root is not an object schema".into());
        return found;
    };
    if root.get("type").and_then(Value::as_str) != Some("object") {
        found.push("input_schema: the root's type is not \"object\"".into());
    }
    for keyword in ROOT_COMBINATORS {
        if root.contains_key(*keyword) {
            found.push(format!(
                "input_schema.{keyword}: model APIs refuse {keyword} at the root of a tool's parameters"
            ));
        }
    }
    check(root, "input_schema", &mut found);
    found
}

fn check(schema: &Map<String, Value>, path: &str, found: &mut Vec<String>) {
    if let Some(Value::Array(_)) = schema.get("type") {
        found.push(format!(
            "{path}.type: a list of types; give one type (a missing field already means absent)"
        ));
    }
    let visit = |value: &Value, at: String, found: &mut Vec<String>| match value {
        Value::Object(sub) => check(sub, &at, found),
        Value::Bool(_) => found.push(format!(
            "{at}: a boolean schema; write an object schema ({{}} accepts anything)"
        )),
        _ => {}
    };
    for keyword in SUBSCHEMA {
        if let Some(value) = schema.get(*keyword) {
            visit(value, format!("{path}.{keyword}"), found);
        }
    }
    for keyword in SUBSCHEMA_LISTS {
        if let Some(Value::Array(items)) = schema.get(*keyword) {
            for (i, item) in items.iter().enumerate() {
                visit(item, format!("{path}.{keyword}[{i}]"), found);
            }
        }
    }
    for keyword in SUBSCHEMA_MAPS {
        if let Some(Value::Object(map)) = schema.get(*keyword) {
            for (key, value) in map {
                visit(value, format!("{path}.{keyword}.{key}"), found);
            }
        }
    }
    // `additionalProperties: false` is the one boolean every provider expects.
    if let Some(Value::Object(sub)) = schema.get("additionalProperties") {
        check(sub, &format!("{path}.additionalProperties"), found);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn portable_definitions_have_no_warnings() {
        let schema = json!({"type": "object", "properties": {
            "text": {"type": "string"},
            "items": {"type": "array", "items": {"type": "integer"}},
            "nested": {"type": "object", "additionalProperties": false,
                       "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
            "additionalProperties": false});
        assert_eq!(warnings("string_reverse", &schema), Vec::<String>::new());
    }

    #[test]
    fn each_unportable_construct_is_named() {
        let schema = json!({"type": "object",
            "oneOf": [{"required": ["a"]}, true],
            "properties": {"a": {"type": ["string", "null"]}, "b": true,
                           "c": {"type": "array", "items": false}}});
        let found = warnings("github.create_issue", &schema);
        let joined = found.join("\n");
        for expected in [
            "name: 'github.create_issue'",
            "input_schema.oneOf: model APIs refuse",
            "input_schema.oneOf[1]: a boolean schema",
            "input_schema.properties.a.type: a list of types",
            "input_schema.properties.b: a boolean schema",
            "input_schema.properties.c.items: a boolean schema",
        ] {
            assert!(joined.contains(expected), "{expected} in {joined}");
        }
        assert_eq!(found.len(), 6, "{joined}");
        assert!(warnings("x", &json!([])).len() == 1);
        assert!(!is_portable_name(&"a".repeat(65)));
        assert!(is_portable_name("create-issue_2"));
    }
}
