//! Real faults: a PostgreSQL server stopped and started under load, an embedding endpoint
//! that is down, dies, stalls or throttles, and racing registrations of one name. The
//! service must keep answering (503 or a text fallback, never a hang), and nothing it
//! acknowledged may be lost.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tool_registry::{
    config::{EmbeddingProvider, ExecutionRecording, Secret, Settings},
    domain::{ExecutionFilter, Page},
    embedding::{Embedder, hash::HashEmbedder},
    store::{Catalogue, ExecutionLog, PostgresStore, StoreHealth, postgres::PostgresOptions},
};

use crate::helpers::*;

/// Every request of these tests must be answered within this: a hang is a failure.
const NO_HANG: Duration = Duration::from_secs(15);

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(NO_HANG).build().unwrap()
}

// ---------------------------------------------------------------- PostgreSQL restart

/// A PostgreSQL server of this test's own (the shared one must stay up for the others),
/// stopped by `Drop` whatever happens.
struct OwnPostgres {
    url: String,
    data_dir: PathBuf,
}

fn dev_postgres(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev/dev-postgres.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("run scripts/dev/dev-postgres.sh");
    assert!(
        output.status.success(),
        "dev-postgres.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The value of `export NAME=value` in the script's output.
fn exported(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(&format!("export {name}=")))
        .unwrap_or_else(|| panic!("{name} not in {output}"))
        .trim_matches('\'')
        .to_owned()
}

impl OwnPostgres {
    fn start() -> Self {
        let output = dev_postgres(&["start"]);
        Self {
            url: exported(&output, "DATABASE_URL"),
            data_dir: PathBuf::from(exported(&output, "PG_DATA_DIR")),
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev/dev-postgres.sh"))
            .args(["stop", self.data_dir.to_str().unwrap()])
            .output();
    }
}

async fn ready_status(app: &TestApp) -> u16 {
    client()
        .get(app.url("/health/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn wait_ready(app: &TestApp, wanted: u16) {
    for _ in 0..300 {
        if ready_status(app).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/health/ready never answered {wanted}");
}

/// What the load generator was told was done.
#[derive(Default)]
struct Acknowledged {
    tools: Vec<String>,
    executions: Vec<String>,
    refused: usize,
}

async fn mixed_load(app: &TestApp, stop: Arc<AtomicBool>, worker: usize) -> Acknowledged {
    let http = client();
    let mut done = Acknowledged::default();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let name = format!("load.w{worker}.n{n}");
        let register = http
            .post(app.url("/admin/tools"))
            .json(&tool_definition(&name))
            .send()
            .await
            .expect("a registration must be answered, not hang");
        match register.status().as_u16() {
            201 => done.tools.push(name),
            503 => done.refused += 1,
            other => panic!(
                "registration answered {other}: {}",
                register.text().await.unwrap()
            ),
        }
        let call = http
            .post(app.url("/mcp/call_tool"))
            .json(&json!({"name": "calculator", "arguments": {"expression": "1+1"}}))
            .send()
            .await
            .expect("a call must be answered, not hang");
        match call.status().as_u16() {
            200 => {
                let body: Value = call.json().await.unwrap();
                done.executions
                    .push(body["execution_id"].as_str().unwrap().to_owned());
            }
            503 => done.refused += 1,
            other => panic!("call answered {other}: {}", call.text().await.unwrap()),
        }
        let list = http
            .post(app.url("/mcp/list_tools"))
            .json(&json!({"limit": 5}))
            .send()
            .await
            .expect("a listing must be answered, not hang");
        assert!(
            matches!(list.status().as_u16(), 200 | 503),
            "listing answered {}",
            list.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_fast_and_loses_nothing() {
    crate::skip_without_postgres!();
    let postgres = OwnPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(dir.path());
    settings.database.url = Some(Secret::new(postgres.url.clone()));
    settings.database.acquire_timeout_ms = 500;
    settings.embedding.provider = EmbeddingProvider::Hash;
    settings.embedding.dimensions = APP_DIMS;
    // Calls answered without waiting for the database, so each worker goes on registering
    // through the outage; a durable call would wait for its record until the database is
    // back (tests/api/recording.rs covers that mode).
    settings.executions.recording = ExecutionRecording::Deferred;
    let app = TestApp::spawn(settings).await;
    wait_ready(&app, 200).await;

    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let workers: Vec<_> = (0..3)
        .map(|worker| {
            let app = app.clone();
            let stop = stop.clone();
            tokio::spawn(async move { mixed_load(&app, stop, worker).await })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::spawn_blocking({
        let data_dir = postgres.data_dir.clone();
        move || dev_postgres(&["pause", data_dir.to_str().unwrap()])
    })
    .await
    .unwrap();
    wait_ready(&app, 503).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::spawn_blocking({
        let data_dir = postgres.data_dir.clone();
        move || dev_postgres(&["resume", data_dir.to_str().unwrap()])
    })
    .await
    .unwrap();
    wait_ready(&app, 200).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);

    let mut acknowledged = Acknowledged::default();
    for worker in workers {
        let done = worker.await.unwrap();
        acknowledged.tools.extend(done.tools);
        acknowledged.executions.extend(done.executions);
        acknowledged.refused += done.refused;
    }
    assert!(acknowledged.refused > 0, "the outage was never seen");
    assert!(!acknowledged.tools.is_empty() && !acknowledged.executions.is_empty());
    // Stopping flushes the execution queue: records acknowledged during the outage included.
    Arc::into_inner(app).expect("workers are done").stop().await;

    let store = PostgresStore::connect(&postgres.url, APP_DIMS, &PostgresOptions::default())
        .await
        .unwrap();
    for name in &acknowledged.tools {
        assert!(
            store.get_by_name(name).await.unwrap().is_some(),
            "registered {name} was lost"
        );
    }
    let recorded: HashSet<String> = store
        .list_executions(
            &ExecutionFilter::default(),
            Page {
                limit: 10_000,
                offset: 0,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.id.to_string())
        .collect();
    for id in &acknowledged.executions {
        assert!(recorded.contains(id), "execution {id} was lost");
    }
    store.close().await;
    // Keep the server alive until here; `Drop` removes it.
    let _ = &postgres;
}

// ---------------------------------------------------------------- embedding endpoint

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const STALLING: u8 = 2;
const THROTTLING: u8 = 3;
/// Answers, but only after 1.5 s.
const SLOW: u8 = 4;

#[derive(Clone)]
struct FlakyEmbeddings {
    mode: Arc<AtomicU8>,
    embedder: Arc<HashEmbedder>,
}

/// An OpenAI-compatible endpoint whose behaviour the test switches.
async fn embed(State(server): State<FlakyEmbeddings>, Json(body): Json<Value>) -> Response {
    match server.mode.load(Ordering::SeqCst) {
        FAILING => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        STALLING => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        SLOW => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        THROTTLING => {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", "1".parse().unwrap());
            return (StatusCode::TOO_MANY_REQUESTS, headers).into_response();
        }
        _ => {}
    }
    let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
    let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let vectors = server.embedder.embed(&texts).await.unwrap();
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| json!({"index": index, "embedding": embedding}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn serve_embeddings(addr: SocketAddr, mode: Arc<AtomicU8>) {
    let state = FlakyEmbeddings {
        mode,
        embedder: Arc::new(HashEmbedder::new(APP_DIMS)),
    };
    let router = Router::new()
        .route("/v1/embeddings", post(embed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
}

async fn find_mode(http: &reqwest::Client, app: &TestApp, query: &str) -> String {
    let answer = http
        .post(app.url("/mcp/find_tool"))
        .json(&json!({"query": query, "mode": "hybrid"}))
        .send()
        .await
        .expect("find_tool must answer, not hang");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    body["mode"].as_str().unwrap().to_owned()
}

async fn pending_embeddings(app: &TestApp) -> u64 {
    app.get("/health").await.1["tools"]["pending_embedding"]
        .as_u64()
        .unwrap()
}

async fn wait_all_embedded(app: &TestApp) {
    for _ in 0..300 {
        if pending_embeddings(app).await == 0 {
            return;
        }
        app.post("/admin/reindex", &json!({})).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pending embeddings were never filled");
}

/// Waits until the indexer's last look did (or did not) find tools waiting for vectors.
async fn wait_caught_up(app: &TestApp, wanted: bool) {
    for _ in 0..300 {
        let (_, health) = app.get("/health").await;
        if health["embedder"]["reindex"]["caught_up"] == wanted {
            return;
        }
        app.post("/admin/reindex", &json!({})).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the indexer never said caught_up = {wanted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_survives_an_embedding_endpoint_that_is_down_dies_stalls_and_throttles() {
    // An address nobody listens on yet: the endpoint is down at start.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.embedding.provider = EmbeddingProvider::Http;
    settings.embedding.url = Some(Secret::new(format!("http://{addr}/v1/embeddings")));
    settings.embedding.timeout_ms = 300;
    settings.embedding.max_retries = 1;
    settings.embedding.breaker_failures = 3;
    settings.embedding.breaker_cooldown_ms = 200;
    settings.embedding.cache_size = 0;
    let app = TestApp::spawn(settings).await;
    let http = client();
    // Nothing waits in an empty catalogue.
    wait_caught_up(&app, true).await;

    for name in [
        "weather.forecast",
        "slack.post_message",
        "github.create_issue",
    ] {
        let tool = app.register(&tool_definition(name)).await;
        assert!(tool["embedding_model"].is_null());
    }
    assert_eq!(
        find_mode(&http, &app, "post to slack").await,
        "text_fallback"
    );
    // The indexer found them waiting: the vectors cover part of the catalogue, so hybrid
    // answers do not hold places for the vector side's best.
    wait_caught_up(&app, false).await;

    // It comes up: the pending embeddings are filled, search is hybrid again.
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    serve_embeddings(addr, mode.clone()).await;
    wait_all_embedded(&app).await;
    wait_caught_up(&app, true).await;
    let mut hybrid = false;
    for _ in 0..50 {
        if find_mode(&http, &app, "post to slack").await == "hybrid" {
            hybrid = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hybrid, "search never became hybrid again");

    // It dies in the middle of a load: every search is still answered.
    let load: Vec<_> = (0..20)
        .map(|n| {
            let http = http.clone();
            let url = app.url("/mcp/find_tool");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10 * n)).await;
                let answer = http
                    .post(url)
                    .json(&json!({"query": format!("query number {n}")}))
                    .send()
                    .await
                    .expect("answered");
                answer.status().as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    mode.store(FAILING, Ordering::SeqCst);
    for request in load {
        assert_eq!(request.await.unwrap(), 200);
    }

    // It stalls beyond its timeout, then throttles: answers come from full text.
    for fault in [STALLING, THROTTLING] {
        mode.store(fault, Ordering::SeqCst);
        for n in 0..3 {
            let answered = find_mode(&http, &app, &format!("a fresh query {fault}-{n}")).await;
            assert_eq!(answered, "text_fallback");
        }
        let name = format!("registered.during.fault{fault}");
        let tool = app.register(&tool_definition(&name)).await;
        assert!(tool["embedding_model"].is_null());
    }

    // Back to health: what was registered meanwhile gets its embedding.
    mode.store(HEALTHY, Ordering::SeqCst);
    wait_all_embedded(&app).await;
    let (_, health) = app.get("/health").await;
    assert_eq!(health["tools"]["indexed"], 5, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_answered_before_a_slow_embedder_and_embedded_after() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    serve_embeddings(addr, Arc::new(AtomicU8::new(SLOW))).await;
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.embedding.provider = EmbeddingProvider::Http;
    settings.embedding.url = Some(Secret::new(format!("http://{addr}/v1/embeddings")));
    settings.embedding.timeout_ms = 5_000;
    settings.embedding.batch_size = 2;
    // A batch waits half of this for its embeddings: less than one slow call.
    settings.server.request_timeout_ms = 2_000;
    let app = TestApp::spawn(settings).await;

    let names = ["slow.one", "slow.two", "slow.three", "slow.four"];
    let batch =
        json!({"tools": names.iter().map(|name| tool_definition(name)).collect::<Vec<_>>()});
    let (status, body) = app.post("/admin/tools/batch", &batch).await;
    assert_eq!(status, 201, "answered in time, not cut off: {body}");
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), names.len());
    assert!(
        tools.iter().all(|tool| tool["embedding_model"].is_null()),
        "{body}"
    );
    assert_eq!(app.get("/admin/tools").await.1["total"], names.len());

    // The indexer embeds them once the slow embedder answers.
    for _ in 0..200 {
        if pending_embeddings(&app).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending_embeddings(&app).await, 0);
    app.stop().await;
}

// ---------------------------------------------------------------- racing registrations

crate::on_both_backends!(parallel_registrations_of_one_name_make_one_tool);

async fn parallel_registrations_of_one_name_make_one_tool(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = Arc::new(TestApp::spawn(db.settings()).await);
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.client
                    .post(app.url("/admin/tools"))
                    .json(&tool_definition("contested.name"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        15,
        "{statuses:?}"
    );
    let (_, page) = app.get("/admin/tools?limit=50").await;
    assert_eq!(page["total"], 1);
}
