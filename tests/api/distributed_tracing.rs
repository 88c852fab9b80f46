//! OpenTelemetry traces of the real binary, received by a real OTLP/HTTP receiver on loopback
//! that decodes the protobuf with the official definitions (`opentelemetry-proto`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;
use serde_json::{Value, json};

use crate::lifecycle::start_binary_keeping_logs;

/// What the receiver was sent: every span, and the resources' attributes.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    resources: Arc<Mutex<Vec<Vec<KeyValue>>>>,
}

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    for resource_spans in request.resource_spans {
        if let Some(resource) = resource_spans.resource {
            received.resources.lock().unwrap().push(resource.attributes);
        }
        for scope in resource_spans.scope_spans {
            received.spans.lock().unwrap().extend(scope.spans);
        }
    }
    ""
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with protobuf bodies.
async fn start_receiver() -> (String, Received) {
    let received = Received::default();
    let router = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    (serve(router).await, received)
}

/// An HTTP tool that answers JSON and keeps the `traceparent` of each request (or "").
async fn start_tool() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let router = Router::new().route(
        "/tool",
        post(move |headers: HeaderMap| {
            let kept = kept.clone();
            async move {
                let traceparent = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                kept.lock().unwrap().push(traceparent.to_owned());
                Json(json!({"answer": 42}))
            }
        }),
    );
    (serve(router).await, seen)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JSON log lines the binary wrote.
type Logs = Arc<Mutex<Vec<Value>>>;

/// The binary with these settings, an HTTP tool registered at `tool_url`; returns it with
/// its base URL and data directory.
async fn start_registry(
    env: &[(&str, &str)],
    tool_url: &str,
) -> (KillOnDrop, String, tempfile::TempDir) {
    let (child, base, dir, _logs) = start_registry_keeping_logs(env, tool_url).await;
    (child, base, dir)
}

/// [`start_registry`], also returning the binary's log lines.
async fn start_registry_keeping_logs(
    env: &[(&str, &str)],
    tool_url: &str,
) -> (KillOnDrop, String, tempfile::TempDir, Logs) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("ALLOW_PRIVATE_TOOL_URLS", "true"),
        ("REGISTER_BUILTINS", "false"),
        // The hashing embedder whether or not the offline model is present, so the
        // embedding span's attributes are the same on every machine.
        ("EMBEDDING_PROVIDER", "hash"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    all.extend_from_slice(env);
    let (child, address, logs) = start_binary_keeping_logs(dir.path(), &all);
    let base = format!("http://{address}");
    let (status, body) = send(
        &base,
        "/admin/tools",
        json!({
            "name": "weather.lookup",
            "description": "Looks up the weather forecast for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "implementation": {"kind": "http", "url": tool_url}
        }),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (KillOnDrop(child), base, dir, logs)
}

async fn send(base: &str, path: &str, body: Value, traceparent: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(format!("{base}{path}")).json(&body);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn string_attribute<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::StringValue(text)) => text,
        other => panic!("span {} has {key} = {other:?}", span.name),
    }
}

fn int_attribute(span: &Span, key: &str) -> i64 {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::IntValue(number)) => *number,
        other => panic!("span {} has {key} = {other:?}", span.name),
    }
}

/// The spans of one trace.
fn in_trace(spans: &[Span], trace_id: &str) -> Vec<Span> {
    spans
        .iter()
        .filter(|span| hex(&span.trace_id) == trace_id)
        .cloned()
        .collect()
}

#[track_caller]
fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            panic!("no span named {name} among {names:?}")
        })
}

