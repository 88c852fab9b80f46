//! The plain REST routes agents use: `/mcp/list_tools` and `/mcp/call_tool`.

use axum::{Json, Router, extract::State, routing::post};
use serde::Deserialize;

use super::{
    AppState,
    extract::AppJson,
    paging::{ToolPage, page},
};
use crate::{
    error::ApiError,
    registry::model::{CallResult, ToolFilter},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mcp/list_tools", post(list_tools))
        .route("/mcp/call_tool", post(call_tool))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListToolsRequest {
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "yes")]
    active_only: bool,
    limit: Option<u32>,
    offset: Option<u32>,
}

fn yes() -> bool {
    true
}

async fn list_tools(
    State(state): State<AppState>,
    AppJson(request): AppJson<ListToolsRequest>,
) -> Result<Json<ToolPage>, ApiError> {
    let page = page(request.limit, request.offset)?;
    let filter = ToolFilter {
        category: request.category,
        tags: request.tags,
        active_only: request.active_only,
    };
    let paged = state.registry.list(&filter, page).await?;
    Ok(Json(ToolPage::new(paged, page)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallToolRequest {
    name: String,
    #[serde(default = "empty_object")]
    arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

async fn call_tool(
    State(state): State<AppState>,
    AppJson(request): AppJson<CallToolRequest>,
) -> Result<Json<CallResult>, ApiError> {
    if !request.arguments.is_object() {
        return Err(ApiError::validation(
            "arguments",
            "arguments must be a JSON object",
        ));
    }
    Ok(Json(
        state
            .registry
            .call_tool(&request.name, request.arguments)
            .await?,
    ))
}
