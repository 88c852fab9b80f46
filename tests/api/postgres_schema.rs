//! What the PostgreSQL schema must keep whatever the vectors' dimension.

use sqlx::Connection;

use serde_json::Value;
use tool_registry::{
    config::VectorSearch,
    domain::ToolFilter,
    store::{
        Catalogue, Embeddings, PostgresStore, StoreHealth, estimated_bytes_per_vector,
        postgres::{HnswIndex, PostgresOptions, VectorPlacement},
    },
};

use crate::{
    helpers::{Backend, TestApp, TestDb},
    store_contract::tool,
};

async fn embedding_storage(url: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let storage: i8 = sqlx::query_scalar(
        "SELECT attstorage FROM pg_attribute \
         WHERE attrelid = 'tools'::regclass AND attname = 'embedding'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    (storage as u8 as char).to_string()
}

/// Vectors stay in the row (storage MAIN), not in the TOAST table where every read of one
/// costs extra lookups: on a new database, and after a change of dimension, which gives the
/// column a new type.
#[tokio::test]
async fn vectors_are_stored_in_the_row() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.database_url().expect("a PostgreSQL database");
    drop(db.open(8).await);
    assert_eq!(embedding_storage(url).await, "m");
    drop(db.open(16).await);
    assert_eq!(embedding_storage(url).await, "m");
}

async fn has_hnsw_index(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT to_regclass('tools_embedding_hnsw_idx') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// The HNSW index is kept unless a replica with vectors in memory is told to go without
/// it, and comes back when one is started wanting it (after a change of dimension too).
#[tokio::test]
async fn the_hnsw_index_follows_the_setting() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.database_url().expect("a PostgreSQL database");
    let open = |dims: usize, hnsw_index: bool| async move {
        let options = PostgresOptions {
            vector_search: if hnsw_index {
                VectorPlacement::Index
            } else {
                VectorPlacement::Memory
            },
            hnsw_index: if hnsw_index {
                HnswIndex::Kept
            } else {
                HnswIndex::Dropped
            },
            ..PostgresOptions::default()
        };
        PostgresStore::connect(url, dims, &options)
            .await
            .unwrap()
            .close()
            .await;
    };
    open(8, true).await;
    assert!(has_hnsw_index(url).await);
    open(8, false).await;
    assert!(!has_hnsw_index(url).await);
    open(16, false).await;
    assert!(
        !has_hnsw_index(url).await,
        "a change of dimension does not bring it back"
    );
    open(16, true).await;
    assert!(has_hnsw_index(url).await);
    open(32, true).await;
    assert!(has_hnsw_index(url).await);
}

/// By default (`auto`) the index is built only by a replica that searches through it, so
/// registering into a catalogue searched in memory inserts into no index; once built it is
/// kept, for the replicas that search through it.
#[tokio::test]
async fn by_default_the_hnsw_index_is_built_only_to_search_through_it() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.database_url().expect("a PostgreSQL database");
    let dims = 8;
    let open = |budget_tools: u64| async move {
        let options = PostgresOptions {
            vector_search: VectorPlacement::Auto {
                budget_bytes: budget_tools * estimated_bytes_per_vector(dims),
            },
            ..PostgresOptions::default()
        };
        assert_eq!(options.hnsw_index, HnswIndex::Auto);
        PostgresStore::connect(url, dims, &options).await.unwrap()
    };
    let store = open(1).await;
    assert_eq!(store.vector_search().place, "memory");
    assert!(
        !has_hnsw_index(url).await,
        "searches in memory need no index"
    );
    for name in ["auto.a", "auto.b"] {
        let t = tool(name, "general", &[], "A tool");
        store.create(&t).await.unwrap();
        store.set_embedding(t.id, &[1.0; 8], "m").await.unwrap();
    }
    store.close().await;

    let store = open(1).await;
    assert_eq!(store.vector_search().place, "index");
    assert!(has_hnsw_index(url).await, "built to search through it");
    let found = store
        .nearest_ids(&[1.0; 8], "m", 10, &ToolFilter::default())
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    store.close().await;

    let store = open(10).await;
    assert_eq!(store.vector_search().place, "memory");
    assert!(has_hnsw_index(url).await, "kept once there");
    store.close().await;
}