/// Whether `child` descends from `ancestor` within `spans`.
fn descends(spans: &[Span], child: &Span, ancestor: &Span) -> bool {
    let mut parent = child.parent_span_id.clone();
    for _ in 0..spans.len() {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|span| span.span_id == parent) {
            Some(span) => parent = span.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// Waits (bounded) until `done` holds for the spans received so far.
async fn wait_for(received: &Received, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    for _ in 0..200 {
        let spans = received.spans();
        if done(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let spans = received.spans();
    let names: Vec<(String, String)> = spans
        .iter()
        .map(|s| (hex(&s.trace_id), s.name.clone()))
        .collect();
    panic!("the expected spans did not arrive; received {names:?}");
}

const FIND_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const FIND_PARENT: &str = "00f067aa0ba902b7";
const CALL_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALL_PARENT: &str = "b7ad6b7169203331";
const MCP_TRACE: &str = "5d3a8f0c1e2b4c6d8e9fa0b1c2d3e4f5";
const MCP_PARENT: &str = "1a2b3c4d5e6f7081";
const UPSTREAM_TRACE: &str = "77e1c3a5b9d24f6081a3c5e7f9b1d3e5";

#[derive(Clone, Default)]
struct Agent;

impl rmcp::ClientHandler for Agent {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::default()
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25)
    }
}

/// Calls the tool through MCP's `call_tool` meta tool, the trace given only in the request's
/// `_meta` (SEP-414), as MCP clients send it.
async fn call_over_mcp(base: &str) {
    use rmcp::{
        ServiceExt,
        model::{CallToolRequestParams, MetaObject, RequestMetaObject},
        transport::StreamableHttpClientTransport,
    };
    let transport = StreamableHttpClientTransport::from_uri(format!("{base}/mcp"));
    let client = Agent.serve(transport).await.expect("initialize");
    let Value::Object(arguments) = json!({"name": "weather.lookup", "arguments": {"city": "Lyon"}})
    else {
        unreachable!()
    };
    let mut params = CallToolRequestParams::new("call_tool").with_arguments(arguments);
    let mut meta = MetaObject::new();
    meta.set_traceparent(format!("00-{MCP_TRACE}-{MCP_PARENT}-01"));
    params.meta = Some(RequestMetaObject(meta));
    let result = client.call_tool(params).await.expect("tools/call");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_find_and_a_call_continue_the_callers_traces_down_to_the_tool() {
    let (receiver, received) = start_receiver().await;
    let (tool, traceparents) = start_tool().await;
    let (_child, base, _dir, logs) = start_registry_keeping_logs(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver),
            ("OTEL_SERVICE_NAME", "registry-under-test"),
        ],
        &format!("{tool}/tool"),
    )
    .await;

    let (status, body) = send(
        &base,
        "/mcp/find_tool",
        json!({"query": "weather forecast for a city"}),
        Some(&format!("00-{FIND_TRACE}-{FIND_PARENT}-01")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tools"][0]["tool"]["name"], "weather.lookup", "{body}");
    let (status, body) = send(
        &base,
        "/mcp/call_tool",
        json!({"name": "weather.lookup", "arguments": {"city": "Lyon"}}),
        Some(&format!("00-{CALL_TRACE}-{CALL_PARENT}-01")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    call_over_mcp(&base).await;
    // A tool of an upstream MCP server gets the trace in its request's `_meta`.
    let (upstream_address, upstream) =
        crate::upstream::start_upstream(vec![crate::upstream::upstream_tool("add", "Adds")]).await;
    let (status, body) = send(
        &base,
        "/admin/tools",
        json!({
            "name": "math.add",
            "description": "Adds two numbers upstream",
            "implementation": {"kind": "mcp", "url": format!("http://{upstream_address}/mcp"), "tool": "add"}
        }),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        &base,
        "/mcp/call_tool",
        json!({"name": "math.add", "arguments": {"a": 2, "b": 3}}),
        Some(&format!("00-{UPSTREAM_TRACE}-{CALL_PARENT}-01")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success", "{body}");

    let spans = wait_for(&received, |spans| {
        let linked_to_call = spans.iter().any(|span| {
            span.name == "recorder.write_batch"
                && span
                    .links
                    .iter()
                    .any(|link| hex(&link.trace_id) == CALL_TRACE)
        });
        let find = in_trace(spans, FIND_TRACE);
        let call = in_trace(spans, CALL_TRACE);
        linked_to_call
            && find.iter().any(|s| s.name == "POST /mcp/find_tool")
            && call.iter().any(|s| s.name == "POST /mcp/call_tool")
            && in_trace(spans, MCP_TRACE)
                .iter()
                .any(|s| s.name == "registry.call_tool")
            && in_trace(spans, UPSTREAM_TRACE)
                .iter()
                .any(|s| s.name == "tools/call add")
    })
    .await;

    // The find: the caller's span is the parent of the server span, which holds the rest.
    let find = in_trace(&spans, FIND_TRACE);
    let server = named(&find, "POST /mcp/find_tool");
    assert_eq!(hex(&server.parent_span_id), FIND_PARENT);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(string_attribute(server, "http.route"), "/mcp/find_tool");
    assert_eq!(string_attribute(server, "http.request.method"), "POST");
    assert_eq!(int_attribute(server, "http.response.status_code"), 200);
    let registry_find = named(&find, "registry.find");
    assert_eq!(registry_find.parent_span_id, server.span_id);
    assert_eq!(string_attribute(registry_find, "search.mode"), "hybrid");
    assert_eq!(
        string_attribute(registry_find, "search.answered_mode"),
        "hybrid"
    );
    assert_eq!(int_attribute(registry_find, "search.hits"), 1);
    let cache = named(&find, "embedding.cache");
    assert!(descends(&find, cache, registry_find));
    assert_eq!(string_attribute(cache, "embedding.cache.tier"), "memory");
    assert_eq!(int_attribute(cache, "embedding.cache.misses"), 1);
    let model = named(&find, "embedding.model");
    assert!(descends(&find, model, cache));
    assert_eq!(string_attribute(model, "embedding.provider"), "hash");
    assert_eq!(int_attribute(model, "embedding.batch_size"), 1);
    let vector = named(&find, "search.vector");
    let text = named(&find, "search.text");
    for search in [vector, text] {
        assert_eq!(search.parent_span_id, registry_find.span_id);
        assert!(int_attribute(search, "search.k") >= 1);
        assert_eq!(int_attribute(search, "search.candidates"), 1);
    }
    let reads: Vec<&Span> = find.iter().filter(|s| s.name == "SELECT tools").collect();
    assert!(!reads.is_empty(), "no database span in the find's trace");
    for read in reads {
        assert!(descends(&find, read, server));
        assert_eq!(read.kind, SpanKind::Client as i32);
        assert_eq!(string_attribute(read, "db.system.name"), "sqlite");
        assert_eq!(string_attribute(read, "db.operation.name"), "SELECT");
    }

    // The call: server span, registry call, tool execution, outgoing HTTP request.
    let call = in_trace(&spans, CALL_TRACE);
    let server = named(&call, "POST /mcp/call_tool");
    assert_eq!(hex(&server.parent_span_id), CALL_PARENT);
    let registry_call = named(&call, "registry.call_tool");
    assert_eq!(registry_call.parent_span_id, server.span_id);
    assert_eq!(
        string_attribute(registry_call, "gen_ai.tool.name"),
        "weather.lookup"
    );
    let execute = named(&call, "tool.execute");
    assert_eq!(execute.parent_span_id, registry_call.span_id);
    assert_eq!(string_attribute(execute, "tool.kind"), "http");
    assert_eq!(string_attribute(execute, "tool.outcome"), "success");
    let client = named(&call, "POST");
    assert_eq!(client.parent_span_id, execute.span_id);
    assert_eq!(client.kind, SpanKind::Client as i32);
    assert_eq!(string_attribute(client, "server.address"), "127.0.0.1");
    assert_eq!(int_attribute(client, "http.response.status_code"), 200);
    // The tool's server was handed the trace, with the outgoing request's span as parent.
    assert_eq!(
        traceparents.lock().unwrap()[0],
        format!("00-{CALL_TRACE}-{}-01", hex(&client.span_id))
    );
    // The batch write that stored the call's record links back to the call.
    let write = spans
        .iter()
        .find(|span| {
            span.name == "recorder.write_batch"
                && span
                    .links
                    .iter()
                    .any(|link| hex(&link.trace_id) == CALL_TRACE)
        })
        .unwrap();
    let link = write
        .links
        .iter()
        .find(|link| hex(&link.trace_id) == CALL_TRACE)
        .unwrap();
    assert_eq!(link.span_id, registry_call.span_id);
    assert!(int_attribute(write, "recorder.batch_size") >= 1);
    assert!(
        spans
            .iter()
            .any(|span| span.name == "INSERT tool_executions"
                && span.trace_id == write.trace_id
                && descends(&spans, span, write)),
        "the execution insert is not inside the batch write"
    );

    // The call's log lines carry its trace and server span ids beside the request id.
    let logged = logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|entry| entry.get("span"))
        .find(|span| span["trace_id"] == CALL_TRACE)
        .cloned()
        .expect("no log line carries the call's trace id");
    assert_eq!(logged["span_id"], hex(&server.span_id), "{logged}");
    assert!(logged["request_id"].is_string(), "{logged}");

    // Over MCP, the trace named in `_meta` is continued by the MCP request's span.
    let mcp = in_trace(&spans, MCP_TRACE);
    let server = named(&mcp, "tools/call call_tool");
    assert_eq!(hex(&server.parent_span_id), MCP_PARENT);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(string_attribute(server, "mcp.method.name"), "tools/call");
    assert_eq!(string_attribute(server, "gen_ai.tool.name"), "call_tool");
    let registry_call = named(&mcp, "registry.call_tool");
    assert!(descends(&mcp, registry_call, server));
    assert_eq!(
        string_attribute(registry_call, "gen_ai.tool.name"),
        "weather.lookup"
    );
    let client = named(&mcp, "POST");
    assert_eq!(
        traceparents.lock().unwrap()[1],
        format!("00-{MCP_TRACE}-{}-01", hex(&client.span_id))
    );

    // The upstream MCP call: a client span, whose id the upstream received in `_meta`.
    let upstream_trace = in_trace(&spans, UPSTREAM_TRACE);
    let upstream_client = named(&upstream_trace, "tools/call add");
    assert_eq!(upstream_client.kind, SpanKind::Client as i32);
    assert_eq!(
        string_attribute(upstream_client, "mcp.method.name"),
        "tools/call"
    );
    assert_eq!(string_attribute(upstream_client, "gen_ai.tool.name"), "add");
    assert!(descends(
        &upstream_trace,
        upstream_client,
        named(&upstream_trace, "tool.execute")
    ));
    assert_eq!(
        upstream.traceparents.read().unwrap().as_slice(),
        [format!(
            "00-{UPSTREAM_TRACE}-{}-01",
            hex(&upstream_client.span_id)
        )]
    );

    let resources = received.resources.lock().unwrap().clone();
    assert!(resources.iter().all(|attributes| matches!(
        attribute(attributes, "service.name"),
        Some(any_value::Value::StringValue(name)) if name == "registry-under-test"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_off_nothing_is_exported_nor_passed_on() {
    let (receiver, received) = start_receiver().await;
    let (tool, traceparents) = start_tool().await;
    // An endpoint with the SDK disabled, and no endpoint at all: both are off.
    for env in [
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.as_str()),
            ("OTEL_SDK_DISABLED", "true"),
        ],
        vec![("OTEL_SERVICE_NAME", "registry-under-test")],
    ] {
        let (child, base, _dir) = start_registry(&env, &format!("{tool}/tool")).await;
        let traceparent = format!("00-{CALL_TRACE}-{CALL_PARENT}-01");
        let (status, body) = send(
            &base,
            "/mcp/find_tool",
            json!({"query": "weather"}),
            Some(&traceparent),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = send(
            &base,
            "/mcp/call_tool",
            json!({"name": "weather.lookup", "arguments": {"city": "Lyon"}}),
            Some(&traceparent),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "success", "{body}");
        // Several export delays (50 ms) pass.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(child);
    }
    assert!(received.spans().is_empty(), "spans were exported");
    assert_eq!(traceparents.lock().unwrap().as_slice(), ["", ""]);
}
