//! Extractors that answer bad input with the service's JSON error instead of axum's text.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::input;

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
        Ok(AppJson(input::parse_json(&bytes)?))
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
