//! Operator routes under `/admin`: the catalogue's CRUD.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::StatusCode,
    routing::{get, post},
};

use super::{
    AppState,
    extract::{AppJson, ToolId},
    paging::{ToolPage, page},
};
use crate::{
    error::ApiError,
    registry::model::{NewTool, Tool, ToolFilter, ToolPatch},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tools", post(create_tool).get(list_tools))
        .route(
            "/admin/tools/{id}",
            get(get_tool).put(update_tool).delete(delete_tool),
        )
        .route("/admin/tools/{id}/activate", post(activate_tool))
        .route("/admin/tools/{id}/deactivate", post(deactivate_tool))
}

async fn create_tool(
    State(state): State<AppState>,
    AppJson(new): AppJson<NewTool>,
) -> Result<(StatusCode, Json<Tool>), ApiError> {
    let tool = state.registry.register(new).await?;
    Ok((StatusCode::CREATED, Json(tool)))
}

/// `?category=&tags=a,b&include_inactive=true&limit=&offset=`; each bad value is a 422
/// naming its parameter.
async fn list_tools(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ToolPage>, ApiError> {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    const KNOWN: [&str; 5] = ["category", "tags", "include_inactive", "limit", "offset"];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::validation(
            unknown.clone(),
            format!("unknown query parameter '{unknown}'"),
        ));
    }
    let number = |name: &str| -> Result<Option<u32>, ApiError> {
        params
            .get(name)
            .map(|raw| {
                raw.parse::<u32>().map_err(|_| {
                    ApiError::validation(name, format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    };
    let include_inactive = match params.get("include_inactive").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::validation(
                "include_inactive",
                "include_inactive must be true or false",
            ));
        }
    };
    let page = page(number("limit")?, number("offset")?)?;
    let filter = ToolFilter {
        category: params.get("category").cloned(),
        tags: params
            .get("tags")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        active_only: !include_inactive,
    };
    let paged = state.registry.list(&filter, page).await?;
    Ok(Json(ToolPage::new(paged, page)))
}

async fn get_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.get(id).await?))
}

async fn update_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
    AppJson(patch): AppJson<ToolPatch>,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.update(id, patch).await?))
}

async fn delete_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<StatusCode, ApiError> {
    state.registry.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn activate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.set_active(id, true).await?))
}

async fn deactivate_tool(
    State(state): State<AppState>,
    ToolId(id): ToolId,
) -> Result<Json<Tool>, ApiError> {
    Ok(Json(state.registry.set_active(id, false).await?))
}
