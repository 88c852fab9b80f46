//! Probes: `/health` (detail), `/health/live` (the process answers) and `/health/ready`
//! (the storage answers too).

use std::time::Duration;

use axum::{Json, extract::State};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, ErrorBody},
};
use crate::{
    domain::ToolFilter,
    execution::stdio::StdioUpstreamHealth,
    registry::recorder::RecorderHealth,
    store::{StoreError, ToolStore},
};

/// A probe must answer quickly even when the database hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// What the service, its storage and its embedder are doing.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    storage: Value,
    tools: Value,
    embedder: Value,
    /// The execution recorder: backlog, records written, reduced and lost, last failure.
    executions: RecorderHealth,
    /// Each stdio upstream MCP server started so far: its state, pid, restarts and last
    /// error.
    stdio_upstreams: Vec<StdioUpstreamHealth>,
}

/// (all tools, active tools): the catalogue's size, for /health and /metrics.
pub(super) async fn tool_counts(store: &dyn ToolStore) -> Result<(u64, u64), StoreError> {
    let all = store.count(&ToolFilter::default()).await?;
    let active = store
        .count(&ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        })
        .await?;
    Ok((all, active))
}

async fn storage_check(state: &AppState) -> Result<(), StoreError> {
    match tokio::time::timeout(PROBE_TIMEOUT, state.registry.store().ping()).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
    }
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Always 200; `status` is ok or degraded (storage down, \
        embedder down, execution records failing to be written, or a stdio upstream failing to \
        start)", body = Health)))]
async fn health(State(state): State<AppState>) -> Json<Health> {
    let store = state.registry.store();
    let check = storage_check(&state).await;
    let embedder = state.registry.embedder();
    let tools = if check.is_ok() {
        let counts = tool_counts(store.as_ref()).await;
        let vectors = store.embedding_counts(state.registry.vector_model()).await;
        match (counts, vectors) {
            (Ok((total, active)), Ok(vectors)) => json!({
                "total": total,
                "active": active,
                "indexed": vectors.indexed,
                "pending_embedding": vectors.pending,
            }),
            _ => json!(null),
        }
    } else {
        json!(null)
    };
    let embedder_health = embedder.health();
    let executions = state.registry.recorder().health();
    // Records failing to be written, or a queue nearly full (calls about to wait), is
    // trouble even while the database answers a ping.
    let recorder_degraded =
        executions.failing || executions.backlog * 10 >= executions.capacity * 9;
    let vector_search = store.vector_search();
    let stdio_upstreams = state.registry.executor().stdio().health();
    let stdio_failed = stdio_upstreams
        .iter()
        .any(|upstream| upstream.state == "failed");
    let degraded =
        check.is_err() || embedder_health.status != "up" || recorder_degraded || stdio_failed;
    Json(Health {
        status: if degraded { "degraded" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        storage: json!({
            "backend": store.backend(),
            "status": if check.is_ok() { "up" } else { "down" },
            "error": check.err().map(|e| e.to_string()),
            "dimensions": store.dimensions(),
            "vector_search": vector_search.place,
            "vector_search_reason": vector_search.reason,
        }),
        tools,
        embedder: json!({
            "provider": embedder_health.provider,
            "model": embedder_health.model,
            "dimensions": embedder_health.dimensions,
            "status": embedder_health.status,
            "detail": embedder_health.detail,
            "reindex": state.registry.indexer().progress(),
        }),
        executions,
        stdio_upstreams,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct Probe {
    status: &'static str,
}

/// The process answers.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = Probe)))]
async fn live() -> Json<Probe> {
    Json(Probe { status: "ok" })
}

/// The storage answers too.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = Probe),
        (status = 503, description = "The storage does not answer", body = ErrorBody),
    ))]
async fn ready(State(state): State<AppState>) -> Result<Json<Probe>, ApiError> {
    storage_check(&state).await?;
    Ok(Json(Probe { status: "ready" }))
}
