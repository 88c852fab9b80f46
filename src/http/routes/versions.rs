//! `/admin/tools/{id}/versions` and `/admin/tools/{id}/rollback`: a tool's history.

use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::Tool,
    http::{
        AppState,
        error::{ApiError, ErrorBody},
        extract::{AppJson, ToolId},
        responses::{BodyErrors, Refusals, ToolIdErrors},
    },
    registry::versions::VersionHistory,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tool_versions))
        .routes(routes!(rollback_tool))
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
    let tool = state.registry.rollback(id, &request.version).await?;
    Ok(Json(tool.redacted()))
}
