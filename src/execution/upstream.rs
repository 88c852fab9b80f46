//! Tools of upstream MCP servers (`implementation.kind = "mcp"`), reached over Streamable
//! HTTP with rmcp's client.
//!
//! One connection per upstream URL is kept and shared by every call; a connection that
//! dropped is replaced on the next call. Connections go through the same guarded HTTP
//! client as HTTP tools, so the SSRF rules hold for upstream servers too.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rmcp::{
    ClientCacheConfig, ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
        JsonObject, ProtocolVersion, Tool,
    },
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Mutex;

use super::url_guard::UrlGuard;
use crate::domain::secrets::{redact_url, scrub_url};

type Connection = Arc<RunningService<RoleClient, ClientConfig>>;

pub struct Upstreams {
    http: reqwest::Client,
    guard: UrlGuard,
    connections: Mutex<HashMap<String, Connection>>,
}

/// What an upstream call produced: its result as the upstream sent it.
pub struct UpstreamAnswer {
    pub result: CallToolResult,
}

impl Upstreams {
    pub fn new(http: reqwest::Client, guard: UrlGuard) -> Self {
        Self {
            http,
            guard,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Every tool the upstream server lists (all pages).
    pub async fn list_tools(&self, url: &str, timeout: Duration) -> Result<Vec<Tool>, String> {
        self.list_tools_unscrubbed(url, timeout)
            .await
            .map_err(|message| scrub_url(&message, url))
    }

    async fn list_tools_unscrubbed(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<Vec<Tool>, String> {
        let attempt = async {
            let connection = self.connection(url).await?;
            connection
                .list_all_tools()
                .await
                .map_err(|err| format!("the upstream server did not list its tools: {err}"))
        };
        tokio::time::timeout(timeout, attempt).await.map_err(|_| {
            format!("the upstream server at {url} did not answer within {timeout:?}")
        })?
    }

    /// Calls `tool` upstream. `Err` carries a message for a failed call (unreachable,
    /// refused, protocol error), with the URL's credentials cut out; an upstream result
    /// with `isError` is an `Ok`.
    #[tracing::instrument(level = "debug", name = "mcp.client", skip_all, fields(
        otel.name = %format_args!("tools/call {tool}"), otel.kind = "client",
        mcp.method.name = "tools/call", gen_ai.tool.name = tool,
        server.address = %crate::telemetry::otel::host_of(url)))]
    pub async fn call(
        &self,
        url: &str,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<UpstreamAnswer, String> {
        self.call_unscrubbed(url, tool, arguments)
            .await
            .map_err(|message| scrub_url(&message, url))
    }

    async fn call_unscrubbed(
        &self,
        url: &str,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<UpstreamAnswer, String> {
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        // The trace goes on upstream in the request's `_meta` (SEP-414): connections are
        // shared, so per-request HTTP headers cannot carry it.
        for (key, value) in crate::telemetry::otel::outgoing_fields() {
            let meta = params.meta.get_or_insert_with(Default::default);
            meta.0.0.insert(key, value.into());
        }
        let connection = self.connection(url).await?;
        match connection.call_tool(params.clone()).await {
            Ok(result) => Ok(UpstreamAnswer { result }),
            Err(err) if connection.is_transport_closed() => {
                // The upstream restarted or dropped the session: one fresh attempt.
                tracing::info!(
                    url = %redact_url(url),
                    err = %scrub_url(&err.to_string(), url),
                    "upstream MCP connection lost; reconnecting"
                );
                self.forget(url).await;
                let connection = self.connection(url).await?;
                connection
                    .call_tool(params)
                    .await
                    .map(|result| UpstreamAnswer { result })
                    .map_err(|err| format!("the upstream call failed: {err}"))
            }
            Err(err) => Err(format!("the upstream call failed: {err}")),
        }
    }

    async fn forget(&self, url: &str) {
        if let Some(old) = self.connections.lock().await.remove(url) {
            old.cancellation_token().cancel();
        }
    }

    async fn connection(&self, url: &str) -> Result<Connection, String> {
        if let Some(open) = self.open_connection(url).await {
            return Ok(open);
        }
        // Connect without holding the map: a slow or dead upstream must not stall calls to
        // the others. Two callers may race to connect; the first stored connection wins.
        let fresh = Arc::new(self.connect_detached(url).await?);
        let mut connections = self.connections.lock().await;
        match connections.get(url) {
            Some(open) if !open.is_closed() && !open.is_transport_closed() => {
                fresh.cancellation_token().cancel();
                Ok(open.clone())
            }
            _ => {
                connections.insert(url.to_owned(), fresh.clone());
                Ok(fresh)
            }
        }
    }

    async fn open_connection(&self, url: &str) -> Option<Connection> {
        let mut connections = self.connections.lock().await;
        let existing = connections.get(url)?;
        if !existing.is_closed() && !existing.is_transport_closed() {
            return Some(existing.clone());
        }
        connections.remove(url);
        None
    }

    /// Connects in a task of its own, outside the caller's span: rmcp's service task keeps
    /// the span it was started in (and so every span above it) open for as long as the
    /// connection lives, which would hold the first caller's request span open and keep
    /// its trace from ever being exported. The connection serves every later caller too,
    /// so it belongs to no one request's trace.
    async fn connect_detached(
        &self,
        url: &str,
    ) -> Result<RunningService<RoleClient, ClientConfig>, String> {
        let (http, guard, url) = (self.http.clone(), self.guard, url.to_owned());
        tokio::spawn(async move { connect(http, guard, &url).await })
            .await
            .map_err(|err| format!("connecting to the upstream MCP server failed: {err}"))?
    }
}

async fn connect(
    http: reqwest::Client,
    guard: UrlGuard,
    url: &str,
) -> Result<RunningService<RoleClient, ClientConfig>, String> {
    let parsed = url::Url::parse(url).map_err(|err| format!("invalid upstream URL: {err}"))?;
    guard
        .check_url(&parsed)
        .map_err(|refused| format!("the upstream URL is refused: {refused}"))?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("tool-registry", env!("CARGO_PKG_VERSION")),
    )
    .serve_with_lifecycle(
        transport,
        ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    )
    .await
    .map_err(|err| format!("cannot connect to the upstream MCP server at {url}: {err}"))?;
    // Imports must see the upstream's current list, never a cached one.
    client
        .set_response_cache_config(ClientCacheConfig::disabled())
        .await;
    Ok(client)
}
