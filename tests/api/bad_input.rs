//! A corpus of hostile input against every route that takes a body: each answer is a 4xx
//! in the JSON error shape (or a 2xx where the input is legal after all), never a 5xx,
//! never a hang.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// Routes with a body, and one valid body of each to mutate.
fn routes() -> Vec<(&'static str, reqwest::Method, Value)> {
    vec![
        (
            "/admin/tools",
            reqwest::Method::POST,
            tool_definition("victim"),
        ),
        (
            "/mcp/find_tool",
            reqwest::Method::POST,
            json!({"query": "send an email"}),
        ),
        (
            "/mcp/list_tools",
            reqwest::Method::POST,
            json!({"limit": 5}),
        ),
        (
            "/mcp/call_tool",
            reqwest::Method::POST,
            json!({"name": "calculator", "arguments": {"expression": "1+2"}}),
        ),
        (
            "/admin/import",
            reqwest::Method::POST,
            json!({"url": "https://mcp.invalid/mcp", "prefix": "x"}),
        ),
    ]
}

/// Raw bodies that are not valid JSON documents of the right shape.
fn raw_corpus() -> Vec<(String, Vec<u8>)> {
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    vec![
        ("empty".into(), b"".to_vec()),
        ("truncated".into(), br#"{"name": "x", "descr"#.to_vec()),
        ("trailing garbage".into(), br#"{"query": "x"} {"#.to_vec()),
        ("not an object".into(), br#"[1, 2, 3]"#.to_vec()),
        ("a bare string".into(), br#""hello""#.to_vec()),
        ("null".into(), b"null".to_vec()),
        (
            "invalid utf-8".into(),
            b"{\"query\": \"\xff\xfe\xfd\"}".to_vec(),
        ),
        ("lone surrogate".into(), br#"{"query": "\ud800"}"#.to_vec()),
        ("deeply nested array".into(), deep_array.into_bytes()),
        ("deeply nested object".into(), deep_object.into_bytes()),
        (
            "huge number".into(),
            br#"{"limit": 1e400, "query": "x"}"#.to_vec(),
        ),
        (
            "number beyond u64".into(),
            br#"{"limit": 184467440737095516160000, "offset": -1}"#.to_vec(),
        ),
        (
            "duplicate keys".into(),
            br#"{"query": "a", "query": 5}"#.to_vec(),
        ),
        (
            "nul byte outside strings".into(),
            b"{\"query\": \"x\"}\0".to_vec(),
        ),
    ]
}

/// Well-formed JSON with hostile values, merged into each route's valid body.
fn value_corpus() -> Vec<(&'static str, Value)> {
    let long = "x".repeat(100_000);
    let sql = "'; DROP TABLE tools; -- \" OR 1=1 /*";
    vec![
        (
            "nul bytes",
            json!({"name": "a\u{0}b", "description": "nul \u{0} inside", "query": "q\u{0}", "category": "c\u{0}"}),
        ),
        (
            "a nul byte in the description",
            json!({"description": "nul \u{0} inside"}),
        ),
        ("a nul byte in the category", json!({"category": "c\u{0}"})),
        ("a nul byte in a tag", json!({"tags": ["t\u{0}"]})),
        (
            "a nul byte in metadata",
            json!({"metadata": {"k\u{0}": "v\u{0}"}}),
        ),
        (
            "a nul byte in a schema",
            json!({"input_schema": {"type": "object", "description": "\u{0}"}}),
        ),
        (
            "a nul byte in arguments",
            json!({"arguments": {"expression": "1+1", "x\u{0}": "\u{0}"}}),
        ),
        ("a nul byte in a query", json!({"query": "\u{0}"})),
        (
            "sql-looking strings",
            json!({"name": sql, "description": sql, "query": sql, "category": sql, "tags": [sql], "prefix": sql}),
        ),
        (
            "wrong types",
            json!({"name": 5, "description": [], "query": {}, "limit": "ten", "arguments": "text", "tags": "one"}),
        ),
        (
            "negative and zero numbers",
            json!({"limit": -5, "offset": -1, "threshold": -0.5, "vector_weight": 7}),
        ),
        ("float where integer", json!({"limit": 2.5})),
        (
            "huge strings",
            json!({"name": long, "description": long, "query": long, "category": long}),
        ),
        (
            "unicode oddities",
            json!({"name": "tool\u{202e}evil", "query": "\u{1F600}\u{FE0F}\u{200D}", "category": "\u{0301}"}),
        ),
        (
            "many tags",
            json!({"tags": (0..10_000).map(|n| format!("t{n}")).collect::<Vec<_>>()}),
        ),
        ("unknown fields", json!({"nmae": "typo", "querry": "typo"})),
        (
            "null everywhere",
            json!({"name": null, "description": null, "query": null, "arguments": null}),
        ),
        (
            "hostile url",
            json!({"url": "http://169.254.169.254/latest/meta-data", "implementation": {"kind": "http", "url": "file:///etc/passwd"}}),
        ),
    ]
}

fn merged(base: &Value, overlay: &Value) -> Value {
    let mut out = base.clone();
    if let (Some(out), Some(overlay)) = (out.as_object_mut(), overlay.as_object()) {
        for (key, value) in overlay {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

async fn check(
    app: &TestApp,
    http: &reqwest::Client,
    what: &str,
    request: reqwest::RequestBuilder,
) {
    let answer = request
        .send()
        .await
        .unwrap_or_else(|err| panic!("{what}: no answer in time: {err}"));
    let status = answer.status().as_u16();
    let body = answer.bytes().await.unwrap();
    // An import of a server that cannot be reached is the upstream's fault: 502 is right.
    let upstream_down = status == 502
        && serde_json::from_slice::<Value>(&body)
            .is_ok_and(|e| e["error"]["code"] == "upstream_failed");
    assert!(
        status < 500 || upstream_down,
        "{what}: answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    if status >= 400 {
        let error: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: {status} without a JSON body"));
        assert!(
            error["error"]["code"].is_string() && error["error"]["message"].is_string(),
            "{what}: {status} with {error}"
        );
    }
    // The service is still healthy after each blow.
    let health = http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{what}: not ready afterwards");
}

crate::on_both_backends!(
    hostile_bodies_get_4xx_never_5xx,
    hostile_input_schemas_are_refused_or_harmless,
);

async fn hostile_bodies_get_4xx_never_5xx(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for (path, method, valid) in routes() {
        for (name, body) in raw_corpus() {
            let request = http
                .request(method.clone(), app.url(path))
                .header("content-type", "application/json")
                .body(body);
            check(&app, &http, &format!("{path} with {name}"), request).await;
        }
        for (name, overlay) in value_corpus() {
            let request = http
                .request(method.clone(), app.url(path))
                .json(&merged(&valid, &overlay));
            check(&app, &http, &format!("{path} with {name}"), request).await;
        }
    }
    // Updates take the same corpus.
    let tool = app.register(&tool_definition("target")).await;
    let path = format!("/admin/tools/{}", tool["id"].as_str().unwrap());
    for (name, overlay) in value_corpus() {
        let request = http.put(app.url(&path)).json(&overlay);
        check(&app, &http, &format!("PUT {path} with {name}"), request).await;
    }
    // Odd identifiers and query strings.
    for path in [
        "/admin/tools/not-a-uuid",
        "/admin/tools/00000000-0000-0000-0000-000000000000",
        "/admin/tools?limit=-1&offset=abc",
        "/admin/tools?limit=99999999999999999999",
        "/admin/executions?since=yesterday&status=maybe",
        "/admin/tools/%00/similar",
        "/admin/tools?category=%27%3B%20DROP%20TABLE%20tools",
    ] {
        check(&app, &http, &format!("GET {path}"), http.get(app.url(path))).await;
    }
}

/// Input schemas are operator-supplied programs: enormous ones, ones with catastrophic
/// regular expressions and ones that are not schemas at all.
async fn hostile_input_schemas_are_refused_or_harmless(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(db.settings()).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let properties: serde_json::Map<String, Value> = (0..20_000)
        .map(|n| {
            (
                format!("field_{n}"),
                json!({"type": "string", "description": "x".repeat(40)}),
            )
        })
        .collect();
    let schemas = [
        (
            "enormous",
            json!({"type": "object", "properties": properties}),
        ),
        ("not a schema", json!({"type": "banana"})),
        ("a string", json!("object")),
        ("recursive ref", json!({"$ref": "#", "type": "object"})),
        (
            "remote ref",
            json!({"$ref": "http://169.254.169.254/schema.json"}),
        ),
        (
            "bad regex",
            json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "(unclosed"}}}),
        ),
        (
            "catastrophic regex",
            json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}),
        ),
    ];
    for (name, schema) in schemas {
        let mut definition = tool_definition(&format!("schema.{}", name.replace(' ', "_")));
        definition["input_schema"] = schema;
        definition["implementation"] = json!({"kind": "builtin", "handler": "string_reverse"});
        let request = http.post(app.url("/admin/tools")).json(&definition);
        check(&app, &http, &format!("schema {name}"), request).await;
    }
    // A pattern that backtracks exponentially in naive engines must not stall a call.
    let evil = format!("{}!", "a".repeat(64));
    let request = http
        .post(app.url("/mcp/call_tool"))
        .json(&json!({"name": "schema.catastrophic_regex", "arguments": {"s": evil}}));
    check(&app, &http, "catastrophic regex at call time", request).await;
}
