//! PostgreSQL only: replicas on one database follow each other.

use super::*;

/// Two stores on one database are two replicas: each hears the other's changes, and its
/// full-text index follows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_hear_each_others_changes() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let first = db.open(DIMS).await;
    let second = db.open(DIMS).await;
    let mut heard_by_first = first.catalogue_changes();
    let mut t = tool(
        "made.elsewhere",
        "general",
        &[],
        "Registered through another replica",
    );
    second.create(&t).await.unwrap();
    expect_change(&mut heard_by_first, "a create through another replica").await;
    let found_by_first = |query: &'static str, filter: ToolFilter| {
        let first = first.clone();
        async move {
            first
                .text_search(query, 5, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|hit| hit.tool.name)
                .collect::<Vec<_>>()
        }
    };
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    assert_eq!(
        found_by_first("another replica", active.clone()).await,
        vec!["made.elsewhere"]
    );

    t.description = "Forecasts tomorrow's weather".into();
    t.updated_at = now_micros();
    second.update(&t).await.unwrap();
    expect_change(&mut heard_by_first, "an update through another replica").await;
    assert!(
        found_by_first("another replica", active.clone())
            .await
            .is_empty()
    );
    assert_eq!(
        found_by_first("weather forecast", active.clone()).await,
        vec!["made.elsewhere"]
    );

    second.set_active(t.id, false).await.unwrap();
    expect_change(
        &mut heard_by_first,
        "a deactivation through another replica",
    )
    .await;
    assert!(
        found_by_first("weather forecast", active.clone())
            .await
            .is_empty()
    );
    assert_eq!(
        found_by_first("weather", ToolFilter::default()).await.len(),
        1
    );

    second.delete(t.id).await.unwrap();
    expect_change(&mut heard_by_first, "a delete through another replica").await;
    assert!(
        found_by_first("weather", ToolFilter::default())
            .await
            .is_empty()
    );
    first.close().await;
    second.close().await;
}

/// A bulk registration leaves PostgreSQL's planner statistics current, so searches use the
/// HNSW index at once rather than after autovacuum's next visit.
#[tokio::test]
async fn postgres_analyses_tools_after_many_new_embeddings() {
    crate::skip_without_postgres!();
    let (db, store) = fresh(Backend::Postgres).await;
    let stats = sqlx::PgPool::connect(db.database_url().expect("a PostgreSQL test database"))
        .await
        .unwrap();
    let last_analyze = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'tools'",
        )
        .fetch_one(&stats)
        .await
        .unwrap()
    };
    let embeddings = vectors(210, 17);
    for (n, vector) in embeddings.iter().enumerate() {
        let t = tool(&format!("bulk.{n}"), "general", &[], "One of many");
        store.create(&t).await.unwrap();
        store.set_embedding(t.id, vector, "m").await.unwrap();
        if n == 100 {
            // Not yet: a hundred embeddings are too few to be worth an analysis.
            assert_eq!(last_analyze().await, None);
        }
    }
    let mut analysed = None;
    for _ in 0..100 {
        analysed = last_analyze().await;
        if analysed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        analysed.is_some(),
        "tools was not analysed after 210 embeddings"
    );
    stats.close().await;
    store.close().await;
}

