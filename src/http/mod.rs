//! The HTTP surface: routes, shared state and the middleware every request passes.

pub mod auth;
pub mod conn;
pub mod console;
pub mod cors;
pub mod error;
pub mod extract;
pub mod health;
pub mod mcp_rest;
pub mod observe;
pub mod openapi;
pub mod origin;
pub mod paging;
pub mod query;
pub mod rate_limit;
pub mod responses;
pub mod routes;

use std::{sync::Arc, time::Instant};

use futures_util::future::BoxFuture;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{config::Settings, registry::ToolRegistry, telemetry};
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<ToolRegistry>,
    pub settings: Arc<Settings>,
    pub admin_guard: auth::Guard,
    pub tools_guard: auth::Guard,
    /// Sets the gauges of what is served beside the REST routes (the MCP endpoint's
    /// sessions) before each scrape of `/metrics`.
    pub on_scrape: observe::OnScrape,
    /// Cancelled at shutdown: ends MCP sessions and their open streams.
    pub shutdown: CancellationToken,
    pub started: Instant,
}

/// A middleware function given by startup code, e.g. the JSON-RPC shape of errors on `/mcp`.
pub type Middleware =
    Arc<dyn Fn(Request, Next) -> BoxFuture<'static, Response> + Send + Sync + 'static>;

/// What the MCP endpoint brings to the router. Startup code builds it from the `mcp` module
/// (`app.rs`), so the HTTP layer serves `/mcp` without depending on it.
pub struct McpMount {
    /// The `/mcp` route, served behind the agents' credentials like the REST routes.
    pub endpoint: Router,
    /// Its routes outside the credential checks (OAuth protected resource metadata).
    pub open_routes: Router,
    /// Rewrites error answers on `/mcp` for MCP clients; it wraps every route, inside the
    /// deadline and the request metrics, outside the rate limit and the credential checks.
    pub error_answers: Middleware,
}

/// The whole router with its middleware, ready to serve.
pub fn router(state: AppState, mcp: McpMount) -> Router {
    let settings = state.settings.clone();
    let tools = Router::from(mcp_rest::router())
        .merge(mcp.endpoint.with_state(()))
        .route_layer(middleware::from_fn_with_state(
            state.tools_guard.clone(),
            auth::require,
        ));
    let admin = Router::from(routes::admin()).route_layer(middleware::from_fn_with_state(
        state.admin_guard.clone(),
        auth::require,
    ));
    let origins = origin::RequestOrigins::new(
        state.admin_guard.is_open(),
        &settings.mcp.allowed_hosts,
        settings.server.cors_allowed_origins.as_deref(),
    );
    let mut routes = Router::new()
        .merge(Router::from(health::router()))
        .merge(Router::from(observe::router()))
        .merge(mcp.open_routes.with_state(()))
        .merge(console::router())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::document()))
        .merge(tools)
        .merge(admin)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(origins, origin::guard));
    // One budget for every route, unknown ones included (probes and scrapes are exempt).
    if let Some(limit) = rate_limit::RateLimit::new(
        settings.server.rate_limit_per_minute,
        settings.server.trust_proxy,
        vec![state.admin_guard.clone(), state.tools_guard.clone()],
    ) {
        routes = routes.layer(middleware::from_fn_with_state(limit, rate_limit::limit));
    }
    // With tracing on, the MCP service (which serves requests in its own tasks) finds the
    // request's span in the request.
    if telemetry::otel::enabled() {
        routes = routes.layer(middleware::from_fn(telemetry::otel::remember_request_span));
    }
    with_middleware(routes, &settings, mcp.error_answers).with_state(state)
}

/// The middleware every route is served behind, outermost first: request ids and the
/// request span, CORS, the body limit, the deadline (`REQUEST_TIMEOUT_MS`), the request
/// metrics, the `/mcp` error answers (`error_answers`), and panics caught as 500 answers.
pub fn with_middleware<S>(
    routes: Router<S>,
    settings: &Settings,
    error_answers: Middleware,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let timeout = settings.server.request_timeout();
    routes
        .layer(middleware::from_fn(answer_panics))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            (error_answers)(request, next)
        }))
        .layer(middleware::from_fn(observe::record))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            answer_within(timeout, request, next)
        }))
        .layer(DefaultBodyLimit::max(settings.server.max_body_bytes))
        .layer(cors::layer(settings.server.cors_allowed_origins.as_deref()))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span)
                        .on_response(telemetry::OnRequestDone(
                            DefaultOnResponse::new().level(tracing::Level::INFO),
                        ))
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// When a request must be answered (`REQUEST_TIMEOUT_MS` after it arrived), in its
/// extensions for inner layers that answer a late request in a shape of their own (the
/// JSON-RPC error of `/mcp`) at the same instant.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub tokio::time::Instant);

/// Answers 504 in the JSON shape when a request outlives the configured limit.
async fn answer_within(limit: std::time::Duration, mut request: Request, next: Next) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    request.extensions_mut().insert(RequestDeadline(deadline));
    match tokio::time::timeout_at(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A handler that panics answers 500 in the JSON shape (a JSON-RPC error on `/mcp`, whose
/// error layer is outside this one), counted in `http_panics_total` and logged at ERROR;
/// the connection and the server go on.
async fn answer_panics(request: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    let route = request.uri().path().to_owned();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = crate::telemetry::panic_message(panic.as_ref());
            metrics::counter!("http_panics_total").increment(1);
            ApiError::Internal(format!("the handler of {route} panicked: {message}"))
                .into_response()
        }
    }
}

async fn route_not_found(request: Request) -> ApiError {
    ApiError::NotFound {
        code: crate::domain::ErrorCode::RouteNotFound,
        message: format!("no route {} {}", request.method(), request.uri().path()),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    ))
}
