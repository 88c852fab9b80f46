//! The plain REST routes agents use: `/mcp/list_tools`, `/mcp/find_tool` and
//! `/mcp/call_tool`.

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::AppJson,
    paging::ToolPage,
    responses::{BodyErrors, Refusals},
};
use crate::{
    domain::CallResult,
    registry::{
        requests::{CallToolRequest, FindToolRequest, ListToolsRequest},
        search::SearchResult,
    },
};

#[utoipa::path(post, path = "/mcp/find_tool", tag = "agents", request_body = FindToolRequest,
    responses(
        (status = 200, description = "Ranked tools and the mode that answered", body = FindToolAnswer),
        BodyErrors,
        Refusals,
    ))]
async fn find_tool(
    State(state): State<AppState>,
    AppJson(request): AppJson<FindToolRequest>,
) -> Result<Json<FindToolAnswer>, ApiError> {
    let search = request.into_search()?;
    let (result, note) = state.registry.find_for_agent(search).await?;
    Ok(Json(FindToolAnswer { result, note }))
}

/// A find_tool answer: the ranked tools, and why there are none when a category matched
/// nothing.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FindToolAnswer {
    #[serde(flatten)]
    result: SearchResult,
    /// Set when the category matched no active tool: the categories there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tools))
        .routes(routes!(call_tool))
        .routes(routes!(find_tool))
}

#[utoipa::path(post, path = "/mcp/list_tools", tag = "agents", request_body = ListToolsRequest,
    responses(
        (status = 200, description = "One page of tools, by name", body = ToolPage),
        BodyErrors,
        Refusals,
    ))]
async fn list_tools(
    State(state): State<AppState>,
    AppJson(request): AppJson<ListToolsRequest>,
) -> Result<Json<ToolPage>, ApiError> {
    let (filter, page) = request.into_query()?;
    let (paged, note) = state.registry.list_for_agent(filter, page).await?;
    let mut answer = ToolPage::new(paged, page);
    answer.note = note;
    Ok(Json(answer))
}

#[utoipa::path(post, path = "/mcp/call_tool", tag = "agents", request_body = CallToolRequest,
    responses(
        (status = 200, description = "The call ran; a failed tool has status error or timeout", body = CallResult),
        (status = 404, description = "No such tool", body = ErrorBody),
        BodyErrors,
        Refusals,
    ))]
async fn call_tool(
    State(state): State<AppState>,
    AppJson(request): AppJson<CallToolRequest>,
) -> Result<Json<CallResult>, ApiError> {
    let arguments = request.arguments_object()?;
    Ok(Json(
        state.registry.call_tool(&request.name, arguments).await?,
    ))
}
