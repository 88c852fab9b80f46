//! find_tool in its three modes on both backends, the fallback to full text when the
//! embedder is down, pending embeddings filled when it returns, and model changes.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use serde_json::{Value, json};
use tool_registry::{
    config::{EmbeddingProvider, Secret},
    domain::document,
    embedding::{Embedder, hash::HashEmbedder},
};

use crate::helpers::{APP_DIMS, Backend, TestApp, TestDb, assert_error, find, names};

crate::on_both_backends!(
    three_modes_find_the_right_tool,
    similar_and_reindex_routes,
    explain_says_why_a_tool_ranks
);

fn catalogue() -> Vec<Value> {
    let tool = |name: &str, category: &str, description: &str, params: Value| {
        json!({
            "name": name,
            "description": description,
            "category": category,
            "input_schema": {"type": "object", "properties": params},
            "implementation": {"kind": "http", "url": "https://tools.example/run"}
        })
    };
    vec![
        tool(
            "github.create_issue",
            "dev",
            "Create a new issue in a GitHub repository",
            json!({"repo": {"type": "string", "description": "owner/name of the repository"}, "title": {"type": "string"}}),
        ),
        tool(
            "github.list_pull_requests",
            "dev",
            "List open pull requests of a repository",
            json!({"repo": {"type": "string"}}),
        ),
        tool(
            "weather.forecast",
            "weather",
            "Weather forecast for a city for the next days",
            json!({"city": {"type": "string", "description": "city name"}}),
        ),
        tool(
            "fs.read_file",
            "files",
            "Read the contents of a file from disk",
            json!({"path": {"type": "string", "description": "file path"}}),
        ),
        tool(
            "slack.post_message",
            "chat",
            "Post a message to a Slack channel",
            json!({"channel": {"type": "string"}, "text": {"type": "string"}}),
        ),
    ]
}

