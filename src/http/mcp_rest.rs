//! The plain REST routes agents use: `/mcp/list_tools` (find and call arrive with search
//! and execution).

use axum::{Json, Router, extract::State, routing::post};
use serde::Deserialize;

use super::{
    AppState,
    extract::AppJson,
    paging::{ToolPage, page},
};
use crate::{error::ApiError, registry::model::ToolFilter};

pub fn router() -> Router<AppState> {
    Router::new().route("/mcp/list_tools", post(list_tools))
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
