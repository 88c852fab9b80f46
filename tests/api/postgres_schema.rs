//! What the PostgreSQL schema must keep whatever the vectors' dimension.

use sqlx::Connection;

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
