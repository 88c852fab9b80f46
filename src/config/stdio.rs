//! `STDIO_*`: upstream MCP servers the registry starts and speaks to over stdio.

use std::time::Duration;

use serde::Deserialize;

use crate::execution::stdio::StdioSettings;

/// When the children of stdio upstream MCP servers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioStart {
    /// On the first call (or import) that needs one.
    FirstUse,
    /// At start-up, for every server an active tool names; later ones on first use.
    Startup,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StdioUpstreamSettings {
    /// Comma-separated commands stdio upstream MCP servers may be started with, matched
    /// exactly as written (a bare name or an absolute path); empty disables them.
    #[serde(rename = "stdio_allowed_commands")]
    pub allowed_commands: String,
    /// `first_use` or `startup`.
    #[serde(rename = "stdio_start")]
    pub start: StdioStart,
    /// After SIGTERM, a stdio server's child gets this long before SIGKILL.
    #[serde(rename = "stdio_stop_grace_ms")]
    pub stop_grace_ms: u64,
    /// First wait before a stdio server's child is restarted; doubles with each failure
    /// in a row, up to a minute.
    #[serde(rename = "stdio_restart_backoff_ms")]
    pub restart_backoff_ms: u64,
}

impl StdioUpstreamSettings {
    /// The executor's settings for stdio upstream MCP servers.
    pub fn executor_settings(&self) -> StdioSettings {
        StdioSettings {
            allowed_commands: StdioSettings::allowed_from_list(&self.allowed_commands),
            stop_grace: Duration::from_millis(self.stop_grace_ms),
            restart_backoff: Duration::from_millis(self.restart_backoff_ms),
        }
    }
}
