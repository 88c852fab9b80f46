//! The Redis tier of the embedding cache, end to end: two replicas of one PostgreSQL
//! catalogue share what either embedded, and Redis going away fails no request.

use serde_json::{Value, json};
use tool_registry::config::Secret;

use crate::helpers::{Backend, RedisServer, TestApp, TestDb, tool_definition};

fn redis_stats(health: &Value) -> Value {
    health["embedder"]["detail"]["redis_cache"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_embeddings_and_survive_redis_stopping() {
    crate::skip_without_postgres!();
    let redis = RedisServer::start();
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = db.settings();
    settings.embedding.redis_url = Some(Secret::new(redis.url()));
    let first = TestApp::spawn(settings.clone()).await;
    let second = TestApp::spawn(settings).await;

    first.register(&tool_definition("echo")).await;
    let query = json!({"query": "make the text upper case"});
    let (status, answer) = first.post("/mcp/find_tool", &query).await;
    assert_eq!((status, answer["mode"].as_str()), (200, Some("hybrid")));
    let (_, health) = first.get("/health").await;
    // The query only: the tool's text passed the cache by.
    assert_eq!(redis_stats(&health)["stats"]["misses"], 1, "{health}");

    let (status, answer) = second.post("/mcp/find_tool", &query).await;
    assert_eq!((status, answer["mode"].as_str()), (200, Some("hybrid")));
    let (_, health) = second.get("/health").await;
    let stats = redis_stats(&health);
    assert_eq!(stats["state"], "up");
    assert_eq!(
        stats["stats"]["hits"], 1,
        "the query came from Redis: {health}"
    );
    assert_eq!(stats["stats"]["misses"], 0);

    drop(redis);
    let other = json!({"query": "count the words of a text"});
    let (status, answer) = second.post("/mcp/find_tool", &other).await;
    assert_eq!(
        (status, answer["mode"].as_str()),
        (200, Some("hybrid")),
        "{answer}"
    );
    let (status, _) = second.post("/admin/tools", &tool_definition("echo2")).await;
    assert_eq!(status, 201);
    let (_, health) = second.get("/health").await;
    let stats = redis_stats(&health);
    assert_eq!(stats["state"], "paused", "{health}");
    assert!(stats["stats"]["errors"].as_u64().unwrap() >= 1);
    let metrics = reqwest::get(second.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("embedding_cache_errors_total{tier=\"redis\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("embedding_cache_hits_total{tier=\"redis\"}"));
    first.stop().await;
    second.stop().await;
}
