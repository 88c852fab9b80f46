//! The resource-server side of MCP authorization: OAuth 2.0 Protected Resource Metadata
//! (RFC 9728), which tells clients where to get tokens for `/mcp`.
//!
//! With `MCP_AUTHORIZATION_SERVERS` set, the metadata names them and every 401 on `/mcp`
//! points at it (`WWW-Authenticate: Bearer resource_metadata="…"`); tokens are then checked
//! as any JWT is (`JWT_*`; `JWT_AUDIENCE` should be this resource's URL). Without it there
//! is no metadata (404, so clients do not start an OAuth flow) and the 401 says that a
//! static key is expected.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use serde_json::json;

use super::{comma_list, error_answer};
use crate::{
    config::{ADMIN_SCOPE, Settings, TOOLS_SCOPE},
    domain::ErrorCode,
};

/// The metadata of the whole host; the path-suffixed form is that of `/mcp`.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What a 401 on `/mcp` adds when no authorization server is configured.
pub const STATIC_KEY_HINT: &str = "this server takes a static API key, not OAuth: send \
     `Authorization: Bearer <key>` (or `X-API-Key: <key>`) with a key its operator set in \
     MCP_API_KEYS";

/// Where a client looks for an authorization server at this origin when the protected
/// resource metadata names none (the 2025-03-26 fallback), and the endpoints it then tries.
const AUTHORIZATION_SERVER_PATHS: [&str; 7] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/mcp",
    "/register",
    "/authorize",
    "/token",
];

/// The metadata routes, and the 404s of an authorization server's endpoints; they are
/// served outside the credential checks.
pub fn routes(settings: Arc<Settings>) -> Router {
    let routes = Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(&format!("{METADATA_PATH}/mcp"), get(metadata));
    AUTHORIZATION_SERVER_PATHS
        .into_iter()
        .fold(routes, |routes, path| {
            routes.route(path, any(not_an_authorization_server))
        })
        .with_state(settings)
}

/// The 404 of every authorization-server endpoint. Clients that start OAuth on a 401 end on
/// one of these (most often dynamic registration at `/register`) and show its message, so
/// it says what to do instead.
async fn not_an_authorization_server(State(settings): State<Arc<Settings>>) -> Response {
    let servers = comma_list(&settings.mcp.authorization_servers);
    let instead = if servers.is_empty() {
        STATIC_KEY_HINT.to_owned()
    } else {
        format!("get a token from {}", servers.join(" or "))
    };
    error_answer(
        StatusCode::NOT_FOUND,
        ErrorCode::RouteNotFound,
        format!("this server is not an OAuth authorization server; {instead}"),
    )
}

async fn metadata(State(settings): State<Arc<Settings>>, headers: HeaderMap) -> Response {
    let servers = comma_list(&settings.mcp.authorization_servers);
    if servers.is_empty() {
        return error_answer(
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            format!("no OAuth authorization server is configured; {STATIC_KEY_HINT}"),
        );
    }
    Json(json!({
        "resource": resource_url(&settings, &headers),
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "scopes_supported": [TOOLS_SCOPE, ADMIN_SCOPE],
        "resource_name": "tool-registry",
    }))
    .into_response()
}

/// The URL of `/mcp` as clients reach it.
pub fn resource_url(settings: &Settings, headers: &HeaderMap) -> String {
    if let Some(url) = &settings.mcp.resource_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = settings
        .server
        .trust_proxy
        .then(|| headers.get("x-forwarded-proto"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .filter(|proto| matches!(*proto, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}/mcp")
}

/// RFC 9728's metadata URL of a resource: the well-known path inserted before its path.
fn metadata_url(resource: &str) -> String {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    let path_start = resource[after_scheme..]
        .find('/')
        .map_or(resource.len(), |i| after_scheme + i);
    let (origin, path) = resource.split_at(path_start);
    format!("{origin}{METADATA_PATH}{path}")
}

/// The `WWW-Authenticate` challenge of a 401 on `/mcp`, and whether the message should add
/// [`STATIC_KEY_HINT`].
pub fn challenge(settings: &Settings, headers: &HeaderMap) -> (HeaderValue, bool) {
    if comma_list(&settings.mcp.authorization_servers).is_empty() {
        return (
            HeaderValue::from_static(r#"Bearer realm="tool-registry""#),
            true,
        );
    }
    let metadata = metadata_url(&resource_url(settings, headers));
    let value = format!(r#"Bearer resource_metadata="{metadata}", scope="{TOOLS_SCOPE}""#);
    (
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_path() {
        assert_eq!(
            metadata_url("https://registry.example/mcp"),
            "https://registry.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080/tools/mcp"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/tools/mcp"
        );
        assert_eq!(
            metadata_url("https://registry.example"),
            "https://registry.example/.well-known/oauth-protected-resource"
        );
    }
}
