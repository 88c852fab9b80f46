//! JSON input into typed values, with the path of the first field that does not fit.
//!
//! The REST routes and the MCP meta tools read requests through here, so both name a bad
//! field the same way (`tags[2]`, `implementation.url`) and both refuse the NUL character.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::RegistryError;

/// Parses JSON text into `T`: bad syntax is `malformed_json`, a value that is not an object
/// or does not fit `T` is `validation_failed` with the field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RegistryError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        RegistryError::malformed_json(format!("the body is not valid JSON: {err}"))
    })?;
    if !value.is_object() {
        return Err(RegistryError::invalid(
            "body",
            "the body must be a JSON object",
        ));
    }
    from_value(value)
}

/// Deserialises a JSON value; the error names the first field that does not fit, or that
/// holds a NUL character (which no store can keep and no tool needs).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, RegistryError> {
    without_nul("", &value)?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = field_of(&path, &message);
        RegistryError::invalid(field, message)
    })
}

/// The dotted path of the failing field. serde reports a missing field at its parent's
/// path with the name in backticks; every other error is reported at the field itself.
fn field_of(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, path.is_empty()) {
        (Some(name), true) => name.to_owned(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, true) => "body".to_owned(),
        (None, false) => path.to_owned(),
    }
}

/// Refuses a NUL character anywhere in `value`, in a string or a key, naming where.
/// PostgreSQL cannot store U+0000 in text or JSON, and no tool needs it: refusing it on
/// both backends keeps them alike and keeps such input from failing later writes.
pub fn without_nul(field: &str, value: &Value) -> Result<(), RegistryError> {
    match first_nul(value, field.to_owned()) {
        None => Ok(()),
        Some(path) => Err(RegistryError::invalid(
            path,
            "text must not contain the NUL character (U+0000)",
        )),
    }
}

fn first_nul(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| first_nul(item, format!("{path}[{index}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(inner)
            } else {
                first_nul(item, inner)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_paths_name_the_failing_field() {
        assert_eq!(field_of(".", "missing field `name`"), "name");
        assert_eq!(
            field_of("implementation", "missing field `url`"),
            "implementation.url"
        );
        assert_eq!(
            field_of("tags[2]", "invalid type: integer `1`, expected a string"),
            "tags[2]"
        );
        assert_eq!(
            field_of("nmae", "unknown field `nmae`, expected one of"),
            "nmae"
        );
        assert_eq!(field_of(".", "something else"), "body");
    }

    #[test]
    fn nul_characters_are_found_wherever_they_hide() {
        assert!(without_nul("arguments", &json!({"a": ["ok", 1, null]})).is_ok());
        let field = |value: Value| match without_nul("arguments", &value) {
            Err(RegistryError {
                field: Some(field), ..
            }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"a": ["ok", "b\u{0}"]})), "arguments.a[1]");
        assert_eq!(field(json!({"k\u{0}": 1})), "arguments.k\u{0}");
        assert_eq!(field(json!("\u{0}")), "arguments");
        assert!(matches!(
            without_nul("", &json!({"description": "x\u{0}"})),
            Err(RegistryError { field: Some(field), .. }) if field == "description"
        ));
    }
}
