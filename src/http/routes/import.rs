//! `POST /admin/import`: the tools of an upstream MCP server.

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        AppState,
        error::{ApiError, ErrorBody},
        extract::AppJson,
        responses::{BodyErrors, Refusals},
    },
    registry::import::{ImportReport, ImportRequest},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_upstream))
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
    let embedding_wait = state.settings.server.request_timeout() / 2;
    let report = state
        .registry
        .import_upstream(request, embedding_wait)
        .await?;
    Ok(Json(report))
}
