//! The one error type of the service and its JSON answer.
//!
//! Every non-2xx body is `{"error": {"code", "message", "field"?}}`. Agents branch on `code`,
//! so codes are stable snake_case strings taken from one exhaustive match.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    MalformedJson { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    #[error("the request body is larger than the server accepts (MAX_BODY_BYTES)")]
    PayloadTooLarge,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A request refused for where it comes from (a `Host` or browser `Origin` not allowed).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("too many requests; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// An upstream server (an imported MCP server) failed or could not be reached.
    #[error("{0}")]
    BadGateway(String),
    #[error("the request took longer than the server's limit")]
    Timeout,
    /// Details stay in the server's log; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every non-2xx answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "limit must be between 1 and 100", "field": "limit"}}))]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// A stable snake_case code to branch on.
    code: &'a str,
    message: String,
    /// The offending field of validation errors and conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn tool_not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound {
            code: "tool_not_found",
            message: format!("no tool {what}"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson { .. } => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Validation { .. } => "validation_failed",
            Self::NotFound { code, .. } => code,
            Self::Conflict { .. } => "duplicate_tool",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Refused { code, .. } => code,
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::BadGateway(_) => "upstream_failed",
            Self::Timeout => "request_timeout",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The same error about an item of a list: its field becomes `{item}.{field}`.
    pub fn within(self, item: &str) -> Self {
        match self {
            Self::Validation { field, message } => Self::Validation {
                field: format!("{item}.{field}"),
                message,
            },
            Self::Conflict {
                field: Some(field),
                message,
            } => Self::Conflict {
                field: Some(format!("{item}.{field}")),
                message,
            },
            other => other,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } => Some(field),
            Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "the server failed to handle the request".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate(name) => Self::Conflict {
                field: Some("name".into()),
                message: format!("a tool named '{name}' already exists"),
            },
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                Self::Unavailable("the database is unavailable; try again shortly".into())
            }
            StoreError::Other(detail) => Self::Internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                field: self.field(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
