//! What one client can make the server hold: connections (idle, slow, beyond the cap),
//! MCP sessions, metric series, and validation work.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// Whether the server closes `socket` within `within` (EOF or reset), reading and
/// discarding whatever it sends first.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

#[tokio::test]
async fn silent_slow_header_and_idle_connections_are_closed() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.header_read_timeout_ms = 300;
    settings.server.idle_timeout_ms = 600;
    let app = TestApp::spawn(settings).await;

    let mut silent = connect(&app).await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");

    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "a silent socket stayed open"
    );
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "a slow-header socket stayed open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "an idle keep-alive socket stayed open"
    );

    // A client that keeps asking is not idle.
    let busy = reqwest::Client::new();
    for _ in 0..5 {
        assert_eq!(
            busy.get(app.url("/health/live"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_probes_still_answer() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.max_connections = 20;
    settings.server.header_read_timeout_ms = 30_000;
    let app = TestApp::spawn(settings).await;
    let reserve = tool_registry::http::conn::PROBE_RESERVE;

    let mut held = Vec::new();
    for _ in 0..20 + reserve {
        held.push(connect(&app).await);
    }
    // Give the server a moment to accept them all, in order.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut excess = Vec::new();
    for _ in 0..10 {
        excess.push(connect(&app).await);
    }
    for socket in &mut excess {
        assert!(
            closed_within(socket, Duration::from_secs(2)).await,
            "a connection beyond the cap stayed open"
        );
    }
    // The reserve lets its silent sockets go quickly; a probe then gets through, and
    // anything else is told the server is busy.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let probe = reqwest::Client::new();
    let live = probe.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let (status, body) = response(probe.get(app.url("/admin/tools")).send().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_error(&body, "server_busy");

    // The capped ones are still being served (their header timeout is long).
    let mut first = held.remove(0);
    first
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    first.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    drop(held);
    drop(first);
    // Freed places serve everything again.
    let mut ok = false;
    for _ in 0..50 {
        let (status, _) = response(
            reqwest::Client::new()
                .get(app.url("/admin/tools"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "closed connections did not free their places");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_connections_without_a_complete_request() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.shutdown_timeout_ms = 20_000;
    settings.server.header_read_timeout_ms = 20_000;
    let app = TestApp::spawn(settings).await;
    let mut slow = connect(&app).await;
    slow.write_all(b"POST /admin/tools HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
        .await
        .unwrap();
    let _silent = connect(&app).await;
    let idle = reqwest::Client::new();
    assert_eq!(
        idle.get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let clock = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "shutdown waited for connections that never sent a request"
    );
    println!(
        "shutdown with a slow-header socket took {:?}",
        clock.elapsed()
    );
    assert!(closed_within(&mut slow, Duration::from_secs(1)).await);
}

fn initialize(client_name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": client_name, "version": "1"}}})
}

async fn post_mcp(app: &TestApp, body: &Value, session: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.unwrap()
}

/// Opens a session and completes its handshake; returns its id.
async fn open_session(app: &TestApp) -> Result<String, (u16, String)> {
    let answer = post_mcp(app, &initialize("flood"), None).await;
    let status = answer.status().as_u16();
    if status != 200 {
        return Err((status, answer.text().await.unwrap()));
    }
    let id = answer.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = answer.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = post_mcp(app, &initialized, Some(&id)).await;
    assert_eq!(accepted.status(), 202);
    Ok(id)
}

fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    app.metrics().await
}

/// Waits until both session gauges read `expected`.
async fn wait_sessions(app: &TestApp, expected: f64) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = scrape(app).await;
        if gauge(&last, "mcp_sessions") == Some(expected)
            && gauge(&last, "mcp_change_subscribers") == Some(expected)
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sessions did not settle at {expected}: {last}");
}

#[tokio::test]
async fn mcp_sessions_are_capped_bounded_and_freed_when_closed() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.mcp.max_sessions = 5;
    // In `both` mode every session is also told of catalogue changes (in `meta` mode none
    // is), so freeing its place among the subscribers is checked too.
    settings.mcp.tools = tool_registry::config::McpTools::Both;
    let app = TestApp::spawn(settings).await;

    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(open_session(&app).await.expect("a session under the cap"));
    }
    wait_sessions(&app, 5.0).await;
    // A flood beyond the cap: every extra initialize is refused, concurrently too.
    let flood = futures_util::future::join_all((0..20).map(|_| open_session(&app))).await;
    for refused in flood {
        let (status, body) = refused.expect_err("the cap holds");
        assert_eq!(status, 503, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], 1);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("MCP_MAX_SESSIONS"),
            "{body}"
        );
    }
    wait_sessions(&app, 5.0).await;

    // Closed sessions are let go at once, with nothing left behind for the change feed.
    for id in sessions.drain(..) {
        let closed = app
            .client
            .delete(app.url("/mcp"))
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert!(closed.status().is_success(), "{}", closed.status());
    }
    wait_sessions(&app, 0.0).await;
    let id = open_session(&app).await.expect("room again after closing");
    wait_sessions(&app, 1.0).await;
    drop(id);

    // What a session keeps of its client is bounded.
    let mut big = initialize("big");
    big["params"]["clientInfo"]["description"] = json!("x".repeat(200_000));
    let refused = post_mcp(&app, &big, None).await;
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize"),
        "{body}"
    );
}

#[tokio::test]
async fn invented_methods_and_paths_share_metric_labels_and_the_rate_limit() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.rate_limit_per_minute = Some(1000);
    let app = TestApp::spawn(settings).await;
    let before = scrape(&app).await.len();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("BOGUS{i}").as_bytes()).unwrap();
        let status = app
            .client
            .request(method, app.url(&format!("/nowhere/{i}")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404);
    }
    let after = scrape(&app).await;
    assert!(!after.contains("BOGUS"), "invented methods became labels");
    assert!(after.contains(r#"method="_OTHER""#), "{after}");
    println!(
        "scrape size: {before} bytes before, {} after 300 requests with invented methods",
        after.len()
    );
    assert!(
        after.len() < before + 8_000,
        "the scrape grew by {} bytes",
        after.len() - before
    );
}

#[tokio::test]
async fn unknown_routes_spend_the_rate_limit_too() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.rate_limit_per_minute = Some(5);
    let app = TestApp::spawn(settings).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let method = reqwest::Method::from_bytes(format!("BOGUS{i}").as_bytes()).unwrap();
        let answer = app
            .client
            .request(method, app.url(&format!("/nowhere/{i}")))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    // The known routes share the same budget; probes do not spend it.
    assert_eq!(app.get("/admin/tools").await.0, 429);
    assert_eq!(app.get("/health/live").await.0, 200);
}

