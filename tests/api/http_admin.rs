//! The catalogue routes end to end over HTTP, on both backends.

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, assert_error, tool_definition};

crate::on_both_backends!(
    register_get_update_delete,
    batch_registration_is_all_or_nothing,
    list_routes_filter_and_page,
    activation_routes,
    health_routes_report_the_store,
);

async fn register_get_update_delete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;

    let created = app.register(&tool_definition("echo")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "echo");
    assert_eq!(created["category"], "testing");
    assert_eq!(created["version"], "1.0.0");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["metadata"], json!({}));
    assert_eq!(created["implementation"]["kind"], "builtin");

    let (status, fetched) = app.get(&format!("/admin/tools/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    let (status, updated) = app
        .put(
            &format!("/admin/tools/{id}"),
            &json!({"description": "Echoes text back", "tags": ["x", "y", "x"], "version": "1.1.0"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["description"], "Echoes text back");
    assert_eq!(updated["tags"], json!(["x", "y"]));
    assert_eq!(updated["version"], "1.1.0");
    assert_eq!(updated["name"], "echo");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_ne!(updated["updated_at"], created["updated_at"]);

    let (status, body) = app.delete(&format!("/admin/tools/{id}")).await;
    assert_eq!((status, body), (204, serde_json::Value::Null));
    let (status, body) = app.get(&format!("/admin/tools/{id}")).await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    let (status, body) = app.delete(&format!("/admin/tools/{id}")).await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    app.stop().await;
}

async fn batch_registration_is_all_or_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let batch = |names: &[&str]| json!({"tools": names.iter().map(|name| tool_definition(name)).collect::<Vec<_>>()});
    let count = async || app.get("/admin/tools?include_inactive=true").await.1["total"].clone();

    let (status, body) = app
        .post("/admin/tools/batch", &batch(&["b_one", "b_two", "b_three"]))
        .await;
    assert_eq!(status, 201, "{body}");
    let tools = body["tools"].as_array().unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b_one", "b_two", "b_three"], "in the order given");
    for tool in tools {
        assert!(
            tool["embedding_model"].is_string(),
            "embedded at once: {tool}"
        );
        let (status, stored) = app
            .get(&format!("/admin/tools/{}", tool["id"].as_str().unwrap()))
            .await;
        assert_eq!((status, &stored), (200, tool));
    }
    let found =
        crate::helpers::find(&app, json!({"query": "b_two tool", "mode": "semantic"})).await;
    assert!(
        crate::helpers::names(&found).contains(&"b_two".to_owned()),
        "{found}"
    );

    // Each refusal names the item and its field, and registers nothing.
    let mut invalid = batch(&["c_one", "c_two"]);
    invalid["tools"][1]["description"] = json!("");
    let mut no_implementation = batch(&["c_one", "c_two", "c_three"]);
    no_implementation["tools"][2]
        .as_object_mut()
        .unwrap()
        .remove("implementation");
    let mut upsert = batch(&["c_one"]);
    upsert["tools"][0]["upsert"] = json!(true);
    for (body, field) in [
        (invalid, "tools[1].description"),
        (no_implementation, "tools[2].implementation"),
        (batch(&["c_one", "c_two", "c_one"]), "tools[2].name"),
        (upsert, "tools[0].upsert"),
        (json!({"tools": []}), "tools"),
    ] {
        let (status, answer) = app.post("/admin/tools/batch", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(assert_error(&answer, "validation_failed")["field"], field);
    }
    let (status, answer) = app
        .post("/admin/tools/batch", &batch(&["c_one", "b_two", "c_three"]))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        assert_error(&answer, "duplicate_tool")["field"],
        "tools[1].name"
    );
    assert_eq!(count().await, 3, "no tool of a refused batch is stored");
    app.stop().await;
}

async fn list_routes_filter_and_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    for i in 0..7 {
        let mut definition = tool_definition(&format!("t{i}"));
        definition["category"] = json!(if i < 4 { "alpha" } else { "beta" });
        definition["tags"] = json!([format!("tag{}", i % 2)]);
        definition["is_active"] = json!(i != 6);
        app.register(&definition).await;
    }
    let (status, page) = app
        .post("/mcp/list_tools", &json!({"limit": 2, "offset": 1}))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 6, "inactive tools are hidden by default");
    assert_eq!(
        (page["limit"].clone(), page["offset"].clone()),
        (json!(2), json!(1))
    );
    let names: Vec<_> = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("t1"), json!("t2")]);

    // Agents never see switched-off tools: only /admin lists them.
    let (status, body) = app
        .post(
            "/mcp/list_tools",
            &json!({"category": "beta", "active_only": false}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "active_only");
    let (_, page) = app
        .post("/mcp/list_tools", &json!({"tags": ["tag1"]}))
        .await;
    assert_eq!(page["total"], 3, "t1, t3, t5");
    let (_, page) = app.post("/mcp/list_tools", &json!({})).await;
    assert_eq!(page["limit"], 50);

    let (status, page) = app
        .get("/admin/tools?include_inactive=true&category=beta&limit=10")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3);
    let (_, page) = app.get("/admin/tools?tags=tag0,tag1&offset=5").await;
    assert_eq!(page["total"], 6);
    assert_eq!(page["tools"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn activation_routes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let tool = app.register(&tool_definition("toggle")).await;
    let id = tool["id"].as_str().unwrap();
    let (status, off) = app
        .post(&format!("/admin/tools/{id}/deactivate"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(off["is_active"], false);
    let (_, page) = app.post("/mcp/list_tools", &json!({})).await;
    assert_eq!(page["total"], 0);
    let (status, on) = app
        .post(&format!("/admin/tools/{id}/activate"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(on["is_active"], true);
    let (_, page) = app.post("/mcp/list_tools", &json!({})).await;
    assert_eq!(page["total"], 1);
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app
        .post(&format!("/admin/tools/{missing}/activate"), &json!({}))
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
    app.stop().await;
}

async fn health_routes_report_the_store(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    app.register(&tool_definition("one")).await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let expected_backend = match backend {
        Backend::Embedded => "embedded",
        Backend::Postgres | Backend::PostgresVectorsInMemory => "postgres",
    };
    assert_eq!(health["storage"]["backend"], expected_backend);
    assert_eq!(health["storage"]["status"], "up");
    let searched_in = match backend {
        Backend::Postgres => "index",
        Backend::Embedded | Backend::PostgresVectorsInMemory => "memory",
    };
    assert_eq!(health["storage"]["vector_search"], searched_in);
    assert!(health["storage"]["vector_search_reason"].is_string());
    assert_eq!(health["tools"]["total"], 1);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(app.get("/health/live").await.0, 200);
    let (status, ready) = app.get("/health/ready").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    app.stop().await;
}
