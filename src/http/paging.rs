//! Paging and listing parameters shared by the list routes.

use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    registry::{
        model::{Page, Paged, Tool},
        served::{AdminTool, AgentTool, ServedTool},
    },
};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
pub const MAX_OFFSET: u32 = 1_000_000;

pub fn page(limit: Option<u32>, offset: Option<u32>) -> Result<Page, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::validation(
            "offset",
            format!("offset must be at most {MAX_OFFSET}"),
        ));
    }
    Ok(Page { limit, offset })
}

/// One page of tools as agents see them (no `implementation`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolPage {
    #[schema(value_type = Vec<AgentTool>)]
    pub tools: Vec<ServedTool>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    /// Set when the category matched no active tool: the categories there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ToolPage {
    pub fn new(paged: Paged<ServedTool>, page: Page) -> Self {
        Self {
            tools: paged.items,
            total: paged.total,
            limit: page.limit,
            offset: page.offset,
            note: None,
        }
    }
}

/// One page of tools as operators see them: whole, secrets redacted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminToolPage {
    #[schema(value_type = Vec<Tool>)]
    pub tools: Vec<AdminTool>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

impl AdminToolPage {
    pub fn new(paged: Paged<ServedTool>, page: Page) -> Self {
        Self {
            tools: paged.items.iter().map(ServedTool::admin).collect(),
            total: paged.total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}
