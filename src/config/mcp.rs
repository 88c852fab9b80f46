//! `MCP_*` (but `MCP_API_KEYS`): what the MCP endpoint shows and whom it answers.

use serde::Deserialize;

/// What MCP's `tools/list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpTools {
    /// Three tools: find_tool, call_tool and list_tools.
    Meta,
    /// Every active registered tool as itself.
    Direct,
    /// The three meta tools, then every registered tool.
    Both,
}

#[derive(Debug, Clone, Deserialize)]
pub struct McpSettings {
    /// Comma-separated OAuth authorization servers (issuer URLs) whose tokens `/mcp` takes,
    /// published as OAuth Protected Resource Metadata (RFC 9728); empty: static keys only.
    #[serde(rename = "mcp_authorization_servers")]
    pub authorization_servers: String,
    /// The public URL of `/mcp` (the resource tokens are for); by default taken from the
    /// request's `Host`.
    #[serde(rename = "mcp_resource_url")]
    pub resource_url: Option<String>,
    /// In `direct`/`both` mode, shows registered tools' names with `.` as `_` (collision-free,
    /// mapped back on `tools/call`), for model APIs that refuse dotted function names.
    #[serde(rename = "mcp_portable_names")]
    pub portable_names: bool,
    /// What MCP's `tools/list` shows: `meta`, `direct` or `both`.
    #[serde(rename = "mcp_tools")]
    pub tools: McpTools,
    /// Comma-separated `Host` names the MCP endpoint answers to (`*` for any). Guards
    /// against DNS rebinding; add the names clients use (Service, ingress host).
    #[serde(rename = "mcp_allowed_hosts")]
    pub allowed_hosts: String,
    /// Comma-separated browser origins allowed on the MCP endpoint (`*` for any); requests
    /// without an `Origin` header (non-browser clients) always pass.
    #[serde(rename = "mcp_allowed_origins")]
    pub allowed_origins: String,
    /// An MCP session with no traffic for this long is closed.
    #[serde(rename = "mcp_session_idle_secs")]
    pub session_idle_secs: u64,
    /// Open MCP sessions at most; an `initialize` beyond them is answered 503.
    #[serde(rename = "mcp_max_sessions")]
    pub max_sessions: usize,
}
