//! Restarts keep data, and SIGTERM lets an in-flight request finish before a clean exit.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use futures_util::StreamExt;

use crate::helpers::{Backend, TestApp, TestDb, tool_definition};

crate::on_both_backends!(restart_keeps_the_catalogue);

async fn restart_keeps_the_catalogue(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let tool = app.register(&tool_definition("survivor")).await;
    app.stop().await;

    let again = TestApp::spawn(db.settings()).await;
    let (status, fetched) = again
        .get(&format!("/admin/tools/{}", tool["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, tool);
    again.stop().await;
}

/// Starts the real binary on the embedded store and returns it with its address, read from
/// its "listening" log line.
fn start_binary(data_dir: &std::path::Path) -> (std::process::Child, String) {
    start_binary_with(data_dir, &[])
}

/// The real binary with these settings on top of the embedded store's (a `DATABASE_URL`
/// among them selects PostgreSQL).
pub(crate) fn start_binary_with(
    data_dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let (child, address, _logs) = start_binary_keeping_logs(data_dir, extra_env);
    (child, address)
}

/// [`start_binary_with`], also keeping every JSON log line written after "listening".
pub(crate) fn start_binary_keeping_logs(
    data_dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tool-registry"));
    command.env_remove("DATABASE_URL");
    let mut child = command
        .arg("serve")
        .envs(extra_env.iter().copied())
        .env_remove("CONFIG_FILE")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("REGISTRY_DATA_DIR", data_dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the binary");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the logs so the child never blocks on a full pipe.
    let logs: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let kept = std::sync::Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str(&line) {
                kept.lock().unwrap().push(entry);
            }
        }
    });
    (child, address, logs)
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start_binary(dir.path());

    let body = tool_definition("in_flight").to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /admin/tools HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));

    // The request started before the signal: it must still be served.
    stream.write_all(tail.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"name\":\"in_flight\""), "{answer}");

    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(TcpStream::connect(&address).is_err(), "no longer accepting");

    // And the registration was committed.
    let (mut child, address) = start_binary(dir.path());
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /admin/tools HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"name\":\"in_flight\""), "{answer}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

fn terminate(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_a_burst_loses_no_execution_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start_binary(dir.path());
    let client = reqwest::Client::new();
    let url = format!("http://{address}/mcp/call_tool");
    let calls = (0..400).map(|i| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let body = serde_json::json!({
                "name": "calculator",
                "arguments": {"operation": "add", "a": i, "b": 1}
            });
            let response = client.post(&url).json(&body).send().await.unwrap();
            response.status().as_u16()
        }
    });
    let statuses: Vec<u16> = futures_util::stream::iter(calls)
        .buffer_unordered(32)
        .collect()
        .await;
    terminate(&child);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    let (mut child, address) = start_binary(dir.path());
    let page: serde_json::Value = client
        .get(format!(
            "http://{address}/admin/executions?tool=calculator&limit=1"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 400, "every call was recorded before exit");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn migrate_and_healthcheck_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = Command::new(env!("CARGO_BIN_EXE_tool-registry"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("REGISTRY_DATA_DIR", dir.path())
        .status()
        .unwrap();
    assert!(migrate.success());
    assert!(dir.path().join("registry.db").exists());

    let (mut child, address) = start_binary(dir.path());
    let port = address.rsplit(':').next().unwrap().to_owned();
    let probe = |port: &str| {
        Command::new(env!("CARGO_BIN_EXE_tool-registry"))
            .arg("healthcheck")
            .env("HOST", "0.0.0.0")
            .env("PORT", port)
            .output()
            .unwrap()
    };
    let healthy = probe(&port);
    assert!(healthy.status.success(), "{healthy:?}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
    let down = probe(&port);
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
}

/// `export` writes the catalogue as JSON Lines; `import` into an empty store brings back the
/// same definitions, and find_tool answers alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_the_catalogue() {
    let source = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let run = |dir: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tool-registry"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env("REGISTRY_DATA_DIR", dir)
            .env("EMBEDDING_PROVIDER", "hash")
            .output()
            .unwrap()
    };
    let (mut child, address) = start_binary_with(source.path(), &[("EMBEDDING_PROVIDER", "hash")]);
    let client = reqwest::Client::new();
    for name in ["alpha.search_docs", "beta.send_mail", "gamma.resize_image"] {
        let mut definition = tool_definition(name);
        definition["description"] = serde_json::json!(format!("{name} does its job well"));
        definition["output_schema"] = serde_json::json!({"type": "object"});
        let response = client
            .post(format!("http://{address}/admin/tools"))
            .json(&definition)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    terminate(&child);
    assert!(child.wait().unwrap().success());

    let export_file = source.path().join("catalogue.jsonl");
    let exported = run(source.path(), &["export", export_file.to_str().unwrap()]);
    assert!(exported.status.success(), "{exported:?}");
    let text = std::fs::read_to_string(&export_file).unwrap();
    // Three tools plus the ten built-ins registered at start-up.
    assert_eq!(text.lines().count(), 13, "{text}");
    let to_stdout = run(source.path(), &["export"]);
    assert_eq!(
        String::from_utf8(to_stdout.stdout).unwrap(),
        text,
        "stdout holds only the export"
    );

    let imported = run(target.path(), &["import", export_file.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");
    let again = target.path().join("again.jsonl");
    assert!(
        run(target.path(), &["export", again.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);

    // Importing the same file again updates in place.
    assert!(
        run(target.path(), &["import", export_file.to_str().unwrap()])
            .status
            .success()
    );
    let bad = target.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"name\": \"x\"}\nnot json\n").unwrap();
    let refused = run(target.path(), &["import", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    let errors = String::from_utf8_lossy(&refused.stderr);
    assert!(
        errors.contains("line 1") && errors.contains("line 2"),
        "{errors}"
    );
}
