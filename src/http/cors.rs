//! Cross-origin access for browser clients (`CORS_ALLOWED_ORIGINS`): none by default, so a
//! web page elsewhere cannot drive the API with a visitor's network position.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Headers browsers may send and read, including MCP's session and version headers.
const ALLOWED_HEADERS: [HeaderName; 9] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("mcp-method"),
    HeaderName::from_static("mcp-name"),
];
const EXPOSED_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("mcp-session-id"),
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
];

/// The layer for a comma-separated origin list; `*` allows any origin (without cookies,
/// which the API never uses). Unparsable entries are skipped with a warning.
pub fn layer(origins: Option<&str>) -> CorsLayer {
    let listed: Vec<&str> = origins
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    let allow = if listed.contains(&"*") {
        AllowOrigin::any()
    } else {
        let parsed: Vec<HeaderValue> = listed
            .iter()
            .filter_map(|origin| match HeaderValue::from_str(origin) {
                Ok(value) => Some(value),
                Err(_) => {
                    tracing::warn!(
                        origin,
                        "CORS_ALLOWED_ORIGINS: ignoring an unreadable origin"
                    );
                    None
                }
            })
            .collect();
        AllowOrigin::list(parsed)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
}
