//! Upstream MCP servers that speak stdio, started by the registry as child processes: a
//! server written with the official Python SDK (tests/stdio/python_server.py) and the npm
//! `@modelcontextprotocol/server-everything` (installed by `npm ci` in tests/typescript).
//!
//! They need an interpreter with the `mcp` package (`MCP_TEST_PYTHON`, set by
//! scripts/test.sh) and node with tests/typescript/node_modules. Without them a test says
//! so and passes locally; under `CI=true` it fails.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rmcp::{
    ClientLifecycleMode, ClientServiceExt,
    model::{CallToolRequestParams, ProtocolVersion},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tool_registry::config::{McpTools, Settings, StdioStart};

use crate::helpers::*;

crate::on_both_backends!(python_server_tools_are_imported_called_and_keep_their_secrets);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a test needs that the machine may lack: `None` (and a note) locally, a failure in
/// CI, where scripts/test.sh provides it.
fn required<T>(found: Option<T>, what: &str) -> Option<T> {
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is missing under CI=true: scripts/test.sh provides it"
        );
        eprintln!("skipped: {what} is missing (scripts/test.sh provides it)");
    }
    found
}

/// A Python interpreter with the `mcp` package: `MCP_TEST_PYTHON`, or the venv
/// scripts/test/mcp-python-check.sh makes.
fn python() -> Option<PathBuf> {
    let found = std::env::var_os("MCP_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(repo().join("target/mcp-python/venv-2.3.0/bin/python")))
        .filter(|path| path.is_file());
    required(
        found,
        "a Python with the mcp package (MCP_TEST_PYTHON or target/mcp-python/venv-2.3.0)",
    )
}

/// The entry of the npm "everything" server, when node and the package are there.
fn everything() -> Option<PathBuf> {
    let entry = repo().join(
        "tests/typescript/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    let node = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("node").is_file()));
    required(
        (node && entry.is_file()).then_some(entry),
        "node with tests/typescript/node_modules (npm ci)",
    )
}

fn python_server(python: &Path) -> Value {
    json!({
        "command": python.to_str().unwrap(),
        "args": [repo().join("tests/stdio/python_server.py").to_str().unwrap()],
        "env": {"MARKER": "m4rker-s3cret", "LOG_LEVEL": "2"},
    })
}

fn settings_for(db: &TestDb, allowed: &[&str]) -> Settings {
    let mut settings = db.settings();
    settings.stdio.allowed_commands = allowed.join(",");
    settings.stdio.restart_backoff_ms = 50;
    settings.stdio.stop_grace_ms = 2_000;
    settings.tools.timeout_ms = 20_000;
    settings.mcp.tools = McpTools::Direct;
    settings
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

/// The `/health` entry of the stdio upstream `name`.
async fn upstream_health(app: &TestApp, name: &str) -> Value {
    let (_, health) = app.get("/health").await;
    health["stdio_upstreams"]
        .as_array()
        .unwrap_or_else(|| panic!("no stdio_upstreams in {health}"))
        .iter()
        .find(|upstream| upstream["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no upstream {name} in {health}"))
}

/// Waits (bounded) until the upstream runs, and returns its pid.
async fn running_pid(app: &TestApp, name: &str) -> u32 {
    for _ in 0..200 {
        let upstream = upstream_health(app, name).await;
        if upstream["state"] == "running" {
            return upstream["pid"].as_u64().unwrap() as u32;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not run: {}", upstream_health(app, name).await);
}

/// Whether a process of this pid exists (a zombie would still be listed).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn call(app: &TestApp, name: &str, arguments: Value) -> Value {
    let (status, called) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": name, "arguments": arguments}),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    called
}

async fn python_server_tools_are_imported_called_and_keep_their_secrets(backend: Backend) {
    let Some(python) = python() else { return };
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(settings_for(&db, &[python.to_str().unwrap()])).await;

    let import = json!({"stdio": python_server(&python), "prefix": "py"});
    let (status, report) = app.post("/admin/import", &import).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        sorted(&report["created"]),
        ["py.add", "py.environment", "py.fail", "py.sleep"]
    );

    // Registered as imports are: prefix, category and tag; title, annotations and output
    // schema kept; the environment's values never read back.
    let (_, listed) = app.get("/admin/tools?category=py").await;
    assert_eq!(listed["total"], 4, "{listed}");
    let add = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == "py.add")
        .unwrap()
        .clone();
    assert_eq!(add["tags"], json!(["py", "mcp"]));
    assert_eq!(add["metadata"]["title"], "Add two numbers");
    assert_eq!(add["metadata"]["imported_from"], "stdio:py");
    assert_eq!(add["metadata"]["annotations"]["readOnlyHint"], true);
    assert_eq!(
        add["output_schema"]["properties"]["sum"]["type"], "number",
        "{add}"
    );
    let implementation = &add["implementation"];
    assert_eq!(implementation["kind"], "mcp");
    assert_eq!(implementation["tool"], "add");
    assert_eq!(implementation["stdio"]["name"], "py");
    assert_eq!(implementation["stdio"]["env"]["MARKER"], "REDACTED");
    assert!(implementation.get("url").is_none(), "{implementation}");
    assert!(!listed.to_string().contains("m4rker-s3cret"));

    // Calls: a result, a failing tool (isError), each recorded.
    let added = call(&app, "py.add", json!({"a": 2, "b": 3})).await;
    assert_eq!(added["status"], "success", "{added}");
    assert_eq!(added["result"]["structuredContent"]["sum"], 5.0);
    let failed = call(&app, "py.fail", json!({"reason": "testing"})).await;
    assert_eq!(failed["status"], "error", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("failed on purpose: testing"),
        "{failed}"
    );
    let (_, executions) = app.get("/admin/executions?tool=py.fail").await;
    assert_eq!(executions["total"], 1, "{executions}");

    // The child has only the environment it was given, and PATH.
    let environment = call(&app, "py.environment", json!({})).await;
    let seen = &environment["result"]["structuredContent"];
    assert_eq!(seen["MARKER"], "m4rker-s3cret", "{environment}");
    assert_eq!(seen["PATH"], "/usr/local/bin:/usr/bin:/bin");
    for inherited in ["TEST_DATABASE_URL", "HOME", "CARGO_MANIFEST_DIR"] {
        assert!(seen.get(inherited).is_none(), "{inherited} leaked: {seen}");
    }
    let pid = running_pid(&app, "py").await;
    assert_eq!(seen["pid"], pid.to_string(), "one child serves every call");

    // The redacted definition sent back keeps the stored values.
    let environment_tool = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == "py.environment")
        .unwrap();
    let id = environment_tool["id"].as_str().unwrap();
    let mut shown = environment_tool["implementation"].clone();
    shown["timeout_ms"] = json!(15_000);
    let (status, updated) = app
        .put(
            &format!("/admin/tools/{id}"),
            &json!({"implementation": shown}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["implementation"]["stdio"]["env"]["MARKER"],
        "REDACTED"
    );
    let again = call(&app, "py.environment", json!({})).await;
    assert_eq!(
        again["result"]["structuredContent"]["MARKER"], "m4rker-s3cret",
        "{again}"
    );

    // Importing again changes nothing.
    let (status, report) = app.post("/admin/import", &import).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!([]));
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 4, "{report}");

    app.stop().await;
    assert!(!alive(pid), "the child {pid} outlived the registry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_killed_mid_call_fails_that_call_and_the_next_call_restarts_it() {
    let Some(python) = python() else { return };
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(settings_for(&db, &[python.to_str().unwrap()])).await;
    let (status, report) = app
        .post(
            "/admin/import",
            &json!({"stdio": python_server(&python), "prefix": "py"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let pid = running_pid(&app, "py").await;

    let started = db.data_dir().join("sleep-started");
    let slow = {
        let client = app.client.clone();
        let url = app.url("/mcp/call_tool");
        let arguments = json!({"seconds": 30, "started_file": started.to_str().unwrap()});
        tokio::spawn(async move {
            let answer = client
                .post(url)
                .json(&json!({"name": "py.sleep", "arguments": arguments}))
                .send()
                .await
                .unwrap();
            response(answer).await
        })
    };
    // Once the child is in the middle of the call, kill it.
    for _ in 0..200 {
        if started.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(started.exists(), "the call did not reach the child");
    // SAFETY: a plain kill(2) of the child this test's registry started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let (status, failed) = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the call ends when its child dies")
        .unwrap();
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["status"], "error", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("exited during the call"),
        "{failed}"
    );

    let added = call(&app, "py.add", json!({"a": 1, "b": 1})).await;
    assert_eq!(added["status"], "success", "{added}");
    let upstream = upstream_health(&app, "py").await;
    assert_eq!(upstream["state"], "running", "{upstream}");
    assert_eq!(upstream["restarts"], 1, "{upstream}");
    assert_ne!(upstream["pid"], pid, "{upstream}");
    assert!(
        upstream["last_error"]
            .as_str()
            .unwrap()
            .contains("killed by signal 9"),
        "{upstream}"
    );
    assert!(!alive(pid), "the killed child was not reaped");
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("stdio_upstream_restarts_total{upstream=\"py\"}")),
        "{metrics}"
    );
    let new_pid = upstream["pid"].as_u64().unwrap() as u32;
    app.stop().await;
    assert!(!alive(new_pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reaps_every_child_even_one_that_ignores_sigterm_and_startup_starts_them() {
    let Some(python) = python() else { return };
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = settings_for(&db, &[python.to_str().unwrap()]);
    settings.stdio.stop_grace_ms = 300;
    let app = TestApp::spawn(settings.clone()).await;
    let mut stubborn = python_server(&python);
    stubborn["env"]["STUBBORN"] = json!("1");
    for (prefix, server) in [("py", python_server(&python)), ("stubborn", stubborn)] {
        let (status, report) = app
            .post("/admin/import", &json!({"stdio": server, "prefix": prefix}))
            .await;
        assert_eq!(status, 200, "{report}");
    }
    let pids = [
        running_pid(&app, "py").await,
        running_pid(&app, "stubborn").await,
    ];
    app.stop().await;
    for pid in pids {
        assert!(!alive(pid), "the child {pid} outlived the registry");
    }

    // With STDIO_START=startup the children of the catalogue start before any call.
    settings.stdio.start = StdioStart::Startup;
    let app = TestApp::spawn(settings).await;
    let pids = [
        running_pid(&app, "py").await,
        running_pid(&app, "stubborn").await,
    ];
    app.stop().await;
    for pid in pids {
        assert!(!alive(pid), "the child {pid} outlived the registry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_everything_server_is_imported_and_called_over_rest_and_mcp() {
    let Some(entry) = everything() else { return };
    let db = TestDb::new(Backend::Embedded).await;
    // A bare name, looked up in the registry's PATH.
    let app = TestApp::spawn(settings_for(&db, &["node"])).await;
    let (status, report) = app
        .post(
            "/admin/import",
            &json!({
                "stdio": {"command": "node", "args": [entry.to_str().unwrap(), "stdio"]},
                "prefix": "every",
            }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let created = sorted(&report["created"]);
    for expected in ["every.echo", "every.get-env", "every.get-sum"] {
        assert!(created.iter().any(|name| name == expected), "{report}");
    }

    let sum = call(&app, "every.get-sum", json!({"a": 2, "b": 3})).await;
    assert_eq!(sum["status"], "success", "{sum}");
    assert!(sum.to_string().contains('5'), "{sum}");
    let environment = call(&app, "every.get-env", json!({})).await;
    let text = environment["result"]["content"][0]["text"]
        .as_str()
        .unwrap();
    let seen: Value = serde_json::from_str(text).unwrap();
    assert_eq!(seen["PATH"], "/usr/local/bin:/usr/bin:/bin", "{seen}");
    assert!(seen.get("TEST_DATABASE_URL").is_none(), "{seen}");

    // Agents call it through /mcp as any other tool.
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(app.url("/mcp")),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let Value::Object(arguments) = json!({"message": "over stdio"}) else {
        unreachable!()
    };
    let echoed = client
        .call_tool(CallToolRequestParams::new("every.echo").with_arguments(arguments))
        .await
        .unwrap();
    assert_ne!(echoed.is_error, Some(true));
    assert!(
        echoed.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("over stdio"),
        "{echoed:?}"
    );
    client.cancel().await.unwrap();

    let pid = running_pid(&app, "every").await;
    app.stop().await;
    assert!(!alive(pid), "node {pid} outlived the registry");
}

#[tokio::test]
async fn commands_not_on_the_allow_list_are_refused_naming_the_field() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(settings_for(&db, &["/usr/bin/python3", "node"])).await;
    let cases = [
        (
            json!({"command": "sh", "args": ["-c", "true"]}),
            "not in STDIO_ALLOWED_COMMANDS",
        ),
        // The same basename elsewhere is another program.
        (
            json!({"command": "/tmp/node"}),
            "not in STDIO_ALLOWED_COMMANDS",
        ),
        (
            json!({"command": "./node"}),
            "bare name or an absolute path",
        ),
    ];
    for (server, message) in cases {
        let (status, body) = app
            .post("/admin/import", &json!({"stdio": server, "prefix": "x"}))
            .await;
        assert_eq!(status, 422, "{body}");
        let error = assert_error(&body, "validation_failed");
        assert_eq!(error["field"], "stdio.command", "{body}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    let (status, body) = app
        .post(
            "/admin/import",
            &json!({"stdio": {"command": "node"}, "url": "http://127.0.0.1:9/mcp", "prefix": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(assert_error(&body, "validation_failed")["field"], "stdio");
    let (status, body) = app.post("/admin/import", &json!({"prefix": "x"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(assert_error(&body, "validation_failed")["field"], "url");

    // A tool registered by hand is held to the same list.
    let (status, body) = app
        .post(
            "/admin/tools",
            &json!({
                "name": "x.run",
                "description": "Runs a program",
                "implementation": {"kind": "mcp", "tool": "run", "stdio": {"name": "x", "command": "bash"}}
            }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        assert_error(&body, "validation_failed")["field"],
        "implementation.stdio.command"
    );
    app.stop().await;

    // Disabled unless commands are listed.
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(settings_for(&db, &[])).await;
    let (status, body) = app
        .post(
            "/admin/import",
            &json!({"stdio": {"command": "node"}, "prefix": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let error = assert_error(&body, "validation_failed");
    assert_eq!(error["field"], "stdio.command");
    assert!(
        error["message"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    app.stop().await;
}
