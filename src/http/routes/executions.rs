//! `/admin/executions` and `/admin/tools/{id}/stats`: the record of calls.

use axum::{
    Json,
    extract::{RawQuery, State},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    domain::{Execution, ExecutionFilter, ExecutionStatus, ToolStats},
    http::{
        AppState,
        error::{ApiError, ErrorBody},
        extract::ToolId,
        paging::page,
        query::QueryParams,
        responses::{QueryErrors, Refusals, ToolIdErrors},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tool_stats))
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
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
