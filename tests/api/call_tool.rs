//! `/mcp/call_tool`: built-ins, HTTP tools against a real loopback server, argument
//! validation, the URL guard, and the execution record.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, assert_error};

crate::on_both_backends!(calls_are_recorded_with_stats);

/// A loopback server with one route per behaviour an HTTP tool can show.
struct ToolServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn tool_server() -> ToolServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/echo",
            post(|Json(args): Json<Value>| async move { Json(json!({"echo": args})) }),
        )
        .route(
            "/query",
            get(
                |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    Json(json!({"query": q}))
                },
            ),
        )
        .route(
            "/fail",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database exploded") }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Json(json!({"late": true}))
            }),
        )
        .route(
            "/huge",
            post(|| async { Json(json!({"blob": "x".repeat(200 * 1024)})) }),
        )
        .route("/text", post(|| async { "plain words" }))
        .route(
            "/to-metadata",
            post(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
                )
                    .into_response()
            }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    ToolServer { addr, hits }
}

fn http_tool(name: &str, url: String, timeout_ms: Option<u64>) -> Value {
    let mut implementation = json!({"kind": "http", "url": url});
    if let Some(ms) = timeout_ms {
        implementation["timeout_ms"] = json!(ms);
    }
    json!({
        "name": name,
        "description": "An HTTP tool under test",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "implementation": implementation
    })
}

async fn app_with(allow_private: bool) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = allow_private;
    settings.tools.max_response_bytes = 64 * 1024;
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

async fn call(app: &TestApp, name: &str, arguments: Value) -> (u16, Value) {
    app.post(
        "/mcp/call_tool",
        &json!({"name": name, "arguments": arguments}),
    )
    .await
}

#[tokio::test]
async fn builtins_are_registered_and_callable() {
    let (_db, app) = app_with(false).await;
    let (_, page) = app.post("/mcp/list_tools", &json!({"limit": 100})).await;
    let names: Vec<_> = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    for builtin in [
        "calculator",
        "string_reverse",
        "json_to_csv",
        "unflatten_json",
    ] {
        assert!(
            names.contains(&builtin.to_owned()),
            "{builtin} missing from {names:?}"
        );
    }

    let (status, body) = call(&app, "calculator", json!({"expression": "(2+3)*4^2"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["result"]["result"], 80);
    assert_eq!(body["tool"], "calculator");
    assert!(body["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(uuid::Uuid::parse_str(body["execution_id"].as_str().unwrap()).is_ok());

    let (_, body) = call(&app, "string_reverse", json!({"text": "héllo 👍🏽"})).await;
    assert_eq!(body["result"]["result"], "👍🏽 olléh");

    // A failing tool is a result, not an HTTP error.
    let (status, body) = call(
        &app,
        "calculator",
        json!({"operation": "divide", "a": 1, "b": 0}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "error");
    assert!(body["error"].as_str().unwrap().contains("zero"), "{body}");
    assert_eq!(body["result"], Value::Null);
}

/// Small built-in calls run on the request's task and large ones on the blocking pool;
/// either way the answer and its record are the same.
#[tokio::test]
async fn builtins_answer_alike_on_small_and_large_input() {
    let (_db, app) = app_with(false).await;
    for words in [3, 1_000, 20_000] {
        let text = vec!["word"; words].join(" ");
        let (status, body) = call(&app, "string_word_count", json!({"text": text})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "success", "{body}");
        assert_eq!(body["result"]["words"], words, "{words} words");
        let id = body["execution_id"].as_str().unwrap();
        let (status, record) = app.get(&format!("/admin/executions/{id}")).await;
        assert_eq!(status, 200, "{record}");
        assert_eq!(
            record["arguments"]["text"].as_str().unwrap().len(),
            text.len()
        );
    }
}

/// A data transform whose result would pass `TOOL_MAX_OUTPUT_BYTES` answers a tool error
/// naming the limit; a result under it is unchanged.
#[tokio::test]
async fn builtin_results_over_the_output_limit_are_tool_errors() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    settings.tools.max_output_bytes = 4096;
    let app = TestApp::spawn(settings).await;
    // Every row repeats both 200-byte header names: about 20 KB of keys from 450 bytes.
    let csv = format!(
        "{},{}\n{}",
        "a".repeat(200),
        "b".repeat(200),
        ",\n".repeat(24)
    );
    let (status, body) = call(&app, "csv_to_json", json!({ "csv": csv })).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("error")),
        "{body}"
    );
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("more than the output limit of 4096 bytes"),
        "{message}"
    );
    let (status, body) = call(&app, "csv_to_json", json!({"csv": "a,b\n1,2\n"})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("success")),
        "{body}"
    );
    assert_eq!(body["result"], json!({"data": [{"a": "1", "b": "2"}]}));
}

