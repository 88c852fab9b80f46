//! Rules every tool definition must meet before it is stored. Each failure names its field.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{Implementation, RegistryError, Tool, input::without_nul};

pub const MAX_DESCRIPTION_CHARS: usize = 8_000;
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_CATEGORY_CHARS: usize = 128;
pub const MAX_VERSION_CHARS: usize = 64;
/// The longest `find_tool` query, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
pub const MAX_TIMEOUT_MS: u64 = 300_000;

static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]{1,128}$").expect("valid name pattern"));

pub fn name(name: &str) -> Result<(), RegistryError> {
    if NAME.is_match(name) {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            "name",
            "name must be 1 to 128 characters of letters, digits, '_', '.' or '-'",
        ))
    }
}

pub fn description(text: &str) -> Result<(), RegistryError> {
    if shows_nothing(text) {
        return Err(RegistryError::invalid(
            "description",
            "description must not be empty",
        ));
    }
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(RegistryError::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn category(text: &str) -> Result<(), RegistryError> {
    if shows_nothing(text) || text.chars().count() > MAX_CATEGORY_CHARS {
        return Err(RegistryError::invalid(
            "category",
            format!("category must be 1 to {MAX_CATEGORY_CHARS} non-blank characters"),
        ));
    }
    Ok(())
}

/// Checks the tags and returns them without repeats, in their first order.
pub fn tags(tags: Vec<String>) -> Result<Vec<String>, RegistryError> {
    if tags.len() > MAX_TAGS {
        return Err(RegistryError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags are allowed"),
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        if shows_nothing(&tag) || tag.chars().count() > MAX_TAG_CHARS {
            return Err(RegistryError::invalid(
                format!("tags[{i}]"),
                format!("a tag must be 1 to {MAX_TAG_CHARS} non-blank characters"),
            ));
        }
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    Ok(unique)
}

/// A semantic version (`1.4.0`, `2.0.0-beta.1`), so that versions can be compared.
pub fn version(text: &str) -> Result<(), RegistryError> {
    if text.chars().count() > MAX_VERSION_CHARS {
        return Err(RegistryError::invalid(
            "version",
            format!("version must be at most {MAX_VERSION_CHARS} characters"),
        ));
    }
    semver::Version::parse(text).map(|_| ()).map_err(|err| {
        RegistryError::invalid(
            "version",
            format!("version must be a semantic version such as 1.0.0: {err}"),
        )
    })
}

/// A JSON Schema object that is valid against its meta-schema and compiles.
pub fn schema(field: &str, schema: &Value) -> Result<(), RegistryError> {
    if !schema.is_object() {
        return Err(RegistryError::invalid(
            field,
            format!("{field} must be a JSON object"),
        ));
    }
    let size = serde_json::to_vec(schema)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_SCHEMA_BYTES {
        return Err(RegistryError::invalid(
            field,
            format!("{field} must be at most {MAX_SCHEMA_BYTES} bytes"),
        ));
    }
    if let Err(err) = jsonschema::meta::validate(schema) {
        let at = err.instance_path().to_string();
        return Err(RegistryError::invalid(
            field,
            format!("{field} is not a valid JSON Schema (at '{at}'): {err}"),
        ));
    }
    if let Err(err) = jsonschema::validator_for(schema) {
        return Err(RegistryError::invalid(
            field,
            format!("{field} cannot be compiled: {err}"),
        ));
    }
    Ok(())
}

pub fn metadata(value: &Value) -> Result<(), RegistryError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            "metadata",
            "metadata must be a JSON object",
        ))
    }
}

/// The whole tool as it is about to be stored: no NUL anywhere (see [`without_nul`]).
pub fn storable(tool: &Tool) -> Result<(), RegistryError> {
    let value = serde_json::to_value(tool)
        .map_err(|err| RegistryError::internal(format!("a tool did not serialise: {err}")))?;
    without_nul("", &value)
}

