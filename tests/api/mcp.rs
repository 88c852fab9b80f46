//! MCP over Streamable HTTP, driven by rmcp's own client in both protocol eras.

use std::{sync::Arc, time::Duration};

use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, ClientConfig, ErrorCode, PaginatedRequestParams, ProtocolVersion,
        ServerNotification, SubscriptionFilter,
    },
    service::{NotificationContext, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tool_registry::config::{McpTools, Secret};

use crate::helpers::*;

/// A client that remembers list-changed notifications of its session.
#[derive(Clone, Default)]
struct Watcher {
    changed: Arc<Notify>,
    version: Option<ProtocolVersion>,
}

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        let config = ClientConfig::default();
        match &self.version {
            Some(version) => config.with_protocol_version(version.clone()),
            None => config,
        }
    }
}

/// A client of the session era (the `initialize` handshake, 2025-11-25).
async fn session_client(app: &TestApp) -> (RunningService<RoleClient, Watcher>, Arc<Notify>) {
    let watcher = Watcher {
        version: Some(ProtocolVersion::V_2025_11_25),
        ..Watcher::default()
    };
    let changed = watcher.changed.clone();
    let transport = StreamableHttpClientTransport::from_uri(app.url("/mcp"));
    let client = watcher.serve(transport).await.expect("initialize");
    (client, changed)
}

/// A client of the stateless era (`server/discover`, 2026-07-28).
async fn stateless_client(app: &TestApp) -> RunningService<RoleClient, Watcher> {
    let transport = StreamableHttpClientTransport::from_uri(app.url("/mcp"));
    Watcher::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover")
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(name.to_owned()).with_arguments(arguments)
}

async fn app_with(mode: McpTools, builtins: bool) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.mcp.tools = mode;
    settings.tools.register_builtins = builtins;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

fn is_invalid_params(err: &ServiceError) -> bool {
    matches!(err, ServiceError::McpError(e) if e.code == ErrorCode::INVALID_PARAMS)
}

