//! Operator routes under `/admin`: the catalogue's CRUD, executions and call statistics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::StatusCode,
    routing::{get, post},
};

use super::{
    AppState,
    extract::{AppJson, ToolId},
    paging::{ToolPage, page},
    query::QueryParams,
};
use crate::{
    error::ApiError,
    registry::import::{ImportReport, ImportRequest},
    registry::model::{
        Execution, ExecutionFilter, ExecutionStatus, NewTool, Tool, ToolFilter, ToolPatch,
        ToolStats,
    },
    registry::search::SearchHit,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tools", post(create_tool).get(list_tools))
        .route(
            "/admin/tools/{id}",
            get(get_tool).put(update_tool).delete(delete_tool),
        )
        .route("/admin/tools/{id}/activate", post(activate_tool))
        .route("/admin/tools/{id}/deactivate", post(deactivate_tool))
        .route("/admin/tools/{id}/stats", get(tool_stats))
        .route("/admin/tools/{id}/reindex", post(reindex_tool))
        .route("/admin/tools/{id}/similar", get(similar_tools))
        .route("/admin/reindex", post(reindex_all))
        .route("/admin/executions", get(list_executions))
        .route("/admin/import", post(import_upstream))
}

/// Registers (or brings up to date) the tools of an upstream MCP server.
async fn import_upstream(
    State(state): State<AppState>,
    AppJson(request): AppJson<ImportRequest>,
) -> Result<Json<ImportReport>, ApiError> {
    Ok(Json(state.registry.import_upstream(request).await?))
}

async fn create_tool(
    State(state): State<AppState>,
    AppJson(new): AppJson<NewTool>,
) -> Result<(StatusCode, Json<Tool>), ApiError> {
    let tool = state.registry.register(new).await?;
    Ok((StatusCode::CREATED, Json(tool)))
}

/// `?category=&tags=a,b&include_inactive=true&limit=&offset=`.
async fn list_tools(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ToolPage>, ApiError> {
    let params = QueryParams::parse(
        query.as_deref(),
        &["category", "tags", "include_inactive", "limit", "offset"],
    )?;
    let page = page(params.number("limit")?, params.number("offset")?)?;
    let filter = ToolFilter {
        category: params.text("category"),
        tags: params.list("tags"),
        active_only: !params.flag("include_inactive")?,
    };
    let paged = state.registry.list(&filter, page).await?;
    Ok(Json(ToolPage::new(paged, page)))
}

#[derive(Serialize)]
struct ExecutionPage {
    executions: Vec<Execution>,
    total: u64,
    limit: u32,
    offset: u32,
}

/// `?tool=<name or id>&status=success|error|timeout&since=<RFC 3339>&limit=&offset=`.
async fn list_executions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ExecutionPage>, ApiError> {
    let params = QueryParams::parse(
        query.as_deref(),
        &["tool", "status", "since", "limit", "offset"],
    )?;
    let page = page(params.number("limit")?, params.number("offset")?)?;
    let mut filter = ExecutionFilter::default();
    if let Some(tool) = params.text("tool") {
        match Uuid::parse_str(&tool) {
            Ok(id) => filter.tool_id = Some(id),
            Err(_) => filter.tool_name = Some(tool),
        }
    }
    if let Some(status) = params.text("status") {
        filter.status = Some(ExecutionStatus::parse(&status).ok_or_else(|| {
            ApiError::validation("status", "status must be success, error or timeout")
        })?);
    }
    if let Some(since) = params.text("since") {
        let parsed = DateTime::parse_from_rfc3339(&since).map_err(|_| {
            ApiError::validation(
                "since",
                "since must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
            )
        })?;
        filter.since = Some(parsed.with_timezone(&Utc));
    }
    let paged = state.registry.executions(&filter, page).await?;
    Ok(Json(ExecutionPage {
        executions: paged.items,
        total: paged.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

async fn reindex_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.reindex_tool(id).await?))
}

#[derive(Serialize)]
struct Similar {
    tools: Vec<SearchHit>,
}

/// `?limit=` (default 5, at most 100).
async fn similar_tools(
    State(state): State<AppState>,
    ToolId(id): ToolId,
    RawQuery(query): RawQuery,
) -> Result<Json<Similar>, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["limit"])?;
    let limit = params.number("limit")?.unwrap_or(5);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 100",
        ));
    }
    Ok(Json(Similar {
        tools: state.registry.similar(id, limit).await?,
    }))
}

/// Starts re-embedding in the background: pending and stale tools, or with `?all=true`
/// every tool. Answers 202 with the counts at the start; `/health` shows the progress.
async fn reindex_all(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["all"])?;
    let all = params.flag("all")?;
    let registry = &state.registry;
    let counts = registry
        .store()
        .embedding_counts(registry.embedder().model_id())
        .await?;
    if all {
        registry.indexer().request_full_pass();
    } else {
        registry.indexer().wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "started": true,
            "all": all,
            "model": registry.embedder().model_id(),
            "indexed": counts.indexed,
            "pending": counts.pending,
        })),
    ))
}

async fn tool_stats(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<ToolStats>, ApiError> {
    Ok(Json(state.registry.stats(id).await?))
}

async fn get_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.get(id).await?))
}

async fn update_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
    AppJson(patch): AppJson<ToolPatch>,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.update(id, patch).await?))
}

async fn delete_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<StatusCode, ApiError> {
    state.registry.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn activate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.set_active(id, true).await?))
}

async fn deactivate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.set_active(id, false).await?))
}
