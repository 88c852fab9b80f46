//! Operator routes under `/admin`: the catalogue's CRUD, executions and call statistics.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use utoipa_axum::{router::OpenApiRouter, routes};

use axum::{
    Json,
    extract::{RawQuery, State},
    http::StatusCode,
};

use super::{
    AppState,
    extract::{AppJson, ToolId},
    openapi::{BodyErrors, QueryErrors, Refusals, ToolIdErrors},
    paging::{AdminToolPage, page},
    query::QueryParams,
};
use crate::{
    error::{ApiError, ErrorBody},
    registry::ToolRegistry,
    registry::batch::{NewToolBatch, RegisteredBatch},
    registry::import::{ImportReport, ImportRequest},
    registry::model::{
        Execution, ExecutionFilter, ExecutionStatus, NewTool, Tool, ToolFilter, ToolPatch,
        ToolStats,
    },
    registry::search::SearchHit,
    registry::served::AdminTool,
    registry::versions::{Registered, VersionHistory},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tool, list_tools))
        .routes(routes!(create_tools))
        .routes(routes!(get_tool, update_tool, delete_tool))
        .routes(routes!(activate_tool))
        .routes(routes!(deactivate_tool))
        .routes(routes!(tool_stats))
        .routes(routes!(reindex_tool))
        .routes(routes!(similar_tools))
        .routes(routes!(reindex_all))
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
        .routes(routes!(import_upstream))
        .routes(routes!(tool_versions))
        .routes(routes!(rollback_tool))
        .merge(super::stats::router())
}

