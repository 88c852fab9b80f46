//! The storage contract: every behaviour of `ToolStore`, run against both backends.

use std::sync::Arc;

use tokio::{sync::Barrier, task::JoinSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tool_registry::{
    build_registry,
    domain::{
        Execution, ExecutionFilter, ExecutionStatus, Implementation, Page, Tool, ToolFilter,
        now_micros,
    },
    registry::requests::{NewTool, ToolPatch},
    store::{StoreError, StoreResult, ToolStore, Updated},
};
use uuid::Uuid;

use crate::helpers::{Backend, DIMS, TestDb};

crate::on_both_backends!(
    crud_round_trip,
    duplicate_names_are_refused,
    batches_are_stored_all_or_nothing,
    listing_filters_pages_and_counts,
    activation_changes_visibility,
    nearest_matches_brute_force_cosine,
    full_text_ranks_name_matches_first,
    changed_text_drops_the_embedding,
    executions_and_stats,
    calls_are_counted_per_interval,
    data_survives_reopening,
    a_new_dimension_drops_old_vectors,
    catalogue_changes_are_announced,
    updates_keep_the_replaced_definitions,
    served_tools_follow_every_change,
    own_writes_are_searched_at_once,
    updates_are_written_only_over_the_row_expected,
    concurrent_updates_never_lower_the_version,
    an_update_keeps_a_concurrent_deactivation,
    executions_keep_what_tools_return_or_say_what_changed,
    a_record_the_database_refuses_does_not_block_the_others,
);

pub(crate) fn tool(name: &str, category: &str, tags: &[&str], description: &str) -> Tool {
    let now = now_micros();
    Tool {
        id: Uuid::new_v4(),
        name: name.into(),
        description: description.into(),
        category: category.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        output_schema: None,
        version: "1.0.0".into(),
        implementation: Implementation::Http {
            url: "https://tools.example/run".into(),
            method: "POST".into(),
            headers: [("x-team".to_string(), "search".to_string())].into(),
            timeout_ms: Some(1500),
        },
        metadata: json!({"owner": "tests"}),
        is_active: true,
        embedding_model: None,
        created_at: now,
        updated_at: now,
    }
}

async fn fresh(backend: Backend) -> (TestDb, Arc<dyn ToolStore>) {
    let db = TestDb::new(backend).await;
    let store = db.open(DIMS).await;
    (db, store)
}

/// Deterministic pseudo-random vectors (a linear congruential generator).
fn vectors(count: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            (0..DIMS)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// A tool with its score, as the searches below return them.
#[derive(Debug)]
struct Scored {
    tool: Tool,
    score: f64,
}

/// The store's ranked ids with their tools as served (through the tool cache), as the
/// registry answers a search.
#[async_trait::async_trait]
trait SearchWithTools {
    async fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>>;
    async fn text_search(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>>;
}

#[async_trait::async_trait]
impl SearchWithTools for Arc<dyn ToolStore> {
    async fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>> {
        let ranked = self.nearest_ids(query, model, k, filter).await?;
        with_tools(self, ranked).await
    }

    async fn text_search(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>> {
        let ranked = self.text_search_ids(query, k, filter).await?;
        with_tools(self, ranked).await
    }
}

async fn with_tools(
    store: &Arc<dyn ToolStore>,
    ranked: Vec<(Uuid, f64)>,
) -> StoreResult<Vec<Scored>> {
    let ids: Vec<Uuid> = ranked.iter().map(|(id, _)| *id).collect();
    let served = store.served_many(&ids).await?;
    Ok(ranked
        .into_iter()
        .filter_map(|(id, score)| {
            let tool = served.iter().find(|tool| tool.id() == id)?;
            Some(Scored {
                tool: tool.decode().expect("a served tool decodes"),
                score,
            })
        })
        .collect())
}

const ALL: Page = Page {
    limit: 500,
    offset: 0,
};

async fn crud_round_trip(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let original = tool("alpha", "text", &["a", "b"], "First tool");
    store.create(&original).await.unwrap();
    assert_eq!(
        store.get(original.id).await.unwrap().as_ref(),
        Some(&original)
    );
    assert_eq!(
        store.get_by_name("alpha").await.unwrap().as_ref(),
        Some(&original)
    );
    assert_eq!(store.get(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(
        store.get_by_name("ALPHA").await.unwrap(),
        None,
        "names are case-sensitive"
    );

    let mut changed = original.clone();
    changed.name = "alpha2".into();
    changed.description = "Changed".into();
    changed.tags = vec!["c".into()];
    changed.output_schema = Some(json!({"type": "object"}));
    changed.implementation = Implementation::Builtin {
        handler: "calculator".into(),
    };
    changed.updated_at = now_micros();
    assert!(store.update(&changed).await.unwrap());
    assert_eq!(store.get(original.id).await.unwrap(), Some(changed.clone()));
    assert_eq!(store.get_by_name("alpha").await.unwrap(), None);

    let mut ghost = changed.clone();
    ghost.id = Uuid::new_v4();
    assert!(!store.update(&ghost).await.unwrap());

    assert!(store.delete(original.id).await.unwrap());
    assert!(!store.delete(original.id).await.unwrap());
    assert_eq!(store.get(original.id).await.unwrap(), None);
    assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 0);
}

async fn updates_keep_the_replaced_definitions(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let first = tool("versioned", "x", &["a"], "First definition");
    store.create(&first).await.unwrap();
    store
        .set_embedding(first.id, &[1.0; DIMS], "m")
        .await
        .unwrap();
    assert!(store.versions(first.id).await.unwrap().is_empty());

    let mut second = first.clone();
    second.version = "1.1.0".into();
    second.description = "Second definition".into();
    second.input_schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    second.updated_at = now_micros();
    assert!(store.update(&second).await.unwrap());
    // Switching a tool off or re-storing the same definition is not a new version.
    store.set_active(first.id, false).await.unwrap();
    let mut same_again = second.clone();
    same_again.is_active = false;
    same_again.updated_at = now_micros();
    assert!(store.update(&same_again).await.unwrap());
    let mut third = same_again.clone();
    third.version = "2.0.0".into();
    third.output_schema = Some(json!({"type": "string"}));
    third.updated_at = now_micros();
    assert!(store.update(&third).await.unwrap());

    let history = store.versions(first.id).await.unwrap();
    let described: Vec<(&str, &str)> = history
        .iter()
        .map(|v| {
            (
                v.definition.version.as_str(),
                v.definition.description.as_str(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("1.1.0", "Second definition"),
            ("1.0.0", "First definition")
        ]
    );
    let oldest = &history[1];
    assert_eq!(oldest.definition.name, first.name);
    assert_eq!(oldest.definition.tags, first.tags);
    assert_eq!(oldest.definition.input_schema, first.input_schema);
    assert_eq!(oldest.definition.output_schema, None);
    assert_eq!(oldest.definition.implementation, first.implementation);
    assert_eq!(oldest.definition.metadata, first.metadata);
    assert_eq!(oldest.embedding_model.as_deref(), Some("m"));
    assert_eq!(oldest.changed_at, second.updated_at);
    assert_eq!(history[0].embedding_model, None);

    assert!(store.versions(Uuid::new_v4()).await.unwrap().is_empty());
    store.delete(first.id).await.unwrap();
    assert!(store.versions(first.id).await.unwrap().is_empty());
}

async fn duplicate_names_are_refused(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    store.create(&tool("same", "x", &[], "one")).await.unwrap();
    let err = store
        .create(&tool("same", "y", &[], "two"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate(ref n) if n == "same"),
        "{err:?}"
    );

    let mut other = tool("other", "x", &[], "three");
    store.create(&other).await.unwrap();
    other.name = "same".into();
    let err = store.update(&other).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 2);
}

async fn batches_are_stored_all_or_nothing(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let batch: Vec<Tool> = (0..5)
        .map(|i| tool(&format!("batch_{i}"), "b", &[], "batched tool"))
        .collect();
    store.create_many(&batch).await.unwrap();
    let listed = store.list(&ToolFilter::default(), ALL).await.unwrap();
    assert_eq!(listed.total, 5);
    assert_eq!(store.get(batch[3].id).await.unwrap().unwrap(), batch[3]);
    assert_eq!(
        store
            .text_search_ids("batched", 10, &ToolFilter::default())
            .await
            .unwrap()
            .len(),
        5
    );

    // A taken name in the middle: the error names it, and no tool of the batch is stored.
    let refused = vec![
        tool("fresh_a", "b", &[], "v"),
        tool("batch_2", "b", &[], "v"),
        tool("fresh_b", "b", &[], "v"),
    ];
    let err = store.create_many(&refused).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate(ref n) if n == "batch_2"),
        "{err:?}"
    );
    assert!(store.get_by_name("fresh_a").await.unwrap().is_none());
    assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 5);

    // Embeddings in one call: a tool that does not exist is reported, the others stored.
    let vecs = vectors(3, 5);
    let unknown = Uuid::new_v4();
    let written = store
        .set_embeddings(
            "test-model",
            &[
                (batch[0].id, &vecs[0]),
                (unknown, &vecs[1]),
                (batch[4].id, &vecs[2]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(written, [true, false, true]);
    for (id, vector) in [(batch[0].id, &vecs[0]), (batch[4].id, &vecs[2])] {
        let hit = &store
            .nearest(vector, "test-model", 1, &ToolFilter::default())
            .await
            .unwrap()[0];
        assert_eq!(hit.tool.id, id);
        assert_eq!(hit.tool.embedding_model.as_deref(), Some("test-model"));
    }
    let counts = store.embedding_counts("test-model").await.unwrap();
    assert_eq!(counts.indexed, 2);

    // One vector of the wrong dimension refuses the whole call.
    let short = vec![1.0; DIMS - 1];
    assert!(
        store
            .set_embeddings(
                "test-model",
                &[(batch[1].id, &vecs[1]), (batch[2].id, &short)]
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.embedding_counts("test-model").await.unwrap().indexed,
        2
    );
}

async fn listing_filters_pages_and_counts(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    for i in 0..12 {
        let category = if i % 3 == 0 { "math" } else { "text" };
        let tags: &[&str] = match i % 4 {
            0 => &["red"],
            1 => &["blue", "green"],
            2 => &["green"],
            _ => &[],
        };
        let mut t = tool(&format!("tool_{i:02}"), category, tags, "desc");
        t.is_active = i != 5;
        store.create(&t).await.unwrap();
    }
    let everything = store.list(&ToolFilter::default(), ALL).await.unwrap();
    assert_eq!(everything.total, 12);
    let names: Vec<_> = everything.items.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "listing is ordered by name");

    let page = store
        .list(
            &ToolFilter::default(),
            Page {
                limit: 5,
                offset: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 12);
    assert_eq!(
        page.items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["tool_10", "tool_11"]
    );
    let beyond = store
        .list(
            &ToolFilter::default(),
            Page {
                limit: 5,
                offset: 50,
            },
        )
        .await
        .unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 12);

    let math = ToolFilter {
        category: Some("math".into()),
        ..ToolFilter::default()
    };
    assert_eq!(store.count(&math).await.unwrap(), 4);

    let any_of = ToolFilter {
        tags: vec!["red".into(), "blue".into()],
        ..ToolFilter::default()
    };
    let tagged = store.list(&any_of, ALL).await.unwrap();
    assert_eq!(tagged.total, 6, "tags match any-of");
    assert!(
        tagged
            .items
            .iter()
            .all(|t| t.tags.contains(&"red".to_string()) || t.tags.contains(&"blue".to_string()))
    );

    let combined = ToolFilter {
        category: Some("text".into()),
        tags: vec!["green".into()],
        active_only: true,
    };
    let found = store.list(&combined, ALL).await.unwrap();
    // green: i%4 in {1,2} → 1,2,5,6,9,10; text: i%3 != 0 → 1,2,5,10; active: drop 5.
    assert_eq!(
        found
            .items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["tool_01", "tool_02", "tool_10"]
    );
    assert_eq!(found.total, 3);
}

async fn activation_changes_visibility(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let t = tool("switch", "x", &[], "A switchable tool");
    store.create(&t).await.unwrap();
    store.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    let off = store.set_active(t.id, false).await.unwrap().unwrap();
    assert!(!off.is_active);
    assert!(off.updated_at >= t.updated_at);
    assert_eq!(store.count(&active).await.unwrap(), 0);
    assert!(
        store
            .nearest(&[1.0; DIMS], "m", 5, &active)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .text_search("switchable", 5, &active)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .nearest(&[1.0; DIMS], "m", 5, &ToolFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let on = store.set_active(t.id, true).await.unwrap().unwrap();
    assert!(on.is_active);
    assert_eq!(
        store
            .nearest(&[1.0; DIMS], "m", 5, &active)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .set_active(Uuid::new_v4(), true)
            .await
            .unwrap()
            .is_none()
    );
}

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
        vec!["c_tool", "b_tool"],
        "missing first, then stale"
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

fn execution(tool: &Tool, status: ExecutionStatus, duration_ms: f64, ago_s: i64) -> Execution {
    let started = now_micros() - Duration::seconds(ago_s);
    Execution {
        id: Uuid::new_v4(),
        tool_id: tool.id,
        tool_name: tool.name.clone(),
        status,
        arguments: json!({"q": "x", "n": [1, 2]}),
        result: (status == ExecutionStatus::Success).then(|| json!({"ok": true})),
        error: (status != ExecutionStatus::Success).then(|| "it failed".to_string()),
        duration_ms,
        started_at: started,
        completed_at: started + Duration::microseconds((duration_ms * 1000.0) as i64),
        note: None,
    }
}

async fn executions_and_stats(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tool("exec_a", "x", &[], "a");
    let b = tool("exec_b", "x", &[], "b");
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();

    let empty = store.tool_stats(a.id).await.unwrap();
    assert_eq!(
        (empty.calls, empty.success_rate, empty.p95_duration_ms),
        (0, None, None)
    );

    let durations = [10.0, 20.0, 30.0, 40.0, 1000.0];
    let statuses = [
        ExecutionStatus::Success,
        ExecutionStatus::Success,
        ExecutionStatus::Error,
        ExecutionStatus::Success,
        ExecutionStatus::Timeout,
    ];
    let mut records: Vec<Execution> = durations
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (d, s))| execution(&a, s, *d, 100 - i as i64 * 10))
        .collect();
    records.push(execution(&b, ExecutionStatus::Success, 5.0, 1));
    store.record_executions(&records).await.unwrap();
    // Recording the same batch again (a retry) adds nothing.
    store.record_executions(&records).await.unwrap();
    store.record_executions(&[]).await.unwrap();

    let all = store
        .list_executions(
            &ExecutionFilter::default(),
            Page {
                limit: 3,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.items[0], records[5], "newest first, stored exactly");

    let of_a = ExecutionFilter {
        tool_id: Some(a.id),
        ..ExecutionFilter::default()
    };
    assert_eq!(store.list_executions(&of_a, ALL).await.unwrap().total, 5);
    let errors = ExecutionFilter {
        tool_id: Some(a.id),
        status: Some(ExecutionStatus::Error),
        ..ExecutionFilter::default()
    };
    let errs = store.list_executions(&errors, ALL).await.unwrap();
    assert_eq!(errs.total, 1);
    assert_eq!(errs.items[0].error.as_deref(), Some("it failed"));
    let recent = ExecutionFilter {
        since: Some(now_micros() - Duration::seconds(65)),
        ..ExecutionFilter::default()
    };
    // Started 100, 90, 80, 70, 60 and 1 seconds ago: two are within 65 s.
    assert_eq!(store.list_executions(&recent, ALL).await.unwrap().total, 2);

    let stats = store.tool_stats(a.id).await.unwrap();
    assert_eq!(stats.calls, 5);
    assert_eq!(stats.successes, 3);
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.success_rate, Some(0.6));
    assert!((stats.mean_duration_ms.unwrap() - 220.0).abs() < 1e-9);
    assert!((stats.p50_duration_ms.unwrap() - 30.0).abs() < 1e-9);
    // Linear interpolation between 40 and 1000 at 0.95 * 4 = 3.8.
    assert!((stats.p95_duration_ms.unwrap() - 808.0).abs() < 1e-9);
    assert_eq!(stats.last_called_at, Some(records[4].started_at));

    // History outlives the tool.
    store.delete(a.id).await.unwrap();
    assert_eq!(store.tool_stats(a.id).await.unwrap().calls, 5);
}

async fn calls_are_counted_per_interval(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tool("series_a", "x", &[], "a");
    let b = tool("series_b", "x", &[], "b");
    store.create_many(&[a.clone(), b.clone()]).await.unwrap();
    let minute = Duration::seconds(60);
    let now = now_micros();
    let since =
        now - Duration::minutes(10) - Duration::microseconds(now.timestamp_micros() % 60_000_000);
    let at = |tool: &Tool, status, duration_ms, offset: Duration| {
        let mut record = execution(tool, status, duration_ms, 0);
        record.started_at = since + offset;
        record.completed_at = record.started_at;
        record
    };
    store
        .record_executions(&[
            at(&a, ExecutionStatus::Success, 30.0, Duration::seconds(59)),
            at(&a, ExecutionStatus::Error, 10.0, Duration::zero()),
            at(&a, ExecutionStatus::Success, 20.0, Duration::seconds(30)),
            at(&a, ExecutionStatus::Timeout, 100.0, Duration::seconds(125)),
            // Before the series starts: not counted.
            at(
                &a,
                ExecutionStatus::Success,
                1.0,
                -Duration::microseconds(1),
            ),
            at(&b, ExecutionStatus::Success, 40.0, Duration::seconds(1)),
        ])
        .await
        .unwrap();

    let of_a = store.call_buckets(Some(a.id), since, minute).await.unwrap();
    assert_eq!(of_a.len(), 2, "only intervals with calls: {of_a:?}");
    assert_eq!(of_a[0].start, since);
    assert_eq!((of_a[0].calls, of_a[0].errors, of_a[0].timeouts), (3, 1, 0));
    assert!((of_a[0].p50_duration_ms.unwrap() - 20.0).abs() < 1e-9);
    // Linear interpolation between 20 and 30 at 0.95 * 2 = 1.9.
    assert!((of_a[0].p95_duration_ms.unwrap() - 29.0).abs() < 1e-9);
    assert_eq!(of_a[1].start, since + minute * 2);
    assert_eq!((of_a[1].calls, of_a[1].errors, of_a[1].timeouts), (1, 0, 1));
    assert_eq!(of_a[1].p50_duration_ms, Some(100.0));

    let every_tool = store.call_buckets(None, since, minute).await.unwrap();
    let calls: Vec<(DateTime<Utc>, u64)> = every_tool.iter().map(|b| (b.start, b.calls)).collect();
    assert_eq!(calls, [(since, 4), (since + minute * 2, 1)]);
    assert!((every_tool[0].p50_duration_ms.unwrap() - 25.0).abs() < 1e-9);

    let later = since + Duration::minutes(5);
    assert!(
        store
            .call_buckets(None, later, minute)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn data_survives_reopening(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open(DIMS).await;
    let t = tool("durable", "x", &["keep"], "Stays after a restart");
    store.create(&t).await.unwrap();
    store.set_embedding(t.id, &[0.25; DIMS], "m").await.unwrap();
    let run = execution(&t, ExecutionStatus::Success, 3.5, 0);
    store
        .record_executions(std::slice::from_ref(&run))
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let reopened = db.open(DIMS).await;
    let mut expected = t.clone();
    expected.embedding_model = Some("m".into());
    assert_eq!(reopened.get(t.id).await.unwrap(), Some(expected));
    let hits = reopened
        .nearest(&[1.0; DIMS], "m", 3, &ToolFilter::default())
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    assert_eq!(
        reopened
            .text_search("restart", 3, &ToolFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let runs = reopened
        .list_executions(&ExecutionFilter::default(), ALL)
        .await
        .unwrap();
    assert_eq!(runs.items, vec![run]);
    reopened.ping().await.unwrap();
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

/// Waits for one change signal, then swallows any that arrive right after it.
async fn expect_change(changes: &mut tokio::sync::broadcast::Receiver<()>, after: &str) {
    let signal = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv()).await;
    assert!(
        matches!(signal, Ok(Ok(()))),
        "no change announced after {after}: {signal:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    while changes.try_recv().is_ok() {}
}

async fn expect_quiet(changes: &mut tokio::sync::broadcast::Receiver<()>, after: &str) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        changes.try_recv().is_err(),
        "a change was announced after {after}"
    );
}

async fn catalogue_changes_are_announced(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let mut changes = store.catalogue_changes();
    // The PostgreSQL listener connects in the background before the first change.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut t = tool(
        "announce.me",
        "general",
        &[],
        "A tool whose changes are announced",
    );
    store.create(&t).await.unwrap();
    expect_change(&mut changes, "create").await;
    store.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    expect_quiet(&mut changes, "storing an embedding").await;
    t.description = "Edited".into();
    t.updated_at = now_micros();
    store.update(&t).await.unwrap();
    expect_change(&mut changes, "update").await;
    store.set_active(t.id, false).await.unwrap();
    expect_change(&mut changes, "deactivate").await;
    store.delete(t.id).await.unwrap();
    expect_change(&mut changes, "delete").await;
    store.delete(t.id).await.unwrap();
    expect_quiet(&mut changes, "deleting a missing tool").await;
}

/// Two stores on one database are two replicas: each hears the other's changes, and its
/// full-text index follows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_hear_each_others_changes() {
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

/// The one tool served under `id` (through the tool cache), decoded.
async fn served(store: &Arc<dyn ToolStore>, id: Uuid) -> Option<Tool> {
    let served = store.served_many(&[id]).await.unwrap();
    assert!(served.len() <= 1);
    served.first().map(|tool| tool.decode().unwrap())
}

/// The tool served under `name`, as a call finds it, decoded.
async fn served_named(store: &Arc<dyn ToolStore>, name: &str) -> Option<Tool> {
    let served = store.served_by_name(name).await.unwrap();
    served.map(|tool| tool.decode().unwrap())
}

/// Tools are served from a cache, by id and by name; each change is served from the next
/// read on.
async fn served_tools_follow_every_change(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let mut t = tool("cached.tool", "general", &["x"], "Served from memory");
    let other = tool("other.tool", "general", &[], "Never changed");
    assert_eq!(served_named(&store, "cached.tool").await, None);
    store.create(&t).await.unwrap();
    store.create(&other).await.unwrap();
    // Read twice: the second read comes from the cache.
    for _ in 0..2 {
        assert_eq!(served(&store, t.id).await.as_ref(), Some(&t));
        assert_eq!(served_named(&store, "cached.tool").await.as_ref(), Some(&t));
    }
    let both = store
        .served_many(&[other.id, Uuid::new_v4(), t.id])
        .await
        .unwrap();
    let names: Vec<&str> = both.iter().map(|tool| tool.name()).collect();
    assert_eq!(
        names,
        vec!["other.tool", "cached.tool"],
        "in the ids' order"
    );

    store.set_embedding(t.id, &[1.0; DIMS], "m").await.unwrap();
    t.embedding_model = Some("m".into());
    assert_eq!(served(&store, t.id).await.as_ref(), Some(&t));

    t.description = "Edited".into();
    t.embedding_model = None;
    t.updated_at = now_micros();
    store.update(&t).await.unwrap();
    assert_eq!(served(&store, t.id).await.as_ref(), Some(&t));
    assert_eq!(served_named(&store, "cached.tool").await.as_ref(), Some(&t));

    t.name = "renamed.tool".into();
    t.updated_at = now_micros();
    store.update(&t).await.unwrap();
    assert_eq!(served_named(&store, "cached.tool").await, None);
    assert_eq!(
        served_named(&store, "renamed.tool").await.as_ref(),
        Some(&t)
    );

    let switched_off = store.set_active(t.id, false).await.unwrap().unwrap();
    assert_eq!(served(&store, t.id).await.as_ref(), Some(&switched_off));
    assert_eq!(
        served_named(&store, "renamed.tool").await.as_ref(),
        Some(&switched_off)
    );
    let everything = store
        .list_served(&ToolFilter::default(), ALL)
        .await
        .unwrap();
    assert_eq!(everything.total, 2);
    let listed: Vec<Tool> = everything
        .items
        .iter()
        .map(|tool| tool.decode().unwrap())
        .collect();
    assert_eq!(listed, vec![other.clone(), switched_off], "in name order");

    store.delete(t.id).await.unwrap();
    assert_eq!(served(&store, t.id).await, None);
    assert_eq!(served_named(&store, "renamed.tool").await, None);
    assert_eq!(served(&store, other.id).await.as_ref(), Some(&other));
    assert_eq!(
        served_named(&store, "other.tool").await.as_ref(),
        Some(&other)
    );
}

/// Each replica serves tools from its own cache, and drops a tool when another replica
/// changes it or stores its embedding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_serve_each_others_changes() {
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

/// With vectors in each replica's memory, a replica searches what another one stored,
/// switched off, edited or deleted, once the notification arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_search_each_others_vectors_in_memory() {
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

/// Polls `current` until it gives `expected` (notifications arrive asynchronously), for up
/// to five seconds.
async fn eventually_equal<T, F, Fut>(mut current: F, expected: T, what: &str)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut last = current().await;
    for _ in 0..100 {
        if last == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        last = current().await;
    }
    assert_eq!(last, expected, "{what}");
}

/// The ids of the active tools nearest to the all-ones vector of model `m`.
async fn nearest_active(store: &Arc<dyn ToolStore>) -> Vec<Uuid> {
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    store
        .nearest_ids(&[1.0; DIMS], "m", 5, &active)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn updates_are_written_only_over_the_row_expected(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let read = tool("guarded", "x", &["a"], "As first read");
    store.create(&read).await.unwrap();
    let mut decided = read.clone();
    decided.version = "1.1.0".into();
    decided.description = "Decided on the first read".into();
    decided.updated_at = now_micros();

    // Switched off, given a vector, or updated since the read: the row is not the one the
    // change was decided on, and nothing is written.
    let deactivated = store.set_active(read.id, false).await.unwrap().unwrap();
    assert_eq!(
        store.update_if(&decided, Some(&read)).await.unwrap(),
        Updated::Changed
    );
    assert_eq!(store.get(read.id).await.unwrap(), Some(deactivated.clone()));
    assert!(store.versions(read.id).await.unwrap().is_empty());
    store
        .set_embedding(read.id, &[1.0; DIMS], "m")
        .await
        .unwrap();
    assert_eq!(
        store.update_if(&decided, Some(&deactivated)).await.unwrap(),
        Updated::Changed
    );
    let embedded = store.get(read.id).await.unwrap().unwrap();
    assert_eq!(embedded.embedding_model.as_deref(), Some("m"));
    let mut other = embedded.clone();
    other.version = "1.0.1".into();
    other.metadata = json!({"owner": "someone else"});
    other.updated_at = now_micros();
    assert_eq!(
        store.update_if(&other, Some(&embedded)).await.unwrap(),
        Updated::Written
    );
    assert_eq!(
        store.update_if(&decided, Some(&embedded)).await.unwrap(),
        Updated::Changed
    );
    assert_eq!(store.get(read.id).await.unwrap(), Some(other.clone()));
    let history: Vec<String> = store
        .versions(read.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.definition.version)
        .collect();
    assert_eq!(history, vec!["1.0.0"]);

    // Decided on the row as it is, the change is written.
    let mut redecided = other.clone();
    redecided.version = "1.1.0".into();
    redecided.description = "Decided on the current row".into();
    redecided.updated_at = now_micros();
    assert_eq!(
        store.update_if(&redecided, Some(&other)).await.unwrap(),
        Updated::Written
    );
    assert_eq!(store.get(read.id).await.unwrap(), Some(redecided.clone()));
    let mut ghost = redecided.clone();
    ghost.id = Uuid::new_v4();
    assert_eq!(
        store.update_if(&ghost, Some(&redecided)).await.unwrap(),
        Updated::NotFound
    );
}

/// A tool definition of the built-in `string_uppercase`, as an operator registers it.
fn new_tool(name: &str) -> NewTool {
    NewTool {
        name: name.into(),
        description: "Shouts the text back".into(),
        category: None,
        tags: Vec::new(),
        input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        output_schema: None,
        version: None,
        implementation: Implementation::Builtin {
            handler: "string_uppercase".into(),
        },
        metadata: None,
        is_active: true,
        upsert: false,
    }
}

/// Sixteen updates with rising versions race for one tool, in each of ten rounds. Each
/// version is checked against the row as written: the tool ends at the highest version
/// acknowledged, and every acknowledged definition is in its history, in rising order.
async fn concurrent_updates_never_lower_the_version(backend: Backend) {
    const ROUNDS: usize = 10;
    const WRITERS: u64 = 16;
    let db = TestDb::new(backend).await;
    let registry = build_registry(&db.settings()).await.unwrap();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let id = registry
            .register(new_tool(&format!("raced_{round}")))
            .await
            .unwrap()
            .tool()
            .id;
        let start = Arc::new(Barrier::new(WRITERS as usize));
        let mut writers = JoinSet::new();
        for patch in 1..=WRITERS {
            let (registry, start) = (registry.clone(), start.clone());
            writers.spawn(async move {
                let patch_version = ToolPatch {
                    version: Some(format!("1.0.{patch}")),
                    metadata: Some(json!({"writer": patch})),
                    ..ToolPatch::default()
                };
                start.wait().await;
                match registry.update(id, patch_version).await {
                    Ok(_) => Some(patch),
                    Err(err) if err.invalid_field() == Some("version") => None,
                    Err(err) => panic!("update {patch}: {err}"),
                }
            });
        }
        let mut acknowledged: Vec<u64> = writers.join_all().await.into_iter().flatten().collect();
        acknowledged.sort_unstable();
        let current = registry.get(id).await.unwrap();
        let history = registry.versions(id).await.unwrap();
        // Oldest first, ending with the version in force.
        let mut seen: Vec<u64> = history
            .versions
            .iter()
            .rev()
            .map(|v| &v.definition.version)
            .chain([&current.version])
            .map(|v| v.strip_prefix("1.0.").unwrap().parse().unwrap())
            .collect();
        let rising = seen.windows(2).all(|pair| pair[0] < pair[1]);
        let highest = acknowledged.last().copied();
        let ends_highest = highest.is_some_and(|h| current.version == format!("1.0.{h}"));
        seen.remove(0);
        seen.sort_unstable();
        if !(rising && ends_highest && seen == acknowledged) {
            lost.push((round, current.version, acknowledged));
        }
    }
    assert!(
        lost.is_empty(),
        "updates lost in {} of {ROUNDS} rounds (round, version in force, acknowledged): {lost:?}",
        lost.len()
    );
}

/// An update that does not name `is_active` races a deactivation, forty times: the tool
/// stays switched off whichever is written first.
async fn an_update_keeps_a_concurrent_deactivation(backend: Backend) {
    const RACES: u64 = 40;
    let db = TestDb::new(backend).await;
    let registry = build_registry(&db.settings()).await.unwrap();
    let id = registry
        .register(new_tool("switched"))
        .await
        .unwrap()
        .tool()
        .id;
    let mut reactivated = 0;
    for race in 0..RACES {
        registry.set_active(id, true).await.unwrap();
        let start = Arc::new(Barrier::new(2));
        let update = {
            let (registry, start) = (registry.clone(), start.clone());
            tokio::spawn(async move {
                let patch = ToolPatch {
                    metadata: Some(json!({"race": race})),
                    ..ToolPatch::default()
                };
                start.wait().await;
                registry.update(id, patch).await.unwrap();
            })
        };
        start.wait().await;
        registry.set_active(id, false).await.unwrap();
        update.await.unwrap();
        let tool = registry.get(id).await.unwrap();
        assert_eq!(tool.metadata, json!({"race": race}));
        if tool.is_active {
            reactivated += 1;
        }
    }
    assert_eq!(
        reactivated, 0,
        "an update switched a deactivated tool back on in {reactivated} of {RACES} races"
    );
}

/// A NUL in a tool's answer or error (valid JSON and UTF-8) must not make the record, or
/// the batch it is written with, unstorable. The embedded store keeps it exactly; PostgreSQL,
/// which cannot hold U+0000, replaces it and says so in the note.
async fn executions_keep_what_tools_return_or_say_what_changed(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let t = tool("nul_answers", "x", &[], "answers with NULs");
    store.create(&t).await.unwrap();
    let before = execution(&t, ExecutionStatus::Success, 1.0, 3);
    let mut with_nul = execution(&t, ExecutionStatus::Success, 1.0, 2);
    with_nul.result = Some(json!({"x": "a\u{0}b", "k\u{0}": ["\u{0}"]}));
    let mut error_with_nul = execution(&t, ExecutionStatus::Error, 1.0, 1);
    error_with_nul.error = Some("upstream said \u{0} and stopped".into());
    let after = execution(&t, ExecutionStatus::Success, 1.0, 0);
    let batch = [
        before.clone(),
        with_nul.clone(),
        error_with_nul.clone(),
        after.clone(),
    ];
    store.record_executions(&batch).await.unwrap();

    for plain in [&before, &after] {
        assert_eq!(
            store.get_execution(plain.id).await.unwrap().as_ref(),
            Some(plain)
        );
    }
    let stored = store.get_execution(with_nul.id).await.unwrap().unwrap();
    let stored_error = store
        .get_execution(error_with_nul.id)
        .await
        .unwrap()
        .unwrap();
    match &stored.note {
        None => {
            assert_eq!(stored, with_nul, "stored exactly, or altered with a note");
            assert_eq!(stored_error, error_with_nul);
        }
        Some(note) => {
            assert!(note.contains("NUL") && note.contains("result"), "{note}");
            assert_eq!(
                stored.result,
                Some(json!({"x": "a\u{FFFD}b", "k\u{FFFD}": ["\u{FFFD}"]}))
            );
            let error_note = stored_error.note.as_deref().unwrap_or_default();
            assert!(error_note.contains("error"), "{error_note}");
            assert_eq!(
                stored_error.error.as_deref(),
                Some("upstream said \u{FFFD} and stopped")
            );
            assert_eq!(
                (stored.id, stored.arguments, stored.status),
                (with_nul.id, with_nul.arguments, with_nul.status)
            );
        }
    }
    assert_eq!(store.get_execution(Uuid::new_v4()).await.unwrap(), None);
    let all = store
        .list_executions(&ExecutionFilter::default(), ALL)
        .await
        .unwrap();
    assert_eq!(all.total, 4);
}

/// Makes the database refuse records whose result (or arguments) mention "poison".
async fn refuse_poisoned_records(db: &TestDb) {
    use sqlx::Connection;
    match db.database_url() {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
                   IF NEW.result::text LIKE '%poison%' OR NEW.arguments::text LIKE '%poison%' THEN \
                     RAISE EXCEPTION 'poisoned record'; \
                   END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_executions \
                   FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        None => {
            let file = db.data_dir().join("registry.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", file.display()))
                .await
                .unwrap();
            sqlx::raw_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_executions \
                 WHEN NEW.result LIKE '%poison%' OR NEW.arguments LIKE '%poison%' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned record'); END;",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

/// One record the database refuses is found by splitting its batch and stored without what
/// was refused, with the reason; the records around it are stored whole. Before, the batch
/// was retried for ever and nothing was recorded again.
async fn a_record_the_database_refuses_does_not_block_the_others(backend: Backend) {
    use tool_registry::{
        config::ExecutionRecording,
        registry::recorder::{ExecutionRecorder, RecorderOptions},
    };
    let (db, store) = fresh(backend).await;
    refuse_poisoned_records(&db).await;
    let t = tool("sometimes_poisoned", "x", &[], "answers badly");
    store.create(&t).await.unwrap();
    let recorder = ExecutionRecorder::start(
        store.clone(),
        RecorderOptions {
            capacity: 64,
            mode: ExecutionRecording::Deferred,
            retry_for: std::time::Duration::from_secs(1),
        },
    );
    let good: Vec<Execution> = (0..3)
        .map(|i| execution(&t, ExecutionStatus::Success, 1.0, 10 - i))
        .collect();
    let mut bad_result = execution(&t, ExecutionStatus::Success, 1.0, 5);
    bad_result.result = Some(json!({"text": "poison"}));
    let mut bad_everything = execution(&t, ExecutionStatus::Error, 1.0, 4);
    bad_everything.arguments = json!({"q": "poison"});
    bad_everything.result = Some(json!("poison"));
    for record in [&good[0], &bad_result, &good[1], &bad_everything, &good[2]] {
        recorder.record(record.clone()).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(20), recorder.flush())
        .await
        .expect("the writer must get past a refused record");

    for record in &good {
        assert_eq!(
            store.get_execution(record.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    let reduced = store.get_execution(bad_result.id).await.unwrap().unwrap();
    assert_eq!(reduced.result, None);
    assert_eq!(reduced.arguments, bad_result.arguments);
    let note = reduced.note.unwrap();
    assert!(
        note.contains("without its result") && note.contains("poisoned record"),
        "{note}"
    );
    let bare = store
        .get_execution(bad_everything.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bare.result, bare.arguments), (None, json!({})));
    assert_eq!(bare.status, ExecutionStatus::Error);
    assert!(bare.note.unwrap().contains("arguments"));

    let health = recorder.health();
    assert_eq!(
        (health.written, health.reduced, health.lost, health.backlog),
        (5, 2, 0, 0)
    );
    assert!(!health.failing, "the last write succeeded");
    assert!(health.last_error.unwrap().contains("poisoned record"));
}
