//! The plain REST routes agents use: `/mcp/list_tools`, `/mcp/find_tool` and
//! `/mcp/call_tool`.

use axum::{Json, Router, extract::State, routing::post};
use serde::Deserialize;

use super::{
    AppState,
    extract::AppJson,
    paging::{ToolPage, page},
};
use crate::{
    error::ApiError,
    registry::{
        model::{CallResult, Page, ToolFilter},
        search::{SearchMode, SearchRequest, SearchResult},
    },
};

pub const MAX_QUERY_CHARS: usize = 2_000;
pub const MAX_FIND_LIMIT: u32 = 100;

/// A find_tool request, shared with MCP's `find_tool` meta tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindToolRequest {
    query: String,
    limit: Option<u32>,
    threshold: Option<f64>,
    category: Option<String>,
    #[serde(default)]
    mode: SearchMode,
    vector_weight: Option<f64>,
}

impl FindToolRequest {
    pub fn into_search(self) -> Result<SearchRequest, ApiError> {
        if self.query.trim().is_empty() {
            return Err(ApiError::validation("query", "query must not be empty"));
        }
        if self.query.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::validation(
                "query",
                format!("query must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let limit = self.limit.unwrap_or(5);
        if !(1..=MAX_FIND_LIMIT).contains(&limit) {
            return Err(ApiError::validation(
                "limit",
                format!("limit must be between 1 and {MAX_FIND_LIMIT}"),
            ));
        }
        let unit = |field: &str, value: Option<f64>, default: f64| match value {
            None => Ok(default),
            Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
            Some(_) => Err(ApiError::validation(
                field,
                format!("{field} must be between 0 and 1"),
            )),
        };
        Ok(SearchRequest {
            query: self.query,
            limit,
            threshold: unit("threshold", self.threshold, 0.0)?,
            category: self.category,
            mode: self.mode,
            vector_weight: unit("vector_weight", self.vector_weight, 0.7)?,
        })
    }
}

async fn find_tool(
    State(state): State<AppState>,
    AppJson(request): AppJson<FindToolRequest>,
) -> Result<Json<SearchResult>, ApiError> {
    let search = request.into_search()?;
    Ok(Json(state.registry.find(&search).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mcp/list_tools", post(list_tools))
        .route("/mcp/call_tool", post(call_tool))
        .route("/mcp/find_tool", post(find_tool))
}

/// A list_tools request, shared with MCP's `list_tools` meta tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListToolsRequest {
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

impl ListToolsRequest {
    pub fn into_query(self) -> Result<(ToolFilter, Page), ApiError> {
        let page = page(self.limit, self.offset)?;
        let filter = ToolFilter {
            category: self.category,
            tags: self.tags,
            active_only: self.active_only,
        };
        Ok((filter, page))
    }
}

async fn list_tools(
    State(state): State<AppState>,
    AppJson(request): AppJson<ListToolsRequest>,
) -> Result<Json<ToolPage>, ApiError> {
    let (filter, page) = request.into_query()?;
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
