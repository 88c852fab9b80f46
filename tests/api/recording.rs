//! Execution records: a tool answering NULs does not stop recording, an answered call is
//! visible to the next read, a `kill -9` loses no answered call, and shutdown keeps to its
//! deadline while the database does not answer.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
use serde_json::{Value, json};
use tool_registry::config::ExecutionRecording;

use crate::{helpers::*, lifecycle::start_binary_with};

/// Answers `{"x": "\u0000"}`, or a 500 whose body holds a raw NUL byte.
async fn serve_nul_answers() -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/nul-json",
            post(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"x": "a\u0000b"}"#,
                )
            }),
        )
        .route(
            "/nul-error",
            post(|| async {
                (StatusCode::INTERNAL_SERVER_ERROR, "broken \0 answer").into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn http_tool(name: &str, url: String) -> Value {
    json!({
        "name": name,
        "description": "An HTTP tool answering NULs",
        "input_schema": {"type": "object"},
        "implementation": {"kind": "http", "url": url}
    })
}

async fn call(app: &TestApp, name: &str) -> Value {
    let (status, answer) = app
        .post("/mcp/call_tool", &json!({"name": name, "arguments": {}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

crate::on_both_backends!(
    a_tool_answering_nul_is_recorded_and_recording_goes_on,
    reads_see_every_answered_call,
);

async fn a_tool_answering_nul_is_recorded_and_recording_goes_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.tools.allow_private_urls = true;
    let app = TestApp::spawn(settings).await;
    let upstream = serve_nul_answers().await;
    app.register(&http_tool(
        "nul_json",
        format!("http://{upstream}/nul-json"),
    ))
    .await;
    app.register(&http_tool(
        "nul_error",
        format!("http://{upstream}/nul-error"),
    ))
    .await;

    for _ in 0..3 {
        let answer = call(&app, "nul_json").await;
        assert_eq!(
            answer["result"],
            json!({"x": "a\u{0}b"}),
            "answered as returned"
        );
        let (status, record) = app
            .get(&format!(
                "/admin/executions/{}",
                answer["execution_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["status"], "success");
        match record["note"].as_str() {
            None => assert_eq!(record["result"], answer["result"]),
            Some(note) => {
                assert!(note.contains("NUL"), "{note}");
                assert_eq!(record["result"], json!({"x": "a\u{FFFD}b"}));
            }
        }

        let answer = call(&app, "nul_error").await;
        assert_eq!(answer["status"], "error");
        let (status, record) = app
            .get(&format!(
                "/admin/executions/{}",
                answer["execution_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200, "{record}");
        let error = record["error"].as_str().unwrap();
        assert!(
            error.contains("broken \u{0} answer") || error.contains("broken \u{FFFD} answer"),
            "{error}"
        );
    }
    let (_, page) = app.get("/admin/executions?limit=50").await;
    assert_eq!(page["total"], 6);
    let (_, health) = app.get("/health").await;
    let executions = &health["executions"];
    assert_eq!(executions["lost"], 0, "{health}");
    assert_eq!(executions["backlog"], 0, "{health}");
    assert_eq!(executions["written"], 6, "{health}");
    assert_eq!(executions["failing"], false, "{health}");
    let metrics = app.metrics().await;
    for name in [
        "execution_records_backlog",
        "execution_records_written_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    app.stop().await;
}

/// With records written after the answer, the listing, the record itself and the stats
/// still count every call answered before the read.
async fn reads_see_every_answered_call(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.executions.recording = ExecutionRecording::Deferred;
    let app = TestApp::spawn(settings).await;
    let tool = app.register(&tool_definition("echo_upper")).await;
    let tool_id = tool["id"].as_str().unwrap();
    for n in 1..=25 {
        let (status, answer) = app
            .post(
                "/mcp/call_tool",
                &json!({"name": "echo_upper", "arguments": {"text": "hi"}}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["execution_id"].as_str().unwrap();
        // Each read right after the call: alternate so each kind is first after a call.
        match n % 3 {
            0 => {
                let (status, record) = app.get(&format!("/admin/executions/{id}")).await;
                assert_eq!(status, 200, "call {n}: {record}");
            }
            1 => {
                let (_, page) = app.get("/admin/executions?tool=echo_upper&limit=1").await;
                assert_eq!(page["total"], n, "call {n}");
                assert_eq!(page["executions"][0]["id"], id);
            }
            _ => {
                let (_, stats) = app.get(&format!("/admin/tools/{tool_id}/stats")).await;
                assert_eq!(stats["calls"], n, "call {n}");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn one_execution_is_found_by_id_and_bad_ids_name_the_field() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let (status, body) = app
        .get("/admin/executions/6f1c1b5e-0000-4000-8000-000000000000")
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "execution_not_found");
    let (status, body) = app.get("/admin/executions/not-a-uuid").await;
    assert_eq!(status, 422);
    let error = assert_error(&body, "validation_failed");
    assert_eq!(error["field"], "id", "{body}");
    app.stop().await;
}

// ---------------------------------------------------------------- kill -9

/// Calls the calculator from `clients` connections until the server stops answering;
/// returns the execution ids it answered.
async fn burst_until_killed(address: &str, clients: usize) -> (Vec<String>, Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("http://{address}/mcp/call_tool");
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for n in 0u64.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let body = json!({
                        "name": "calculator",
                        "arguments": {"operation": "add", "a": worker, "b": n}
                    });
                    let Ok(response) = http.post(&url).json(&body).send().await else {
                        break;
                    };
                    if response.status() != 200 {
                        break;
                    }
                    let Ok(answer) = response.json::<Value>().await else {
                        break;
                    };
                    answered.push(answer["execution_id"].as_str().unwrap().to_owned());
                }
                answered
            })
        })
        .collect();
    let mut answered = Vec::new();
    for worker in workers {
        answered.extend(worker.await.unwrap());
    }
    (answered, stop)
}

async fn recorded_ids(address: &str) -> HashSet<String> {
    let http = reqwest::Client::new();
    let mut ids = HashSet::new();
    for offset in (0..).step_by(500) {
        let page: Value = http
            .get(format!(
                "http://{address}/admin/executions?tool=calculator&limit=500&offset={offset}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["executions"].as_array().unwrap();
        ids.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if items.len() < 500 {
            break;
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_answered_call_embedded() {
    kill_9_mid_burst_loses_no_answered_call(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_answered_call_postgres() {
    crate::skip_without_postgres!();
    kill_9_mid_burst_loses_no_answered_call(Backend::Postgres).await;
}

/// The real binary, 16 clients calling, SIGKILL mid-burst, restart: every call answered
/// with an `execution_id` is recorded (`EXECUTION_RECORDING=durable`, the default).
async fn kill_9_mid_burst_loses_no_answered_call(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data_dir = db.data_dir();
    let mut env = vec![("EMBEDDING_PROVIDER", "hash")];
    if let Some(url) = db.database_url() {
        env.push(("DATABASE_URL", url));
    }
    let (mut child, address) = start_binary_with(&data_dir, &env);
    let burst = tokio::spawn({
        let address = address.clone();
        async move { burst_until_killed(&address, 16).await }
    });
    // Let the burst run, then kill the server while calls are in flight.
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (answered, stop) = burst.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(
        answered.len() > 50,
        "the burst barely ran: {}",
        answered.len()
    );

    let (mut child, address) = start_binary_with(&data_dir, &env);
    let recorded = recorded_ids(&address).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    println!(
        "{backend:?}: {} calls answered before kill -9, {} recorded, {} answered and missing",
        answered.len(),
        recorded.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "answered but lost: {missing:?}");
}

// ---------------------------------------------------------------- shutdown deadline

/// Records queued while PostgreSQL hangs on them (the table locked by another session:
/// writes neither fail nor finish) must not hold the shutdown past `SHUTDOWN_TIMEOUT_MS`;
/// `/health` shows them waiting. Before, shutdown waited for them for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_its_deadline_while_the_database_hangs() {
    crate::skip_without_postgres!();
    use sqlx::{Connection, Executor};
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    settings.executions.recording = ExecutionRecording::Deferred;
    settings.executions.retry_ms = 120_000;
    settings.server.shutdown_timeout_ms = 1_000;
    let app = TestApp::spawn(settings).await;
    let arguments = json!({"name": "calculator", "arguments": {"expression": "1+1"}});
    let (status, answer) = app.post("/mcp/call_tool", &arguments).await;
    assert_eq!(status, 200, "{answer}");

    let mut blocker = sqlx::PgConnection::connect(db.database_url().unwrap())
        .await
        .unwrap();
    blocker
        .execute("BEGIN; LOCK TABLE tool_executions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, answer) = app.post("/mcp/call_tool", &arguments).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (_, health) = app.get("/health").await;
    assert!(
        health["executions"]["backlog"].as_u64().unwrap() >= 1,
        "{health}"
    );

    let stopping = std::time::Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    let took = stopping.elapsed();
    blocker.execute("ROLLBACK").await.unwrap();
    assert!(
        stopped.is_ok(),
        "shutdown hung on records the database would not take"
    );
    println!("shutdown with SHUTDOWN_TIMEOUT_MS=1000 and writes hanging took {took:?}");
}

// ---------------------------------------------------------------- batches written at once

/// On PostgreSQL a batch of records does not wait for the commit of the batch before it: a
/// durable caller is answered while an earlier batch is held up, while a flush (what reads
/// and the shutdown wait for) still waits for every batch before it. Before, one batch was
/// written at a time and the later caller waited too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_up_batch_delays_flushes_but_not_later_callers() {
    crate::skip_without_postgres!();
    use sqlx::{Connection, Executor};
    use tool_registry::{
        domain::{Execution, ExecutionStatus, now_micros},
        registry::recorder::{ExecutionRecorder, RecorderOptions},
    };
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.open(DIMS).await;
    let recorder = ExecutionRecorder::start(
        store.clone(),
        RecorderOptions {
            capacity: 64,
            mode: ExecutionRecording::Durable,
            retry_for: Duration::from_secs(30),
        },
    );
    let record = |n: i64| {
        let started_at = now_micros() - chrono::Duration::seconds(n);
        Execution {
            id: uuid::Uuid::new_v4(),
            tool_id: uuid::Uuid::new_v4(),
            tool_name: "held".into(),
            status: ExecutionStatus::Success,
            arguments: json!({"n": n}),
            result: Some(json!(n)),
            error: None,
            duration_ms: 1.0,
            started_at,
            completed_at: started_at,
            note: None,
        }
    };
    let (held, later) = (record(2), record(1));

    // Another session inserts the first record's id and keeps its transaction open: the
    // recorder's insert of that id waits for it.
    let url = db.database_url().unwrap();
    let mut blocker = sqlx::PgConnection::connect(url).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    sqlx::query(
        "INSERT INTO tool_executions (id, tool_id, tool_name, status, arguments, duration_ms, \
         started_at, completed_at) VALUES ($1, $2, 'held', 'success', '{}', 1, now(), now())",
    )
    .bind(held.id)
    .bind(held.tool_id)
    .execute(&mut blocker)
    .await
    .unwrap();
    let first = tokio::spawn({
        let (recorder, held) = (recorder.clone(), held.clone());
        async move { recorder.record(held).await }
    });
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    let mut waiting = 0i64;
    for _ in 0..100 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        waiting, 1,
        "the first batch's insert never waited on the lock"
    );

    tokio::time::timeout(Duration::from_secs(5), recorder.record(later.clone()))
        .await
        .expect("a caller waited for the commit of an earlier, held-up batch");
    assert_eq!(
        store.get_execution(later.id).await.unwrap().as_ref(),
        Some(&later)
    );
    assert!(
        !first.is_finished(),
        "the held-up batch cannot be written yet"
    );
    let flush = tokio::spawn({
        let recorder = recorder.clone();
        async move { recorder.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !flush.is_finished(),
        "a flush was answered before an earlier batch was written"
    );
    assert_eq!(recorder.backlog(), 1);

    // The other session gives the id up: the held-up record is written, once.
    blocker.execute("ROLLBACK").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the held-up caller was answered")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), flush)
        .await
        .expect("the flush was answered")
        .unwrap();
    assert_eq!(
        store.get_execution(held.id).await.unwrap().as_ref(),
        Some(&held)
    );
    let health = recorder.health();
    assert_eq!((health.written, health.lost, health.backlog), (2, 0, 0));
}
