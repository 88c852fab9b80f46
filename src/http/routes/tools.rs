//! `/admin/tools`: registering, reading, updating, activating and deleting tools, one or
//! a batch at a time.

use axum::{
    Json,
    extract::{RawQuery, State},
    http::StatusCode,
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::{Tool, ToolFilter},
    http::{
        AppState,
        error::{ApiError, ErrorBody},
        extract::{AppJson, ToolId},
        paging::{AdminToolPage, page},
        query::QueryParams,
        responses::{BodyErrors, QueryErrors, Refusals, ToolIdErrors},
    },
    registry::{
        Registered,
        batch::{NewToolBatch, RegisteredBatch},
        requests::{NewTool, ToolPatch},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tool, list_tools))
        .routes(routes!(create_tools))
        .routes(routes!(get_tool, update_tool, delete_tool))
        .routes(routes!(activate_tool))
        .routes(routes!(deactivate_tool))
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
    let registered = state.registry.register(new).await?;
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
/// (see `domain::portability`): warnings, not refusals.
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
        let warnings = crate::domain::portability::warnings(&tool.name, &tool.input_schema);
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
    let embedding_wait = state.settings.server.request_timeout() / 2;
    let mut registered = state.registry.register_many(batch, embedding_wait).await?;
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
    let tool = state.registry.update(id, patch).await?;
    Ok(Json(tool.redacted()))
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
    state.registry.delete(id).await?;
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
    let tool = state.registry.set_active(id, true).await?;
    Ok(Json(tool.redacted()))
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
    let tool = state.registry.set_active(id, false).await?;
    Ok(Json(tool.redacted()))
}
