//! Extractors that answer bad input with the service's JSON error instead of axum's text.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON body: 415 without a JSON content type, 400 when it does not parse, 413 when too
/// large, and 422 naming the field when it does not fit `T`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&request) {
            return Err(ApiError::UnsupportedMediaType {
                message: "expected a body with content-type application/json".into(),
            });
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::MalformedJson {
                        message: format!("could not read the body: {rejection}"),
                    }
                }
            })?;
        parse_json(&bytes).map(AppJson)
    }
}

fn has_json_content_type(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Parses JSON text into `T`: syntax errors are 400, shape errors 422 with the field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| ApiError::MalformedJson {
            message: format!("the body is not valid JSON: {err}"),
        })?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "body",
            "the body must be a JSON object",
        ));
    }
    from_value(value)
}

/// Deserialises a JSON value; a 422 names the first field that does not fit, or that
/// holds a NUL character (which no store can keep and no tool needs).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    crate::registry::validation::without_nul("", &value)?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = field_of(&path, &message);
        ApiError::validation(field, message)
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

/// A tool's (or an execution's) id in the path: 422 naming `id` when it is not a UUID.
pub struct ToolId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ToolId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::validation("id", e.to_string()))?;
        Uuid::parse_str(&raw)
            .map(ToolId)
            .map_err(|_| ApiError::validation("id", format!("'{raw}' is not a UUID")))
    }
}

#[cfg(test)]
mod tests {
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
}
