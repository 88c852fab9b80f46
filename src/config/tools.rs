//! `TOOL_*`, `ALLOW_PRIVATE_TOOL_URLS` and `REGISTER_BUILTINS`: how tools run.

use std::time::Duration;

use serde::Deserialize;

use crate::{
    builtins::BuiltinLimits,
    execution::{ExecutorSettings, stdio::StdioSettings},
};

#[derive(Debug, Clone, Deserialize)]
pub struct ToolSettings {
    /// Timeout of HTTP tools that do not set their own `timeout_ms`.
    #[serde(rename = "tool_timeout_ms")]
    pub timeout_ms: u64,
    /// Lets HTTP tools call loopback, private and link-local addresses.
    #[serde(rename = "allow_private_tool_urls")]
    pub allow_private_urls: bool,
    /// An egress proxy for HTTP tools and upstream MCP servers, set explicitly (the
    /// proxy environment variables are ignored). The proxy resolves hostnames, so it must
    /// enforce the egress policy itself; IP literals and redirects are still checked here.
    #[serde(rename = "tool_proxy_url")]
    pub proxy_url: Option<String>,
    /// Larger answers of HTTP tools are an error.
    #[serde(rename = "tool_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Largest input a built-in tool accepts.
    #[serde(rename = "tool_max_input_bytes")]
    pub max_input_bytes: usize,
    /// Largest result a built-in data transform builds (see `BuiltinLimits`); a larger
    /// one is a tool error.
    #[serde(rename = "tool_max_output_bytes")]
    pub max_output_bytes: usize,
    /// Largest `arguments` of a call (as JSON); larger ones are refused before validation.
    #[serde(rename = "tool_max_argument_bytes")]
    pub max_argument_bytes: usize,
    /// Registers the built-in tools (calculator, strings, data transforms) at start-up.
    pub register_builtins: bool,
}

impl ToolSettings {
    /// The executor's settings, with those of the stdio upstream servers it starts.
    pub fn executor_settings(&self, stdio: StdioSettings) -> ExecutorSettings {
        ExecutorSettings {
            default_timeout: Duration::from_millis(self.timeout_ms),
            allow_private_urls: self.allow_private_urls,
            proxy_url: self.proxy_url.clone(),
            max_response_bytes: self.max_response_bytes,
            builtin_limits: BuiltinLimits {
                max_input_bytes: self.max_input_bytes,
                max_output_bytes: self.max_output_bytes,
                ..BuiltinLimits::default()
            },
            max_argument_bytes: self.max_argument_bytes,
            stdio,
        }
    }
}
