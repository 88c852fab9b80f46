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
    settings.mcp_tools = mode;
    settings.register_builtins = builtins;
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

crate::on_both_backends!(clients_of_both_eras_hear_that_the_list_changed);

async fn clients_of_both_eras_hear_that_the_list_changed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.mcp_tools = McpTools::Direct;
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
    settings.mcp_api_keys = Some(Secret::new("agent-key"));
    settings.mcp_allowed_hosts = "localhost,127.0.0.1,registry.internal".into();
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
