//! Paging and listing parameters shared by the list routes.

use serde::{Deserialize, Serialize};

pub use crate::domain::listing::page;
use crate::domain::{AdminTool, AgentTool, Page, Paged, ServedTool, Tool};

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
