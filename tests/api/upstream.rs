//! Upstream MCP servers: importing their tools and proxying calls to them. The upstream is
//! a real rmcp server on loopback.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
        ToolAnnotations,
    },
    service::RequestContext,
    transport::{
        StreamableHttpClientTransport,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};
use serde_json::{Value, json};
use tool_registry::config::McpTools;

use crate::helpers::*;

crate::on_both_backends!(
    an_import_that_meets_a_taken_name_writes_nothing,
    an_import_refused_at_its_last_write_changes_nothing,
    imports_of_one_upstream_at_once_both_succeed,
);

/// An upstream MCP server whose tool list the test can change.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) tools: Arc<RwLock<Vec<Tool>>>,
    /// The `_meta.traceparent` of each call (or "").
    pub(crate) traceparents: Arc<RwLock<Vec<String>>>,
    /// The query string of each HTTP request the server received (or "").
    pub(crate) queries: Arc<RwLock<Vec<String>>>,
}

fn object(value: Value) -> Arc<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => panic!("not an object"),
    }
}

pub(crate) fn upstream_tool(name: &str, description: &str) -> Tool {
    Tool::new(
        name.to_owned(),
        description.to_owned(),
        object(
            json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
        ),
    )
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools.read().unwrap().clone(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // rmcp hands the request's `_meta` to the handler in its context.
        let traceparent = context.meta.0.get_traceparent();
        self.traceparents
            .write()
            .unwrap()
            .push(traceparent.unwrap_or_default().to_owned());
        let arguments = request.arguments.unwrap_or_default();
        let number = |key: &str| arguments.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        let result = match request.name.as_ref() {
            "add" => {
                let mut result = CallToolResult::success(vec![ContentBlock::text("the sum")]);
                result.structured_content = Some(json!({"sum": number("a") + number("b")}));
                result
            }
            "fail" => CallToolResult::error(vec![ContentBlock::text("the upstream broke")]),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                CallToolResult::success(vec![ContentBlock::text("late")])
            }
            other => {
                return Err(ErrorData::invalid_params(format!("no tool {other}"), None));
            }
        };
        Ok(result.into())
    }
}

pub(crate) async fn start_upstream(tools: Vec<Tool>) -> (SocketAddr, Upstream) {
    let upstream = Upstream {
        tools: Arc::new(RwLock::new(tools)),
        traceparents: Arc::default(),
        queries: Arc::default(),
    };
    let handler = upstream.clone();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let queries = upstream.queries.clone();
    let router =
        axum::Router::new()
            .route_service("/mcp", service)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    queries.write().unwrap().push(query);
                    next.run(request)
                },
            ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, upstream)
}

async fn registry(private_urls: bool) -> (TestDb, TestApp) {
    registry_on(Backend::Embedded, private_urls).await
}

async fn registry_on(backend: Backend, private_urls: bool) -> (TestDb, TestApp) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = private_urls;
    settings.tools.timeout_ms = 1_000;
    settings.mcp.tools = McpTools::Direct;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

