//! Built-in tools that run in-process: a calculator, Unicode string utilities and JSON/CSV
//! data transforms. The interface they share and their limits are here; [`builtin_tools`]
//! lists every tool, in a stable order, configured with the shared [`BuiltinLimits`].

pub mod args;
pub mod calculator;
pub mod data;
pub mod output;
pub mod strings;

use std::sync::Arc;

use serde_json::Value;

pub use calculator::Calculator;
pub use data::{CsvToJson, FlattenJson, JsonToCsv, UnflattenJson};
pub use strings::{StringOperation, StringTool};

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
    /// The largest result a data transform builds, in bytes: the CSV text of
    /// `json_to_csv` (and the compact JSON of the records it flattens on the way), the
    /// compact JSON of the results of `csv_to_json` and `flatten_json`. Counted before it
    /// is built, since those results can grow with the square of their input.
    /// (`unflatten_json` only splits keys and merges shared prefixes, and the string
    /// tools at most triple their text, so their results stay proportional to the input.)
    pub max_output_bytes: usize,
    /// The longest expression the calculator accepts, in characters.
    pub max_expression_len: usize,
}

impl Default for BuiltinLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 1024 * 1024,
            max_output_bytes: 16 * 1024 * 1024,
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

#[cfg(test)]
mod tests {
    use super::args::check_serialized_size;
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
    fn tool_error_displays_its_message() {
        let err = ToolError::new("division by zero");
        assert_eq!(err.to_string(), "division by zero");
        assert_eq!(err, ToolError::new(String::from("division by zero")));
    }
}
