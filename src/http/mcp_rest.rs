//! The plain REST routes agents use: `/mcp/list_tools`, `/mcp/find_tool` and
//! `/mcp/call_tool`.

use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    extract::AppJson,
    openapi::{BodyErrors, Refusals},
    paging::{ToolPage, page},
};
use crate::{
    error::{ApiError, ErrorBody},
    registry::{
        ToolRegistry,
        model::{CallResult, Page, ToolFilter},
        search::{SearchMode, SearchRequest, SearchResult},
    },
};

pub const MAX_QUERY_CHARS: usize = 2_000;
pub const MAX_FIND_LIMIT: u32 = 100;
/// The cosine's share in hybrid fusion: the best measured over both development sets
/// (Seal-Tools dev and eval/mcp_queries.jsonl), see the README's quality table.
pub const DEFAULT_VECTOR_WEIGHT: f64 = 0.4;

/// A find_tool request, shared with MCP's `find_tool` meta tool (whose input schema is
/// derived from this type).
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"query": "open an issue on a GitHub repository", "limit": 3}))]
pub struct FindToolRequest {
    /// The task in plain words.
    #[schema(min_length = 1, max_length = 2000)]
    #[schemars(length(min = 1, max = 2000))]
    query: String,
    /// How many tools to return (default 5).
    #[schema(minimum = 1, maximum = 100)]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Hits less relevant than this are left out (default 0): in semantic and hybrid mode
    /// the hit's cosine (a hybrid hit found by full text alone counts the lowest cosine of
    /// the vector candidates), in text mode its text score.
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[schemars(range(min = 0.0, max = 1.0))]
    threshold: Option<f64>,
    /// Only tools of this category (any case; empty for all).
    category: Option<String>,
    /// How to match: hybrid (default), semantic or text.
    #[serde(default)]
    mode: SearchMode,
    /// Weight of the (calibrated) vector score in hybrid mode; the rest goes to full text
    /// (default 0.4).
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[schemars(range(min = 0.0, max = 1.0))]
    vector_weight: Option<f64>,
    /// Say for each hit which query words matched which parts of the tool, the step of a
    /// multi-step request it answered, and each signal's raw and fused score.
    #[serde(default)]
    explain: bool,
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
            category: category_filter(self.category),
            mode: self.mode,
            vector_weight: unit("vector_weight", self.vector_weight, DEFAULT_VECTOR_WEIGHT)?,
            explain: self.explain,
        })
    }
}

/// An empty category is no filter.
fn category_filter(category: Option<String>) -> Option<String> {
    category.filter(|c| !c.trim().is_empty())
}

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
    let mut search = request.into_search()?;
    let mut result = state.registry.find(&search).await?;
    let mut note = None;
    if result.tools.is_empty()
        && let Some(requested) = search.category.clone()
    {
        match stored_category(&state.registry, &requested).await? {
            Ok(stored) if stored != requested => {
                search.category = Some(stored);
                result = state.registry.find(&search).await?;
            }
            Ok(_) => {}
            Err(categories) => note = Some(no_such_category(&requested, &categories)),
        }
    }
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

/// A requested category as stored: categories match in any case. `Err` with the
/// categories there are when none matches. Asked only when a filtered answer is empty.
pub async fn stored_category(
    registry: &ToolRegistry,
    requested: &str,
) -> Result<Result<String, Vec<String>>, ApiError> {
    let categories = registry.active_categories().await?;
    let wanted = requested.to_lowercase();
    Ok(categories
        .iter()
        .find(|c| c.to_lowercase() == wanted)
        .cloned()
        .ok_or(categories))
}

/// What an answer filtered by a category that matched nothing says.
pub fn no_such_category(requested: &str, categories: &[String]) -> String {
    format!(
        "no active tool has the category '{requested}'; the categories are: {}",
        categories.join(", ")
    )
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tools))
        .routes(routes!(call_tool))
        .routes(routes!(find_tool))
}

/// A list_tools request, shared with MCP's `list_tools` meta tool (whose input schema is
/// derived from this type). Agents see active tools only; switched-off ones are listed on
/// `/admin/tools`.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListToolsRequest {
    /// Only tools of this category (any case; empty for all).
    category: Option<String>,
    /// Tools carrying any of these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// How many tools per page (default 50).
    #[schema(minimum = 1, maximum = 500)]
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    /// How many tools to skip (default 0).
    #[schema(maximum = 1_000_000)]
    #[schemars(range(max = 1_000_000))]
    offset: Option<u32>,
}

impl ListToolsRequest {
    pub fn into_query(self) -> Result<(ToolFilter, Page), ApiError> {
        let page = page(self.limit, self.offset)?;
        let filter = ToolFilter {
            category: category_filter(self.category),
            tags: self.tags,
            active_only: true,
        };
        Ok((filter, page))
    }
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
    let (mut filter, page) = request.into_query()?;
    let mut paged = state.registry.list_served(&filter, page).await?;
    let mut note = None;
    if paged.total == 0
        && let Some(requested) = filter.category.clone()
    {
        match stored_category(&state.registry, &requested).await? {
            Ok(stored) if stored != requested => {
                filter.category = Some(stored);
                paged = state.registry.list_served(&filter, page).await?;
            }
            Ok(_) => {}
            Err(categories) => note = Some(no_such_category(&requested, &categories)),
        }
    }
    let mut answer = ToolPage::new(paged, page);
    answer.note = note;
    Ok(Json(answer))
}

/// A call_tool request, shared with MCP's `call_tool` meta tool (whose input schema is
/// derived from this type).
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "calculator", "arguments": {"expression": "(2+3)*4^2"}}))]
pub struct CallToolRequest {
    /// The tool's name, as find_tool or list_tools show it.
    pub name: String,
    /// The tool's arguments, checked against its `input_schema`.
    #[serde(default = "empty_object")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl CallToolRequest {
    /// The arguments as an object. Some models send them as a string of JSON: that string
    /// is parsed.
    pub fn arguments_object(&self) -> Result<serde_json::Value, ApiError> {
        let parsed = match &self.arguments {
            serde_json::Value::String(text) => serde_json::from_str(text).ok(),
            other => Some(other.clone()),
        };
        parsed.filter(serde_json::Value::is_object).ok_or_else(|| {
            ApiError::validation(
                "arguments",
                "arguments must be a JSON object (or a string holding one)",
            )
        })
    }
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