#[tokio::test]
async fn starting_twice_registers_builtins_once() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    let first = TestApp::spawn(settings.clone()).await;
    let (_, before) = first.get("/admin/tools?limit=500").await;
    first.stop().await;
    let second = TestApp::spawn(settings).await;
    let (_, after) = second.get("/admin/tools?limit=500").await;
    assert_eq!(before["total"], after["total"]);
    assert_eq!(
        before["tools"], after["tools"],
        "unchanged built-ins are not rewritten"
    );
    second.stop().await;
}

#[tokio::test]
async fn bad_arguments_and_unknown_tools_are_refused() {
    let (_db, app) = app_with(false).await;
    let (status, body) = call(
        &app,
        "calculator",
        json!({"operation": "add", "a": "one", "b": 2}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let error = assert_error(&body, "validation_failed");
    assert!(
        error["field"].as_str().unwrap().starts_with("arguments"),
        "{body}"
    );
    let (status, body) = call(&app, "string_length", json!({"text": 5})).await;
    assert_eq!(status, 422);
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "arguments.text"
    );
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "calculator", "arguments": [1]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "arguments"
    );
    let (status, body) = app.post("/mcp/call_tool", &json!({"arguments": {}})).await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "name");

    let (status, body) = call(&app, "no_such_tool", json!({})).await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");

    let (_, tool) = app.get("/admin/tools?limit=500").await;
    let upper = tool["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "string_uppercase")
        .unwrap()
        .clone();
    // Called once first, so the tool cache holds it: switching it off must reach the calls.
    let (status, _) = call(&app, "string_uppercase", json!({"text": "x"})).await;
    assert_eq!(status, 200);
    let id = upper["id"].as_str().unwrap();
    app.post(&format!("/admin/tools/{id}/deactivate"), &json!({}))
        .await;
    let (status, body) = call(&app, "string_uppercase", json!({"text": "x"})).await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_inactive");
    app.post(&format!("/admin/tools/{id}/activate"), &json!({}))
        .await;
    let (status, body) = call(&app, "string_uppercase", json!({"text": "x"})).await;
    assert_eq!(status, 200, "{body}");
    app.post(&format!("/admin/tools/{id}/deactivate"), &json!({}))
        .await;

    // An upstream MCP server that cannot be reached is a failed call, recorded, not a 5xx.
    let mut mcp = http_tool("upstream", "https://mcp.invalid/mcp".into(), None);
    mcp["implementation"] = json!({"kind": "mcp", "url": "https://mcp.invalid/mcp", "tool": "x"});
    app.register(&mcp).await;
    let (status, body) = call(&app, "upstream", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "error");
    assert!(
        body["error"].as_str().unwrap().contains("upstream"),
        "{body}"
    );

    let mut unknown_builtin = http_tool("ghost", String::new(), None);
    unknown_builtin["implementation"] = json!({"kind": "builtin", "handler": "ghost"});
    let (status, body) = app.post("/admin/tools", &unknown_builtin).await;
    assert_eq!(status, 422);
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "implementation.handler"
    );
}

