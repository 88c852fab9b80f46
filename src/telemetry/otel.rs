//! OpenTelemetry tracing: spans exported over OTLP (HTTP/protobuf) and the W3C trace context
//! carried in and out.
//!
//! Configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_BSP_*`), read by the SDK itself. With no endpoint
//! set, nothing is installed: the spans below DEBUG level that instrument the hot path are
//! then disabled at their callsites by the log filter, and every helper here returns at
//! once.

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Instrument, Level, Metadata, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The name spans are reported under when neither `OTEL_SERVICE_NAME` nor a `service.name`
/// in `OTEL_RESOURCE_ATTRIBUTES` gives one.
const DEFAULT_SERVICE_NAME: &str = "tool-registry";

/// Whether spans are exported (the OTLP layer is installed).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| !value.trim().is_empty())
}

fn env_is(name: &str, expected: &str) -> bool {
    std::env::var(name).is_ok_and(|value| value.trim().eq_ignore_ascii_case(expected))
}

/// Whether the environment asks for traces: an OTLP endpoint is set, and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns them off.
pub fn requested() -> bool {
    (env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !env_is("OTEL_SDK_DISABLED", "true")
        && !env_is("OTEL_TRACES_EXPORTER", "none")
}

/// The OTLP layer when the environment asks for traces, with its own filter: this crate's
/// spans from DEBUG up and its events from INFO up (recorded as span events). `None` when
/// tracing is off.
pub fn layer<S>() -> anyhow::Result<Option<Box<dyn Layer<S> + Send + Sync>>>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    if !requested() {
        return Ok(None);
    }
    if std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_ok_and(|protocol| protocol.trim() != "http/protobuf")
    {
        eprintln!("OTLP traces are sent as http/protobuf; the protocol asked for is ignored");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer(DEFAULT_SERVICE_NAME);
    if PROVIDER.set(provider).is_err() {
        anyhow::bail!("tracing was already initialised");
    }
    ENABLED.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_filter(filter_fn(exported));
    Ok(Some(Box::new(layer)))
}

/// This crate's spans from DEBUG up and its events from INFO up.
fn exported(metadata: &Metadata<'_>) -> bool {
    let least = if metadata.is_span() {
        Level::DEBUG
    } else {
        Level::INFO
    };
    metadata.target().starts_with("tool_registry") && *metadata.level() <= least
}

fn resource() -> Resource {
    let named = env_set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
            attributes
                .split(',')
                .any(|pair| pair.trim_start().starts_with("service.name="))
        });
    let builder = Resource::builder();
    let builder = if named {
        builder
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME)
    };
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Exports the spans still queued and stops the exporter (at process exit).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        eprintln!("the last spans could not be exported: {err}");
    }
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Reads `traceparent`/`tracestate` from an MCP request's `_meta`.
struct MetaReader<'a>(&'a rmcp::model::JsonObject);

