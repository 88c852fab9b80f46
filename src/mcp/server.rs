//! The MCP handler: `tools/list` and `tools/call` over the registry, in the shape
//! `MCP_TOOLS` asks for, and list-changed notifications for both protocol eras.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, OnceLock},
};

use futures_util::FutureExt;

use rmcp::RoleServer;
use rmcp::{
    ErrorData, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
        JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
        SubscriptionFilter, Tool, ToolAnnotations,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use super::{
    changes::{ChangeHub, SessionRegistration},
    meta_tools::{self, is_meta_tool},
    names::{NameMap, PortableNames},
};
use crate::{
    config::McpTools,
    domain::{ErrorCode, Page, RegistryError, Tool as RegisteredTool, ToolFilter},
    registry::ToolRegistry,
};

/// Registered tools per `tools/list` page in `direct` and `both` modes.
pub const PAGE_SIZE: u32 = 100;

/// How long a 2026-07-28 client may reuse a tool list. Clients that listen are told of
/// changes at once; the rest refetch within this bound.
const LIST_TTL_MS: u64 = 30_000;

const INSTRUCTIONS: &str = "A registry of tools. Use find_tool to find the tools that fit a \
     task (described in plain words), then call_tool with the chosen tool's name and \
     arguments; list_tools pages through the whole catalogue.";

#[derive(Clone)]
pub struct McpServer {
    registry: Arc<ToolRegistry>,
    hub: Arc<ChangeHub>,
    mode: McpTools,
    /// This session's place in the hub; dropped with the last clone when the session ends.
    registration: Arc<OnceLock<SessionRegistration>>,
    /// Set with `MCP_PORTABLE_NAMES` (in `direct` and `both` mode).
    names: Option<Arc<PortableNames>>,
}

impl McpServer {
    pub fn new(registry: Arc<ToolRegistry>, hub: Arc<ChangeHub>, mode: McpTools) -> Self {
        Self {
            registry,
            hub,
            mode,
            registration: Arc::default(),
            names: None,
        }
    }

    pub fn with_portable_names(mut self, names: Option<Arc<PortableNames>>) -> Self {
        self.names = names;
        self
    }

    fn name_map(&self) -> Option<Arc<NameMap>> {
        self.names.as_ref().map(|names| names.map())
    }

    fn shows_meta(&self) -> bool {
        self.mode != McpTools::Direct
    }

    fn shows_registered(&self) -> bool {
        self.mode != McpTools::Meta
    }

    async fn call_registered(
        &self,
        name: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ErrorData> {
        match self
            .registry
            .call_tool(name, Value::Object(arguments))
            .await
        {
            Ok(outcome) => Ok(meta_tools::call_result(outcome)),
            // An unknown or switched-off tool is a protocol error, as MCP specifies.
            Err(err) if err.code.is_not_found() => {
                Err(ErrorData::invalid_params(err.to_string(), None))
            }
            Err(err) => meta_tools::model_mistake(err).map_err(service_fault),
        }
    }
}

/// A fault of the service itself: logged here, reported to the client without detail.
fn service_fault(err: RegistryError) -> ErrorData {
    match err.code {
        ErrorCode::ServiceUnavailable => ErrorData::internal_error(err.message, None),
        _ => {
            tracing::error!(error = %err, "MCP request failed");
            ErrorData::internal_error("the server failed to handle the request", None)
        }
    }
}

/// A registered tool as MCP shows it, with its output schema when that describes an object
/// (`structuredContent` is always one; clients check it against the schema) and the
/// `title` and `annotations` kept in its metadata (imported tools keep their upstream's).
fn as_mcp_tool(tool: &RegisteredTool) -> Tool {
    let schema = match &tool.input_schema {
        Value::Object(map) => map.clone(),
        _ => JsonObject::new(),
    };
    let mut shown = Tool::new(
        tool.name.clone(),
        tool.description.clone(),
        Arc::new(schema),
    );
    if let Some(Value::Object(output)) = &tool.output_schema
        && output.get("type").and_then(Value::as_str) == Some("object")
    {
        shown = shown.with_raw_output_schema(Arc::new(output.clone()));
    }
    if let Some(title) = tool.metadata.get("title").and_then(Value::as_str) {
        shown = shown.with_title(title);
    }
    if let Some(annotations) = tool
        .metadata
        .get("annotations")
        .and_then(|a| serde_json::from_value::<ToolAnnotations>(a.clone()).ok())
    {
        shown = shown.with_annotations(annotations);
    }
    shown
}

/// Cursors are opaque to clients; inside they are the offset of the page's first tool.
fn parse_cursor(cursor: Option<&str>) -> Result<u32, ErrorData> {
    match cursor {
        None => Ok(0),
        Some(cursor) => cursor
            .strip_prefix("offset:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ErrorData::invalid_params("the cursor is not valid", None)),
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new(
            "tool-registry",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let span = crate::telemetry::otel::mcp_server_span(
            "tools/list",
            None,
            Some(&context.meta.0),
            context.extensions.get(),
        );
        answer_panics("tools/list", self.list_tools_in(request))
            .instrument(span)
            .await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let span = crate::telemetry::otel::mcp_server_span(
            "tools/call",
            Some(request.name.as_ref()),
            Some(&context.meta.0),
            context.extensions.get(),
        );
        answer_panics("tools/call", self.call_tool_in(request))
            .instrument(span)
            .await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // In `meta` mode `tools/list` never changes (find_tool always searches the current
        // catalogue), so a catalogue change is no reason to make clients refetch it.
        if self.shows_registered() {
            let _ = self
                .registration
                .set(self.hub.add_session(context.peer.clone()));
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        if context.accepted().tools_list_changed != Some(true) || !self.shows_registered() {
            context.cancelled().await;
            return Ok(());
        }
        let mut changes = self.hub.listen();
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(()) | Err(RecvError::Lagged(_)) => {
                        if context.sink().notify_tool_list_changed().await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

impl McpServer {
    async fn list_tools_in(
        &self,
        request: Option<PaginatedRequestParams>,
    ) -> Result<ListToolsResult, ErrorData> {
        let offset = parse_cursor(request.as_ref().and_then(|r| r.cursor.as_deref()))?;
        let mut tools = Vec::new();
        if self.shows_meta() && offset == 0 {
            tools.extend(meta_tools::definitions());
        }
        let mut next_cursor = None;
        if self.shows_registered() {
            let filter = ToolFilter {
                active_only: true,
                ..ToolFilter::default()
            };
            let page = Page {
                limit: PAGE_SIZE,
                offset,
            };
            let paged = self
                .registry
                .list(&filter, page)
                .await
                .map_err(service_fault)?;
            let shown = paged.items.len() as u64;
            let names = self.name_map();
            tools.extend(
                paged
                    .items
                    .iter()
                    .map(|tool| {
                        let mut shown = as_mcp_tool(tool);
                        if let Some(names) = &names {
                            shown.name = names.presented(&tool.name).to_owned().into();
                        }
                        shown
                    })
                    // In `both`, a registered tool shown under a meta tool's name (only
                    // without portable names, which never present one) stays hidden.
                    .filter(|shown| !(self.shows_meta() && is_meta_tool(&shown.name))),
            );
            if u64::from(offset) + shown < paged.total {
                next_cursor = Some(format!("offset:{}", u64::from(offset) + shown));
            }
        }
        let mut result = ListToolsResult::with_all_items(tools)
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn call_tool_in(
        &self,
        request: CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let arguments = request.arguments.unwrap_or_default();
        let result = if self.shows_meta() && is_meta_tool(name) {
            meta_tools::run(&self.registry, name, arguments)
                .await
                .map_err(service_fault)?
        } else if self.shows_registered() {
            match self.name_map() {
                Some(names) => self.call_registered(names.real(name), arguments).await?,
                None => self.call_registered(name, arguments).await?,
            }
        } else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool named '{name}': this server offers find_tool, call_tool and list_tools"
                ),
                None,
            ));
        };
        Ok(result.into())
    }
}

/// rmcp runs each request's handler in a task of its own, out of reach of the HTTP stack's
/// panic guard: a panic there would leave the request unanswered until its deadline. It is
/// answered at once as an internal error, counted and logged like the HTTP stack's.
async fn answer_panics<T>(
    method: &str,
    work: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(answer) => answer,
        Err(panic) => {
            let message = crate::telemetry::panic_message(panic.as_ref());
            metrics::counter!("http_panics_total").increment(1);
            tracing::error!(mcp.method = method, panic = %message, "an MCP handler panicked");
            Err(ErrorData::internal_error(
                format!("the {method} handler failed unexpectedly"),
                None,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_as_an_internal_error() {
        let answer: Result<(), ErrorData> = answer_panics("tools/call", async {
            panic!("a handler's bug");
        })
        .await;
        let error = answer.unwrap_err();
        assert_eq!(error.code, rmcp::model::ErrorCode::INTERNAL_ERROR);
        assert!(error.message.contains("tools/call"), "{}", error.message);
        assert!(
            !error.message.contains("bug"),
            "the panic's text stays in the log"
        );
        let fine: Result<u8, ErrorData> = answer_panics("tools/list", async { Ok(7) }).await;
        assert_eq!(fine.unwrap(), 7);
    }
}