/// `auto` searches in memory while the catalogue's vectors fit the budget at start, and
/// through the index beyond it; either way searches find the stored vectors.
#[tokio::test]
async fn auto_searches_in_memory_within_the_budget_and_in_the_index_beyond() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.database_url().expect("a PostgreSQL database");
    let dims = 8;
    let options = PostgresOptions {
        vector_search: VectorPlacement::Auto {
            budget_bytes: 2 * estimated_bytes_per_vector(dims),
        },
        ..PostgresOptions::default()
    };
    let mut ids = Vec::new();
    for (n, expected) in [(0, "memory"), (1, "memory"), (2, "memory"), (3, "index")] {
        let store = PostgresStore::connect(url, dims, &options).await.unwrap();
        let choice = store.vector_search();
        assert_eq!(choice.place, expected, "{n} tools: {}", choice.reason);
        assert!(
            choice.reason.contains(&format!("{n} tools")),
            "{}",
            choice.reason
        );
        let nearest = store
            .nearest_ids(&[1.0; 8], "m", 10, &ToolFilter::default())
            .await
            .unwrap();
        let mut found: Vec<_> = nearest.into_iter().map(|(id, _)| id).collect();
        found.sort();
        let mut stored = ids.clone();
        stored.sort();
        assert_eq!(found, stored, "searching {expected} with {n} tools");
        let t = tool(&format!("auto.tool{n}"), "general", &[], "A tool");
        store.create(&t).await.unwrap();
        store.set_embedding(t.id, &[1.0; 8], "m").await.unwrap();
        ids.push(t.id);
        // A copy that outgrows its budget keeps searching in memory until the next start,
        // and says so.
        let outgrown = store.vector_search();
        assert_eq!(outgrown.place, expected);
        assert_eq!(
            outgrown
                .reason
                .contains("beyond the budget: the next start"),
            n == 2,
            "{n} + 1 tools: {}",
            outgrown.reason
        );
        store.close().await;
    }
}

async fn vector_search_shown(app: &TestApp) -> (String, String, String) {
    let (_, health) = app.get("/health").await;
    let storage = &health["storage"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let scrape = app.metrics().await;
    let gauge = scrape
        .lines()
        .filter(|line| line.starts_with("vector_search_place{") && line.ends_with(" 1"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        text(&storage["vector_search"]),
        text(&storage["vector_search_reason"]),
        gauge,
    )
}

/// The app's default is `auto`; /health and /metrics show where it searches and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_choice_shows_in_health_and_metrics() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = db.settings();
    let defaults = tool_registry::config::Settings::for_tests(db.data_dir());
    assert_eq!(defaults.database.vector_search, VectorSearch::Auto);
    settings.database.vector_search = defaults.database.vector_search;
    settings.database.vector_memory_mib = defaults.database.vector_memory_mib;
    let app = TestApp::spawn(settings.clone()).await;
    app.register(&crate::helpers::tool_definition("one")).await;
    let (place, reason, gauge) = vector_search_shown(&app).await;
    assert_eq!(place, "memory", "{reason}");
    assert!(reason.contains("within"), "{reason}");
    assert_eq!(gauge, r#"vector_search_place{place="memory"} 1"#);
    app.stop().await;

    // No budget: the tool already stored does not fit.
    settings.database.vector_memory_mib = 0;
    let app = TestApp::spawn(settings).await;
    let (place, reason, gauge) = vector_search_shown(&app).await;
    assert_eq!(place, "index", "{reason}");
    assert!(reason.contains("beyond"), "{reason}");
    assert!(reason.contains("DATABASE_VECTOR_MEMORY_MIB"), "{reason}");
    assert_eq!(gauge, r#"vector_search_place{place="index"} 1"#);
    app.stop().await;
}
