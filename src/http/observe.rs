//! Request metrics and the Prometheus scrape route `GET /metrics`.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;

/// Gauges set before each scrape by what the HTTP layer does not own itself.
pub type OnScrape =
    std::sync::Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// Middleware: counts each request by method, matched route and status, and times it.
/// Unmatched paths share one label, and so do methods outside the standard ones, so
/// requests with invented URLs or methods cannot grow the series.
pub async fn record(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let clock = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds",
        "method" => method, "route" => route.clone())
    .record(clock.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total",
        "method" => method, "route" => route, "status" => status)
    .increment(1);
    response
}

/// The standard methods by name; any other (HTTP allows inventing them) as `_OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "observability",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)))]
async fn scrape(State(state): State<AppState>) -> Response {
    publish_levels(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::handle().render(),
    )
        .into_response()
}

/// Gauges read at scrape time. A store that does not answer leaves the last values.
async fn publish_levels(state: &AppState) {
    let store = state.registry.store();
    let (open, idle) = store.pool_connections();
    metrics::gauge!("execution_records_backlog").set(state.registry.recorder().backlog() as f64);
    metrics::gauge!("db_pool_connections", "state" => "open").set(open as f64);
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    if let Ok((all, active)) = super::health::tool_counts(store.as_ref()).await {
        metrics::gauge!("catalogue_tools", "state" => "active").set(active as f64);
        metrics::gauge!("catalogue_tools", "state" => "inactive")
            .set(all.saturating_sub(active) as f64);
    }
    let searched_in = store.vector_search().place;
    for place in ["memory", "index"] {
        metrics::gauge!("vector_search_place", "place" => place).set(if place == searched_in {
            1.0
        } else {
            0.0
        });
    }
    (state.on_scrape)().await;
    let model = state.registry.vector_model();
    if let Ok(counts) = store.embedding_counts(model).await {
        metrics::gauge!("catalogue_pending_embeddings").set(counts.pending as f64);
    }
}
