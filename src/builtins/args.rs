//! Helpers for reading tool arguments without panicking: each names the argument and the
//! JSON type it wanted in its error.

use serde_json::{Map, Value};

use super::{ToolError, output::json_size_up_to};

/// The JSON type of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
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
pub fn object_args<'a>(
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
pub fn required<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value, ToolError> {
    map.get(key)
        .ok_or_else(|| ToolError::new(format!("missing required argument '{key}'")))
}

/// The value of a required string argument.
pub fn required_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, ToolError> {
    let value = required(map, key)?;
    value
        .as_str()
        .ok_or_else(|| wrong_type(key, "a string", value))
}

/// The value of an optional string argument (absent or null means `None`).
pub fn optional_str<'a>(
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
pub fn optional_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ToolError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(wrong_type(key, "a boolean", other)),
    }
}

/// An error for an argument of the wrong JSON type.
pub fn wrong_type(key: &str, expected: &str, got: &Value) -> ToolError {
    ToolError::new(format!(
        "argument '{key}' must be {expected}, got {}",
        json_type_name(got)
    ))
}

/// Fails when the compact JSON serialization of `args` is longer than `max_bytes`.
///
/// Counts bytes as they are produced and stops as soon as the limit is passed,
/// so an oversized input is never serialized in full.
pub fn check_serialized_size(args: &Value, max_bytes: usize) -> Result<(), ToolError> {
    if json_size_up_to(args, max_bytes.saturating_add(1)) > max_bytes {
        return Err(ToolError::new(format!(
            "input is too large: its JSON form exceeds the limit of {max_bytes} bytes"
        )));
    }
    Ok(())
}

/// Fails when a text argument is longer than `max_bytes` (UTF-8 bytes).
pub fn check_text_size(key: &str, text: &str, max_bytes: usize) -> Result<(), ToolError> {
    if text.len() > max_bytes {
        Err(ToolError::new(format!(
            "argument '{key}' is too large: {} bytes (limit {max_bytes} bytes)",
            text.len()
        )))
    } else {
        Ok(())
    }
}
