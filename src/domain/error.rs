//! The registry's error and the one table of error codes.
//!
//! Every failure the service reports carries an [`ErrorCode`]: a stable snake_case string
//! agents branch on. The domain decides the code where the failure is raised; the adapters
//! only translate it (the HTTP status of each code is chosen in `http::error`, the MCP
//! answer in `mcp`). The table in `docs/api.md` is checked against [`ErrorCode::ALL`].

use std::fmt;

/// Every code an error answer may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON.
    MalformedJson,
    /// The body is not declared as JSON.
    UnsupportedMediaType,
    /// A value does not fit; the error names its field.
    ValidationFailed,
    ToolNotFound,
    /// A call by name of a tool that is deactivated.
    ToolInactive,
    ExecutionNotFound,
    /// A rollback to a version the tool's history does not hold.
    VersionNotFound,
    RouteNotFound,
    /// A tool of that name exists already.
    DuplicateTool,
    PayloadTooLarge,
    MethodNotAllowed,
    Unauthorized,
    /// A valid credential without the route's scope.
    Forbidden,
    /// A `Host` outside `MCP_ALLOWED_HOSTS` while `/admin` is open.
    HostNotAllowed,
    /// A browser origin outside `CORS_ALLOWED_ORIGINS` changing state.
    OriginNotAllowed,
    RateLimited,
    /// Storage down, the embedder needed and down, or a write that lost every attempt.
    ServiceUnavailable,
    /// Over `HTTP_MAX_CONNECTIONS`.
    ServerBusy,
    /// An upstream server failed or could not be reached.
    UpstreamFailed,
    RequestTimeout,
    /// Details only in the server's log.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order of the documented table.
    pub const ALL: [ErrorCode; 21] = [
        Self::MalformedJson,
        Self::Unauthorized,
        Self::Forbidden,
        Self::HostNotAllowed,
        Self::OriginNotAllowed,
        Self::ToolNotFound,
        Self::ToolInactive,
        Self::VersionNotFound,
        Self::ExecutionNotFound,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::DuplicateTool,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::RateLimited,
        Self::UpstreamFailed,
        Self::ServiceUnavailable,
        Self::ServerBusy,
        Self::RequestTimeout,
        Self::InternalError,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::ToolNotFound => "tool_not_found",
            Self::ToolInactive => "tool_inactive",
            Self::ExecutionNotFound => "execution_not_found",
            Self::VersionNotFound => "version_not_found",
            Self::RouteNotFound => "route_not_found",
            Self::DuplicateTool => "duplicate_tool",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::HostNotAllowed => "host_not_allowed",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::ServiceUnavailable => "service_unavailable",
            Self::ServerBusy => "server_busy",
            Self::UpstreamFailed => "upstream_failed",
            Self::RequestTimeout => "request_timeout",
            Self::InternalError => "internal_error",
        }
    }

    /// Whether the code says that something named does not exist (or is not callable).
    pub fn is_not_found(self) -> bool {
        matches!(
            self,
            Self::ToolNotFound
                | Self::ToolInactive
                | Self::ExecutionNotFound
                | Self::VersionNotFound
                | Self::RouteNotFound
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes compare with their strings, as clients see them.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A failure of the registry: its code, a message for the caller and, for validation
/// errors and conflicts, the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl RegistryError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A value that does not fit, naming its field (`tags[1]`, `implementation.url` …).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::ValidationFailed,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedJson, message)
    }

    pub fn tool_not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::ToolNotFound, format!("no tool {what}"))
    }

    /// A tool of that name exists already; `field` is where the name was given.
    pub fn duplicate(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::DuplicateTool,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UpstreamFailed, message)
    }

    /// A fault of the service; the message stays in its log.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, detail)
    }

    /// The same error about an item of a list: its field becomes `{item}.{field}`.
    pub fn within(mut self, item: &str) -> Self {
        if let Some(field) = &mut self.field {
            *field = format!("{item}.{field}");
        }
        self
    }

    /// The field of a validation error, `None` for any other error.
    pub fn invalid_field(&self) -> Option<&str> {
        match self.code {
            ErrorCode::ValidationFailed => self.field.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_listed_once_with_a_distinct_string() {
        let strings: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(strings.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }

    #[test]
    fn errors_about_an_item_name_its_place() {
        let err = RegistryError::invalid("name", "bad").within("tools[2]");
        assert_eq!(err.field.as_deref(), Some("tools[2].name"));
        let err = RegistryError::unavailable("down").within("tools[2]");
        assert_eq!(err.field, None);
    }
}
