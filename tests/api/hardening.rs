//! Credentials beyond admin keys (JWT, MCP keys), rate limits, CORS and the metrics scrape.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tool_registry::config::Secret;

use crate::helpers::*;

const JWT_SECRET: &str = "a-test-signing-secret-that-is-long-enough";

fn token(scope: &str) -> String {
    let claims = json!({
        "sub": "tester",
        "scope": scope,
        "exp": chrono::Utc::now().timestamp() + 600,
        "aud": "tool-registry",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn status_with(app: &TestApp, path: &str, credential: Option<&str>) -> (u16, Value) {
    let mut request = app.client.post(app.url(path)).json(&json!({}));
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    response(request.send().await.unwrap()).await
}

async fn admin_list(app: &TestApp, credential: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url("/admin/tools"));
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    response(request.send().await.unwrap()).await
}

#[tokio::test]
async fn tokens_grant_what_their_scope_says() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.jwt_secret = Some(Secret::new(JWT_SECRET));
    settings.auth.jwt_audience = Some("tool-registry".into());
    let app = TestApp::spawn(settings).await;

    let agent = token("tools:call");
    let operator = token("admin");
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some(&agent)).await.0,
        200
    );
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some(&operator))
            .await
            .0,
        200
    );
    let (status, body) = status_with(&app, "/mcp/list_tools", None).await;
    assert_eq!(status, 401);
    assert_error(&body, "unauthorized");

    assert_eq!(admin_list(&app, Some(&operator)).await.0, 200);
    let (status, body) = admin_list(&app, Some(&agent)).await;
    assert_eq!(status, 403);
    assert!(
        assert_error(&body, "forbidden")["message"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    let (status, body) = admin_list(&app, Some("not.a.token")).await;
    assert_eq!(status, 401);
    assert_error(&body, "unauthorized");
    assert_eq!(app.get("/health").await.0, 200);
}

#[tokio::test]
async fn mcp_keys_guard_the_agent_routes_and_admin_keys_open_them_too() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.admin_api_keys = Some(Secret::new("operator-key"));
    settings.auth.mcp_api_keys = Some(Secret::new("agent-key"));
    let app = TestApp::spawn(settings).await;

    assert_eq!(status_with(&app, "/mcp/list_tools", None).await.0, 401);
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some("wrong")).await.0,
        401
    );
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some("agent-key"))
            .await
            .0,
        200
    );
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some("operator-key"))
            .await
            .0,
        200
    );
    // An agent's key does not open the operator routes.
    assert_eq!(admin_list(&app, Some("agent-key")).await.0, 401);
    assert_eq!(admin_list(&app, Some("operator-key")).await.0, 200);
}

#[tokio::test]
async fn clients_over_their_budget_get_429_with_retry_after() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.rate_limit_per_minute = Some(3);
    settings.auth.mcp_api_keys = Some(Secret::new("agent-a, agent-b"));
    let app = TestApp::spawn(settings).await;

    for _ in 0..3 {
        assert_eq!(
            status_with(&app, "/mcp/list_tools", Some("agent-a"))
                .await
                .0,
            200
        );
    }
    let refused = app
        .client
        .post(app.url("/mcp/list_tools"))
        .bearer_auth("agent-a")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (status, body) = response(refused).await;
    assert_eq!(status, 429);
    assert_error(&body, "rate_limited");

    // Another key has its own budget; probes and scrapes are never limited.
    assert_eq!(
        status_with(&app, "/mcp/list_tools", Some("agent-b"))
            .await
            .0,
        200
    );
    for _ in 0..5 {
        assert_eq!(app.get("/health/live").await.0, 200);
    }
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Unknown keys share the address's budget: inventing keys buys nothing.
    let mut refused_unknown = 0;
    for attempt in 0..5 {
        let key = format!("invented-{attempt}");
        if status_with(&app, "/mcp/list_tools", Some(&key)).await.0 == 429 {
            refused_unknown += 1;
        }
    }
    assert!(refused_unknown >= 2, "{refused_unknown}");
}

#[tokio::test]
async fn browsers_are_refused_cross_origin_unless_the_origin_is_listed() {
    let db = TestDb::new(Backend::Embedded).await;
    let closed = TestApp::spawn(db.settings()).await;
    let preflight = |app: &TestApp| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/mcp/find_tool"))
            .header("origin", "https://console.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let answer = preflight(&closed).await.unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    closed.stop().await;

    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.server.cors_allowed_origins =
        Some("https://console.example, https://other.example".into());
    let open = TestApp::spawn(settings).await;
    let answer = preflight(&open).await.unwrap();
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://console.example"
    );
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("mcp-session-id"));
}

