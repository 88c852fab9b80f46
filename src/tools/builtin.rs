//! The interface shared by the in-process built-in tools, their limits, and
//! small helpers for reading tool arguments without panicking.

use std::io;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::calculator::Calculator;
use super::data_transform::{CsvToJson, FlattenJson, JsonToCsv, UnflattenJson};
use super::strings::{StringOperation, StringTool};

/// An error raised by a tool while running: a result for the caller, not an HTTP failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub message: String,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A tool implemented in-process.
///
/// `execute` receives arguments that the caller has already validated against
/// `input_schema`, but it re-checks everything it reads and reports bad input
/// as a [`ToolError`]; it never panics on any JSON value.
pub trait BuiltinTool: Send + Sync {
    /// A unique name matching `^[A-Za-z0-9_.-]{1,128}$`.
    fn name(&self) -> &'static str;
    /// What the tool does, specific enough to rank well in a semantic search.
    fn description(&self) -> &'static str;
    /// A coarse grouping such as "math", "text" or "data".
    fn category(&self) -> &'static str;
    /// Short keywords for the tool.
    fn tags(&self) -> &'static [&'static str];
    /// A JSON Schema (draft 2020-12) object describing the arguments.
    fn input_schema(&self) -> Value;
    /// A JSON Schema (draft 2020-12) object describing a successful result, if known.
    fn output_schema(&self) -> Option<Value>;
    /// Runs the tool.
    fn execute(&self, args: &Value) -> Result<Value, ToolError>;
}

/// Limits shared by the tools (from settings).
#[derive(Debug, Clone, Copy)]
pub struct BuiltinLimits {
    /// The largest input a tool accepts, in bytes: the length of a text
    /// argument for the string tools, the serialized length of the whole
    /// argument object for the data transforms.
    pub max_input_bytes: usize,
    /// The longest expression the calculator accepts, in characters.
    pub max_expression_len: usize,
}

impl Default for BuiltinLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 1024 * 1024,
            max_expression_len: 1000,
        }
    }
}