/// The meta tools answer alike in both eras: find, call, list, and mistakes as `isError`.
async fn meta_tools_work(client: &RunningService<RoleClient, Watcher>) {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["call_tool", "find_tool", "list_tools"]);

    let found = client
        .call_tool(call(
            "find_tool",
            json!({"query": "reverse the characters of a string", "mode": "text"}),
        ))
        .await
        .unwrap();
    assert_ne!(found.is_error, Some(true));
    let structured = found.structured_content.expect("structured content");
    assert_eq!(
        structured["tools"][0]["name"], "string_reverse",
        "{structured}"
    );
    assert!(structured["tools"][0]["input_schema"]["properties"]["text"].is_object());

    let result = client
        .call_tool(call(
            "call_tool",
            json!({"name": "calculator", "arguments": {"expression": "6*7"}}),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(result.structured_content.unwrap()["result"], 42);

    let bad_arguments = client
        .call_tool(call(
            "call_tool",
            json!({"name": "calculator", "arguments": {"expr": 1}}),
        ))
        .await
        .unwrap();
    assert_eq!(bad_arguments.is_error, Some(true));
    assert_eq!(
        bad_arguments.structured_content.unwrap()["field"],
        "arguments"
    );

    let unknown = client
        .call_tool(call("call_tool", json!({"name": "no_such_tool"})))
        .await
        .unwrap();
    assert_eq!(unknown.is_error, Some(true));
    let missing_query = client
        .call_tool(call("find_tool", json!({"limit": 3})))
        .await
        .unwrap();
    assert_eq!(missing_query.is_error, Some(true));
    assert_eq!(missing_query.structured_content.unwrap()["field"], "query");

    let listed = client
        .call_tool(call("list_tools", json!({"limit": 2})))
        .await
        .unwrap();
    let listed = listed.structured_content.unwrap();
    assert_eq!(listed["tools"].as_array().unwrap().len(), 2);
    assert_eq!(listed["total"], 10);

    let err = client
        .call_tool(call("no_such_tool", json!({})))
        .await
        .unwrap_err();
    assert!(is_invalid_params(&err), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_era_clients_find_and_call_tools() {
    let (_db, app) = app_with(McpTools::Meta, true).await;
    let (client, _) = session_client(&app).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert_eq!(info.server_info.as_ref().unwrap().name, "tool-registry");
    meta_tools_work(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_era_clients_find_and_call_tools() {
    let (_db, app) = app_with(McpTools::Meta, true).await;
    let client = stateless_client(&app).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    meta_tools_work(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_pages_every_registered_tool_in_name_order() {
    let (_db, app) = app_with(McpTools::Direct, false).await;
    for n in 0..130 {
        app.register(&tool_definition(&format!("tool.{n:03}")))
            .await;
    }
    let client = stateless_client(&app).await;
    let first = client.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 100);
    assert_eq!(first.tools[0].name, "tool.000");
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .unwrap();
    assert_eq!(second.tools.len(), 30);
    assert_eq!(second.tools[0].name, "tool.100");
    assert!(second.next_cursor.is_none());
    assert_eq!(client.list_all_tools().await.unwrap().len(), 130);

    let err = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("garbage".into())),
        ))
        .await
        .unwrap_err();
    assert!(is_invalid_params(&err), "{err:?}");
    // Registered tools are called as themselves; unknown names are protocol errors.
    let err = client
        .call_tool(call("find_tool", json!({"query": "x"})))
        .await
        .unwrap_err();
    assert!(is_invalid_params(&err), "{err:?}");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_mode_shows_meta_tools_then_registered_ones_called_directly() {
    let (_db, app) = app_with(McpTools::Both, true).await;
    let (client, _) = session_client(&app).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 13);
    let calculator = tools.iter().find(|t| t.name == "calculator").unwrap();
    assert!(calculator.input_schema.contains_key("properties"));
    let result = client
        .call_tool(call("calculator", json!({"expression": "2^10"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], 1024);
    let wrong = client
        .call_tool(call("string_reverse", json!({"text": 5})))
        .await
        .unwrap();
    assert_eq!(wrong.is_error, Some(true));
    client.cancel().await.unwrap();
}

crate::on_both_backends!(
    clients_of_both_eras_hear_that_the_list_changed,
    portable_names_show_this_replicas_writes_at_once,
);

async fn clients_of_both_eras_hear_that_the_list_changed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.mcp.tools = McpTools::Direct;
    let app = TestApp::spawn(settings).await;
    let (session, session_heard) = session_client(&app).await;
    let stateless = stateless_client(&app).await;
    let mut subscription = stateless
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .expect("listen");
    // The PostgreSQL listener connects in the background.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.register(&tool_definition("fresh.tool")).await;

    tokio::time::timeout(Duration::from_secs(10), session_heard.notified())
        .await
        .expect("the session client hears of the change");
    let heard = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("the listening client hears of the change")
        .unwrap();
    assert!(
        matches!(
            heard,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{heard:?}"
    );
    let names: Vec<String> = session
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["fresh.tool"]);
    session.cancel().await.unwrap();
    stateless.cancel().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn unknown_hosts_are_refused_and_mcp_keys_apply() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.mcp_api_keys = Some(Secret::new("agent-key"));
    settings.mcp.allowed_hosts = "localhost,127.0.0.1,registry.internal".into();
    let app = TestApp::spawn(settings).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let post = |host: &str, key: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/mcp"))
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    assert_eq!(post("127.0.0.1", None).await.unwrap().status(), 401);
    assert_eq!(
        post("evil.example", Some("agent-key"))
            .await
            .unwrap()
            .status(),
        403
    );
    let accepted = post("registry.internal:8080", Some("agent-key"))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.headers().contains_key("mcp-session-id"));
}

const INITIALIZE: &str = r#"{"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "raw", "version": "1"}}}"#;

/// A raw POST to `/mcp` with the headers MCP clients send.
fn raw_post(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body)
}

/// Asserts a JSON-RPC error object with this id and returns its message.
async fn jsonrpc_error(response: reqwest::Response, id: Value) -> String {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{response:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], id, "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refusals_on_mcp_are_jsonrpc_errors_and_rest_keeps_its_body() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.mcp_api_keys = Some(Secret::new("agent-key"));
    settings.server.max_body_bytes = 4096;
    settings.server.rate_limit_per_minute = Some(6);
    let app = TestApp::spawn(settings).await;

    let unauthorized = raw_post(&app, INITIALIZE).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(
        unauthorized.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let message = jsonrpc_error(unauthorized, json!(7)).await;
    assert!(message.contains("credentials"), "{message}");

    let wrong_key = raw_post(&app, INITIALIZE)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    assert!(
        jsonrpc_error(wrong_key, json!(7))
            .await
            .contains("not valid")
    );

    let too_large = raw_post(
        &app,
        format!(r#"{{"id": 1, "pad": "{}"}}"#, "x".repeat(5000)),
    )
    .bearer_auth("agent-key")
    .send()
    .await
    .unwrap();
    assert_eq!(too_large.status(), 413);
    // Within the prefix read ahead for it, the id of a too-large request is known.
    assert!(
        jsonrpc_error(too_large, json!(1))
            .await
            .contains("MAX_BODY_BYTES")
    );

    let wrong_type = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "text/plain")
        .body(INITIALIZE)
        .bearer_auth("agent-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    jsonrpc_error(wrong_type, json!(7)).await;

    // The REST routes beside /mcp keep the service's error body.
    let (status, body) = app.post("/mcp/list_tools", &json!({})).await;
    assert_eq!(status, 401);
    assert_error(&body, "unauthorized");

    let mut limited = None;
    for _ in 0..10 {
        let response = raw_post(&app, r#"{"jsonrpc": "2.0", "id": "r", "method": "ping"}"#)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the budget of 6 requests a minute runs out");
    assert!(limited.headers().contains_key("retry-after"));
    assert!(
        jsonrpc_error(limited, json!("r"))
            .await
            .contains("too many requests")
    );
}

#[tokio::test]
async fn delete_ends_a_session_with_204_and_transport_errors_are_jsonrpc() {
    let (_db, app) = app_with(McpTools::Meta, false).await;
    let opened = raw_post(&app, INITIALIZE).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let delete = |id: Option<&str>| {
        let mut request = app.client.delete(app.url("/mcp"));
        if let Some(id) = id {
            request = request.header("mcp-session-id", id);
        }
        request.send()
    };
    let ended = delete(Some(&session)).await.unwrap();
    assert_eq!(ended.status(), 204);
    assert!(ended.bytes().await.unwrap().is_empty());

    let again = delete(Some(&session)).await.unwrap();
    assert_eq!(again.status(), 404);
    assert!(
        jsonrpc_error(again, Value::Null)
            .await
            .contains("Session not found")
    );
    let unknown = delete(Some("no-such-session")).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let without_id = delete(None).await.unwrap();
    assert_eq!(without_id.status(), 400);
    assert!(
        jsonrpc_error(without_id, Value::Null)
            .await
            .contains("Session ID is required")
    );

    let ping = r#"{"jsonrpc": "2.0", "id": 3, "method": "ping"}"#;
    let stale = raw_post(&app, ping)
        .header("mcp-session-id", session.as_str())
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404);
    assert!(
        jsonrpc_error(stale, json!(3))
            .await
            .contains("Session not found")
    );
}

fn property_names(schema: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_tool_schemas_declare_what_they_accept_and_agents_never_see_inactive_tools() {
    let (_db, app) = app_with(McpTools::Meta, false).await;
    let on = app.register(&tool_definition("kept.on")).await;
    let off = app.register(&tool_definition("switched.off")).await;
    let (status, _) = app
        .post(
            &format!("/admin/tools/{}/deactivate", off["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let client = stateless_client(&app).await;
    let tools = client.list_all_tools().await.unwrap();
    let schema_of = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .input_schema
            .clone()
    };
    let find = schema_of("find_tool");
    assert_eq!(
        property_names(&find),
        [
            "category",
            "explain",
            "limit",
            "mode",
            "query",
            "threshold",
            "vector_weight"
        ]
    );
    assert_eq!(find["required"], json!(["query"]));
    assert_eq!(find["properties"]["threshold"]["type"], "number");
    assert_eq!(find["properties"]["limit"]["type"], "integer");
    assert_eq!(find["properties"]["limit"]["maximum"], 100);
    assert_eq!(
        find["properties"]["mode"]["enum"],
        json!(["semantic", "text", "hybrid"])
    );
    assert_eq!(find["additionalProperties"], false);
    assert_eq!(
        property_names(&schema_of("list_tools")),
        ["category", "limit", "offset", "tags"]
    );
    let call_schema = schema_of("call_tool");
    assert_eq!(property_names(&call_schema), ["arguments", "name"]);
    assert_eq!(call_schema["properties"]["arguments"]["type"], "object");
    for tool in &tools {
        let text = serde_json::to_string(&tool.input_schema).unwrap();
        assert!(
            !text.contains("$ref") && !text.contains("\"null\""),
            "{text}"
        );
    }

    // A declared field is accepted; an undeclared one is a mistake naming the field.
    let tuned = client
        .call_tool(call(
            "find_tool",
            json!({"query": "kept", "threshold": 0.0, "vector_weight": 0.5}),
        ))
        .await
        .unwrap();
    assert_ne!(tuned.is_error, Some(true), "{tuned:?}");
    let listed = client
        .call_tool(call("list_tools", json!({})))
        .await
        .unwrap();
    let listed = listed.structured_content.unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["tools"][0]["name"], on["name"]);
    let sneaky = client
        .call_tool(call("list_tools", json!({"active_only": false})))
        .await
        .unwrap();
    assert_eq!(sneaky.is_error, Some(true));
    assert_eq!(sneaky.structured_content.unwrap()["field"], "active_only");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_tools_forgive_what_models_send_and_errors_have_one_shape() {
    let (_db, app) = app_with(McpTools::Meta, true).await;
    let client = stateless_client(&app).await;
    let structured = |result: rmcp::model::CallToolResult| result.structured_content.unwrap();

    // `null` is absent, an empty category no filter, and categories match in any case.
    let found = client
        .call_tool(call(
            "find_tool",
            json!({"query": "evaluate an arithmetic expression", "limit": null,
                   "category": null, "mode": "text", "threshold": null}),
        ))
        .await
        .unwrap();
    assert_ne!(found.is_error, Some(true), "{found:?}");
    for category in ["", "MATH", "Math"] {
        let found = client
            .call_tool(call(
                "find_tool",
                json!({"query": "evaluate an arithmetic expression", "mode": "text",
                       "category": category}),
            ))
            .await
            .unwrap();
        let found = structured(found);
        assert_eq!(
            found["tools"][0]["name"], "calculator",
            "{category}: {found}"
        );
    }
    let listed = structured(
        client
            .call_tool(call(
                "list_tools",
                json!({"category": "TEXT", "tags": null}),
            ))
            .await
            .unwrap(),
    );
    assert!(listed["total"].as_u64().unwrap() > 0, "{listed}");
    let nothing = structured(
        client
            .call_tool(call("list_tools", json!({"category": "weather"})))
            .await
            .unwrap(),
    );
    assert_eq!(nothing["total"], 0);
    let note = nothing["note"].as_str().unwrap();
    assert!(note.contains("data, math, text"), "{note}");
    let nothing = structured(
        client
            .call_tool(call(
                "find_tool",
                json!({"query": "x", "category": "weather"}),
            ))
            .await
            .unwrap(),
    );
    assert!(
        nothing["note"].as_str().unwrap().contains("math"),
        "{nothing}"
    );

    // Arguments as a string of JSON are parsed; spread-out arguments get a hint.
    let result = client
        .call_tool(call(
            "call_tool",
            json!({"name": "calculator", "arguments": "{\"expression\": \"6*7\"}"}),
        ))
        .await
        .unwrap();
    assert_eq!(structured(result)["result"], 42);
    let flattened = client
        .call_tool(call(
            "call_tool",
            json!({"name": "calculator", "expression": "6*7"}),
        ))
        .await
        .unwrap();
    assert_eq!(flattened.is_error, Some(true));
    let flattened = structured(flattened);
    assert_eq!(flattened["code"], "invalid_arguments");
    assert!(
        flattened["message"]
            .as_str()
            .unwrap()
            .contains("inside `arguments`"),
        "{flattened}"
    );

    // Every mistake is {code, message, field?, execution_id?}.
    let unknown = structured(
        client
            .call_tool(call("call_tool", json!({"name": "no_such_tool"})))
            .await
            .unwrap(),
    );
    assert_eq!(unknown["code"], "tool_not_found", "{unknown}");
    assert_eq!(unknown["field"], "name");
    let failed = client
        .call_tool(call(
            "call_tool",
            json!({"name": "calculator", "arguments": {"expression": "1/0"}}),
        ))
        .await
        .unwrap();
    assert_eq!(failed.is_error, Some(true));
    let failed = structured(failed);
    assert_eq!(failed["code"], "tool_failed", "{failed}");
    assert!(failed["message"].is_string() && failed["execution_id"].is_string());
    let bad = structured(
        client
            .call_tool(call("find_tool", json!({"query": "x", "limit": 0})))
            .await
            .unwrap(),
    );
    assert_eq!(
        (bad["code"].as_str(), bad["field"].as_str()),
        (Some("invalid_arguments"), Some("limit")),
        "{bad}"
    );
    for answer in [&unknown, &failed, &bad, &flattened] {
        for key in answer.as_object().unwrap().keys() {
            assert!(
                ["code", "message", "field", "execution_id"].contains(&key.as_str()),
                "{answer}"
            );
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_published_portably_with_output_schemas_and_hints() {
    use tool_registry::domain::portability::warnings;

    let (_db, app) = app_with(McpTools::Both, true).await;
    let client = stateless_client(&app).await;
    let tools = client.list_all_tools().await.unwrap();
    for tool in &tools {
        let schema = Value::Object(tool.input_schema.as_ref().clone());
        assert_eq!(
            warnings(&tool.name, &schema),
            Vec::<String>::new(),
            "{}",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
    }
    for name in ["find_tool", "list_tools"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        assert!(tool.title.is_some());
        assert_eq!(
            tool.annotations.as_ref().unwrap().read_only_hint,
            Some(true)
        );
        for (key, property) in tool.input_schema["properties"].as_object().unwrap() {
            assert!(property["description"].is_string(), "{name}.{key}");
        }
    }
    // rmcp's client checks structured content against the published output schema.
    let calculator = tools.iter().find(|t| t.name == "calculator").unwrap();
    assert_eq!(
        calculator.output_schema.as_ref().unwrap()["required"],
        json!(["result"])
    );
    let result = client
        .call_tool(call("calculator", json!({"expression": "2^10"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], 1024);
    let found = client
        .call_tool(call("find_tool", json!({"query": "reverse a string"})))
        .await
        .unwrap();
    assert!(found.structured_content.unwrap()["tools"].is_array());
    client.cancel().await.unwrap();

    // Registration warns about what model APIs refuse, and /admin keeps saying it.
    let mut definition = tool_definition("github.create_issue");
    definition["input_schema"] = json!({"type": "object",
        "properties": {"title": {"type": ["string", "null"]}},
        "anyOf": [{"required": ["title"]}]});
    let registered = app.register(&definition).await;
    let warned = registered["warnings"].as_array().expect("warnings");
    assert_eq!(warned.len(), 3, "{registered}");
    let (_, shown) = app
        .get(&format!(
            "/admin/tools/{}",
            registered["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(shown["warnings"], registered["warnings"]);
    let plain = app.register(&tool_definition("plain_tool")).await;
    assert!(plain.get("warnings").is_none(), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_mode_does_not_announce_catalogue_changes() {
    let (_db, app) = app_with(McpTools::Meta, false).await;
    let (session, heard) = session_client(&app).await;
    app.register(&tool_definition("fresh.tool")).await;
    // The change feed folds changes for 50 ms; twice that is enough to see a notification.
    let notified = tokio::time::timeout(Duration::from_millis(500), heard.notified()).await;
    assert!(
        notified.is_err(),
        "tools/list did not change, yet clients were told"
    );
    // The catalogue change is visible to find_tool and list_tools at once.
    let listed = session
        .call_tool(call("list_tools", json!({})))
        .await
        .unwrap();
    assert_eq!(listed.structured_content.unwrap()["total"], 1);
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn protected_resource_metadata_points_clients_at_the_authorization_server() {
    // Without an authorization server: no metadata, and the 401 says a static key is wanted.
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.mcp_api_keys = Some(Secret::new("agent-key"));
    let app = TestApp::spawn(settings.clone()).await;
    let (status, _) = app.get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(status, 404);
    let refused = raw_post(&app, INITIALIZE).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        !refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata")
    );
    let message = jsonrpc_error(refused, json!(7)).await;
    assert!(message.contains("static API key"), "{message}");
    // Clients that start OAuth anyway (mcp-remote, the Inspector) guess the authorization
    // server's endpoints at this origin and show the last refusal, dynamic registration's:
    // every such answer says to send a key.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/register",
        "/token",
    ] {
        let (status, body) = app.post(path, &json!({"redirect_uris": []})).await;
        assert_eq!(status, 404, "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("not an OAuth authorization server"),
            "{path}: {message}"
        );
        assert!(message.contains("static API key"), "{path}: {message}");
    }
    let (status, body) = app.get("/authorize?client_id=x").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("static API key")
    );
    app.stop().await;

    settings.mcp.authorization_servers = "https://auth.example, https://backup.example".into();
    settings.auth.jwt_secret = Some(Secret::new("test-secret-of-enough-length-0123456789"));
    let app = TestApp::spawn(settings).await;
    let refused = raw_post(&app, INITIALIZE).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let port = app.url("").rsplit(':').next().unwrap().to_owned();
    let expected = format!(
        "resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\""
    );
    assert!(challenge.contains(&expected), "{challenge}");
    let message = jsonrpc_error(refused, json!(7)).await;
    assert!(!message.contains("static API key"), "{message}");
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, metadata) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(metadata["resource"], format!("http://127.0.0.1:{port}/mcp"));
        assert_eq!(
            metadata["authorization_servers"],
            json!(["https://auth.example", "https://backup.example"])
        );
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    }
    let (status, body) = app.post("/register", &json!({})).await;
    assert_eq!(status, 404);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("https://auth.example or https://backup.example"),
        "{message}"
    );
}

/// The app with portable names in `tools` mode and no built-in tools.
async fn portable_names_app(backend: Backend, tools: McpTools) -> (TestDb, TestApp) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.mcp.tools = tools;
    settings.tools.register_builtins = false;
    settings.mcp.portable_names = true;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portable_names_are_shown_and_called_back() {
    let (_db, app) = portable_names_app(Backend::Embedded, McpTools::Direct).await;
    for name in ["github.create_issue", "x.y", "x_y"] {
        app.register(&tool_definition(name)).await;
    }
    let client = stateless_client(&app).await;
    let shown: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        shown.contains(&"github_create_issue".to_owned()),
        "{shown:?}"
    );
    assert!(shown.contains(&"x_y".to_owned()), "{shown:?}");
    let other = shown
        .iter()
        .find(|n| n.starts_with("x_y_"))
        .expect("x.y gets a name of its own");
    for name in &shown {
        assert!(tool_registry::domain::portability::is_portable_name(name));
    }
    let result = client
        .call_tool(call("github_create_issue", json!({"text": "abc"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], "ABC");
    let result = client
        .call_tool(call(other, json!({"text": "dot"})))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true));
    // The execution is recorded under the real name.
    let (_, executions) = app.get("/admin/executions?tool=x.y").await;
    assert_eq!(executions["total"], 1, "{executions}");
    // A tool registered later is shown portably at once (to a client without a cached list).
    app.register(&tool_definition("late.comer")).await;
    client.cancel().await.unwrap();
    let client = stateless_client(&app).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"late_comer".to_owned()), "{names:?}");
    client.cancel().await.unwrap();
}

/// In `both` mode with portable names, no registered tool is shown under a meta tool's
/// name: `find.tool` (and a tool named `find_tool` itself) get names of their own, each
/// called back to its tool, while `find_tool` stays the meta tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portable_names_never_take_a_meta_tools_name() {
    let (_db, app) = portable_names_app(Backend::Embedded, McpTools::Both).await;
    for name in ["find.tool", "list_tools", "plain"] {
        app.register(&tool_definition(name)).await;
    }
    let client = stateless_client(&app).await;
    let listed = client.list_all_tools().await.unwrap();
    let shown: Vec<String> = listed.iter().map(|t| t.name.to_string()).collect();
    let unique: std::collections::HashSet<&String> = shown.iter().collect();
    assert_eq!(unique.len(), shown.len(), "a name shown twice: {shown:?}");
    assert_eq!(shown.len(), 6, "{shown:?}");
    let find = listed.iter().find(|t| t.name == "find_tool").unwrap();
    assert!(
        find.description
            .as_deref()
            .unwrap()
            .starts_with("Find the registered tools"),
        "find_tool is the meta tool"
    );
    let dotted = shown
        .iter()
        .find(|n| n.starts_with("find_tool_"))
        .expect("find.tool gets a name of its own");
    let exact = shown
        .iter()
        .find(|n| n.starts_with("list_tools_"))
        .expect("a tool named list_tools gets a name of its own");

    let result = client
        .call_tool(call(dotted, json!({"text": "dot"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], "DOT");
    let result = client
        .call_tool(call(exact, json!({"text": "exact"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], "EXACT");
    let (_, executions) = app.get("/admin/executions?tool=find.tool").await;
    assert_eq!(executions["total"], 1, "{executions}");
    let found = client
        .call_tool(call("find_tool", json!({"query": "shout", "mode": "text"})))
        .await
        .unwrap();
    assert!(found.structured_content.unwrap()["tools"].is_array());
    client.cancel().await.unwrap();
}

fn counter(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Unknown names cost no rebuild of the portable name map (each one used to read the
/// whole catalogue); a catalogue change is seen at the next use, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_portable_names_do_not_rebuild_the_name_map() {
    let (_db, app) = portable_names_app(Backend::Embedded, McpTools::Direct).await;
    app.register(&tool_definition("known.tool")).await;
    let client = stateless_client(&app).await;
    let result = client
        .call_tool(call("known_tool", json!({"text": "a"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], "A");
    let builds = counter(&app.metrics().await, "mcp_name_map_builds_total");
    assert!(builds >= 1.0);

    for attempt in 0..20 {
        let err = client
            .call_tool(call(&format!("no_such_tool_{attempt}"), json!({})))
            .await
            .unwrap_err();
        assert!(is_invalid_params(&err), "{err:?}");
    }
    assert_eq!(
        counter(&app.metrics().await, "mcp_name_map_builds_total"),
        builds,
        "unknown names rebuilt the name map"
    );

    // A tool registered now is called by its presented name at once: one build.
    app.register(&tool_definition("late.comer")).await;
    let result = client
        .call_tool(call("late_comer", json!({"text": "b"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["result"], "B");
    assert_eq!(
        counter(&app.metrics().await, "mcp_name_map_builds_total"),
        builds + 1.0
    );
    client.cancel().await.unwrap();
}

/// A tool registered through this replica is listed and called under its portable name at
/// once, on PostgreSQL too, where the store's change signal waits for the database's
/// notification of the write.
async fn portable_names_show_this_replicas_writes_at_once(backend: Backend) {
    let (_db, app) = portable_names_app(backend, McpTools::Direct).await;
    for round in 0..10 {
        app.register(&tool_definition(&format!("late.comer{round}")))
            .await;
        // A new client each round: a client may keep a listing for its time to live.
        let client = stateless_client(&app).await;
        let shown: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .iter()
            .map(|tool| tool.name.to_string())
            .collect();
        let portable = format!("late_comer{round}");
        assert!(
            shown.contains(&portable),
            "round {round}: {portable} not in {shown:?}"
        );
        let result = client
            .call_tool(call(&portable, json!({"text": "b"})))
            .await
            .unwrap();
        assert_eq!(result.structured_content.unwrap()["result"], "B");
        client.cancel().await.unwrap();
    }
}
