//! Version history, rollback and upsert over HTTP, on both backends.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::{sync::Barrier, task::JoinSet};

use crate::helpers::{Backend, TestApp, TestDb, assert_error, find, names, tool_definition};

crate::on_both_backends!(
    history_and_rollback,
    upsert_updates_the_tool_of_that_name,
    racing_writers_keep_each_others_changes,
);

async fn text_hits(app: &TestApp, query: &str) -> Vec<String> {
    names(&find(app, json!({"query": query, "mode": "text"})).await)
}

fn versions_of(history: &Value) -> Vec<&str> {
    history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect()
}

async fn history_and_rollback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let created = app.register(&tool_definition("echo")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let tool_path = format!("/admin/tools/{id}");
    let (status, history) = app.get(&format!("{tool_path}/versions")).await;
    assert_eq!(status, 200);
    assert_eq!(history["tool_id"], id.as_str());
    assert_eq!(history["current_version"], "1.0.0");
    assert_eq!(history["versions"], json!([]));

    for (version, why) in [
        ("1.0.0", "the definition changes but the version does not"),
        ("0.9.0", "the version goes down"),
        ("one", "not a semantic version"),
    ] {
        let (status, body) = app
            .put(
                &tool_path,
                &json!({"description": "Shouts", "version": version}),
            )
            .await;
        assert_eq!(status, 422, "{why}: {body}");
        assert_eq!(assert_error(&body, "validation_failed")["field"], "version");
    }
    let (status, body) = app
        .put(
            &tool_path,
            &json!({"description": "Shouts the text back in capitals", "version": "1.1.0"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.put(&tool_path, &json!({"tags": ["loud"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "1.1.0", "a version left out stays");
    let (_, history) = app.get(&format!("{tool_path}/versions")).await;
    assert_eq!(versions_of(&history), vec!["1.1.0", "1.0.0"]);
    assert_eq!(history["current_version"], "1.1.0");
    assert_eq!(
        history["versions"][1]["description"],
        created["description"]
    );
    assert_eq!(history["versions"][0]["tags"], json!(["test"]));
    assert!(history["versions"][1]["changed_at"].is_string());
    assert_eq!(text_hits(&app, "shouts capitals").await, vec!["echo"]);

    let (status, rolled) = app
        .post(
            &format!("{tool_path}/rollback"),
            &json!({"version": "1.0.0"}),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["version"], "1.0.0");
    assert_eq!(rolled["description"], created["description"]);
    assert_eq!(rolled["tags"], json!(["test"]));
    assert_eq!(rolled["id"], created["id"]);
    assert!(rolled["embedding_model"].is_string(), "embedded again");
    assert!(text_hits(&app, "shouts capitals").await.is_empty());
    assert_eq!(text_hits(&app, "useful work").await, vec!["echo"]);
    let (_, history) = app.get(&format!("{tool_path}/versions")).await;
    assert_eq!(versions_of(&history), vec!["1.1.0", "1.1.0", "1.0.0"]);
    assert_eq!(history["versions"][0]["tags"], json!(["loud"]));

    let (status, body) = app
        .post(
            &format!("{tool_path}/rollback"),
            &json!({"version": "9.9.9"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "version_not_found");
    let (status, body) = app
        .post(
            &format!("{tool_path}/rollback"),
            &json!({"versio": "1.0.0"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app
        .post(
            &format!("/admin/tools/{missing}/rollback"),
            &json!({"version": "1.0.0"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");

    let (status, _) = app.delete(&tool_path).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&format!("{tool_path}/versions")).await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    app.stop().await;
}

async fn upsert_updates_the_tool_of_that_name(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let created = app.register(&tool_definition("echo")).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let mut again = tool_definition("echo");
    again["description"] = json!("Echoes text, now in capitals");
    let (status, body) = app.post("/admin/tools", &again).await;
    assert_eq!(status, 409);
    assert_error(&body, "duplicate_tool");

    again["upsert"] = json!(true);
    let (status, updated) = app.post("/admin/tools", &again).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["description"], "Echoes text, now in capitals");
    assert_eq!(updated["version"], "1.0.0", "kept when left out");
    assert_eq!(updated["created_at"], created["created_at"]);

    // Unchanged: nothing written, no new version.
    let (status, unchanged) = app.post("/admin/tools", &again).await;
    assert_eq!(status, 200);
    assert_eq!(unchanged["updated_at"], updated["updated_at"]);

    again["version"] = json!("0.5.0");
    let (status, body) = app.post("/admin/tools", &again).await;
    assert_eq!(status, 422);
    assert_eq!(assert_error(&body, "validation_failed")["field"], "version");

    // The active state is not part of a definition: an upsert keeps it.
    let (status, _) = app
        .post(&format!("/admin/tools/{id}/deactivate"), &json!({}))
        .await;
    assert_eq!(status, 200);
    again["version"] = json!("2.0.0");
    again["description"] = json!("Echoes text, version two");
    let (status, body) = app.post("/admin/tools", &again).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "2.0.0");
    assert_eq!(body["is_active"], false);

    let (_, history) = app.get(&format!("/admin/tools/{id}/versions")).await;
    assert_eq!(versions_of(&history), vec!["1.0.0", "1.0.0"]);

    let mut fresh = tool_definition("fresh");
    fresh["upsert"] = json!(true);
    let (status, body) = app.post("/admin/tools", &fresh).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;
}

/// Sixteen writers race over HTTP, half with `PUT` and half with an upsert, each with a
/// higher version, while the tool is switched off: in each of five rounds the tool ends
/// switched off at the highest version acknowledged, every acknowledged definition in its
/// history in rising order.
async fn racing_writers_keep_each_others_changes(backend: Backend) {
    const ROUNDS: usize = 5;
    const WRITERS: u64 = 16;
    let db = TestDb::new(backend).await;
    let app = Arc::new(TestApp::spawn(db.settings()).await);
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("raced_{round}");
        let created = app.register(&tool_definition(&name)).await;
        let tool_path = format!("/admin/tools/{}", created["id"].as_str().unwrap());
        let start = Arc::new(Barrier::new(WRITERS as usize + 1));
        let mut writers = JoinSet::new();
        for writer in 1..=WRITERS {
            let (app, start, name, tool_path) =
                (app.clone(), start.clone(), name.clone(), tool_path.clone());
            writers.spawn(async move {
                let version = format!("1.0.{writer}");
                let metadata = json!({"writer": writer});
                start.wait().await;
                let (status, body) = if writer % 2 == 0 {
                    let mut definition = tool_definition(&name);
                    definition["version"] = json!(version);
                    definition["metadata"] = metadata;
                    definition["upsert"] = json!(true);
                    app.post("/admin/tools", &definition).await
                } else {
                    app.put(
                        &tool_path,
                        &json!({"version": version, "metadata": metadata}),
                    )
                    .await
                };
                match status {
                    200 => Some(writer),
                    422 if body["error"]["field"] == "version" => None,
                    _ => panic!("writer {writer}: {status} {body}"),
                }
            });
        }
        start.wait().await;
        let (status, _) = app
            .post(&format!("{tool_path}/deactivate"), &json!({}))
            .await;
        assert_eq!(status, 200);
        let mut acknowledged: Vec<u64> = writers.join_all().await.into_iter().flatten().collect();
        acknowledged.sort_unstable();
        let (_, tool) = app.get(&tool_path).await;
        let (_, history) = app.get(&format!("{tool_path}/versions")).await;
        let mut seen: Vec<u64> = versions_of(&history)
            .into_iter()
            .rev()
            .chain([tool["version"].as_str().unwrap()])
            .map(|v| v.strip_prefix("1.0.").unwrap().parse().unwrap())
            .collect();
        let rising = seen.windows(2).all(|pair| pair[0] < pair[1]);
        let ends_highest = acknowledged
            .last()
            .is_some_and(|highest| tool["version"] == format!("1.0.{highest}"));
        seen.remove(0);
        seen.sort_unstable();
        if !(rising && ends_highest && seen == acknowledged && tool["is_active"] == false) {
            lost.push((round, tool["version"].clone(), tool["is_active"].clone()));
        }
    }
    assert!(
        lost.is_empty(),
        "changes lost in {} of {ROUNDS} rounds (round, version, active): {lost:?}",
        lost.len()
    );
    Arc::into_inner(app).unwrap().stop().await;
}
