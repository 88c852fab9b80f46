//! The operator console's files and the call statistics its charts read.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_strict_headers() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/console"] {
        let answer = client.get(app.url(path)).send().await.unwrap();
        assert!(
            answer.status().is_redirection(),
            "{path}: {}",
            answer.status()
        );
        assert_eq!(answer.headers()["location"], "/console/");
    }

    let page = client.get(app.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    // No inline script or style the policy would block.
    assert!(!html.contains("<script>") && !html.contains("style="));

    // Every module the page loads, and every module those import, is served as JavaScript.
    let mut pending = vec!["app.js".to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(file) = pending.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let answer = client
            .get(app.url(&format!("/console/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{file}");
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(answer.headers().contains_key("content-security-policy"));
        let source = answer.text().await.unwrap();
        assert!(!source.contains("innerHTML"), "{file} writes markup");
        for line in source.lines().filter(|l| l.starts_with("import ")) {
            let target = line.split('\'').nth(1).unwrap();
            pending.push(target.trim_start_matches("./").to_string());
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
    let css = client
        .get(app.url("/console/style.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    let (status, body) = app.get("/console/secrets.txt").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("route_not_found"))
    );
}

async fn series_follow_the_calls(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    let call = json!({"name": "calculator", "arguments": {"expression": "6*7"}});
    for _ in 0..2 {
        let (status, body) = app.post("/mcp/call_tool", &call).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("success")),
            "{body}"
        );
    }
    let (status, failed) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "calculator", "arguments": {"expression": "1/0"}}),
        )
        .await;
    assert_eq!(
        (status, failed["status"].as_str()),
        (200, Some("error")),
        "{failed}"
    );

    let (status, series) = app.get("/admin/stats/timeseries?tool=calculator").await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["window"], "hour");
    assert_eq!(series["bucket_seconds"], 60);
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    let calls: u64 = buckets.iter().map(|b| b["calls"].as_u64().unwrap()).sum();
    let errors: u64 = buckets.iter().map(|b| b["errors"].as_u64().unwrap()).sum();
    assert_eq!((calls, errors), (3, 1));
    // The calls just made fall in the last interval or the one before.
    assert!(buckets[58..].iter().any(|b| b["calls"].as_u64() > Some(0)));
    assert!(buckets[0]["p50_duration_ms"].is_null());
    let id = series["tool_id"].as_str().unwrap().to_owned();

    let (_, by_id) = app
        .get(&format!("/admin/stats/timeseries?tool={id}&window=day"))
        .await;
    assert_eq!(by_id["buckets"].as_array().unwrap().len(), 48);
    assert_eq!(by_id["bucket_seconds"], 1800);
    let (_, week) = app.get("/admin/stats/timeseries?window=week").await;
    assert_eq!(week["buckets"].as_array().unwrap().len(), 84);
    let every: u64 = week["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(every, 3);

    let (status, body) = app.get("/admin/stats/timeseries?window=month").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("window"))
    );
    let (status, body) = app.get("/admin/stats/timeseries?tool=no_such_tool").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("tool_not_found"))
    );
    let (status, body) = app.get("/admin/stats/timeseries?bucket=1").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("bucket"))
    );
}

crate::on_both_backends!(series_follow_the_calls);