async fn three_modes_find_the_right_tool(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    for definition in catalogue() {
        let tool = app.register(&definition).await;
        assert!(
            tool["embedding_model"].is_string(),
            "embedded at registration: {tool}"
        );
    }
    for mode in ["semantic", "text", "hybrid"] {
        let answer = find(
            &app,
            json!({"query": "open an issue on github", "mode": mode}),
        )
        .await;
        assert_eq!(answer["mode"], mode);
        assert_eq!(names(&answer)[0], "github.create_issue", "{mode}: {answer}");
        assert!(answer["took_ms"].as_f64().unwrap() >= 0.0);
        for hit in answer["tools"].as_array().unwrap() {
            let score = hit["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{hit}");
            match mode {
                "semantic" => {
                    assert!(hit["text_score"].is_null() && hit["vector_score"].is_number())
                }
                "text" => assert!(hit["vector_score"].is_null() && hit["text_score"].is_number()),
                _ => {}
            }
        }
        let scores: Vec<f64> = answer["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "ranked: {scores:?}"
        );
    }
    // hybrid is the default; limit, category and threshold apply.
    let answer = find(
        &app,
        json!({"query": "weather forecast in Paris", "limit": 1}),
    )
    .await;
    assert_eq!(answer["mode"], "hybrid");
    assert_eq!(names(&answer), vec!["weather.forecast"]);
    let answer = find(
        &app,
        json!({"query": "repository", "category": "dev", "limit": 10}),
    )
    .await;
    assert!(
        names(&answer).iter().all(|n| n.starts_with("github.")),
        "{answer}"
    );
    // Categories match in any case, an empty one is no filter, and one that matches
    // nothing says which there are; on find_tool and list_tools alike.
    let answer = find(
        &app,
        json!({"query": "repository", "category": "DeV", "limit": 10}),
    )
    .await;
    let found = names(&answer);
    assert!(
        !found.is_empty() && found.iter().all(|n| n.starts_with("github.")),
        "{answer}"
    );
    let answer = find(
        &app,
        json!({"query": "weather forecast in Paris", "category": "", "limit": 1}),
    )
    .await;
    assert_eq!(names(&answer), vec!["weather.forecast"]);
    assert!(answer.get("note").is_none(), "{answer}");
    let answer = find(&app, json!({"query": "repository", "category": "nope"})).await;
    assert!(names(&answer).is_empty(), "{answer}");
    let note = answer["note"].as_str().unwrap();
    assert!(
        note.contains("'nope'") && note.contains("chat, dev,"),
        "{note}"
    );
    let (status, page) = app
        .post("/mcp/list_tools", &json!({"category": "WEATHER"}))
        .await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(1)), "{page}");
    let (_, all) = app.post("/mcp/list_tools", &json!({})).await;
    let (_, page) = app.post("/mcp/list_tools", &json!({"category": ""})).await;
    assert_eq!(page["total"], all["total"], "{page}");
    let (_, page) = app
        .post("/mcp/list_tools", &json!({"category": "nope"}))
        .await;
    assert_eq!(page["total"], 0);
    assert!(page["note"].as_str().unwrap().contains("weather"), "{page}");
    let answer = find(
        &app,
        json!({"query": "read a file", "threshold": 1.0, "mode": "semantic"}),
    )
    .await;
    assert!(names(&answer).is_empty(), "{answer}");

    // Deactivated tools are not found.
    let (_, page) = app.get("/admin/tools?limit=50").await;
    let issue = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "github.create_issue")
        .unwrap()
        .clone();
    app.post(
        &format!("/admin/tools/{}/deactivate", issue["id"].as_str().unwrap()),
        &json!({}),
    )
    .await;
    for mode in ["semantic", "text", "hybrid"] {
        let answer = find(
            &app,
            json!({"query": "open an issue on github", "mode": mode, "limit": 10}),
        )
        .await;
        assert!(
            !names(&answer).contains(&"github.create_issue".to_owned()),
            "{mode}"
        );
    }

    // An update of the text re-embeds it.
    let weather = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "weather.forecast")
        .unwrap()
        .clone();
    let (_, updated) = app
        .put(
            &format!("/admin/tools/{}", weather["id"].as_str().unwrap()),
            &json!({"description": "Translate text between human languages"}),
        )
        .await;
    assert!(updated["embedding_model"].is_string());
    let answer = find(
        &app,
        json!({"query": "translate languages", "mode": "semantic", "limit": 1}),
    )
    .await;
    assert_eq!(names(&answer), vec!["weather.forecast"]);
    app.stop().await;
}

#[tokio::test]
async fn bad_find_requests_name_the_field() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let cases = [
        (json!({}), "query"),
        (json!({"query": "  "}), "query"),
        // Only characters that show nothing: zero-width space, joiners, word joiner, BOM.
        (
            json!({"query": "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}"}),
            "query",
        ),
        (json!({"query": " \u{200B}\t\u{FEFF} "}), "query"),
        (json!({"query": "x".repeat(2001)}), "query"),
        (json!({"query": "x", "limit": 0}), "limit"),
        (json!({"query": "x", "limit": 101}), "limit"),
        (json!({"query": "x", "threshold": 1.5}), "threshold"),
        (
            json!({"query": "x", "vector_weight": -0.1}),
            "vector_weight",
        ),
        (json!({"query": "x", "mode": "fuzzy"}), "mode"),
        (json!({"query": "x", "limt": 3}), "limt"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/mcp/find_tool", &body).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert_eq!(
            assert_error(&answer, "validation_failed")["field"],
            field,
            "{answer}"
        );
    }
    app.stop().await;
}

