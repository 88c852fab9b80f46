//! What the PostgreSQL schema must keep whatever the vectors' dimension.

use sqlx::Connection;

use tool_registry::store::{PostgresStore, ToolStore, postgres::PostgresOptions};

use crate::helpers::{Backend, TestDb};

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
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.database_url().expect("a PostgreSQL database");
    let open = |dims: usize, hnsw_index: bool| async move {
        let options = PostgresOptions {
            vectors_in_memory: !hnsw_index,
            hnsw_index,
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