pub fn implementation(implementation: &Implementation) -> Result<(), RegistryError> {
    match implementation {
        Implementation::Builtin { handler } => {
            if handler.trim().is_empty() {
                return Err(RegistryError::invalid(
                    "implementation.handler",
                    "handler must name a built-in tool",
                ));
            }
        }
        Implementation::Http {
            url,
            method,
            timeout_ms,
            ..
        } => {
            http_url("implementation.url", url)?;
            if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                return Err(RegistryError::invalid(
                    "implementation.method",
                    "method must be one of GET, POST, PUT, PATCH, DELETE",
                ));
            }
            timeout("implementation.timeout_ms", *timeout_ms)?;
        }
        Implementation::Mcp {
            url,
            tool,
            timeout_ms,
            stdio,
        } => {
            match stdio {
                None => http_url("implementation.url", url)?,
                Some(server) if url.is_empty() => server.validate("implementation.stdio")?,
                Some(_) => {
                    return Err(RegistryError::invalid(
                        "implementation.stdio",
                        "an upstream is reached by url or by stdio, not both",
                    ));
                }
            }
            if tool.trim().is_empty() {
                return Err(RegistryError::invalid(
                    "implementation.tool",
                    "tool must name a tool of the upstream server",
                ));
            }
            timeout("implementation.timeout_ms", *timeout_ms)?;
        }
    }
    Ok(())
}

fn http_url(field: &str, text: &str) -> Result<(), RegistryError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(RegistryError::invalid(
            field,
            "url must be an http or https URL with a host",
        )),
        Err(err) => Err(RegistryError::invalid(
            field,
            format!("url is not valid: {err}"),
        )),
    }
}

fn timeout(field: &str, timeout_ms: Option<u64>) -> Result<(), RegistryError> {
    match timeout_ms {
        Some(ms) if ms == 0 || ms > MAX_TIMEOUT_MS => Err(RegistryError::invalid(
            field,
            format!("timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"),
        )),
        _ => Ok(()),
    }
}

/// Whether a text shows nothing: only white space, control characters and the code points
/// Unicode marks as ignorable in rendering (Default_Ignorable_Code_Point: the zero-width
/// space and joiners, the word joiner, the byte order mark, direction marks, variation
/// selectors, tags…). A text of them would be
/// searched, listed or shown as empty.
pub fn shows_nothing(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || c.is_control() || ignorable(c))
}

fn ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::ErrorCode;

    fn field_of(err: RegistryError) -> String {
        match err {
            RegistryError {
                code: ErrorCode::ValidationFailed,
                field: Some(field),
                ..
            } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn texts_of_invisible_characters_are_empty() {
        for invisible in ["\u{200B}\u{200B}", "\u{FEFF}", " \u{2060}\t", "\u{00AD}"] {
            assert_eq!(field_of(description(invisible).unwrap_err()), "description");
            assert_eq!(field_of(category(invisible).unwrap_err()), "category");
            assert_eq!(
                field_of(tags(vec!["ok".into(), invisible.into()]).unwrap_err()),
                "tags[1]"
            );
        }
        // Visible text joined by a zero-width character is text.
        assert!(description("zero\u{200B}width").is_ok());
        assert!(category("a\u{200D}b").is_ok());
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(name("github.create_issue-v2").is_ok());
        assert!(name(&"a".repeat(128)).is_ok());
        for bad in ["", "has space", "slash/no", "é", &"a".repeat(129)] {
            assert_eq!(field_of(name(bad).unwrap_err()), "name", "{bad:?}");
        }
    }

    #[test]
    fn schemas_are_checked_against_the_meta_schema() {
        assert!(schema("input_schema", &json!({"type": "object"})).is_ok());
        assert!(
            schema(
                "input_schema",
                &json!({"type": "object", "properties": {"x": {"type": "nope"}}})
            )
            .is_err()
        );
        assert!(schema("input_schema", &json!([1])).is_err());
        assert!(
            schema(
                "input_schema",
                &json!({"$ref": "https://example.invalid/s.json"})
            )
            .is_err()
        );
        assert!(
            schema(
                "input_schema",
                &json!({"type": "string", "pattern": "(unclosed"})
            )
            .is_err()
        );
    }

    #[test]
    fn tags_are_deduplicated_and_checked() {
        assert_eq!(
            tags(vec!["a".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            field_of(tags(vec!["a".into(), " ".into()]).unwrap_err()),
            "tags[1]"
        );
    }

    #[test]
    fn implementations_are_checked() {
        let http = |url: &str| Implementation::Http {
            url: url.into(),
            method: "POST".into(),
            headers: Default::default(),
            timeout_ms: None,
        };
        assert!(implementation(&http("https://tools.example/run")).is_ok());
        assert_eq!(
            field_of(implementation(&http("ftp://x")).unwrap_err()),
            "implementation.url"
        );
        assert_eq!(
            field_of(implementation(&http("not a url")).unwrap_err()),
            "implementation.url"
        );
        let builtin = Implementation::Builtin {
            handler: " ".into(),
        };
        assert_eq!(
            field_of(implementation(&builtin).unwrap_err()),
            "implementation.handler"
        );
    }
}