async fn similar_and_reindex_routes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let mut ids = Vec::new();
    for definition in catalogue() {
        ids.push(
            app.register(&definition).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (status, similar) = app
        .get(&format!("/admin/tools/{}/similar?limit=2", ids[0]))
        .await;
    assert_eq!(status, 200, "{similar}");
    let similar_names = names(&similar);
    assert_eq!(similar_names.len(), 2);
    assert!(
        !similar_names.contains(&"github.create_issue".to_owned()),
        "itself excluded"
    );
    assert_eq!(similar_names[0], "github.list_pull_requests");

    let (status, tool) = app
        .post(&format!("/admin/tools/{}/reindex", ids[1]), &json!({}))
        .await;
    assert_eq!(status, 200, "{tool}");
    assert_eq!(
        tool["embedding_model"],
        document::vector_model(&format!("hash-v1-{APP_DIMS}"))
    );
    let (status, started) = app.post("/admin/reindex?all=true", &json!({})).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["indexed"], 5);
    assert_eq!(started["pending"], 0);
    let (status, body) = app
        .post(
            &format!("/admin/tools/{}/reindex", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    app.stop().await;
}

/// A real OpenAI-style embedding endpoint on loopback, answering with hashing vectors,
/// that can be switched to fail.
struct EmbeddingServer {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    /// Every text the server was asked to embed, in order.
    inputs: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct ServerState {
    failing: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    inputs: Arc<Mutex<Vec<String>>>,
    embedder: Arc<HashEmbedder>,
}

async fn embeddings(
    State(state): State<ServerState>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let inputs: Vec<String> =
        serde_json::from_value(body["input"].clone()).map_err(|_| StatusCode::BAD_REQUEST)?;
    state.inputs.lock().unwrap().extend(inputs.iter().cloned());
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let vectors = state
        .embedder
        .embed(&refs)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    Ok(Json(
        json!({"object": "list", "data": data, "model": "test"}),
    ))
}

async fn embedding_server(failing: bool) -> EmbeddingServer {
    let state = ServerState {
        failing: Arc::new(AtomicBool::new(failing)),
        requests: Arc::new(AtomicUsize::new(0)),
        inputs: Arc::default(),
        embedder: Arc::new(HashEmbedder::new(APP_DIMS)),
    };
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    EmbeddingServer {
        addr,
        failing: state.failing,
        requests: state.requests,
        inputs: state.inputs,
    }
}

fn http_embedder_settings(
    db: &TestDb,
    server: &EmbeddingServer,
) -> tool_registry::config::Settings {
    let mut settings = db.settings();
    settings.embedding.provider = EmbeddingProvider::Http;
    settings.embedding.url = Some(Secret::new(format!("http://{}/v1/embeddings", server.addr)));
    settings.embedding.model = Some("test-model".into());
    settings.embedding.timeout_ms = 500;
    settings.embedding.max_retries = 0;
    settings.embedding.breaker_failures = 2;
    settings.embedding.breaker_cooldown_ms = 200;
    settings
}

async fn wait_for_health(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (_, health) = app.get("/health").await;
        if done(&health) {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, health) = app.get("/health").await;
    panic!("{what} never happened: {health}");
}

#[tokio::test]
async fn embedder_down_falls_back_to_text_and_fills_pending_embeddings_later() {
    let server = embedding_server(true).await;
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(http_embedder_settings(&db, &server)).await;

    let mut github = String::new();
    for definition in catalogue() {
        let tool = app.register(&definition).await;
        assert!(
            tool["embedding_model"].is_null(),
            "pending while the endpoint fails"
        );
        if tool["name"] == "github.create_issue" {
            github = tool["id"].as_str().unwrap().to_owned();
        }
    }
    let answer = find(
        &app,
        json!({"query": "post a message to slack", "mode": "hybrid"}),
    )
    .await;
    assert_eq!(answer["mode"], "text_fallback");
    assert_eq!(names(&answer)[0], "slack.post_message");
    let (_, health) = app.get("/health").await;
    assert_eq!(health["tools"]["pending_embedding"], 5, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["embedder"]["provider"], "http");

    // The endpoint comes back: the indexer fills the pending embeddings by itself.
    server.failing.store(false, Ordering::SeqCst);
    app.post("/admin/reindex", &json!({})).await;
    wait_for_health(&app, "embedding the pending tools", |h| {
        h["tools"]["pending_embedding"] == 0 && h["tools"]["indexed"] == 5
    })
    .await;
    let answer = find(
        &app,
        json!({"query": "post a message to slack", "mode": "semantic"}),
    )
    .await;
    assert_eq!(answer["mode"], "semantic");
    assert_eq!(names(&answer)[0], "slack.post_message");
    assert!(server.requests.load(Ordering::SeqCst) > 0);

    // Down again: similar tools come from the stored vectors, with no call to the endpoint;
    // a tool still waiting for its vector cannot be compared until the endpoint is back.
    server.failing.store(true, Ordering::SeqCst);
    let before = server.requests.load(Ordering::SeqCst);
    let (status, similar) = app
        .get(&format!("/admin/tools/{github}/similar?limit=2"))
        .await;
    assert_eq!(status, 200, "{similar}");
    assert_eq!(names(&similar)[0], "github.list_pull_requests");
    assert_eq!(server.requests.load(Ordering::SeqCst), before);
    let pending = app
        .register(&json!({
            "name": "notes.append",
            "description": "Append a line to a note",
            "implementation": {"kind": "http", "url": "https://notes.example/append"},
        }))
        .await;
    assert!(pending["embedding_model"].is_null(), "{pending}");
    let (status, body) = app
        .get(&format!(
            "/admin/tools/{}/similar",
            pending["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 503, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_model_change_re_embeds_and_never_mixes_vectors() {
    let db = TestDb::new(Backend::Embedded).await;
    let first = TestApp::spawn(db.settings()).await;
    for definition in catalogue() {
        first.register(&definition).await;
    }
    first.stop().await;

    // Same dimension, another model: the old vectors are stale until re-embedded.
    let server = embedding_server(false).await;
    let second = TestApp::spawn(http_embedder_settings(&db, &server)).await;
    let health = wait_for_health(&second, "re-embedding with the new model", |h| {
        h["tools"]["indexed"] == 5
    })
    .await;
    assert_eq!(health["embedder"]["model"], "http:test-model:256");
    let (_, page) = second.get("/admin/tools?limit=50").await;
    for tool in page["tools"].as_array().unwrap() {
        assert_eq!(
            tool["embedding_model"],
            document::vector_model("http:test-model:256"),
            "{tool}"
        );
    }
    second.stop().await;

    // Another dimension: the store drops the vectors and the tools are embedded again.
    let mut narrow = db.settings();
    narrow.embedding.dimensions = 64;
    let third = TestApp::spawn(narrow).await;
    wait_for_health(&third, "re-embedding at 64 dimensions", |h| {
        h["tools"]["indexed"] == 5
    })
    .await;
    let answer = find(
        &third,
        json!({"query": "read a file from disk", "mode": "semantic", "limit": 1}),
    )
    .await;
    assert_eq!(names(&answer), vec!["fs.read_file"]);
    third.stop().await;
}

/// The model is asked for a request's task with its literal values generalised; full-text
/// search still matches them as written.
#[tokio::test]
async fn the_model_reads_literal_values_as_what_they_are() {
    let server = embedding_server(false).await;
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(http_embedder_settings(&db, &server)).await;
    for definition in catalogue() {
        app.register(&definition).await;
    }
    server.inputs.lock().unwrap().clear();
    let answer = find(
        &app,
        json!({"query": "Post 'deploy done' to the room at https://chat.example/r/1 and to ops@example.com",
               "mode": "hybrid", "explain": true}),
    )
    .await;
    assert_eq!(answer["mode"], "hybrid", "{answer}");
    assert_eq!(
        *server.inputs.lock().unwrap(),
        vec!["Post something to the room at a web address and to an email address"]
    );
    assert_eq!(
        answer["tools"][0]["explain"]["model_read"],
        "Post something to the room at a web address and to an email address",
        "{answer}"
    );

    // A literal is still a word full-text search matches, and explain reports it.
    let answer = find(
        &app,
        json!({"query": "post to 'slack'", "mode": "hybrid", "explain": true}),
    )
    .await;
    assert_eq!(names(&answer)[0], "slack.post_message", "{answer}");
    assert!(
        answer["tools"][0]["explain"]["matched"]
            .to_string()
            .contains("slack"),
        "{answer}"
    );
    // Without literals the model reads the words as asked, and explain says nothing more.
    let answer = find(
        &app,
        json!({"query": "post a message to slack", "explain": true}),
    )
    .await;
    assert!(
        answer["tools"][0]["explain"].get("model_read").is_none(),
        "{answer}"
    );
}

async fn explain_says_why_a_tool_ranks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    for definition in catalogue() {
        app.register(&definition).await;
    }
    let answer = find(
        &app,
        json!({"query": "open an issue on github", "explain": true}),
    )
    .await;
    let first = &answer["tools"][0];
    assert_eq!(first["tool"]["name"], "github.create_issue", "{answer}");
    let explain = &first["explain"];
    assert_eq!(
        explain["matched"]["name"],
        json!(["issue", "github"]),
        "{explain}"
    );
    assert_eq!(
        explain["matched"]["description"],
        json!(["issue", "github"]),
        "{explain}"
    );
    assert!(explain["vector_score"].is_number() && explain["text_score"].is_number());
    assert_eq!(explain["vector_score"], first["vector_score"]);
    assert_eq!(explain["fused_score"], first["score"]);
    // The tool holds "issue" and "github", the query's rarest words, but not "open".
    let coverage = explain["text_coverage"]
        .as_f64()
        .expect("hybrid reports text coverage");
    assert!(coverage > 0.5 && coverage < 1.0, "{explain}");
    // No tool accounts for "open": the model gets more than the asked 0.4, at most as much
    // more as this tool leaves uncovered allows.
    let weight = explain["vector_weight"].as_f64().unwrap();
    assert!(
        weight > 0.4 && weight <= 0.4 + 0.6 * 0.6 * (1.0 - coverage) + 1e-9,
        "{explain}"
    );
    assert!(first.get("text_coverage").is_none(), "{first}");
    assert!(explain.get("step").is_none(), "{explain}");

    // A request of two steps: both tools in the top three, hits of a step say which.
    let answer = find(
        &app,
        json!({"query": "get the weather forecast for Paris, then post it to the team's Slack channel",
               "explain": true, "limit": 3}),
    )
    .await;
    let top = names(&answer);
    assert!(
        top.contains(&"weather.forecast".to_owned())
            && top.contains(&"slack.post_message".to_owned()),
        "{answer}"
    );
    let steps: Vec<&str> = answer["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|hit| hit["explain"]["step"].as_str())
        .collect();
    assert!(
        steps.iter().all(|s| [
            "get the weather forecast for Paris",
            "post it to the team's Slack channel"
        ]
        .contains(s)),
        "{answer}"
    );
    assert!(!steps.is_empty(), "{answer}");
    // A step's own search leans more on the model than the request does: its few words give
    // full text little to rank by. The whole of the request is fused as asked.
    for hit in answer["tools"].as_array().unwrap() {
        let weight = hit["explain"]["vector_weight"].as_f64().unwrap();
        if hit["explain"]["step"].is_string() {
            // From the square root of 0.4, raised by at most what this hit leaves uncovered.
            let base = 0.4f64.sqrt();
            let coverage = hit["explain"]["text_coverage"].as_f64().unwrap_or(0.0);
            let most = base + (1.0 - base) * 0.6 * (1.0 - coverage) + 1e-9;
            assert!((base..=most).contains(&weight), "{hit}");
        } else {
            assert_eq!(weight, 0.4, "{hit}");
        }
    }

    // Not asked, not given.
    let answer = find(&app, json!({"query": "open an issue on github"})).await;
    assert!(answer["tools"][0].get("explain").is_none(), "{answer}");
}
