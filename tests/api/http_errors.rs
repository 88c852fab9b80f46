//! Every error answers the JSON shape with the right status, and names the field on 422.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, assert_error, response, tool_definition};

crate::on_both_backends!(duplicate_name_is_409);

async fn app() -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.max_body_bytes = 64 * 1024;
    let app = TestApp::spawn(settings).await;
    (db, app)
}

async fn raw_post(app: &TestApp, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    response(
        app.client
            .post(app.url(path))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[track_caller]
fn assert_field(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    let error = assert_error(body, "validation_failed");
    assert_eq!(error["field"], field, "{body}");
}

async fn duplicate_name_is_409(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    app.register(&tool_definition("twice")).await;
    let (status, body) = app.post("/admin/tools", &tool_definition("twice")).await;
    assert_eq!(status, 409);
    let error = assert_error(&body, "duplicate_tool");
    assert_eq!(error["field"], "name");

    let other = app.register(&tool_definition("other")).await;
    let (status, body) = app
        .put(
            &format!("/admin/tools/{}", other["id"].as_str().unwrap()),
            &json!({"name": "twice"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_error(&body, "duplicate_tool");
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (_db, app) = app().await;
    for body in ["{\"name\": ", "not json", "{\"a\":1}}", ""] {
        let (status, answer) = raw_post(&app, "/admin/tools", "application/json", body).await;
        assert_eq!(status, 400, "{body:?} → {answer}");
        assert_error(&answer, "malformed_json");
    }
    let (status, answer) = raw_post(&app, "/mcp/list_tools", "application/json", "[1, 2]").await;
    assert_field(status, &answer, "body");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (_db, app) = app().await;
    let definition = tool_definition("typed").to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, body) = raw_post(&app, "/admin/tools", content_type, &definition).await;
        assert_eq!(status, 415);
        assert_error(&body, "unsupported_media_type");
    }
    let no_type = app
        .client
        .post(app.url("/admin/tools"))
        .body(definition.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = response(no_type).await;
    assert_eq!(status, 415);
    assert_error(&body, "unsupported_media_type");
    let (status, _) = raw_post(
        &app,
        "/admin/tools",
        "application/json; charset=utf-8",
        &definition,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field() {
    let (_db, app) = app().await;
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut definition = tool_definition("valid_name");
        edit(&mut definition);
        definition
    };
    cases.push((
        with(&|d| {
            d.as_object_mut().unwrap().remove("name");
        }),
        "name",
    ));
    cases.push((
        with(&|d| {
            d.as_object_mut().unwrap().remove("implementation");
        }),
        "implementation",
    ));
    cases.push((with(&|d| d["name"] = json!("bad name!")), "name"));
    cases.push((with(&|d| d["name"] = json!(42)), "name"));
    cases.push((with(&|d| d["description"] = json!("   ")), "description"));
    cases.push((
        with(&|d| d["description"] = json!("x".repeat(8001))),
        "description",
    ));
    cases.push((with(&|d| d["tags"] = json!(["ok", 7])), "tags[1]"));
    cases.push((
        with(&|d| d["input_schema"] = json!("object")),
        "input_schema",
    ));
    cases.push((
        with(&|d| d["input_schema"] = json!({"type": "objekt"})),
        "input_schema",
    ));
    cases.push((
        with(&|d| d["output_schema"] = json!({"minimum": "zero"})),
        "output_schema",
    ));
    cases.push((with(&|d| d["metadata"] = json!([1])), "metadata"));
    cases.push((with(&|d| d["nmae"] = json!("typo")), "nmae"));
    cases.push((
        with(&|d| d["implementation"] = json!({"kind": "http"})),
        "implementation.url",
    ));
    cases.push((
        with(&|d| d["implementation"] = json!({"kind": "teleport"})),
        "implementation.kind",
    ));
    cases.push((
        with(&|d| d["implementation"] = json!({"kind": "http", "url": "file:///etc/passwd"})),
        "implementation.url",
    ));
    cases.push((
        with(&|d| {
            d["implementation"] =
                json!({"kind": "http", "url": "https://x.example", "timeout_ms": 0})
        }),
        "implementation.timeout_ms",
    ));
    for (definition, field) in cases {
        let (status, body) = app.post("/admin/tools", &definition).await;
        assert_field(status, &body, field);
    }

    let (status, body) = app.post("/mcp/list_tools", &json!({"limit": 0})).await;
    assert_field(status, &body, "limit");
    let (status, body) = app.post("/mcp/list_tools", &json!({"limit": 501})).await;
    assert_field(status, &body, "limit");
    let (status, body) = app.post("/mcp/list_tools", &json!({"limit": -1})).await;
    assert_field(status, &body, "limit");
    let (status, body) = app
        .post("/mcp/list_tools", &json!({"active_only": "yes"}))
        .await;
    assert_field(status, &body, "active_only");
    let (status, body) = app.get("/admin/tools?limit=abc").await;
    assert_field(status, &body, "limit");
    let (status, body) = app.get("/admin/tools?include_inactive=maybe").await;
    assert_field(status, &body, "include_inactive");
    let (status, body) = app.get("/admin/tools?colour=red").await;
    assert_field(status, &body, "colour");
    let (status, body) = app.get("/admin/tools/not-a-uuid").await;
    assert_field(status, &body, "id");

    let tool = app.register(&tool_definition("patched")).await;
    let path = format!("/admin/tools/{}", tool["id"].as_str().unwrap());
    let (status, body) = app.put(&path, &json!({"input_schema": {"type": 5}})).await;
    assert_field(status, &body, "input_schema");
    let (status, body) = app.put(&path, &json!({"is_active": "no"})).await;
    assert_field(status, &body, "is_active");
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged, tool, "a refused update changes nothing");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let (_db, app) = app().await;
    let (status, body) = app.get("/nowhere").await;
    assert_eq!(status, 404);
    assert_error(&body, "route_not_found");
    let (status, body) = app.delete("/mcp/list_tools").await;
    assert_eq!(status, 405);
    assert_error(&body, "method_not_allowed");
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app
        .put(&format!("/admin/tools/{missing}"), &json!({}))
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "tool_not_found");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (_db, app) = app().await;
    let mut definition = tool_definition("big");
    definition["metadata"] = json!({"padding": "x".repeat(100 * 1024)});
    let (status, body) = app.post("/admin/tools", &definition).await;
    assert_eq!(status, 413);
    assert_error(&body, "payload_too_large");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let (_db, app) = app().await;
    let given = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    let generated = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(generated.status(), 404);
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let other = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
}

#[tokio::test]
async fn admin_routes_need_a_key_when_keys_are_set() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.admin_api_keys =
        Some(tool_registry::config::Secret::new("first-key, second-key"));
    let app = TestApp::spawn(settings).await;
    let (status, body) = app.get("/admin/tools").await;
    assert_eq!(status, 401);
    assert_error(&body, "unauthorized");
    let wrong = app
        .client
        .get(app.url("/admin/tools"))
        .bearer_auth("third-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let (status, body) = response(wrong).await;
    assert_eq!(status, 401);
    assert_error(&body, "unauthorized");
    let bearer = app
        .client
        .get(app.url("/admin/tools"))
        .bearer_auth("second-key")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let header = app
        .client
        .post(app.url("/admin/tools"))
        .header("x-api-key", "first-key")
        .json(&tool_definition("keyed"))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 201);
    // Agents' routes and probes stay open.
    assert_eq!(app.post("/mcp/list_tools", &json!({})).await.0, 200);
    assert_eq!(app.get("/health").await.0, 200);
}

#[tokio::test]
async fn open_admin_routes_are_refused_beyond_loopback() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.host = "0.0.0.0".parse().unwrap();
    let refused = tool_registry::App::build(settings.clone()).await;
    let message = refused.err().expect("must refuse").to_string();
    assert!(message.contains("ADMIN_API_KEYS"), "{message}");
    settings.auth.admin_auth = tool_registry::config::AdminAuth::Disabled;
    assert!(tool_registry::App::build(settings).await.is_ok());
}
