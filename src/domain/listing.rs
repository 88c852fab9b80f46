//! Listings of the catalogue: their filters and pages.

use serde::Serialize;

use super::{RegistryError, Tool};

/// Filters of a catalogue listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolFilter {
    pub category: Option<String>,
    /// A tool matches when it carries any of these tags.
    pub tags: Vec<String>,
    pub active_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
pub const MAX_OFFSET: u32 = 1_000_000;

/// The page a listing asks for: `limit` 1 to 500 (default 50), `offset` at most 1,000,000.
pub fn page(limit: Option<u32>, offset: Option<u32>) -> Result<Page, RegistryError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(RegistryError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(RegistryError::invalid(
            "offset",
            format!("offset must be at most {MAX_OFFSET}"),
        ));
    }
    Ok(Page { limit, offset })
}

/// One page of a listing and the total count matching its filters.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// What searches filter a tool by, kept in the in-memory indexes beside its words and vector
/// so that filtering needs no database read.
#[derive(Debug, Clone, PartialEq)]
pub struct Facets {
    pub category: String,
    pub tags: Vec<String>,
    pub is_active: bool,
}

impl Facets {
    pub fn of(tool: &Tool) -> Self {
        Self {
            category: tool.category.clone(),
            tags: tool.tags.clone(),
            is_active: tool.is_active,
        }
    }

    pub fn matches(&self, filter: &ToolFilter) -> bool {
        (!filter.active_only || self.is_active)
            && filter.category.as_ref().is_none_or(|c| *c == self.category)
            && (filter.tags.is_empty() || self.tags.iter().any(|t| filter.tags.contains(t)))
    }
}