impl Extractor for MetaReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(serde_json::Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The trace a request's `traceparent` names, if it names one.
fn remote_parent(extractor: &dyn Extractor) -> Option<Context> {
    extractor.get("traceparent")?;
    let cx = TraceContextPropagator::new().extract(extractor);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Makes `span` (not yet entered) continue the trace of the incoming `traceparent`, names it
/// for OpenTelemetry and records its ids for the logs.
pub fn continue_trace(span: &Span, headers: &HeaderMap, name: String) {
    if !enabled() {
        return;
    }
    span.record("otel.name", name);
    span.record("otel.kind", "server");
    if let Some(parent) = remote_parent(&HeaderReader(headers)) {
        let _ = span.set_parent(parent);
    }
    record_ids(span);
}

/// Writes the span's trace and span ids into its `trace_id` and `span_id` fields, so every
/// log line inside it carries them.
fn record_ids(span: &Span) {
    let cx = span.context();
    let remote = cx.span();
    let ids = remote.span_context();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

/// `traceparent` (and `tracestate`) of the current span, for an outgoing HTTP request; empty
/// when tracing is off.
pub fn outgoing_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if enabled() {
        TraceContextPropagator::new()
            .inject_context(&Span::current().context(), &mut HeaderWriter(&mut headers));
    }
    headers
}

/// The current span's `traceparent` and `tracestate` as (key, value) pairs, for an MCP
/// request's `_meta`; empty when tracing is off.
pub fn outgoing_fields() -> Vec<(String, String)> {
    outgoing_headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The span that an HTTP request is served in, kept in the request's extensions so that work
/// the request hands to other tasks (the MCP service's) can be parented to it.
#[derive(Clone)]
pub struct RequestSpan(pub Span);

/// Middleware (installed only when tracing is on): remembers the request's span.
pub async fn remember_request_span(mut request: Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(RequestSpan(Span::current()));
    next.run(request).await
}

/// The span of one MCP request handled by the server: a child of the HTTP request it came in,
/// or of the trace its `_meta.traceparent` names (SEP-414) when the client sent one.
pub fn mcp_server_span(
    method: &'static str,
    tool: Option<&str>,
    meta: Option<&rmcp::model::MetaObject>,
    http: Option<&axum::http::request::Parts>,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let request_span = http
        .and_then(|parts| parts.extensions.get::<RequestSpan>())
        .and_then(|request| request.0.id());
    let name = match tool {
        Some(tool) => format!("{method} {tool}"),
        None => method.to_owned(),
    };
    let span = tracing::debug_span!(
        parent: request_span.clone(),
        "mcp.server",
        otel.name = name,
        otel.kind = "server",
        mcp.method.name = method,
        gen_ai.tool.name = tool,
        gen_ai.operation.name = tool.map(|_| "execute_tool"),
    );
    let from_meta = meta.and_then(|meta| remote_parent(&MetaReader(&meta.0)));
    let from_headers = http.and_then(|parts| remote_parent(&HeaderReader(&parts.headers)));
    if let Some(parent) = from_meta.or(if request_span.is_none() {
        from_headers
    } else {
        None
    }) {
        let _ = span.set_parent(parent);
    }
    span
}

/// Sets an OpenTelemetry attribute on `span` (nothing when tracing is off): for values known
/// only after the span started, without a field in the logs.
pub fn set_attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if enabled() {
        span.set_attribute(key, value);
    }
}

/// Marks `span` failed for OpenTelemetry.
pub fn set_error(span: &Span, description: impl Into<String>) {
    if enabled() {
        span.set_status(opentelemetry::trace::Status::error(description.into()));
    }
}

/// Runs one search of the catalogue (`search.vector` or `search.text`) in its own DEBUG span,
/// with the number of candidates asked for (`search.k`) and found (`search.candidates`).
pub async fn searched<T, E>(
    kind: &'static str,
    k: u32,
    search: impl Future<Output = Result<Vec<T>, E>>,
) -> Result<Vec<T>, E> {
    let span = tracing::debug_span!("search", otel.name = kind, search.k = i64::from(k));
    let found = search.instrument(span.clone()).await;
    if let Ok(candidates) = &found {
        set_attribute(&span, "search.candidates", candidates.len() as i64);
    }
    found
}

/// The outcome (`success`, `error`, `timeout`) and duration of a tool's execution, on the
/// current (`tool.execute`) span; a failed one marks the span as an error.
pub fn executed(outcome: &'static str, failed: bool, took: std::time::Duration) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    span.set_attribute("tool.outcome", outcome);
    span.set_attribute("tool.duration_ms", took.as_secs_f64() * 1000.0);
    if failed {
        span.set_status(opentelemetry::trace::Status::error(outcome));
    }
}

/// A client span for an outgoing HTTP request: method, server address and port (never the
/// path or query, which may carry a tool's credentials).
pub fn http_client_span(method: &axum::http::Method, url: &url::Url) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::debug_span!(
        "http.client",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().map(i64::from),
    )
}

/// `traceparent` (and `tracestate`) naming `span`, for the request it wraps; empty when
/// tracing is off.
pub fn outgoing_headers_of(span: &Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if enabled() {
        TraceContextPropagator::new()
            .inject_context(&span.context(), &mut HeaderWriter(&mut headers));
    }
    headers
}

/// The status of an outgoing request's answer, on its client span.
pub fn responded(span: &Span, status: axum::http::StatusCode) {
    if enabled() {
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        if status.is_client_error() || status.is_server_error() {
            span.set_status(opentelemetry::trace::Status::error(status.to_string()));
        }
    }
}

/// The host of a URL (nothing else of it: paths and queries may carry credentials).
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The hits and misses of one cache tier's lookup, on its (`embedding.cache`) span.
pub fn cache_looked_up(hits: u64, misses: u64) {
    if enabled() {
        let span = Span::current();
        span.set_attribute("embedding.cache.hits", hits as i64);
        span.set_attribute("embedding.cache.misses", misses as i64);
    }
}

/// The span a queued piece of work was asked for in, to link the work's span back to it.
pub type Caller = opentelemetry::trace::SpanContext;

/// The current span's context when tracing is on and it is valid.
pub fn caller() -> Option<Caller> {
    if !enabled() {
        return None;
    }
    let context = Span::current().context().span().span_context().clone();
    context.is_valid().then_some(context)
}

/// Links `span` (work done for many callers at once, such as a batch write) to each caller.
pub fn link_callers(span: &Span, callers: impl Iterator<Item = Caller>) {
    for caller in callers {
        span.add_link(caller);
    }
}
