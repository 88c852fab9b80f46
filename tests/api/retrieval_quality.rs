//! Retrieval quality as a build check: the real MCP tools of `eval/mcp_tools.jsonl`, the
//! local model, and a sample of `eval/mcp_queries.jsonl` through the default `find_tool`.
//! The floors sit a few points below what the full evaluation measures (docs/search.md, "Retrieval
//! quality"), so a change that makes finding tools worse fails here, not in production.

use std::{collections::HashSet, path::Path};

use serde_json::{Value, json};
use tool_registry::config::EmbeddingProvider;

use crate::helpers::{Backend, TestApp, TestDb, find, names};

/// Every `SAMPLE_EVERY`-th query of the set is asked.
const SAMPLE_EVERY: usize = 3;
/// Measured on this sample (44 queries, built-ins included) with the defaults: hit@1 .682,
/// recall@5 .864. The floors sit 8 points lower.
const HIT_AT_1_FLOOR: f64 = 0.60;
const RECALL_AT_5_FLOOR: f64 = 0.78;

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn default_find_tool_keeps_its_measured_quality() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.embedding.provider = EmbeddingProvider::Local;
    settings.embedding.dimensions = 384;
    settings.embedding.model_dir = std::env::var_os("EMBEDDING_MODEL_DIR")
        .map(Into::into)
        .unwrap_or_else(|| root.join("models/all-MiniLM-L6-v2"));
    // The built-ins join the catalogue: csv_to_json and json_to_csv are the direction case.
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    let (_, health) = app.get("/health").await;
    assert_eq!(
        health["embedder"]["provider"], "local",
        "the local model must load (set EMBEDDING_MODEL_DIR): {health}"
    );

    let tools: Vec<Value> = read_jsonl(&root.join("eval/mcp_tools.jsonl"))
        .into_iter()
        .map(|mut tool| {
            tool["implementation"] = json!({"kind": "http", "url": "https://tools.invalid/run"});
            tool
        })
        .collect();
    let (status, body) = app
        .post("/admin/tools/batch", &json!({ "tools": tools }))
        .await;
    assert_eq!(status, 201, "{body}");

    let queries = read_jsonl(&root.join("eval/mcp_queries.jsonl"));
    let (mut asked, mut hit_1, mut recall_5) = (0.0, 0.0, 0.0);
    for query in queries.iter().step_by(SAMPLE_EVERY) {
        let relevant: HashSet<&str> = query["relevant"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let answer = find(&app, json!({"query": query["query"], "limit": 10})).await;
        assert_eq!(answer["mode"], "hybrid", "{answer}");
        let ranked = names(&answer);
        asked += 1.0;
        hit_1 += f64::from(
            ranked
                .first()
                .is_some_and(|n| relevant.contains(n.as_str())),
        );
        recall_5 += ranked
            .iter()
            .take(5)
            .filter(|n| relevant.contains(n.as_str()))
            .count() as f64
            / relevant.len() as f64;
    }
    let (hit_1, recall_5) = (hit_1 / asked, recall_5 / asked);
    eprintln!("{asked} queries: hit@1 {hit_1:.3}, recall@5 {recall_5:.3}");
    assert!(hit_1 >= HIT_AT_1_FLOOR, "hit@1 fell to {hit_1:.3}");
    assert!(
        recall_5 >= RECALL_AT_5_FLOOR,
        "recall@5 fell to {recall_5:.3}"
    );

    // Direction: the tool whose name reads as the request comes first.
    for query in [
        "convert csv to json",
        "turn this CSV into JSON",
        "parse CSV text into JSON records",
    ] {
        let answer = find(&app, json!({ "query": query })).await;
        assert_eq!(names(&answer)[0], "csv_to_json", "{query}: {answer}");
    }
    let answer = find(&app, json!({"query": "convert json to csv"})).await;
    assert_eq!(names(&answer)[0], "json_to_csv", "{answer}");

    // The local model reads a one-step request as a question, and explain says so; the
    // steps of a longer request it reads as written.
    let answer = find(
        &app,
        json!({"query": "Remember that Alice is a backend engineer", "explain": true}),
    )
    .await;
    assert_eq!(
        answer["tools"][0]["explain"]["model_read"],
        "How to Remember that Alice is a backend engineer",
        "{answer}"
    );
    let answer = find(
        &app,
        json!({"query": "read the file notes.txt, then post its summary to slack", "explain": true}),
    )
    .await;
    let read: Vec<&Value> = answer["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|hit| hit["explain"]["step"] == "post its summary to slack")
        .map(|hit| &hit["explain"]["model_read"])
        .collect();
    assert!(
        !read.is_empty() && read.iter().all(|r| r.is_null()),
        "{answer}"
    );

    // Nothing fits: an absolute threshold on the cosine still leaves the answer empty.
    let answer = find(
        &app,
        json!({"query": "bake a sourdough loaf", "threshold": 0.5}),
    )
    .await;
    assert!(names(&answer).is_empty(), "{answer}");
}
