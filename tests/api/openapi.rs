//! The OpenAPI document: it describes exactly the REST routes the service answers, and the
//! docs page is served without internet.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

/// Every REST route of the service. `/mcp` (JSON-RPC, described by the MCP specification)
/// and `/docs` (the page itself) are the only routes outside the document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/admin/executions"),
    ("get", "/admin/executions/{id}"),
    ("get", "/admin/stats/timeseries"),
    ("post", "/admin/import"),
    ("post", "/admin/reindex"),
    ("get", "/admin/tools"),
    ("post", "/admin/tools"),
    ("post", "/admin/tools/batch"),
    ("delete", "/admin/tools/{id}"),
    ("get", "/admin/tools/{id}"),
    ("put", "/admin/tools/{id}"),
    ("post", "/admin/tools/{id}/activate"),
    ("post", "/admin/tools/{id}/deactivate"),
    ("post", "/admin/tools/{id}/reindex"),
    ("post", "/admin/tools/{id}/rollback"),
    ("get", "/admin/tools/{id}/similar"),
    ("get", "/admin/tools/{id}/stats"),
    ("get", "/admin/tools/{id}/versions"),
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("post", "/mcp/call_tool"),
    ("post", "/mcp/find_tool"),
    ("post", "/mcp/list_tools"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_service_answers() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    // Each documented route is routed: never a route_not_found or method_not_allowed.
    let id = uuid::Uuid::new_v4().to_string();
    for (method, path) in ROUTES {
        let url = app.url(&path.replace("{id}", &id));
        let method: reqwest::Method = method.to_uppercase().parse().unwrap();
        let answer = app
            .client
            .request(method.clone(), url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code != "route_not_found" && code != "method_not_allowed" && status != 405,
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }

    // Every operation documents its success and its error answers in the JSON shape.
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} has no success answer"
            );
            if path.starts_with("/admin") || path.starts_with("/mcp") {
                assert!(
                    responses.contains_key("422") && responses.contains_key("401"),
                    "{method} {path} lacks its error answers"
                );
                assert!(
                    responses["422"]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/ErrorBody")),
                    "{method} {path}: 422 is not the error shape"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let page = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    let script = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.unwrap().len() > 100_000);
}