fn sorted(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_tools_are_proxied_and_reimports_follow_the_upstream() {
    let (addr, upstream) = start_upstream(vec![
        upstream_tool("add", "Add two numbers")
            .with_title("Addition")
            .with_annotations(ToolAnnotations::new().read_only(true).open_world(false)),
        upstream_tool("fail", "Always fails"),
        upstream_tool("slow", "Takes its time"),
    ])
    .await;
    let url = format!("http://{addr}/mcp");
    let (_db, app) = registry(true).await;

    let (status, report) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(sorted(&report["created"]), ["up.add", "up.fail", "up.slow"]);
    let (_, listed) = app.get("/admin/tools?category=up").await;
    assert_eq!(listed["total"], 3);
    assert_eq!(listed["tools"][0]["implementation"]["kind"], "mcp");
    assert_eq!(listed["tools"][0]["tags"], json!(["up", "mcp"]));

    // Over REST: the upstream's result, recorded as an execution.
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    assert_eq!(called["status"], "success");
    assert_eq!(called["result"]["structuredContent"]["sum"], 5.0);
    let (_, failed) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.fail", "arguments": {}}),
        )
        .await;
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error"], "the upstream broke");
    let (_, slow) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.slow", "arguments": {}}),
        )
        .await;
    assert_eq!(slow["status"], "timeout");

    // Over MCP: the upstream's result comes back unchanged.
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(app.url("/mcp")),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    // The upstream's title and annotations are published again.
    let listed = client.list_all_tools().await.unwrap();
    let add = listed.iter().find(|t| t.name == "up.add").unwrap();
    assert_eq!(add.title.as_deref(), Some("Addition"));
    let annotations = add.annotations.as_ref().expect("annotations kept");
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(annotations.open_world_hint, Some(false));
    let Value::Object(arguments) = json!({"a": 1, "b": 1}) else {
        unreachable!()
    };
    let result = client
        .call_tool(CallToolRequestParams::new("up.add").with_arguments(arguments))
        .await
        .unwrap();
    assert_eq!(result.structured_content, Some(json!({"sum": 2.0})));
    assert_eq!(result.content[0].as_text().unwrap().text, "the sum");
    let failure = client
        .call_tool(CallToolRequestParams::new("up.fail"))
        .await
        .unwrap();
    assert_eq!(failure.is_error, Some(true));
    client.cancel().await.unwrap();

    // The upstream changes: one tool edited (now with an output schema, without its
    // title and annotations), one gone, one new.
    let mut edited_add = upstream_tool("add", "Add two numbers, now with more precision");
    edited_add.output_schema = Some(object(
        json!({"type": "object", "properties": {"sum": {"type": "number"}}}),
    ));
    *upstream.tools.write().unwrap() = vec![
        edited_add,
        upstream_tool("slow", "Takes its time"),
        upstream_tool("multiply", "Multiply two numbers"),
    ];
    let (status, report) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(sorted(&report["created"]), ["up.multiply"]);
    assert_eq!(sorted(&report["updated"]), ["up.add"]);
    assert_eq!(sorted(&report["unchanged"]), ["up.slow"]);
    assert_eq!(sorted(&report["deactivated"]), ["up.fail"]);
    // What the report calls updated is stored: the output schema and the metadata too.
    let (_, listed) = app.get("/admin/tools?limit=100").await;
    let stored_add = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "up.add")
        .expect("up.add listed")
        .clone();
    assert_eq!(
        stored_add["output_schema"],
        json!({"type": "object", "properties": {"sum": {"type": "number"}}})
    );
    assert_eq!(stored_add["metadata"].get("title"), None);
    assert_eq!(stored_add["metadata"].get("annotations"), None);
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.fail", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_inactive");

    let (_, executions) = app.get("/admin/executions?tool=up.add").await;
    assert_eq!(executions["total"], 2);
}

