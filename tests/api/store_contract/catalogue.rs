//! The catalogue: tools written, read, listed, switched, versioned and announced.

use super::*;

crate::on_both_backends!(
    crud_round_trip,
    updates_keep_the_replaced_definitions,
    duplicate_names_are_refused,
    batches_are_stored_all_or_nothing,
    listing_filters_pages_and_counts,
    activation_changes_visibility,
    data_survives_reopening,
    catalogue_changes_are_announced,
    served_tools_follow_every_change,
    updates_are_written_only_over_the_row_expected,
    concurrent_updates_never_lower_the_version,
    an_update_keeps_a_concurrent_deactivation,
    writes_together_are_all_or_nothing,
    the_indexed_active_tools_follow_every_change,
);

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
    let tags: [&[&str]; 3] = [&[], &["one"], &["two", "three"]];
    let batch: Vec<Tool> = (0..5)
        .map(|i| {
            let mut tool = tool(&format!("batch_{i}"), "b", tags[i % 3], "batched tool");
            if i % 2 == 1 {
                tool.output_schema = Some(json!({"type": "object"}));
            }
            tool
        })
        .collect();
    store.create_many(&batch).await.unwrap();
    let listed = store.list(&ToolFilter::default(), ALL).await.unwrap();
    assert_eq!(listed.total, 5);
    for stored in &batch {
        assert_eq!(&store.get(stored.id).await.unwrap().unwrap(), stored);
    }
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

    // A name twice in the batch itself: refused the same way.
    let repeated = vec![
        tool("fresh_c", "b", &[], "v"),
        tool("fresh_d", "b", &[], "v"),
        tool("fresh_c", "b", &[], "w"),
    ];
    let err = store.create_many(&repeated).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate(ref n) if n == "fresh_c"),
        "{err:?}"
    );
    assert!(store.get_by_name("fresh_d").await.unwrap().is_none());
    assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 5);

    // Embeddings in one call: a tool that does not exist is reported, the others stored.
    let vecs = vectors(3, 5);
    let unknown = Uuid::new_v4();
    let written = store
        .set_embeddings(
            "test-model",
            &[
                document_only(batch[0].id, &vecs[0]),
                document_only(unknown, &vecs[1]),
                document_only(batch[4].id, &vecs[2]),
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

    // A tool given twice in one call keeps the vector given last.
    let written = store
        .set_embeddings(
            "test-model",
            &[
                document_only(batch[3].id, &vecs[0]),
                document_only(batch[3].id, &vecs[1]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(written, [true, true]);
    let hit = &store
        .nearest(&vecs[1], "test-model", 1, &ToolFilter::default())
        .await
        .unwrap()[0];
    assert_eq!(hit.tool.id, batch[3].id);
    assert!(hit.score > 0.99, "{}", hit.score);
    let kept = store
        .embedding(batch[3].id, "test-model")
        .await
        .unwrap()
        .unwrap();
    assert!(cosine(&kept, &vecs[1]) > 0.999);
    assert_eq!(
        store.embedding_counts("test-model").await.unwrap().indexed,
        3
    );

    // One vector of the wrong dimension refuses the whole call.
    let short = vec![1.0; DIMS - 1];
    assert!(
        store
            .set_embeddings(
                "test-model",
                &[
                    document_only(batch[1].id, &vecs[1]),
                    document_only(batch[2].id, &short)
                ]
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.embedding_counts("test-model").await.unwrap().indexed,
        3
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

/// `write_together`: new tools and replacements commit as one, or nothing is written when a
/// replaced row changed since it was read or a new name is taken.
async fn writes_together_are_all_or_nothing(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let (a, b) = (
        tool("keep_a", "t", &[], "first"),
        tool("keep_b", "t", &[], "second"),
    );
    let mut changes = store.catalogue_changes();
    store.create_many(&[a.clone(), b.clone()]).await.unwrap();
    expect_change(&mut changes, "creating two tools").await;
    let mut edited_a = a.clone();
    edited_a.description = "first, edited".into();
    edited_a.updated_at = now_micros();
    let mut b_off = b.clone();
    b_off.is_active = false;
    let fresh_c = tool("fresh_c", "t", &[], "third");
    let replacements = |b_read: &Tool| {
        vec![
            Replacement {
                tool: edited_a.clone(),
                replaces: a.clone(),
            },
            Replacement {
                tool: b_off.clone(),
                replaces: b_read.clone(),
            },
        ]
    };
    let unchanged = |store: Arc<dyn ToolStore>| async move {
        assert!(store.get_by_name("fresh_c").await.unwrap().is_none());
        assert_eq!(store.get(a.id).await.unwrap().unwrap().description, "first");
        assert!(store.versions(a.id).await.unwrap().is_empty());
        assert_eq!(store.count(&ToolFilter::default()).await.unwrap(), 2);
        assert_eq!(
            served_named(&store, "keep_a").await.unwrap().description,
            "first"
        );
    };

    // The last replacement's row changed since it was read.
    let mut stale_b = b.clone();
    stale_b.description = "as read before another writer".into();
    let written = store
        .write_together(std::slice::from_ref(&fresh_c), &replacements(&stale_b))
        .await
        .unwrap();
    assert_eq!(written, Updated::Changed);
    unchanged(store.clone()).await;

    // A new name is taken.
    let taken = tool("keep_b", "t", &[], "squatter");
    let err = store
        .write_together(&[fresh_c.clone(), taken], &replacements(&b))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate(ref n) if n == "keep_b"),
        "{err:?}"
    );
    unchanged(store.clone()).await;

    assert_eq!(
        store.write_together(&[], &[]).await.unwrap(),
        Updated::Written
    );
    expect_quiet(&mut changes, "writing nothing together").await;
    let written = store
        .write_together(std::slice::from_ref(&fresh_c), &replacements(&b))
        .await
        .unwrap();
    assert_eq!(written, Updated::Written);
    expect_change(&mut changes, "writes together").await;
    assert_eq!(
        store.get_by_name("fresh_c").await.unwrap().unwrap(),
        fresh_c
    );
    assert_eq!(served_named(&store, "keep_a").await.unwrap(), edited_a);
    assert_eq!(store.versions(a.id).await.unwrap().len(), 1);
    assert!(!store.get(b.id).await.unwrap().unwrap().is_active);
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    assert_eq!(store.count(&active).await.unwrap(), 2);
}

/// Names and categories of the switched-on tools, as the catalogue index gives them.
fn indexed_active(store: &Arc<dyn ToolStore>) -> Vec<(String, String)> {
    let mut active = Vec::new();
    store.visit_indexed_active(&mut |name, facets| {
        active.push((name.to_owned(), facets.category.clone()))
    });
    active.sort();
    active
}

/// `visit_indexed_active` (what portable names and category notes read instead of the
/// database) shows every write at once: created, renamed, switched off, deleted.
async fn the_indexed_active_tools_follow_every_change(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let pair = |name: &str, category: &str| (name.to_owned(), category.to_owned());
    let (a, b) = (
        tool("alpha", "text", &[], "first"),
        tool("beta", "math", &[], "second"),
    );
    store.create_many(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(
        indexed_active(&store),
        [pair("alpha", "text"), pair("beta", "math")]
    );
    let mut renamed = a.clone();
    renamed.name = "alpha2".into();
    renamed.category = "words".into();
    renamed.updated_at = now_micros();
    store.update(&renamed).await.unwrap();
    store.set_active(b.id, false).await.unwrap();
    assert_eq!(indexed_active(&store), [pair("alpha2", "words")]);
    store.set_active(b.id, true).await.unwrap();
    store.delete(a.id).await.unwrap();
    assert_eq!(indexed_active(&store), [pair("beta", "math")]);
}