/// Registers (or brings up to date) the tools of an upstream MCP server.
#[utoipa::path(post, path = "/admin/import", tag = "admin", request_body = ImportRequest,
    responses(
        (status = 200, description = "The upstream's tools are registered and up to date", body = ImportReport),
        (status = 502, description = "The upstream MCP server failed", body = ErrorBody),
        BodyErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn import_upstream(
    State(state): State<AppState>,
    AppJson(request): AppJson<ImportRequest>,
) -> Result<Json<ImportReport>, ApiError> {
    // Half the request's time for embeddings leaves the rest for storing and answering.
    let embedding_wait = state.settings.request_timeout() / 2;
    let report = to_the_end(&state, |registry| async move {
        registry.import_upstream(request, embedding_wait).await
    });
    Ok(Json(report.await?))
}

#[utoipa::path(post, path = "/admin/tools", tag = "admin", request_body = NewTool,
    responses(
        (status = 201, description = "Registered", body = ToolWithWarnings),
        (status = 200, description = "With `upsert`: the tool of that name, updated", body = ToolWithWarnings),
        (status = 409, description = "The name is taken (and `upsert` is not set)", body = ErrorBody),
        BodyErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn create_tool(
    State(state): State<AppState>,
    AppJson(new): AppJson<NewTool>,
) -> Result<(StatusCode, Json<ToolWithWarnings>), ApiError> {
    let registered = to_the_end(
        &state,
        |registry| async move { registry.register(new).await },
    )
    .await?;
    let status = match registered {
        Registered::Created(_) => StatusCode::CREATED,
        Registered::Updated(_) => StatusCode::OK,
    };
    Ok((
        status,
        Json(ToolWithWarnings::new(registered.into_tool().redacted())),
    ))
}

/// A tool with what keeps its definition from working with every common model API
/// (see `registry::portability`): warnings, not refusals.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ToolWithWarnings {
    #[serde(flatten)]
    tool: Tool,
    /// Portability problems of the name and input schema; left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl ToolWithWarnings {
    fn new(tool: Tool) -> Self {
        let warnings = crate::registry::portability::warnings(&tool.name, &tool.input_schema);
        Self { tool, warnings }
    }
}

/// Registers up to 1,000 new tools at once: all of them or none.
#[utoipa::path(post, path = "/admin/tools/batch", tag = "admin", request_body = NewToolBatch,
    responses(
        (status = 201, description = "Every tool registered, in the order given", body = RegisteredBatch),
        (status = 409, description = "A name is taken; no tool was registered", body = ErrorBody),
        BodyErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn create_tools(
    State(state): State<AppState>,
    AppJson(batch): AppJson<NewToolBatch>,
) -> Result<(StatusCode, Json<RegisteredBatch>), ApiError> {
    // Half the request's time for embeddings leaves the rest for storing and answering.
    let embedding_wait = state.settings.request_timeout() / 2;
    let registered = to_the_end(&state, |registry| async move {
        registry.register_many(batch, embedding_wait).await
    });
    let mut registered = registered.await?;
    registered.tools = registered.tools.into_iter().map(Tool::redacted).collect();
    Ok((StatusCode::CREATED, Json(registered)))
}

/// `?category=&tags=a,b&include_inactive=true&limit=&offset=`.
#[utoipa::path(get, path = "/admin/tools", tag = "admin",
    params(
        ("category" = Option<String>, Query, description = "Only this category"),
        ("tags" = Option<String>, Query, description = "Comma-separated; tools with any of them"),
        ("include_inactive" = Option<bool>, Query, description = "Also deactivated tools"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("offset" = Option<u32>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, description = "One page of tools, by name, secrets redacted", body = AdminToolPage),
        QueryErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn list_tools(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AdminToolPage>, ApiError> {
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
    let paged = state.registry.list_served(&filter, page).await?;
    Ok(Json(AdminToolPage::new(paged, page)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ExecutionPage {
    executions: Vec<Execution>,
    total: u64,
    limit: u32,
    offset: u32,
}

/// `?tool=<name or id>&status=success|error|timeout&since=<RFC 3339>&limit=&offset=`.
#[utoipa::path(get, path = "/admin/executions", tag = "admin",
    params(
        ("tool" = Option<String>, Query, description = "A tool's name or id"),
        ("status" = Option<ExecutionStatus>, Query, description = "success, error or timeout"),
        ("since" = Option<String>, Query, description = "RFC 3339 time"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("offset" = Option<u32>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, description = "Executions, newest first", body = ExecutionPage),
        QueryErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
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

/// One execution record; like the listing, it includes every call this process answered.
#[utoipa::path(get, path = "/admin/executions/{id}", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The execution's id (`execution_id` of the call)"),
    ),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ErrorBody),
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn get_execution(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Execution>, ApiError> {
    Ok(Json(state.registry.execution(id).await?))
}

#[utoipa::path(post, path = "/admin/tools/{id}/reindex", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "Embedded again", body = Tool),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn reindex_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    let tool = to_the_end(
        &state,
        |registry| async move { registry.reindex_tool(id).await },
    );
    Ok(Json(tool.await?.redacted()))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Similar {
    tools: Vec<SimilarTool>,
}

/// A search hit in the operator view.
#[derive(Serialize, utoipa::ToSchema)]
struct SimilarTool {
    #[schema(value_type = Tool)]
    tool: AdminTool,
    score: f64,
    vector_score: Option<f64>,
    text_score: Option<f64>,
}

impl From<SearchHit> for SimilarTool {
    fn from(hit: SearchHit) -> Self {
        Self {
            tool: hit.tool.admin(),
            score: hit.score,
            vector_score: hit.vector_score,
            text_score: hit.text_score,
        }
    }
}

/// `?limit=` (default 5, at most 100).
#[utoipa::path(get, path = "/admin/tools/{id}/similar", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 5"),
    ),
    responses(
        (status = 200, description = "The nearest tools, itself excluded", body = Similar),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
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
    let hits = state.registry.similar(id, limit).await?;
    Ok(Json(Similar {
        tools: hits.into_iter().map(SimilarTool::from).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReindexStarted {
    started: bool,
    /// Every tool is re-embedded, not only pending and stale ones.
    all: bool,
    /// The model whose vectors are being made.
    model: String,
    /// Tools with a vector of that model when the pass started.
    indexed: u64,
    /// Tools still waiting for one.
    pending: u64,
}

/// Starts re-embedding in the background: pending and stale tools, or with `?all=true`
/// every tool. Answers 202 with the counts at the start; `/health` shows the progress.
#[utoipa::path(post, path = "/admin/reindex", tag = "admin",
    params(("all" = Option<bool>, Query, description = "Re-embed every tool, not only pending and stale ones")),
    responses(
        (status = 202, description = "Started; progress in /health", body = ReindexStarted),
        QueryErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn reindex_all(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<(StatusCode, Json<ReindexStarted>), ApiError> {
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
        Json(ReindexStarted {
            started: true,
            all,
            model: registry.embedder().model_id().to_owned(),
            indexed: counts.indexed,
            pending: counts.pending,
        }),
    ))
}

#[utoipa::path(get, path = "/admin/tools/{id}/stats", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "Call statistics", body = ToolStats),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn tool_stats(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<ToolStats>, ApiError> {
    Ok(Json(state.registry.stats(id).await?))
}

/// The definitions the tool's updates replaced, newest first.
#[utoipa::path(get, path = "/admin/tools/{id}/versions", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "The version history", body = VersionHistory),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn tool_versions(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<VersionHistory>, ApiError> {
    let mut history = state.registry.versions(id).await?;
    history.versions = history
        .versions
        .into_iter()
        .map(|version| version.redacted())
        .collect();
    Ok(Json(history))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": "1.0.0"}))]
struct RollbackRequest {
    /// A version in the tool's history.
    version: String,
}

/// Makes an earlier definition current again; the one it replaces joins the history.
#[utoipa::path(post, path = "/admin/tools/{id}/rollback", tag = "admin",
    request_body = RollbackRequest,
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "The tool with the earlier definition", body = Tool),
        (status = 404, description = "No such tool, or no such version in its history", body = ErrorBody),
        (status = 409, description = "The earlier name is now another tool's", body = ErrorBody),
        BodyErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn rollback_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
    AppJson(request): AppJson<RollbackRequest>,
) -> Result<Json<Tool>, ApiError> {
    let tool = to_the_end(&state, |registry| async move {
        registry.rollback(id, &request.version).await
    });
    Ok(Json(tool.await?.redacted()))
}

#[utoipa::path(get, path = "/admin/tools/{id}", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "The tool", body = ToolWithWarnings),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn get_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<ToolWithWarnings>, ApiError> {
    Ok(Json(ToolWithWarnings::new(
        state.registry.get(id).await?.redacted(),
    )))
}

#[utoipa::path(put, path = "/admin/tools/{id}", tag = "admin", request_body = ToolPatch,
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "Updated", body = Tool),
        (status = 404, description = "No such tool", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        BodyErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn update_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
    AppJson(patch): AppJson<ToolPatch>,
) -> Result<Json<Tool>, ApiError> {
    let tool = to_the_end(&state, |registry| async move {
        registry.update(id, patch).await
    });
    Ok(Json(tool.await?.redacted()))
}

#[utoipa::path(delete, path = "/admin/tools/{id}", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn delete_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<StatusCode, ApiError> {
    to_the_end(&state, |registry| async move { registry.delete(id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/tools/{id}/activate", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "Active", body = Tool),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn activate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    let tool = to_the_end(&state, |registry| async move {
        registry.set_active(id, true).await
    });
    Ok(Json(tool.await?.redacted()))
}

#[utoipa::path(post, path = "/admin/tools/{id}/deactivate", tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tool's id"),
    ),
    responses(
        (status = 200, description = "Inactive: hidden from agents, kept with its history", body = Tool),
        ToolIdErrors,
        Refusals,
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn deactivate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    let tool = to_the_end(&state, |registry| async move {
        registry.set_active(id, false).await
    });
    Ok(Json(tool.await?.redacted()))
}

/// Runs a change of the catalogue on its own task, to its end. A client that hangs up, or
/// the request timeout, drops the request; a write dropped between the database's commit
/// and the in-memory indexes that follow it would leave those behind the database.
async fn to_the_end<T, F>(
    state: &AppState,
    change: impl FnOnce(Arc<ToolRegistry>) -> F,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(change(state.registry.clone()))
        .await
        .map_err(|err| ApiError::Internal(format!("a catalogue change failed: {err}")))?
}
