//! The HTTP error: a domain error or a refusal of the HTTP layer, and its JSON answer.
//!
//! Every non-2xx body is `{"error": {"code", "message", "field"?}}`. Agents branch on `code`,
//! a stable snake_case string of the one code table (`domain::ErrorCode`); the status of
//! each code is chosen here, in one exhaustive match ([`status_of`]).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    domain::{ErrorCode, RegistryError},
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    MalformedJson { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{message}")]
    NotFound { code: ErrorCode, message: String },
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
    /// A request refused before it is handled: for where it comes from (a `Host` or browser
    /// `Origin` not allowed), or because the server is busy.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
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
            code: ErrorCode::ToolNotFound,
            message: format!("no tool {what}"),
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedJson { .. } => ErrorCode::MalformedJson,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::Validation { .. } => ErrorCode::ValidationFailed,
            Self::NotFound { code, .. } | Self::Refused { code, .. } => *code,
            Self::Conflict { .. } => ErrorCode::DuplicateTool,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::TooManyRequests { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::BadGateway(_) => ErrorCode::UpstreamFailed,
            Self::Timeout => ErrorCode::RequestTimeout,
            Self::Internal(_) => ErrorCode::InternalError,
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

    pub fn field(&self) -> Option<&str> {
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

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::HostNotAllowed | ErrorCode::OriginNotAllowed => {
            StatusCode::FORBIDDEN
        }
        ErrorCode::ToolNotFound
        | ErrorCode::ToolInactive
        | ErrorCode::ExecutionNotFound
        | ErrorCode::VersionNotFound
        | ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::DuplicateTool => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::UpstreamFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::ServiceUnavailable | ErrorCode::ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RequestTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A domain error as the HTTP layer answers it; the code is kept as the domain chose it.
impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        let RegistryError {
            code,
            message,
            field,
        } = err;
        match code {
            ErrorCode::MalformedJson => Self::MalformedJson { message },
            ErrorCode::UnsupportedMediaType => Self::UnsupportedMediaType { message },
            ErrorCode::ValidationFailed => Self::Validation {
                field: field.unwrap_or_else(|| "body".to_owned()),
                message,
            },
            ErrorCode::ToolNotFound
            | ErrorCode::ToolInactive
            | ErrorCode::ExecutionNotFound
            | ErrorCode::VersionNotFound
            | ErrorCode::RouteNotFound => Self::NotFound { code, message },
            ErrorCode::HostNotAllowed | ErrorCode::OriginNotAllowed | ErrorCode::ServerBusy => {
                Self::Refused { code, message }
            }
            ErrorCode::DuplicateTool => Self::Conflict { field, message },
            ErrorCode::PayloadTooLarge => Self::PayloadTooLarge,
            ErrorCode::MethodNotAllowed => Self::MethodNotAllowed(message),
            ErrorCode::Unauthorized => Self::Unauthorized(message),
            ErrorCode::Forbidden => Self::Forbidden(message),
            ErrorCode::RateLimited => Self::TooManyRequests {
                retry_after_secs: 1,
            },
            ErrorCode::ServiceUnavailable => Self::Unavailable(message),
            ErrorCode::UpstreamFailed => Self::BadGateway(message),
            ErrorCode::RequestTimeout => Self::Timeout,
            ErrorCode::InternalError => Self::Internal(message),
        }
    }
}

/// A storage failure met outside the registry (the health probes), answered as the
/// registry would answer it.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        RegistryError::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code().as_str(), error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().as_str(),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The documented error table: each row's code and status.
    fn documented() -> BTreeMap<String, u16> {
        let docs = include_str!("../../docs/api.md");
        let table = docs
            .split("| code | status | when |")
            .nth(1)
            .expect("the error table's header");
        table
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells[1].trim_matches('`').to_owned();
                let status = cells[2].parse().expect("a numeric status");
                (code, status)
            })
            .collect()
    }

    #[test]
    fn the_documented_error_table_is_the_code_table() {
        let documented = documented();
        let coded: BTreeMap<String, u16> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str().to_owned(), status_of(*code).as_u16()))
            .collect();
        assert_eq!(documented, coded);
    }

    #[test]
    fn domain_errors_keep_their_code_field_and_status() {
        let err = ApiError::from(RegistryError::invalid("tags[1]", "bad tag"));
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        assert_eq!(err.field(), Some("tags[1]"));
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        for code in ErrorCode::ALL {
            let err = ApiError::from(RegistryError::new(code, "x"));
            assert_eq!(err.code(), code, "{code}");
            assert_eq!(err.status(), status_of(code), "{code}");
        }
    }
}
