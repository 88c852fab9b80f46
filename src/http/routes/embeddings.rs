//! Embeddings and neighbours: `/admin/reindex`, `/admin/tools/{id}/reindex` and
//! `/admin/tools/{id}/similar`.

use axum::{
    Json,
    extract::{RawQuery, State},
    http::StatusCode,
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::{AdminTool, Tool},
    http::{
        AppState,
        error::ApiError,
        extract::ToolId,
        query::QueryParams,
        responses::{QueryErrors, Refusals, ToolIdErrors},
    },
    registry::search::SearchHit,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reindex_tool))
        .routes(routes!(similar_tools))
        .routes(routes!(reindex_all))
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
    let tool = state.registry.reindex_tool(id).await?;
    Ok(Json(tool.redacted()))
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
    /// The tag of the vectors being made: the model and the tool-text version
    /// (`…#text2`), as a tool's `embedding_model` shows it.
    model: String,
    /// Tools with a vector of that tag when the pass started.
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
    let start = state.registry.start_reindex(all).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReindexStarted {
            started: true,
            all,
            model: start.model,
            indexed: start.indexed,
            pending: start.pending,
        }),
    ))
}
