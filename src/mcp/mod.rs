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

use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{McpTools, Settings},
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
    sessions.session_config.keep_alive = Some(Duration::from_secs(settings.mcp_session_idle_secs));
    Arc::new(sessions)
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
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_cancellation_token(shutdown);
    let hosts = comma_list(&settings.mcp_allowed_hosts);
    config = if hosts.contains(&"*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    let origins = comma_list(&settings.mcp_allowed_origins);
    config = if origins.is_empty() || origins.contains(&"*") {
        config.disable_allowed_origins()
    } else {
        config.with_allowed_origins(origins)
    };
    let mode = settings.mcp_tools;
    let names = (settings.mcp_portable_names && mode != McpTools::Meta)
        .then(|| names::PortableNames::start(registry.clone(), &hub));
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

pub(crate) fn comma_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}
