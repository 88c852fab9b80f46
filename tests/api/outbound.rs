//! What leaves the server: agents see no implementation, operators see secrets redacted,
//! call errors carry no credentials, the address guard refuses every form of a private or
//! credential address, and proxy variables cannot route calls around the guard.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, http::HeaderMap, routing::post};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, assert_error};

const SECRETS: [&str; 4] = ["alice", "pa55w0rd", "k3y", "s3cret-header"];

#[track_caller]
fn assert_no_secret(body: &Value) {
    let text = body.to_string();
    for secret in SECRETS {
        assert!(!text.contains(secret), "'{secret}' leaked in {text}");
    }
}

/// What the tool server saw of one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    authorization: Option<String>,
    api_key_header: Option<String>,
    query: Option<String>,
}

/// A loopback HTTP tool that records the credentials it receives.
async fn recording_tool() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/secret",
        post(
            move |headers: HeaderMap, axum::extract::RawQuery(query): axum::extract::RawQuery| {
                let log = log.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    log.lock().unwrap().push(Seen {
                        authorization: header("authorization"),
                        api_key_header: header("x-api-key"),
                        query,
                    });
                    Json(json!({"ok": true}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn app_with(allow_private: bool) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = allow_private;
    settings.tools.timeout_ms = 2_000;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn secret_http_tool(name: &str, authority: &str) -> Value {
    json!({
        "name": name,
        "description": "Looks up the weather with credentials",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "implementation": {
            "kind": "http",
            "url": format!("http://alice:pa55w0rd@{authority}/secret?units=metric&api_key=k3y"),
            "headers": {"X-Api-Key": "s3cret-header", "Accept": "application/json"}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_see_no_implementation_and_operators_see_secrets_redacted() {
    let (addr, seen) = recording_tool().await;
    let (_db, app) = app_with(true).await;

    let created = app
        .register(&secret_http_tool("weather.secret", &addr.to_string()))
        .await;
    assert_no_secret(&created);
    let implementation = &created["implementation"];
    assert_eq!(implementation["headers"]["X-Api-Key"], "REDACTED");
    assert_eq!(implementation["headers"]["Accept"], "application/json");
    let url = implementation["url"].as_str().unwrap();
    assert!(
        url.contains("REDACTED:REDACTED@") && url.contains("api_key=REDACTED"),
        "{url}"
    );
    assert!(url.contains("units=metric"), "{url}");
    let id = created["id"].as_str().unwrap().to_owned();

    // Every operator read redacts.
    for path in [
        format!("/admin/tools/{id}"),
        "/admin/tools".to_owned(),
        format!("/admin/tools/{id}/versions"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_no_secret(&body);
    }

    // Agents see what the tool does, not how it is reached.
    let (status, listed) = app.post("/mcp/list_tools", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(listed["tools"][0]["name"], "weather.secret");
    assert!(
        listed["tools"][0].get("implementation").is_none(),
        "{listed}"
    );
    assert!(listed["tools"][0].get("input_schema").is_some());
    assert!(!listed.to_string().contains(&addr.to_string()), "{listed}");
    let (status, found) = app
        .post(
            "/mcp/find_tool",
            &json!({"query": "weather credentials", "mode": "text"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["tools"][0]["tool"]["name"], "weather.secret");
    assert!(found["tools"][0]["tool"].get("implementation").is_none());
    assert!(!found.to_string().contains(&addr.to_string()), "{found}");

    // Sending the redacted view back keeps the secrets: the tool still receives them.
    let (status, updated) = app
        .put(
            &format!("/admin/tools/{id}"),
            &json!({
                "description": "Looks up the weather, now with wind",
                "version": "1.1.0",
                "implementation": created["implementation"],
            }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_no_secret(&updated);
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "weather.secret", "arguments": {"q": "Lisbon"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(called["status"], "success", "{called}");
    let received = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(received.api_key_header.as_deref(), Some("s3cret-header"));
    assert_eq!(
        received.query.as_deref(),
        Some("units=metric&api_key=k3y"),
        "{received:?}"
    );
    // Basic credentials of alice:pa55w0rd.
    assert_eq!(
        received.authorization.as_deref(),
        Some("Basic YWxpY2U6cGE1NXcwcmQ=")
    );
    let (_, history) = app.get(&format!("/admin/tools/{id}/versions")).await;
    assert_no_secret(&history);

    // A placeholder never travels to a new host, nor stands for a secret that is not there.
    let mut moved = created["implementation"].clone();
    moved["url"] = json!(format!(
        "http://REDACTED:REDACTED@localhost:{}/secret?api_key=REDACTED",
        addr.port()
    ));
    let (status, body) = app
        .put(
            &format!("/admin/tools/{id}"),
            &json!({"implementation": moved}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "implementation.url"
    );
    let mut unknown = created["implementation"].clone();
    unknown["headers"]["X-Other"] = json!("REDACTED");
    let (status, body) = app
        .put(
            &format!("/admin/tools/{id}"),
            &json!({"implementation": unknown}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "implementation.headers.X-Other"
    );
    let mut copied = secret_http_tool("weather.copy", &addr.to_string());
    copied["implementation"] = created["implementation"].clone();
    let (status, body) = app.post("/admin/tools", &copied).await;
    assert_eq!(status, 422, "{body}");
}

/// The fields of an admin view that a `PUT` takes: the definition, as the operator read it.
fn editable(view: &Value) -> Value {
    let fields = [
        "name",
        "description",
        "category",
        "tags",
        "input_schema",
        "output_schema",
        "version",
        "implementation",
        "metadata",
        "is_active",
    ];
    let body = fields
        .iter()
        .filter_map(|field| Some(((*field).to_owned(), view.get(*field)?.clone())))
        .collect();
    Value::Object(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redacted_view_sent_back_as_it_is_changes_nothing() {
    let (addr, seen) = recording_tool().await;
    let (_db, app) = app_with(true).await;
    let created = app
        .register(&json!({
            "name": "search.secret",
            "description": "Searches with a key in the query and a bearer token",
            "version": "1.0.0",
            "input_schema": {"type": "object"},
            "implementation": {
                "kind": "http",
                "url": format!("http://{addr}/secret?api_key=abc&q=a%20b"),
                "headers": {"Authorization": "Bearer t0ken-s3cret"}
            }
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, view) = app.get(&format!("/admin/tools/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["implementation"]["headers"]["Authorization"],
        "REDACTED"
    );

    let (status, updated) = app
        .put(&format!("/admin/tools/{id}"), &editable(&view))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], "1.0.0");
    assert_eq!(updated["implementation"], view["implementation"]);
    let (_, history) = app.get(&format!("/admin/tools/{id}/versions")).await;
    assert_eq!(history["versions"], json!([]), "{history}");

    // The stored secrets and the query, byte for byte, still reach the tool.
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "search.secret", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(called["status"], "success", "{called}");
    let received = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        received.authorization.as_deref(),
        Some("Bearer t0ken-s3cret")
    );
    assert_eq!(received.query.as_deref(), Some("api_key=abc&q=a%20b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_that_creates_refuses_the_placeholder() {
    let (addr, seen) = recording_tool().await;
    let (_db, app) = app_with(true).await;
    let mut definition = secret_http_tool("weather.upserted", &addr.to_string());
    definition["upsert"] = json!(true);
    let mut placeholder = definition.clone();
    placeholder["implementation"]["headers"]["X-Api-Key"] = json!("REDACTED");
    let (status, body) = app.post("/admin/tools", &placeholder).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "implementation"
    );
    let (_, listed) = app.get("/admin/tools").await;
    assert!(!listed.to_string().contains("weather.upserted"), "{listed}");

    // Over a tool that is there, the placeholder keeps the stored secret.
    let (status, _) = app.post("/admin/tools", &definition).await;
    assert_eq!(status, 201);
    placeholder["description"] = json!("Looks up the weather with credentials, and wind");
    let (status, body) = app.post("/admin/tools", &placeholder).await;
    assert_eq!(status, 200, "{body}");
    let (_, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "weather.upserted", "arguments": {}}),
        )
        .await;
    assert_eq!(called["status"], "success", "{called}");
    let received = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(received.api_key_header.as_deref(), Some("s3cret-header"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_imported_from_address_shows_no_credentials() {
    let (addr, seen) = recording_tool().await;
    let (_db, app) = app_with(true).await;
    // As imports stored it before they redacted the address.
    let raw = "https://us3r:pw-s3cret@upstream.example/mcp?key=k3y-0ld&units=metric";
    let created = app
        .register(&json!({
            "name": "weather.imported",
            "description": "Current weather, imported from an upstream server",
            "version": "1.0.0",
            "implementation": {"kind": "http", "url": format!("http://{addr}/secret")},
            "metadata": {"imported_from": raw, "title": "Weather"}
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, listed) = app.post("/mcp/list_tools", &json!({})).await;
    let (_, found) = app
        .post(
            "/mcp/find_tool",
            &json!({"query": "weather imported", "mode": "text"}),
        )
        .await;
    let (_, view) = app.get(&format!("/admin/tools/{id}")).await;
    let (_, admin_list) = app.get("/admin/tools").await;
    for body in [&listed, &found, &view, &admin_list, &created] {
        let text = body.to_string();
        for secret in ["us3r", "pw-s3cret", "k3y-0ld"] {
            assert!(!text.contains(secret), "'{secret}' leaked in {text}");
        }
        assert!(text.contains("upstream.example"), "{text}");
    }
    assert_eq!(listed["tools"][0]["metadata"]["title"], "Weather");

    // The tool still runs, and the view sent back as it is changes nothing.
    let (_, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "weather.imported", "arguments": {}}),
        )
        .await;
    assert_eq!(called["status"], "success", "{called}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (status, updated) = app
        .put(&format!("/admin/tools/{id}"), &editable(&view))
        .await;
    assert_eq!(status, 200, "{updated}");
    let (_, history) = app.get(&format!("/admin/tools/{id}/versions")).await;
    assert_eq!(history["versions"], json!([]), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_errors_carry_no_credentials() {
    let (_db, app) = app_with(true).await;
    let gone = format!("127.0.0.1:{}", closed_port());
    app.register(&secret_http_tool("http.gone", &gone)).await;
    app.register(&json!({
        "name": "mcp.gone",
        "description": "A tool of an upstream server that is not there",
        "implementation": {
            "kind": "mcp",
            "url": format!("http://alice:pa55w0rd@{gone}/mcp?api_key=k3y"),
            "tool": "add"
        }
    }))
    .await;
    for tool in ["http.gone", "mcp.gone"] {
        let (status, called) = app
            .post("/mcp/call_tool", &json!({"name": tool, "arguments": {}}))
            .await;
        assert_eq!(status, 200, "{called}");
        assert_ne!(called["status"], "success", "{called}");
        assert!(
            called["error"].as_str().unwrap().contains("127.0.0.1"),
            "the message still says where: {called}"
        );
        assert_no_secret(&called);
    }
    // Records are written in the background: wait (bounded) until both are there.
    for _ in 0..100 {
        let (_, executions) = app.get("/admin/executions").await;
        if executions["executions"].as_array().map_or(0, Vec::len) == 2 {
            assert_no_secret(&executions);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the two calls were never recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_errors_name_the_host_only() {
    let (_db, app) = app_with(true).await;
    let gone = format!("127.0.0.1:{}", closed_port());
    // Credentials in places no list of secret names catches: a path and `appid`.
    app.register(&json!({
        "name": "chat.gone",
        "description": "Sends a chat message through a bot",
        "implementation": {
            "kind": "http",
            "url": format!("http://{gone}/bot4242:AAH-p4th-t0ken/sendMessage?appid=app1d-v4lue")
        }
    }))
    .await;
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "chat.gone", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    let error = called["error"].as_str().unwrap();
    assert!(
        error.contains(&gone),
        "the message still says where: {error}"
    );
    for secret in ["AAH-p4th-t0ken", "app1d-v4lue", "sendMessage"] {
        assert!(!error.contains(secret), "'{secret}' leaked in {error}");
    }
}

#[tokio::test]
async fn every_form_of_a_refused_address_is_refused() {
    let (_strict_db, strict) = app_with(false).await;
    for url in [
        "http://[::127.0.0.1]:8080/x",
        "http://[::ffff:0:7f00:1]:8080/x",
        "http://[2002:7f00:1::]:8080/x",
        "http://168.63.129.16/machine",
    ] {
        let mut tool = secret_http_tool("refused", "x");
        tool["implementation"] = json!({"kind": "http", "url": url});
        let (status, body) = strict.post("/admin/tools", &tool).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(
            assert_error(&body, "validation_failed")["field"],
            "implementation.url"
        );
    }
    let (_relaxed_db, relaxed) = app_with(true).await;
    for url in [
        "http://169.254.170.2/v2/credentials",
        "http://169.254.170.23/v1/credentials",
        "http://192.0.0.192/opc/v2/instance",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[::ffff:0:a9fe:a9fe]/latest/meta-data",
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
    ] {
        let mut tool = secret_http_tool("refused", "x");
        tool["implementation"] = json!({"kind": "http", "url": url});
        let (status, body) = relaxed.post("/admin/tools", &tool).await;
        assert_eq!(status, 422, "{url}: {body}");
    }
    let mut private = secret_http_tool("private", "x");
    private["implementation"] = json!({"kind": "http", "url": "http://10.1.2.3/x"});
    relaxed.register(&private).await;
}

/// A proxy on loopback that counts the connections it is offered and refuses them all.
async fn counting_proxy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let used = Arc::new(AtomicUsize::new(0));
    let counter = used.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = socket
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (addr, used)
}

/// An embedding endpoint in TEI's format that counts its requests.
async fn counting_embedder(dims: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/embed",
        post(move |Json(body): Json<Value>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let count = body["inputs"].as_array().map_or(1, Vec::len);
                let vectors: Vec<Vec<f32>> = (0..count)
                    .map(|at| (0..dims).map(|d| ((at + d) % 7) as f32 + 1.0).collect())
                    .collect();
                Json(json!(vectors))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// The real binary with every proxy variable pointing at a proxy: HTTP tools, upstream MCP
/// servers and the embedding endpoint are still reached directly (where the guard's
/// resolver checks the address), and the proxy is never offered a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_do_not_route_calls_around_the_guard() {
    let (proxy, proxy_used) = counting_proxy().await;
    let (tool, seen) = recording_tool().await;
    let (upstream, _) = crate::upstream::start_upstream(vec![crate::upstream::upstream_tool(
        "add",
        "Add two numbers",
    )])
    .await;
    let (embedder, embedded) = counting_embedder(8).await;
    let proxy_url = format!("http://{proxy}");
    let embed_url = format!("http://localhost:{}/embed", embedder.port());
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = vec![
        ("ALLOW_PRIVATE_TOOL_URLS", "true"),
        ("REGISTER_BUILTINS", "false"),
        ("EMBEDDING_PROVIDER", "http"),
        ("EMBEDDING_URL", &embed_url),
        ("EMBEDDING_DIMENSIONS", "8"),
    ];
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        env.push((name, &proxy_url));
    }
    let (child, address) = crate::lifecycle::start_binary_with(dir.path(), &env);
    let _child = KillOnDrop(child);
    let base = format!("http://{address}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = post(
        "/admin/tools",
        json!({
            "name": "direct.http",
            "description": "An HTTP tool reached by name",
            "implementation": {"kind": "http", "url": format!("http://localhost:{}/secret", tool.port())}
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        "/admin/tools",
        json!({
            "name": "direct.mcp",
            "description": "An upstream MCP tool reached by name",
            "implementation": {"kind": "mcp", "url": format!("http://localhost:{}/mcp", upstream.port()), "tool": "add"}
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for (name, arguments) in [
        ("direct.http", json!({})),
        ("direct.mcp", json!({"a": 2, "b": 3})),
    ] {
        let (status, called) = post(
            "/mcp/call_tool",
            json!({"name": name, "arguments": arguments}),
        )
        .await;
        assert_eq!(status, 200, "{called}");
        assert_eq!(called["status"], "success", "{name}: {called}");
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Registration embeds the tools; allow the background embedding a moment.
    for _ in 0..50 {
        if embedded.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        embedded.load(Ordering::SeqCst) > 0,
        "the embedder was not reached"
    );
    assert_eq!(
        proxy_used.load(Ordering::SeqCst),
        0,
        "a call went through the proxy"
    );
}

/// Stops the child this test started, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `TOOL_PROXY_URL` is the one way to route tool calls through a proxy: with it set, the
/// call goes to the proxy (which answers 502 here) and never straight to the tool; a value
/// that is not an http(s) URL stops start-up.
#[tokio::test]
async fn an_explicit_tool_proxy_carries_tool_calls() {
    let (proxy, proxy_used) = counting_proxy().await;
    let (tool, seen) = recording_tool().await;
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = true;
    settings.tools.proxy_url = Some(format!("http://{proxy}"));
    let app = TestApp::spawn(settings.clone()).await;
    let registered = app
        .client
        .post(app.url("/admin/tools"))
        .json(&json!({
            "name": "proxied.http",
            "description": "An HTTP tool behind the egress proxy",
            "implementation": {"kind": "http", "url": format!("http://127.0.0.1:{}/secret", tool.port())}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let called: Value = app
        .client
        .post(app.url("/mcp/call_tool"))
        .json(&json!({"name": "proxied.http", "arguments": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(called["status"], "error", "{called}");
    assert!(
        proxy_used.load(Ordering::SeqCst) > 0,
        "the proxy was not used"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the tool was called directly"
    );

    for bad in ["not a url", "ftp://proxy.example:21", "file:///tmp/proxy"] {
        settings.tools.proxy_url = Some(bad.into());
        let refused = tool_registry::build_registry(&settings).await;
        let message = refused
            .err()
            .expect("a bad proxy URL is refused")
            .to_string();
        assert!(message.contains("TOOL_PROXY_URL"), "{bad}: {message}");
    }
}
