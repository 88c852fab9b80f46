//! `HOST`, `PORT` and the limits of the HTTP server: deadlines, body size, connections,
//! rate limits, proxies and browsers.

use std::{net::IpAddr, time::Duration};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on.
    pub host: IpAddr,
    pub port: u16,
    /// Requests running longer are answered 504.
    pub request_timeout_ms: u64,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// After a shutdown signal, in-flight requests get this long to finish.
    pub shutdown_timeout_ms: u64,
    /// Open client connections at most; beyond them a few more are kept for health probes
    /// and the rest are closed at once.
    #[serde(rename = "http_max_connections")]
    pub max_connections: usize,
    /// A connection that has started a request but not finished sending its headers
    /// within this long is closed.
    #[serde(rename = "http_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight and nothing sent for this long is closed.
    #[serde(rename = "http_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Requests per minute per API key, or per client address without one; unset or 0 is off.
    pub rate_limit_per_minute: Option<u32>,
    /// Takes the client address from `X-Forwarded-For`/`Forwarded` (behind a proxy only).
    pub trust_proxy: bool,
    /// Comma-separated origins browsers may call from (`*` for any); none by default.
    pub cors_allowed_origins: Option<String>,
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