#[tokio::test]
async fn http_tools_succeed_fail_and_time_out() {
    let server = tool_server().await;
    let (_db, app) = app_with(true).await;
    let base = format!("http://{}", server.addr);
    app.register(&http_tool("echo", format!("{base}/echo"), None))
        .await;
    app.register(&http_tool("fail", format!("{base}/fail"), None))
        .await;
    app.register(&http_tool("slow", format!("{base}/slow"), Some(200)))
        .await;
    app.register(&http_tool("huge", format!("{base}/huge"), None))
        .await;
    app.register(&http_tool("text", format!("{base}/text"), None))
        .await;
    let mut query = http_tool("query", format!("{base}/query"), None);
    query["implementation"]["method"] = json!("GET");
    app.register(&query).await;

    let (status, body) = call(&app, "echo", json!({"q": "ping"})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("success")),
        "{body}"
    );
    assert_eq!(body["result"], json!({"echo": {"q": "ping"}}));

    let (_, body) = call(&app, "query", json!({"q": "a b&c"})).await;
    assert_eq!(body["result"], json!({"query": "q=a+b%26c"}));

    let (status, body) = call(&app, "fail", json!({})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("error")));
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("500") && message.contains("database exploded"),
        "{message}"
    );

    let (_, body) = call(&app, "slow", json!({})).await;
    assert_eq!(body["status"], "timeout", "{body}");
    assert!(body["duration_ms"].as_f64().unwrap() < 3000.0);

    let (_, body) = call(&app, "huge", json!({})).await;
    assert_eq!(body["status"], "error");
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );

    let (_, body) = call(&app, "text", json!({})).await;
    assert_eq!(body["status"], "error");
    assert!(
        body["error"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn the_url_guard_refuses_private_addresses_and_metadata_redirects() {
    let server = tool_server().await;
    let url = format!("http://{}/echo", server.addr);

    // By default loopback URLs cannot even be registered.
    let (_db, strict) = app_with(false).await;
    for refused in [
        url.clone(),
        "http://localhost:9/x".into(),
        "http://10.0.0.8/x".into(),
    ] {
        let (status, body) = strict
            .post("/admin/tools", &http_tool("local", refused, None))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            assert_error(&body, "validation_failed")["field"],
            "implementation.url"
        );
    }
    // A public-looking name that resolves to loopback is refused at call time, before any
    // request leaves.
    let sneaky = format!("http://127.0.0.1.nip.invalid:{}/echo", server.addr.port());
    strict.register(&http_tool("sneaky", sneaky, None)).await;
    let (_, body) = call(&strict, "sneaky", json!({})).await;
    assert_eq!(body["status"], "error");
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);

    // With private URLs allowed, a redirect to the metadata service is still refused.
    let (_db, relaxed) = app_with(true).await;
    relaxed
        .register(&http_tool(
            "redirector",
            format!("http://{}/to-metadata", server.addr),
            None,
        ))
        .await;
    let (_, body) = call(&relaxed, "redirector", json!({})).await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("refused"),
        "{body}"
    );
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "only the first hop was requested"
    );
}

/// Polls until the recorder has written `count` executions of `tool`.
async fn executions_of(app: &TestApp, tool: &str, count: u64) -> Value {
    for _ in 0..300 {
        let (_, page) = app
            .get(&format!("/admin/executions?tool={tool}&limit=100"))
            .await;
        // The page and its total are read one after the other while records are being
        // written: both must show them all.
        let listed = page["executions"].as_array().map_or(0, Vec::len) as u64;
        if page["total"].as_u64() == Some(count) && listed == count {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{tool} never reached {count} recorded executions");
}

async fn calls_are_recorded_with_stats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    let mut ids = Vec::new();
    for (a, b) in [(1, 2), (3, 4), (5, 0)] {
        let (_, body) = call(
            &app,
            "calculator",
            json!({"operation": "divide", "a": a, "b": b}),
        )
        .await;
        ids.push(body["execution_id"].clone());
    }
    let page = executions_of(&app, "calculator", 3).await;
    let recorded: Vec<_> = page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    for id in &ids {
        assert!(recorded.contains(id), "{id} not recorded in {page}");
    }
    let failed = &page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "error")
        .unwrap();
    assert_eq!(
        failed["arguments"],
        json!({"operation": "divide", "a": 5, "b": 0})
    );
    assert!(failed["error"].as_str().unwrap().contains("zero"));

    let (_, errors) = app
        .get("/admin/executions?tool=calculator&status=error")
        .await;
    assert_eq!(errors["total"], 1);
    let (_, none) = app
        .get("/admin/executions?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(none["total"], 0);
    let (status, body) = app.get("/admin/executions?status=exploded").await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "status");
    let (status, body) = app.get("/admin/executions?since=yesterday").await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "since");

    let tool_id = page["executions"][0]["tool_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, by_id) = app.get(&format!("/admin/executions?tool={tool_id}")).await;
    assert_eq!(by_id["total"], 3);
    let (status, stats) = app.get(&format!("/admin/tools/{tool_id}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["calls"], 3);
    assert_eq!(stats["successes"], 2);
    assert_eq!(stats["errors"], 1);
    assert_eq!(stats["timeouts"], 0);
    assert!((stats["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!(
        stats["p95_duration_ms"].as_f64().unwrap() >= stats["p50_duration_ms"].as_f64().unwrap()
    );
    assert!(stats["last_called_at"].is_string());
    let (status, body) = app
        .get(&format!("/admin/tools/{}/stats", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    app.stop().await;
}