fn sample(scrape: &str, name_and_labels: &[&str]) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| name_and_labels.iter().all(|part| line.contains(part)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn the_scrape_counts_requests_searches_calls_and_the_catalogue() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;

    let (status, _) = app
        .post(
            "/mcp/find_tool",
            &json!({"query": "add numbers", "mode": "text"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            "/mcp/call_tool",
            &json!({"name": "calculator", "arguments": {"expression": "1+1"}}),
        )
        .await;
    assert_eq!(status, 200);
    app.get("/no/such/route").await;

    let scrape = app.metrics().await;
    let at_least_one = |parts: &[&str]| {
        let value = sample(&scrape, parts).unwrap_or_else(|| panic!("{parts:?} in\n{scrape}"));
        assert!(value >= 1.0, "{parts:?} = {value}");
    };
    at_least_one(&[
        "http_requests_total{",
        "route=\"/mcp/find_tool\"",
        "status=\"200\"",
    ]);
    at_least_one(&[
        "http_requests_total{",
        "route=\"unmatched\"",
        "status=\"404\"",
    ]);
    at_least_one(&[
        "http_request_duration_seconds_count{",
        "route=\"/mcp/call_tool\"",
    ]);
    at_least_one(&["find_tool_requests_total{", "answered=\"text\""]);
    at_least_one(&[
        "tool_executions_total{",
        "tool=\"calculator\"",
        "status=\"success\"",
    ]);
    at_least_one(&[
        "tool_execution_duration_seconds_count{",
        "tool=\"calculator\"",
    ]);
    at_least_one(&["catalogue_tools{", "state=\"active\""]);
    at_least_one(&["db_pool_connections{", "state=\"open\""]);
    assert!(
        scrape.contains("# HELP find_tool_requests_total"),
        "{scrape}"
    );
}

#[tokio::test]
async fn an_empty_or_short_jwt_secret_stops_start_up() {
    let db = TestDb::new(Backend::Embedded).await;
    for secret in ["", "short-secret"] {
        let mut settings = db.settings();
        settings.server.host = "0.0.0.0".parse().unwrap();
        settings.auth.jwt_secret = Some(Secret::new(secret));
        let err = tool_registry::App::build(settings)
            .await
            .err()
            .expect("start-up is refused");
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
}

#[tokio::test]
async fn tokens_without_the_configured_audience_or_issuer_are_refused() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.jwt_secret = Some(Secret::new(JWT_SECRET));
    settings.auth.jwt_audience = Some("tool-registry".into());
    settings.auth.jwt_issuer = Some("https://issuer.example".into());
    let app = TestApp::spawn(settings).await;
    let signed = |claims: Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let exp = chrono::Utc::now().timestamp() + 600;
    let complete = signed(json!({"scope": "admin", "exp": exp, "aud": "tool-registry",
                                 "iss": "https://issuer.example"}));
    assert_eq!(admin_list(&app, Some(&complete)).await.0, 200);
    let no_audience =
        signed(json!({"scope": "admin", "exp": exp, "iss": "https://issuer.example"}));
    let no_issuer = signed(json!({"scope": "admin", "exp": exp, "aud": "tool-registry"}));
    for token in [no_audience, no_issuer] {
        let (status, body) = admin_list(&app, Some(&token)).await;
        assert_eq!(status, 401, "{body}");
        assert_error(&body, "unauthorized");
    }
}

#[tokio::test]
async fn rebound_names_are_refused_while_admin_is_open() {
    let db = TestDb::new(Backend::Embedded).await;
    let app = TestApp::spawn(db.settings()).await;
    let with_host =
        |path: &str, host: &str| app.client.get(app.url(path)).header("host", host).send();
    let (status, body) = response(
        with_host("/admin/tools", "rebound.example:8080")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_error(&body, "host_not_allowed");
    let (status, body) = response(
        with_host("/admin/executions", "rebound.example")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let registered = app
        .client
        .post(app.url("/admin/tools"))
        .header("host", "rebound.example:8080")
        .json(&tool_definition("stolen"))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 403);
    let (_, listed) = app.get("/admin/tools").await;
    assert!(!listed.to_string().contains("stolen"), "{listed}");
    // The names the server is known by pass; probes pass whatever the name.
    let port = app.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(
            with_host("/admin/tools", &host).await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        with_host("/health/live", "10.1.2.3:8080")
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn browser_origins_not_allowed_by_cors_cannot_change_state() {
    let db = TestDb::new(Backend::Embedded).await;
    let mut settings = db.settings();
    settings.auth.admin_api_keys = Some(Secret::new("admin-key"));
    settings.server.cors_allowed_origins = Some("https://console.example".into());
    let app = TestApp::spawn(settings).await;
    let register = |origin: &str, name: &str| {
        app.client
            .post(app.url("/admin/tools"))
            .bearer_auth("admin-key")
            .header("origin", origin)
            .json(&tool_definition(name))
            .send()
    };
    let (status, body) =
        response(register("https://evil.example", "from-evil").await.unwrap()).await;
    assert_eq!(status, 403);
    assert!(
        assert_error(&body, "origin_not_allowed")["message"]
            .as_str()
            .unwrap()
            .contains("CORS_ALLOWED_ORIGINS")
    );
    assert_eq!(
        register("https://console.example", "from-console")
            .await
            .unwrap()
            .status(),
        201
    );
    let own = format!("http://{}", app.addr);
    assert_eq!(register(&own, "from-docs").await.unwrap().status(), 201);
    // With admin credentials configured, the Host is not checked.
    let other_host = app
        .client
        .get(app.url("/admin/tools"))
        .bearer_auth("admin-key")
        .header("host", "registry.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other_host.status(), 200);
}