#[tokio::test]
async fn imports_check_their_input_and_the_url_guard() {
    let (addr, _upstream) = start_upstream(vec![upstream_tool("add", "Add")]).await;
    let (_db, app) = registry(false).await;
    let url = format!("http://{addr}/mcp");
    let (status, body) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(assert_error(&body, "validation_failed")["field"], "url");
    let (status, body) = app
        .post(
            "/admin/import",
            &json!({"url": url, "prefix": "bad prefix"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "prefix");
    // `localhost` is refused up front, as registration refuses it, not at connect time.
    let (status, body) = app
        .post(
            "/admin/import",
            &json!({"url": format!("http://localhost:{}/mcp", addr.port()), "prefix": "up"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(assert_error(&body, "validation_failed")["field"], "url");
    let (status, body) = app
        .post("/admin/import", &json!({"url": "ftp://x", "prefix": "up"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "url");
    let (status, body) = app
        .post(
            "/admin/import",
            &json!({"url": url, "prefix": "up", "extra": 1}),
        )
        .await;
    assert_eq!(status, 422);
    assert_error(&body, "validation_failed");

    // A server that is not there: 502 with the JSON error shape.
    let (_db2, open) = registry(true).await;
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, body) = open
        .post(
            "/admin/import",
            &json!({"url": format!("http://{gone}/mcp"), "prefix": "gone"}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_error(&body, "upstream_failed");
}

async fn total(app: &TestApp, query: &str) -> u64 {
    let (status, listed) = app
        .get(&format!("/admin/tools?include_inactive=true&{query}"))
        .await;
    assert_eq!(status, 200, "{listed}");
    listed["total"].as_u64().unwrap()
}

/// An import is all or nothing: a name taken by another tool stops it before any write, and
/// once the name is free the same import goes through.
async fn an_import_that_meets_a_taken_name_writes_nothing(backend: Backend) {
    let names = ["a", "b", "c", "d", "e"];
    let (addr, _upstream) = start_upstream(
        names
            .iter()
            .map(|name| upstream_tool(name, &format!("Tool {name}")))
            .collect(),
    )
    .await;
    let url = format!("http://{addr}/mcp");
    let (_db, app) = registry_on(backend, true).await;
    let squatter = app
        .register(&json!({
            "name": "up.c",
            "description": "Registered by hand before the import",
            "implementation": {"kind": "http", "url": "http://127.0.0.1:9/c"}
        }))
        .await;

    for _ in 0..2 {
        let (status, body) = app
            .post("/admin/import", &json!({"url": url, "prefix": "up"}))
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            total(&app, "").await,
            1,
            "an import that failed wrote tools"
        );
        let error = assert_error(&body, "duplicate_tool");
        assert_eq!(error["field"], "prefix");
        assert!(
            error["message"].as_str().unwrap().contains("up.c"),
            "{body}"
        );
    }

    let (status, _) = app
        .delete(&format!(
            "/admin/tools/{}",
            squatter["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 204);
    let (status, report) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        sorted(&report["created"]),
        ["up.a", "up.b", "up.c", "up.d", "up.e"]
    );
    assert_eq!(total(&app, "").await, 5);
}

/// Two imports of one upstream under one prefix at the same time both succeed: the one
/// that finds its new tools created by the other meanwhile plans again and finds them its
/// own, instead of reporting their names as taken.
async fn imports_of_one_upstream_at_once_both_succeed(backend: Backend) {
    let tools = (0..40)
        .map(|i| upstream_tool(&format!("t{i}"), &format!("Tool number {i}")))
        .collect();
    let (addr, _upstream) = start_upstream(tools).await;
    let url = format!("http://{addr}/mcp");
    let (_db, app) = registry_on(backend, true).await;
    for round in 0..4 {
        let prefix = format!("race{round}");
        let import = json!({"url": url, "prefix": prefix});
        let ((first, first_body), (second, second_body)) = tokio::join!(
            app.post("/admin/import", &import),
            app.post("/admin/import", &import)
        );
        assert_eq!(first, 200, "round {round}: {first_body}");
        assert_eq!(second, 200, "round {round}: {second_body}");
        let created = first_body["created"].as_array().unwrap().len()
            + second_body["created"].as_array().unwrap().len();
        assert_eq!(created, 40, "round {round}: each tool created once");
    }
    assert_eq!(total(&app, "").await, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_prefix_imports_a_second_set_and_leaves_the_first_alone() {
    let (addr, upstream) = start_upstream(vec![
        upstream_tool("add", "Add two numbers"),
        upstream_tool("fail", "Always fails"),
    ])
    .await;
    let url = format!("http://{addr}/mcp");
    let (_db, app) = registry(true).await;
    let (status, first) = app
        .post("/admin/import", &json!({"url": url, "prefix": "one"}))
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = app
        .post("/admin/import", &json!({"url": url, "prefix": "two"}))
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(sorted(&second["created"]), ["two.add", "two.fail"]);
    assert_eq!(second["updated"], json!([]));
    assert_eq!(total(&app, "tags=one").await, 2);
    assert_eq!(total(&app, "tags=two").await, 2);
    let (status, _) = app.get("/admin/tools?category=one").await;
    assert_eq!(status, 200);

    // Each prefix follows the upstream on its own.
    *upstream.tools.write().unwrap() = vec![upstream_tool("add", "Add two numbers")];
    let (_, again) = app
        .post("/admin/import", &json!({"url": url, "prefix": "one"}))
        .await;
    assert_eq!(sorted(&again["unchanged"]), ["one.add"]);
    assert_eq!(sorted(&again["deactivated"]), ["one.fail"]);
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "two.fail", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 200, "two.fail is still active: {called}");
}

/// The whole catalogue as the admin API lists it, switched-off tools included.
async fn catalogue(app: &TestApp) -> Value {
    let (status, listed) = app
        .get("/admin/tools?include_inactive=true&limit=100")
        .await;
    assert_eq!(status, 200, "{listed}");
    listed
}

/// Makes the database refuse to switch a tool off, as a failure of an import's last write.
async fn refuse_switching_off(db: &TestDb, refuse: bool) {
    use sqlx::Connection;
    match db.database_url() {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let sql = if refuse {
                "CREATE FUNCTION refuse_switch_off() RETURNS trigger AS $$ BEGIN \
                   RAISE EXCEPTION 'switching off refused'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_switch_off BEFORE UPDATE ON tools FOR EACH ROW \
                   WHEN (OLD.is_active AND NOT NEW.is_active) \
                   EXECUTE FUNCTION refuse_switch_off();"
            } else {
                "DROP TRIGGER refuse_switch_off ON tools"
            };
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        None => {
            let file = db.data_dir().join("registry.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", file.display()))
                .await
                .unwrap();
            let sql = if refuse {
                "CREATE TRIGGER refuse_switch_off BEFORE UPDATE ON tools \
                 WHEN OLD.is_active = 1 AND NEW.is_active = 0 \
                 BEGIN SELECT RAISE(ABORT, 'switching off refused'); END;"
            } else {
                "DROP TRIGGER refuse_switch_off"
            };
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// An import's writes (a new tool, an update, a deactivation, in that order) are one
/// transaction: the database refusing the last of them leaves the catalogue as it was, and
/// the same import goes through once the database accepts it.
async fn an_import_refused_at_its_last_write_changes_nothing(backend: Backend) {
    let (addr, upstream) = start_upstream(vec![
        upstream_tool("add", "Add two numbers"),
        upstream_tool("fail", "Always fails"),
    ])
    .await;
    let url = format!("http://{addr}/mcp");
    let (db, app) = registry_on(backend, true).await;
    let (status, report) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");

    *upstream.tools.write().unwrap() = vec![
        upstream_tool("add", "Add two numbers, exactly"),
        upstream_tool("multiply", "Multiply two numbers"),
    ];
    let before = catalogue(&app).await;
    refuse_switching_off(&db, true).await;
    let (status, body) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        catalogue(&app).await,
        before,
        "an import that failed at its last write left some of its writes"
    );
    let (_, add) = app.get("/admin/tools?include_inactive=true&tags=up").await;
    let add_id = add["tools"][0]["id"].as_str().unwrap().to_owned();
    let (_, versions) = app.get(&format!("/admin/tools/{add_id}/versions")).await;
    assert_eq!(versions["versions"], json!([]), "{versions}");

    refuse_switching_off(&db, false).await;
    let (status, report) = app
        .post("/admin/import", &json!({"url": url, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(sorted(&report["created"]), ["up.multiply"]);
    assert_eq!(sorted(&report["updated"]), ["up.add"]);
    assert_eq!(sorted(&report["deactivated"]), ["up.fail"]);
    assert_eq!(total(&app, "").await, 3);
}

/// Tools are known by their upstream without its credentials: importing again after the
/// URL's password and key were rotated updates the same tools, which then reach the
/// upstream with the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reimport_with_rotated_url_credentials_updates_the_same_tools() {
    let (addr, upstream) = start_upstream(vec![
        upstream_tool("add", "Add two numbers"),
        upstream_tool("fail", "Always fails"),
    ])
    .await;
    let (_db, app) = registry(true).await;
    let old = format!("http://svc:old-pass@{addr}/mcp?api_key=k1&region=eu");
    let (status, report) = app
        .post("/admin/import", &json!({"url": old, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    let first = catalogue(&app).await;

    let rotated = format!("http://svc:new-pass@{addr}/mcp?api_key=k2&region=eu");
    let (status, report) = app
        .post("/admin/import", &json!({"url": rotated, "prefix": "up"}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!([]), "{report}");
    assert_eq!(sorted(&report["updated"]), ["up.add", "up.fail"]);
    let again = catalogue(&app).await;
    assert_eq!(again["total"], 2);
    for (one, other) in first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["tools"].as_array().unwrap())
    {
        assert_eq!(one["id"], other["id"], "the same tools");
    }

    // Calls reach the upstream with the new key.
    upstream.queries.write().unwrap().clear();
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    assert_eq!(called["status"], "success", "{called}");
    let queries = upstream.queries.read().unwrap().clone();
    assert!(!queries.is_empty());
    assert!(
        queries.iter().all(|q| q.contains("api_key=k2")),
        "{queries:?}"
    );

    // The same URL again changes nothing; another region is another upstream.
    let (_, report) = app
        .post("/admin/import", &json!({"url": rotated, "prefix": "up"}))
        .await;
    assert_eq!(sorted(&report["unchanged"]), ["up.add", "up.fail"]);
    let elsewhere = format!("http://{addr}/mcp?region=us");
    let (status, body) = app
        .post("/admin/import", &json!({"url": elsewhere, "prefix": "up"}))
        .await;
    assert_eq!(status, 409, "{body}");
}

/// A `/mcp` request that outlives `REQUEST_TIMEOUT_MS` (a call of a slow upstream tool) is
/// answered 504 with a JSON-RPC error carrying its id, as MCP clients read errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_mcp_request_gets_a_jsonrpc_error() {
    let (addr, _upstream) = start_upstream(vec![upstream_tool("slow", "Takes its time")]).await;
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = true;
    settings.tools.timeout_ms = 10_000;
    settings.server.request_timeout_ms = 500;
    settings.mcp.tools = McpTools::Both;
    let app = TestApp::spawn(settings).await;
    let (status, report) = app
        .post(
            "/admin/import",
            &json!({"url": format!("http://{addr}/mcp"), "prefix": "up"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");

    // The stateless era's request metadata.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let call = |id: Value, name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments, "_meta": meta}})
    };
    let mcp_post = |body: Value, protocol: &'static str| {
        let name = body["params"]["name"].as_str().unwrap().to_owned();
        app.client
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", protocol)
            .header("mcp-method", "tools/call")
            .header("mcp-name", name)
            .json(&body)
            .send()
    };
    // A client of the stateless era: one POST per request, answered when it is done.
    let answer = mcp_post(call(json!(7), "up.slow", json!({})), "2026-07-28")
        .await
        .unwrap();
    assert_eq!(answer.status(), 504);
    assert_eq!(
        answer.headers()["content-type"],
        "application/json",
        "{:?}",
        answer.headers()
    );
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["error"]["data"]["code"], "request_timeout", "{body}");
    assert_eq!(body["error"]["data"]["status"], 504, "{body}");
    // Through the meta tool too.
    let answer = mcp_post(
        call(
            json!("late"),
            "call_tool",
            json!({"name": "up.slow", "arguments": {}}),
        ),
        "2026-07-28",
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 504);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["id"], "late", "{body}");
    assert_eq!(body["error"]["data"]["code"], "request_timeout", "{body}");
    // REST keeps its own shape.
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "up.slow", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 504);
    assert_error(&body, "request_timeout");
}
