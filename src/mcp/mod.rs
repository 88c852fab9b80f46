//! MCP over Streamable HTTP at `/mcp`, for agents using the official SDKs.
//!
//! One rmcp service serves both protocol eras: 2026-07-28 clients (stateless, `server/discover`,
//! per-request `_meta`) and clients of 2025-11-25 and earlier (the `initialize` handshake and
//! an `Mcp-Session-Id`). What `tools/list` shows is `MCP_TOOLS`; catalogue changes reach
//! connected clients as `notifications/tools/list_changed` (see `changes`).

pub mod authorization;
pub mod changes;
pub mod meta_tools;
pub mod names;
pub mod schemas;
pub mod server;
pub mod sessions;
pub mod transport;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use crate::{
    config::{McpTools, Settings},
    domain::ErrorCode,
    registry::ToolRegistry,
};

pub use changes::ChangeHub;
pub use server::McpServer;
pub use sessions::SessionLimit;
pub use transport::McpEndpoint;

pub type McpService = StreamableHttpService<McpServer, LocalSessionManager>;

/// The session store of the MCP endpoint, with its idle limit.
pub fn session_manager(settings: &Settings) -> Arc<LocalSessionManager> {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(Duration::from_secs(settings.mcp.session_idle_secs));
    Arc::new(sessions)
}

/// `/mcp` as a router of its own: the endpoint behind the session cap. Startup code serves
/// it beside the REST routes, behind the same credentials (see `app.rs`).
pub fn router(
    registry: Arc<ToolRegistry>,
    hub: Arc<ChangeHub>,
    sessions: Arc<SessionLimit>,
    settings: &Settings,
    shutdown: CancellationToken,
) -> Router {
    let endpoint = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            sessions.clone(),
            sessions::limit,
        ))
        .service(service(
            registry,
            hub,
            sessions.manager(),
            settings,
            shutdown,
        ));
    Router::new().route_service(transport::MCP_PATH, endpoint)
}

/// Sets the endpoint's gauges (open sessions, change subscribers); called on each scrape of
/// `/metrics`.
pub async fn record_gauges(sessions: &SessionLimit, hub: &ChangeHub) {
    metrics::gauge!("mcp_sessions").set(sessions.open_sessions().await as f64);
    metrics::gauge!("mcp_change_subscribers").set(hub.session_count() as f64);
}

/// The MCP endpoint. Cancelling `shutdown` ends every session and open stream, so a
/// graceful shutdown does not wait on idle SSE connections.
pub fn service(
    registry: Arc<ToolRegistry>,
    hub: Arc<ChangeHub>,
    sessions: Arc<LocalSessionManager>,
    settings: &Settings,
    shutdown: CancellationToken,
) -> McpEndpoint {
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(settings.server.max_body_bytes)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_cancellation_token(shutdown);
    let hosts = comma_list(&settings.mcp.allowed_hosts);
    config = if hosts.contains(&"*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    let origins = comma_list(&settings.mcp.allowed_origins);
    config = if origins.is_empty() || origins.contains(&"*") {
        config.disable_allowed_origins()
    } else {
        config.with_allowed_origins(origins)
    };
    let mode = settings.mcp.tools;
    let names = (settings.mcp.portable_names && mode != McpTools::Meta)
        .then(|| names::PortableNames::start(registry.clone()));
    let service = StreamableHttpService::new(
        move || {
            Ok(McpServer::new(registry.clone(), hub.clone(), mode)
                .with_portable_names(names.clone()))
        },
        sessions.clone(),
        config,
    );
    McpEndpoint::new(service, sessions)
}

/// An error answer in the service's JSON shape (`{"error": {"code", "message"}}`), for the
/// few answers this module gives itself before a request reaches rmcp; on `/mcp`,
/// [`transport::jsonrpc_errors`] then turns it into a JSON-RPC error like every other error.
pub fn error_answer(status: StatusCode, code: ErrorCode, message: String) -> Response {
    let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
    (status, axum::Json(body)).into_response()
}

pub(crate) fn comma_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}
