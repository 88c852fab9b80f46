//! The in-memory search engine: the catalogue index (BM25 full text, listings in name
//! order), the exact vector index with its SIMD kernels, and the fusion of both rankings.
//!
//! Pure and synchronous: no database, no network, no runtime. The stores keep these
//! structures current with every write (see `store::mirror`); searches read them.

pub mod best_k;
pub mod catalogue;
pub mod fusion;
pub mod lexical;
pub mod shared_vectors;
pub mod simd;
pub mod vector;

use crate::registry::model::{Tool, ToolFilter};

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
