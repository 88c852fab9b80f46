//! Searches: vectors, full text, and what a write does to them.

use super::*;

crate::on_both_backends!(
    own_writes_are_searched_at_once,
    nearest_matches_brute_force_cosine,
    full_text_ranks_name_matches_first,
    changed_text_drops_the_embedding,
    a_new_dimension_drops_old_vectors,
    description_vectors_lift_their_tools_and_tools_without_one_keep_their_cosine,
    a_tool_stored_before_description_vectors_gets_one_in_the_background,
    vectors_of_an_older_tool_text_are_made_again_and_searched_meanwhile,
);

/// Each write is searched as soon as it returns, while the notifications of the writes
/// just before it are still being followed.
async fn own_writes_are_searched_at_once(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    let nearest_name = async |vector: &[f32], filter: &ToolFilter| {
        let hits = store
            .nearest(vector, "test-model", 1, filter)
            .await
            .unwrap();
        hits.first().map(|hit| (hit.tool.name.clone(), hit.score))
    };
    for (i, vector) in vectors(60, 11).iter().enumerate() {
        let t = tool(&format!("own_{i}"), "c", &[], "v");
        store.create(&t).await.unwrap();
        assert!(
            store
                .set_embedding(t.id, vector, "test-model")
                .await
                .unwrap()
        );
        let (name, score) = nearest_name(vector, &active).await.expect("a hit");
        assert_eq!(name, t.name, "embedded {i}");
        assert!(score > 0.999, "embedded {i}: {score}");

        store.set_active(t.id, false).await.unwrap();
        let hit = nearest_name(vector, &active).await;
        assert!(
            hit.is_none_or(|(name, _)| name != t.name),
            "deactivated {i}"
        );
        store.set_active(t.id, true).await.unwrap();
        assert_eq!(
            nearest_name(vector, &active).await.unwrap().0,
            t.name,
            "reactivated {i}"
        );

        if i % 3 == 0 {
            assert!(store.delete(t.id).await.unwrap());
            let hit = nearest_name(vector, &ToolFilter::default()).await;
            assert!(hit.is_none_or(|(name, _)| name != t.name), "deleted {i}");
            let listed = store.list_ids(&ToolFilter::default(), ALL).await.unwrap();
            assert!(!listed.items.contains(&t.id), "deleted {i} is listed");
        }
    }
}

async fn nearest_matches_brute_force_cosine(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let vecs = vectors(40, 7);
    let mut tools = Vec::new();
    for (i, v) in vecs.iter().enumerate() {
        let mut t = tool(
            &format!("vec_{i}"),
            if i % 2 == 0 { "even" } else { "odd" },
            &[],
            "v",
        );
        t.is_active = i % 10 != 3;
        store.create(&t).await.unwrap();
        assert!(store.set_embedding(t.id, v, "test-model").await.unwrap());
        tools.push(t);
    }
    // One tool without an embedding never shows up.
    store
        .create(&tool("no_vector", "even", &[], "v"))
        .await
        .unwrap();

    for (q, query) in vectors(5, 99).iter().enumerate() {
        for filter in [
            ToolFilter::default(),
            ToolFilter {
                category: Some("even".into()),
                active_only: true,
                ..ToolFilter::default()
            },
        ] {
            let mut expected: Vec<(String, f64)> = tools
                .iter()
                .zip(&vecs)
                .filter(|(t, _)| {
                    filter.category.as_ref().is_none_or(|c| *c == t.category)
                        && (!filter.active_only || t.is_active)
                })
                .map(|(t, v)| (t.name.clone(), cosine(query, v).max(0.0)))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1));
            expected.truncate(7);
            let hits = store
                .nearest(query, "test-model", 7, &filter)
                .await
                .unwrap();
            assert_eq!(hits.len(), expected.len(), "query {q}");
            for (hit, (name, score)) in hits.iter().zip(&expected) {
                assert!(
                    (hit.score - score).abs() < 1e-4,
                    "query {q}: {} vs {name}",
                    hit.tool.name
                );
                assert!((0.0..=1.0).contains(&hit.score));
            }
            // Names agree wherever scores are not tied.
            let got: Vec<_> = hits.iter().map(|h| h.tool.name.clone()).collect();
            let want: Vec<_> = expected.iter().map(|e| e.0.clone()).collect();
            assert_eq!(got, want, "query {q} filter {filter:?}");
        }
    }
    assert!(
        store
            .nearest(&vecs[0], "test-model", 0, &ToolFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .nearest(&[1.0, 2.0], "test-model", 3, &ToolFilter::default())
            .await
            .is_err()
    );
}