/// Every built-in tool, in a stable order.
pub fn builtin_tools(limits: BuiltinLimits) -> Vec<Arc<dyn BuiltinTool>> {
    let mut tools: Vec<Arc<dyn BuiltinTool>> = vec![Arc::new(Calculator::new(limits))];
    for operation in StringOperation::ALL {
        tools.push(Arc::new(StringTool::new(operation, limits)));
    }
    tools.push(Arc::new(JsonToCsv::new(limits)));
    tools.push(Arc::new(CsvToJson::new(limits)));
    tools.push(Arc::new(FlattenJson::new(limits)));
    tools.push(Arc::new(UnflattenJson::new(limits)));
    tools
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `args` is an object whose keys are all in `allowed`.
pub(crate) fn object_args<'a>(
    args: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, ToolError> {
    let Value::Object(map) = args else {
        return Err(ToolError::new(format!(
            "arguments must be a JSON object, got {}",
            json_type_name(args)
        )));
    };
    if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(ToolError::new(format!(
            "unknown argument '{unknown}'; expected: {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

/// The value of a required argument.
pub(crate) fn required<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value, ToolError> {
    map.get(key)
        .ok_or_else(|| ToolError::new(format!("missing required argument '{key}'")))
}

/// The value of a required string argument.
pub(crate) fn required_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a str, ToolError> {
    let value = required(map, key)?;
    value
        .as_str()
        .ok_or_else(|| wrong_type(key, "a string", value))
}

/// The value of an optional string argument (absent or null means `None`).
pub(crate) fn optional_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ToolError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

/// The value of an optional boolean argument (absent or null means `None`).
pub(crate) fn optional_bool(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<bool>, ToolError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(wrong_type(key, "a boolean", other)),
    }
}

/// An error for an argument of the wrong JSON type.
pub(crate) fn wrong_type(key: &str, expected: &str, got: &Value) -> ToolError {
    ToolError::new(format!(
        "argument '{key}' must be {expected}, got {}",
        json_type_name(got)
    ))
}

/// Fails when the compact JSON serialization of `args` is longer than `max_bytes`.
///
/// Counts bytes as they are produced and stops as soon as the limit is passed,
/// so an oversized input is never serialized in full.
pub(crate) fn check_serialized_size(args: &Value, max_bytes: usize) -> Result<(), ToolError> {
    struct Counter {
        count: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.count = self.count.saturating_add(buf.len());
            if self.count > self.limit {
                Err(io::Error::other("size limit exceeded"))
            } else {
                Ok(buf.len())
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter {
        count: 0,
        limit: max_bytes,
    };
    match serde_json::to_writer(&mut counter, args) {
        Ok(()) => Ok(()),
        Err(_) if counter.count > max_bytes => Err(ToolError::new(format!(
            "input is too large: its JSON form exceeds the limit of {max_bytes} bytes"
        ))),
        Err(err) => Err(ToolError::new(format!("input cannot be measured: {err}"))),
    }
}

/// Fails when a text argument is longer than `max_bytes` (UTF-8 bytes).
pub(crate) fn check_text_size(key: &str, text: &str, max_bytes: usize) -> Result<(), ToolError> {
    if text.len() > max_bytes {
        Err(ToolError::new(format!(
            "argument '{key}' is too large: {} bytes (limit {max_bytes} bytes)",
            text.len()
        )))
    } else {
        Ok(())
    }
}

/// Parses a delimiter argument: exactly one ASCII character that is not a
/// quote, carriage return or line feed. Absent means a comma.
pub(crate) fn parse_delimiter(map: &Map<String, Value>) -> Result<u8, ToolError> {
    let Some(text) = optional_str(map, "delimiter")? else {
        return Ok(b',');
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\r' | '\n') => Ok(c as u8),
        (Some(c), None) if c.is_ascii() => Err(ToolError::new(format!(
            "delimiter {c:?} is not allowed: quotes and line breaks cannot separate fields"
        ))),
        _ => Err(ToolError::new(format!(
            "delimiter must be exactly one ASCII character, got {text:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn valid_name(name: &str) -> bool {
        (1..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    }

    #[test]
    fn name_pattern_check_works() {
        let cases = [
            ("calculator", true),
            ("a.b-c_D9", true),
            ("", false),
            ("has space", false),
            ("ümlaut", false),
            ("slash/name", false),
        ];
        for (name, expected) in cases {
            assert_eq!(valid_name(name), expected, "{name:?}");
        }
        assert!(valid_name(&"x".repeat(128)));
        assert!(!valid_name(&"x".repeat(129)));
    }

    #[test]
    fn tools_have_unique_valid_names_in_a_stable_order() {
        let tools = builtin_tools(BuiltinLimits::default());
        let names: Vec<&str> = tools.iter().map(|tool| tool.name()).collect();
        assert_eq!(
            names,
            [
                "calculator",
                "string_uppercase",
                "string_lowercase",
                "string_reverse",
                "string_length",
                "string_word_count",
                "json_to_csv",
                "csv_to_json",
                "flatten_json",
                "unflatten_json",
            ]
        );
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "duplicate tool names");
        for name in names {
            assert!(valid_name(name), "invalid tool name {name:?}");
        }
    }

    #[test]
    fn schemas_are_closed_objects_with_described_properties() {
        for tool in builtin_tools(BuiltinLimits::default()) {
            let name = tool.name();
            let schema = tool.input_schema();
            assert!(schema.is_object(), "{name}: schema is not an object");
            assert_eq!(schema["type"], "object", "{name}");
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema["description"].is_string(), "{name}: no description");
            let properties = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: no properties"));
            assert!(!properties.is_empty(), "{name}");
            for (key, property) in properties {
                let description = property["description"].as_str().unwrap_or("");
                assert!(description.len() >= 10, "{name}.{key}: missing description");
            }
            let required = schema["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no required array"));
            for key in required {
                let key = key.as_str().expect("required entries are strings");
                assert!(
                    properties.contains_key(key),
                    "{name}: required {key} not a property"
                );
            }
            if let Some(output) = tool.output_schema() {
                assert_eq!(output["type"], "object", "{name}: output schema");
            }
        }
    }

    /// Model APIs take every built-in as a function declaration: object roots, no root
    /// combinators, no boolean subschemas, single types, portable names.
    #[test]
    fn schemas_are_portable() {
        for tool in builtin_tools(BuiltinLimits::default()) {
            let name = tool.name();
            let warnings = crate::domain::portability::warnings(name, &tool.input_schema());
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            if let Some(output) = tool.output_schema() {
                let warnings = crate::domain::portability::warnings(name, &output);
                assert!(warnings.is_empty(), "{name} output: {warnings:?}");
            }
        }
    }

    #[test]
    fn metadata_is_filled_in() {
        for tool in builtin_tools(BuiltinLimits::default()) {
            let name = tool.name();
            assert!(
                tool.description().len() >= 60,
                "{name}: description too short"
            );
            assert!(
                ["math", "text", "data"].contains(&tool.category()),
                "{name}: category {}",
                tool.category()
            );
            assert!(!tool.tags().is_empty(), "{name}: no tags");
        }
    }

    #[test]
    fn no_tool_panics_on_odd_arguments() {
        let odd = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1.5),
            json!("text"),
            json!([]),
            json!([1, 2, 3]),
            json!({}),
            json!({"unknown": 1}),
            json!({"text": 5}),
            json!({"text": null}),
            json!({"expression": []}),
            json!({"operation": "add"}),
            json!({"operation": 7, "a": "1", "b": {}}),
            json!({"data": "x"}),
            json!({"data": [1, "a", null]}),
            json!({"csv": 1}),
            json!({"csv": "a\n1", "delimiter": ""}),
            json!({"data": {}, "separator": ""}),
            json!({"data": {"a": 1}, "separator": 3}),
        ];
        for tool in builtin_tools(BuiltinLimits::default()) {
            for args in &odd {
                // Any result is fine as long as it is not a panic.
                let _ = tool.execute(args);
            }
        }
    }

    #[test]
    fn every_tool_rejects_non_object_arguments() {
        for tool in builtin_tools(BuiltinLimits::default()) {
            for args in [json!(null), json!("x"), json!([1]), json!(3)] {
                let err = tool.execute(&args).expect_err(tool.name());
                assert!(
                    err.message.contains("must be a JSON object"),
                    "{}: {}",
                    tool.name(),
                    err.message
                );
            }
        }
    }

    #[test]
    fn every_tool_rejects_unknown_arguments() {
        for tool in builtin_tools(BuiltinLimits::default()) {
            let err = tool
                .execute(&json!({"no_such_argument": 1}))
                .expect_err(tool.name());
            assert!(
                err.message.contains("unknown argument 'no_such_argument'"),
                "{}: {}",
                tool.name(),
                err.message
            );
        }
    }

    #[test]
    fn serialized_size_limit() {
        let cases = [
            (json!({"a": 1}), 7, true),
            (json!({"a": 1}), 6, false),
            (json!("abc"), 5, true),
            (json!("abc"), 4, false),
            (json!([]), 0, false),
            (json!({"data": "x".repeat(10_000)}), 1000, false),
        ];
        for (value, limit, ok) in cases {
            assert_eq!(
                check_serialized_size(&value, limit).is_ok(),
                ok,
                "{value} with limit {limit}"
            );
        }
    }

    #[test]
    fn delimiter_parsing() {
        let cases = [
            (json!({}), Ok(b',')),
            (json!({"delimiter": null}), Ok(b',')),
            (json!({"delimiter": ";"}), Ok(b';')),
            (json!({"delimiter": "\t"}), Ok(b'\t')),
            (json!({"delimiter": "|"}), Ok(b'|')),
            (json!({"delimiter": ""}), Err("exactly one ASCII character")),
            (
                json!({"delimiter": ",,"}),
                Err("exactly one ASCII character"),
            ),
            (
                json!({"delimiter": "é"}),
                Err("exactly one ASCII character"),
            ),
            (json!({"delimiter": "\""}), Err("not allowed")),
            (json!({"delimiter": "\n"}), Err("not allowed")),
            (json!({"delimiter": 44}), Err("must be a string")),
        ];
        for (args, expected) in cases {
            let map = args.as_object().expect("object");
            match (parse_delimiter(map), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{args}"),
                (Err(err), Err(fragment)) => {
                    assert!(err.message.contains(fragment), "{args}: {}", err.message)
                }
                (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tool_error_displays_its_message() {
        let err = ToolError::new("division by zero");
        assert_eq!(err.to_string(), "division by zero");
        assert_eq!(err, ToolError::new(String::from("division by zero")));
    }
}