/// Each replica serves tools from its own cache, and drops a tool when another replica
/// changes it or stores its embedding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_serve_each_others_changes() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::Postgres).await;
    let first = db.open(DIMS).await;
    let second = db.open(DIMS).await;
    let mut t = tool("served.twice", "general", &[], "Cached by both replicas");
    second.create(&t).await.unwrap();
    assert_eq!(served(&first, t.id).await.as_ref(), Some(&t));
    assert_eq!(served(&second, t.id).await.as_ref(), Some(&t));

    second.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    t.embedding_model = Some("m".into());
    eventually_equal(
        || served(&first, t.id),
        Some(t.clone()),
        "the first replica serves the tool after an embedding stored elsewhere",
    )
    .await;

    t.description = "Edited elsewhere".into();
    t.updated_at = now_micros();
    second.update(&t).await.unwrap();
    eventually_equal(
        || served(&first, t.id),
        Some(t.clone()),
        "the first replica serves the tool after an update elsewhere",
    )
    .await;

    // What a call finds by name follows too: a tool switched off elsewhere stops running.
    assert_eq!(
        served_named(&first, "served.twice").await.as_ref(),
        Some(&t)
    );
    let switched_off = second.set_active(t.id, false).await.unwrap().unwrap();
    eventually_equal(
        || served(&first, t.id),
        Some(switched_off.clone()),
        "the first replica serves the tool after a deactivation elsewhere",
    )
    .await;
    assert_eq!(
        served_named(&first, "served.twice").await,
        Some(switched_off.clone())
    );

    let mut renamed = switched_off;
    renamed.name = "served.renamed".into();
    renamed.updated_at = now_micros();
    second.update(&renamed).await.unwrap();
    eventually_equal(
        || served_named(&first, "served.renamed"),
        Some(renamed.clone()),
        "the first replica finds the tool by its new name after a rename elsewhere",
    )
    .await;
    assert_eq!(served_named(&first, "served.twice").await, None);

    second.delete(t.id).await.unwrap();
    eventually_equal(
        || served(&first, t.id),
        None,
        "the first replica serves the tool after a delete elsewhere",
    )
    .await;
    assert_eq!(served_named(&first, "served.renamed").await, None);
}

/// A description vector filled in by another replica (the model unchanged, as the indexer does for
/// tools stored before description vectors) reaches a replica searching in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_hear_a_description_vector_filled_in_elsewhere() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::PostgresVectorsInMemory).await;
    let first = db.open(DIMS).await;
    let second = db.open(DIMS).await;
    let t = tool(
        "named.elsewhere",
        "general",
        &[],
        "Its description vector comes later",
    );
    second.create(&t).await.unwrap();
    let mut document = vec![0.0; DIMS];
    (document[0], document[1]) = (0.6, 0.8);
    let mut query = vec![0.0; DIMS];
    query[0] = 1.0;
    second.set_embedding(t.id, &document, "m").await.unwrap();
    let score = || {
        let (first, query) = (first.clone(), query.clone());
        async move {
            let hits = first
                .nearest(&query, "m", 1, &ToolFilter::default())
                .await
                .unwrap();
            hits.first().map(|hit| (hit.score * 100.0).round() / 100.0)
        }
    };
    eventually_equal(score, Some(0.6), "the document vector stored elsewhere").await;
    second
        .set_embeddings(
            "m",
            &[ToolVectors {
                id: t.id,
                document: &document,
                description: Some(&query),
            }],
        )
        .await
        .unwrap();
    eventually_equal(
        score,
        Some(0.8),
        "the description vector filled in elsewhere",
    )
    .await;
}

/// With vectors in each replica's memory, a replica searches what another one stored,
/// switched off, edited or deleted, once the notification arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_search_each_others_vectors_in_memory() {
    crate::skip_without_postgres!();
    let db = TestDb::new(Backend::PostgresVectorsInMemory).await;
    let first = db.open(DIMS).await;
    let second = db.open(DIMS).await;
    let mut t = tool(
        "vector.elsewhere",
        "general",
        &[],
        "Embedded through another replica",
    );
    second.create(&t).await.unwrap();
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    second.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![t.id],
        "the first replica's vectors after an embedding stored elsewhere",
    )
    .await;
    second.set_active(t.id, false).await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![],
        "the first replica's vectors after a deactivation elsewhere",
    )
    .await;
    second.set_active(t.id, true).await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![t.id],
        "the first replica's vectors after an activation elsewhere",
    )
    .await;
    t.description = "New text, so the vector goes".into();
    t.updated_at = now_micros();
    second.update(&t).await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![],
        "the first replica's vectors after a change of text elsewhere",
    )
    .await;
    second.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![t.id],
        "the first replica's vectors after a new embedding elsewhere",
    )
    .await;
    second.delete(t.id).await.unwrap();
    eventually_equal(
        || nearest_active(&first),
        vec![],
        "the first replica's vectors after a delete elsewhere",
    )
    .await;

    // A replica started later loads the vectors already stored.
    let other = tool(
        "stored.before",
        "general",
        &[],
        "Embedded before the replica started",
    );
    first.create(&other).await.unwrap();
    first
        .set_embedding(other.id, &[1.0; DIMS], "m")
        .await
        .unwrap();
    let late = db.open(DIMS).await;
    let found = late
        .nearest_ids(&[1.0; DIMS], "m", 5, &active)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, other.id);
}