async fn full_text_ranks_name_matches_first(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    store
        .create(&tool(
            "github.create_issue",
            "dev",
            &["github"],
            "Open a new ticket in a repository",
        ))
        .await
        .unwrap();
    store
        .create(&tool(
            "jira_comment",
            "dev",
            &["jira"],
            "Comment on a Jira issue that already exists",
        ))
        .await
        .unwrap();
    store
        .create(&tool(
            "weather_now",
            "web",
            &["weather"],
            "Current weather for a city",
        ))
        .await
        .unwrap();
    let mut hidden = tool("issue_archive", "dev", &[], "Archive an issue");
    hidden.is_active = false;
    store.create(&hidden).await.unwrap();

    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    let hits = store
        .text_search("create an issue", 10, &active)
        .await
        .unwrap();
    let names: Vec<_> = hits.iter().map(|h| h.tool.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["github.create_issue", "jira_comment"],
        "{hits:?}"
    );
    assert!(hits[0].score > hits[1].score);
    assert!(hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0));

    // Stemming: "issues" and "commenting" match their stems.
    let stems = store
        .text_search("commenting issues", 10, &active)
        .await
        .unwrap();
    assert_eq!(stems[0].tool.name, "jira_comment");

    let web = ToolFilter {
        category: Some("web".into()),
        ..ToolFilter::default()
    };
    let weather = store
        .text_search("weather in Paris", 10, &web)
        .await
        .unwrap();
    assert_eq!(weather.len(), 1);
    assert_eq!(weather[0].tool.name, "weather_now");
    assert!(
        store
            .text_search("issue", 10, &web)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        store
            .text_search("zebra xylophone", 10, &active)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.text_search("", 10, &active).await.unwrap().is_empty());
    for hostile in [
        "'; DROP TABLE tools; --",
        "\"unbalanced",
        "a OR b NEAR(c)",
        "*:&|!()",
    ] {
        store.text_search(hostile, 10, &active).await.unwrap();
    }
    assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 4);

    // The index follows updates and deletes.
    let mut weather_tool = store.get_by_name("weather_now").await.unwrap().unwrap();
    weather_tool.description = "Forecast of rain and snow".into();
    store.update(&weather_tool).await.unwrap();
    assert!(
        store
            .text_search("current city", 10, &active)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.text_search("snow", 10, &active).await.unwrap().len(),
        1
    );
    store.delete(weather_tool.id).await.unwrap();
    assert!(
        store
            .text_search("snow", 10, &active)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn changed_text_drops_the_embedding(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tool("a_tool", "x", &[], "a");
    let b = tool("b_tool", "x", &[], "b");
    let c = tool("c_tool", "x", &[], "c");
    for t in [&a, &b, &c] {
        store.create(t).await.unwrap();
    }
    store
        .set_embedding(a.id, &[1.0; DIMS], "model-1")
        .await
        .unwrap();
    store
        .set_embedding(b.id, &[0.5; DIMS], "model-0")
        .await
        .unwrap();
    assert!(
        !store
            .set_embedding(Uuid::new_v4(), &[1.0; DIMS], "model-1")
            .await
            .unwrap()
    );
    assert!(
        store
            .set_embedding(a.id, &[1.0; 3], "model-1")
            .await
            .is_err()
    );

    let needing: Vec<_> = store
        .tools_needing_embedding("model-1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        needing,
        vec!["c_tool", "b_tool", "a_tool"],
        "missing first, then stale, then without a description vector"
    );
    assert_eq!(
        store
            .tools_needing_embedding("model-1", 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let stored = store.get(a.id).await.unwrap().unwrap();
    assert_eq!(stored.embedding_model.as_deref(), Some("model-1"));
    // A stored vector is read back for its own model only (its direction: stores may
    // keep it normalised).
    let direction = |vector: Option<Vec<f32>>| {
        let vector = vector.expect("a stored vector");
        assert_eq!(vector.len(), DIMS);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        vector.iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let unit = 1.0 / (DIMS as f32).sqrt();
    for (id, model) in [(a.id, "model-1"), (b.id, "model-0")] {
        let read = direction(store.embedding(id, model).await.unwrap());
        assert!(read.iter().all(|x| (x - unit).abs() < 1e-5), "{read:?}");
    }
    for (id, model) in [(a.id, "model-0"), (b.id, "model-1"), (c.id, "model-1")] {
        assert_eq!(store.embedding(id, model).await.unwrap(), None);
    }
    assert_eq!(
        store.embedding(Uuid::new_v4(), "model-1").await.unwrap(),
        None
    );
    let names = |hits: Vec<Scored>| hits.into_iter().map(|h| h.tool.name).collect::<Vec<_>>();
    let everything = ToolFilter::default();
    // Vectors of another model are never compared with this one.
    let hits = store
        .nearest(&[1.0; DIMS], "model-1", 5, &everything)
        .await
        .unwrap();
    assert_eq!(names(hits), vec!["a_tool"]);
    let hits = store
        .nearest(&[1.0; DIMS], "model-0", 5, &everything)
        .await
        .unwrap();
    assert_eq!(names(hits), vec!["b_tool"]);
    let counts = store.embedding_counts("model-1").await.unwrap();
    assert_eq!((counts.indexed, counts.pending), (1, 2));
    // A metadata-only change keeps the vector.
    let mut renamed = stored.clone();
    renamed.metadata = json!({"v": 2});
    store.update(&renamed).await.unwrap();
    let hits = store
        .nearest(&[1.0; DIMS], "model-1", 5, &everything)
        .await
        .unwrap();
    assert_eq!(names(hits), vec!["a_tool"]);
    // A text change comes with embedding_model = None: the vector goes.
    renamed.description = "new text".into();
    renamed.embedding_model = None;
    store.update(&renamed).await.unwrap();
    let hits = store
        .nearest(&[1.0; DIMS], "model-1", 5, &everything)
        .await
        .unwrap();
    assert!(hits.is_empty());
    assert_eq!(store.embedding(a.id, "model-1").await.unwrap(), None);
    assert_eq!(store.embedding_counts("model-1").await.unwrap().indexed, 0);
    assert_eq!(
        store.get(a.id).await.unwrap().unwrap().embedding_model,
        None
    );
}

async fn a_new_dimension_drops_old_vectors(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open(DIMS).await;
    let t = tool("dims", "x", &[], "d");
    store.create(&t).await.unwrap();
    store.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    store.close().await;
    drop(store);

    let wider = db.open(DIMS * 2).await;
    assert_eq!(wider.dimensions(), DIMS * 2);
    assert_eq!(
        wider.get(t.id).await.unwrap().unwrap().embedding_model,
        None
    );
    assert!(
        wider
            .nearest(&[1.0; DIMS * 2], "m", 3, &ToolFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        wider.tools_needing_embedding("m", 10).await.unwrap().len(),
        1
    );
    wider
        .set_embedding(t.id, &[1.0; DIMS * 2], "m2")
        .await
        .unwrap();
    assert_eq!(
        wider
            .nearest(&[1.0; DIMS * 2], "m2", 3, &ToolFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A unit vector at `cosine` to the first axis, turned towards axis `towards`.
fn at_cosine(cosine: f32, towards: usize) -> Vec<f32> {
    let mut vector = vec![0.0; DIMS];
    vector[0] = cosine;
    vector[towards] = (1.0 - cosine * cosine).sqrt();
    vector
}

/// The score is the document's cosine raised by part of the description vector's excess, on every
/// variant (PostgreSQL's HNSW search rescores its candidates with both); a tool with its
/// document vector alone is found by it and waits for its description vector.
async fn description_vectors_lift_their_tools_and_tools_without_one_keep_their_cosine(
    backend: Backend,
) {
    use tool_registry::index::vector::tool_score;
    let (_db, store) = fresh(backend).await;
    let whole = tool("whole_document", "c", &[], "v");
    let named = tool("named", "c", &[], "v");
    let old = tool("stored_before", "c", &[], "v");
    for t in [&whole, &named, &old] {
        store.create(t).await.unwrap();
    }
    let query = at_cosine(1.0, 1);
    let (whole_doc, whole_name) = (at_cosine(0.8, 1), at_cosine(0.0, 2));
    let (named_doc, named_name) = (at_cosine(0.75, 3), at_cosine(1.0, 1));
    let written = store
        .set_embeddings(
            "m",
            &[
                ToolVectors {
                    id: whole.id,
                    document: &whole_doc,
                    description: Some(&whole_name),
                },
                ToolVectors {
                    id: named.id,
                    document: &named_doc,
                    description: Some(&named_name),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(written, [true, true]);
    assert!(
        store
            .set_embedding(old.id, &at_cosine(0.6, 4), "m")
            .await
            .unwrap()
    );

    let hits = store
        .nearest(&query, "m", 3, &ToolFilter::default())
        .await
        .unwrap();
    let ranked: Vec<(&str, f64)> = hits
        .iter()
        .map(|h| (h.tool.name.as_str(), h.score))
        .collect();
    let names: Vec<&str> = ranked.iter().map(|h| h.0).collect();
    assert_eq!(
        names,
        ["named", "whole_document", "stored_before"],
        "{ranked:?}"
    );
    // The description vector is held as one byte per component in memory: scores agree to 1e-3.
    let expected = [tool_score(0.75, Some(1.0)), 0.8, 0.6];
    for ((name, score), want) in ranked.iter().zip(expected) {
        assert!(
            (score - want).abs() < 1e-3,
            "{name}: {score} against {want}"
        );
    }
    let waiting: Vec<Uuid> = store
        .tools_needing_embedding("m", 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        waiting,
        [old.id],
        "only the tool without a description vector waits"
    );
    assert_eq!(store.embedding_counts("m").await.unwrap().indexed, 3);

    // Its description vector made, it rises and waits no more.
    let old_name = at_cosine(1.0, 1);
    let old_doc = at_cosine(0.6, 4);
    store
        .set_embeddings(
            "m",
            &[ToolVectors {
                id: old.id,
                document: &old_doc,
                description: Some(&old_name),
            }],
        )
        .await
        .unwrap();
    let hits = store
        .nearest(&query, "m", 3, &ToolFilter::default())
        .await
        .unwrap();
    let old_score = hits.iter().find(|h| h.tool.id == old.id).unwrap().score;
    assert!(
        (old_score - tool_score(0.6, Some(1.0))).abs() < 1e-3,
        "{old_score}"
    );
    assert!(
        store
            .tools_needing_embedding("m", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A change of its text drops both vectors: it waits for both again.
    let mut changed = store.get(named.id).await.unwrap().unwrap();
    changed.description = "another text".into();
    changed.embedding_model = None;
    store.update(&changed).await.unwrap();
    let hits = store
        .nearest(&query, "m", 3, &ToolFilter::default())
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.tool.id != named.id));
    let waiting = store.tools_needing_embedding("m", 10).await.unwrap();
    assert_eq!(waiting.iter().map(|t| t.id).collect::<Vec<_>>(), [named.id]);
}

/// A semantic search for `query`, its five best with no floor.
fn semantic_request(query: &str) -> tool_registry::registry::search::SearchRequest {
    use tool_registry::registry::search::{SearchMode, SearchRequest};
    SearchRequest {
        query: query.into(),
        limit: 5,
        threshold: 0.0,
        category: None,
        mode: SearchMode::Semantic,
        vector_weight: 0.4,
        explain: false,
    }
}

/// A tool stored with its document vector alone (as before description vectors) is found by it at
/// once, and the indexer gives it its description vector in the background.
async fn a_tool_stored_before_description_vectors_gets_one_in_the_background(backend: Backend) {
    use tool_registry::domain::document::embedded_text;
    let db = TestDb::new(backend).await;
    let t = tool("weather_now", "c", &[], "Current weather for a city");
    {
        // No indexer runs here: it could give the tool its description vector before the
        // check below that it has none.
        let settings = db.settings();
        let registry = tool_registry::app::assemble_registry(&settings)
            .await
            .unwrap();
        let store = registry.store().clone();
        let model = registry.vector_model();
        let text = embedded_text(&t);
        let vector = registry.embedder().embed(&[&text]).await.unwrap().remove(0);
        store.create(&t).await.unwrap();
        assert!(store.set_embedding(t.id, &vector, model).await.unwrap());
        let waiting = store.tools_needing_embedding(model, 10).await.unwrap();
        assert_eq!(waiting.len(), 1, "stored as before: no description vector");
    }
    // A new start: the indexer finds it waiting, and meanwhile search finds it.
    let registry = build_registry(&db.settings()).await.unwrap();
    let model = registry.vector_model();
    let request = semantic_request("current weather for a city");
    let found = registry.find(&request).await.unwrap();
    assert_eq!(
        found.tools.first().map(|h| h.tool.name()),
        Some("weather_now")
    );
    let mut filled = false;
    for _ in 0..200 {
        if registry
            .store()
            .tools_needing_embedding(model, 10)
            .await
            .unwrap()
            .is_empty()
        {
            filled = true;
            break;
        }
        registry.indexer().wake();
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(filled, "the indexer gave the tool its description vector");
    let found = registry.find(&request).await.unwrap();
    assert_eq!(
        found.tools.first().map(|h| h.tool.name()),
        Some("weather_now")
    );
}

/// Vectors made from an older composition of the tool text (tagged with the model alone, as
/// before parameter titles and allowed values were part of it) are stale: the indexer makes
/// them again from today's text, tagged with the model and text version. Until it has, a
/// search still reads them, so the catalogue stays searchable through an upgrade. The
/// registry is wired by hand with its indexer not running, so the test says when it runs.
async fn vectors_of_an_older_tool_text_are_made_again_and_searched_meanwhile(backend: Backend) {
    use tool_registry::{
        app::assemble_registry,
        domain::document::{description_text, embedded_text},
    };
    let db = TestDb::new(backend).await;
    let registry = assemble_registry(&db.settings()).await.unwrap();
    let (store, embedder) = (registry.store().clone(), registry.embedder().clone());
    // A tool's vectors of `document_text` and of its description, stored under `tag`.
    let store_vectors = async |tool: &Tool, document_text: &str, tag: &str| {
        let vectors = embedder
            .embed(&[document_text, description_text(tool)])
            .await
            .unwrap();
        store.create(tool).await.unwrap();
        let written = store
            .set_embeddings(
                tag,
                &[ToolVectors {
                    id: tool.id,
                    document: &vectors[0],
                    description: Some(&vectors[1]),
                }],
            )
            .await
            .unwrap();
        assert_eq!(written, [true]);
    };
    let mut t = tool("issues_update", "c", &[], "Update an issue");
    t.input_schema = json!({"type": "object", "properties": {
        "state": {"type": "string", "enum": ["open", "closed"]}
    }});
    let older_text = "issues_update: Update an issue\n- state";
    assert_ne!(embedded_text(&t), older_text);
    store_vectors(&t, older_text, embedder.model_id()).await;
    // Another tool, embedded from today's text under today's tag.
    let model = registry.vector_model();
    assert_ne!(model, embedder.model_id());
    let current = tool("weather_now", "c", &[], "Current weather for a city");
    store_vectors(&current, &embedded_text(&current), model).await;

    let request = semantic_request("update an issue");
    let found_names = async || {
        let found = registry.find(&request).await.unwrap();
        let names: Vec<String> = found
            .tools
            .iter()
            .map(|hit| hit.tool.name().to_owned())
            .collect();
        names
    };

    // Stale, and not made again yet: the search reads the older vector beside today's, in
    // one ranking by cosine.
    assert!(!registry.indexer().caught_up());
    let waiting = store.tools_needing_embedding(model, 10).await.unwrap();
    assert_eq!(waiting.iter().map(|w| w.id).collect::<Vec<_>>(), [t.id]);
    assert_eq!(found_names().await, ["issues_update", "weather_now"]);

    // The indexer makes it again from today's text, under today's tag.
    assert!(registry.indexer().embed_pending().await);
    assert!(registry.indexer().caught_up());
    let stored = store.get(t.id).await.unwrap().unwrap();
    assert_eq!(stored.embedding_model.as_deref(), Some(model));
    let remade = store.embedding(t.id, model).await.unwrap().unwrap();
    let today = embedded_text(&t);
    let expected = embedder.embed(&[&today]).await.unwrap().remove(0);
    let cosine: f32 = remade.iter().zip(&expected).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.999, "made from today's text: cosine {cosine}");
    assert_eq!(found_names().await, ["issues_update", "weather_now"]);
}