/// A schema whose `anyOf` branches all fail on a long string, each in its own way, some
/// with nested `oneOf`s.
fn many_branch_schema() -> Value {
    let branches: Vec<Value> = (0..40)
        .map(|i| {
            json!({"oneOf": [
                {"type": "string", "maxLength": i, "pattern": format!("^{i}")},
                {"type": "string", "minLength": 10_000_000 + i},
                {"type": "object", "required": [format!("k{i}")]},
            ]})
        })
        .collect();
    json!({"type": "object", "properties": {"data": {"anyOf": branches}}, "required": ["data"]})
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM`, `VmRSS`), in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| {
                    l.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with(':'))
                })
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

#[tokio::test]
async fn a_large_argument_against_many_failing_branches_gets_one_short_error() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.max_argument_bytes = 600 * 1024;
    let app = TestApp::spawn(settings).await;
    let mut tool = tool_definition("branchy");
    tool["input_schema"] = many_branch_schema();
    app.register(&tool).await;

    let peak_before = peak_rss_kib();
    let big = "z".repeat(500 * 1024);
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "branchy", "arguments": {"data": big}}),
        )
        .await;
    println!(
        "peak RSS {} MiB before, {} MiB after validating a 500 KiB argument",
        peak_before / 1024,
        peak_rss_kib() / 1024
    );
    assert_eq!(status, 422, "{body}");
    let error = assert_error(&body, "validation_failed");
    let message = error["message"].as_str().unwrap();
    assert!(message.len() < 2_000, "a {} byte message", message.len());

    // Small arguments still say where they fail.
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "branchy", "arguments": {"data": "zz"}}),
        )
        .await;
    assert_eq!(status, 422);
    let error = assert_error(&body, "validation_failed");
    assert_eq!(error["field"], "arguments.data", "{body}");
    assert!(error["message"].as_str().unwrap().len() < 2_000);

    // Beyond the cap, arguments are refused unread.
    let huge = "z".repeat(700 * 1024);
    let (status, body) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "branchy", "arguments": {"data": huge}}),
        )
        .await;
    assert_eq!(status, 422);
    let error = assert_error(&body, "validation_failed");
    assert_eq!(error["field"], "arguments");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("TOOL_MAX_ARGUMENT_BYTES")
    );
}

fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Prints what floods cost (run by hand: `cargo nextest run --run-ignored only -E
/// 'test(flood_costs)' --no-capture`). Measures, asserts nothing.
#[tokio::test]
#[ignore]
async fn flood_costs() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.header_read_timeout_ms = 1_000;
    settings.mcp.max_sessions = 10_000;
    let app = TestApp::spawn(settings).await;

    let before = scrape(&app).await.len();
    for i in 0..10_000 {
        let method = reqwest::Method::from_bytes(format!("BOGUS{i}").as_bytes()).unwrap();
        let _ = app
            .client
            .request(method, app.url(&format!("/x{i}")))
            .send()
            .await
            .unwrap();
    }
    println!(
        "metrics: scrape {before} bytes before, {} after 10,000 invented methods",
        scrape(&app).await.len()
    );

    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let mut open = 0;
    for socket in &mut idle {
        if !closed_within(socket, Duration::from_millis(5)).await {
            open += 1;
        }
    }
    println!("connections: {open} of 500 idle sockets still open after 3 s");
    drop(idle);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib();
    let mut sessions = Vec::new();
    for _ in 0..500 {
        sessions.push(open_session(&app).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib().saturating_sub(rss);
    println!(
        "sessions: {} KiB resident per open session (500 sessions)",
        grown / 500
    );
    for id in sessions.drain(..) {
        let _ = app
            .client
            .delete(app.url("/mcp"))
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
    }
    let settled = wait_sessions(&app, 0.0).await;
    println!(
        "sessions: after closing all, mcp_sessions={:?} mcp_change_subscribers={:?}",
        gauge(&settled, "mcp_sessions"),
        gauge(&settled, "mcp_change_subscribers")
    );
}
