//! find_tool: semantic (cosine), text (full-text rank) and hybrid (both, fused).

use serde::{Deserialize, Serialize};

use crate::{domain::ServedTool, index::fusion};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Semantic,
    Text,
    #[default]
    Hybrid,
}

/// The mode that actually answered: a semantic or hybrid search falls back to full text
/// when the embedder is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredMode {
    Semantic,
    Text,
    Hybrid,
    TextFallback,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Text => "text",
            Self::Hybrid => "hybrid",
        }
    }
}

impl AnsweredMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Text => "text",
            Self::Hybrid => "hybrid",
            Self::TextFallback => "text_fallback",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub limit: u32,
    pub threshold: f64,
    pub category: Option<String>,
    pub mode: SearchMode,
    pub vector_weight: f64,
    /// Say for each hit why it ranks where it does.
    pub explain: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// The agent view of the tool (no `implementation`).
    #[schema(value_type = crate::domain::AgentTool)]
    pub tool: ServedTool,
    pub score: f64,
    pub vector_score: Option<f64>,
    pub text_score: Option<f64>,
    /// What `explain` reports as `text_coverage`; not part of a hit otherwise.
    #[serde(skip)]
    pub text_coverage: Option<f64>,
    /// Present when the request asked for `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explanation>,
}

/// Why a hit ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The step of a multi-step request this hit answered; absent for the whole request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The query (or step) as the model read it, when that differs from its words: literal
    /// values (quoted names, addresses, paths) generalised, a one-step request framed as the
    /// model reads requests best. Semantic and hybrid modes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_read: Option<String>,
    /// Per part of the tool's text (`name`, `name_order`, `tags`, `description`,
    /// `parameters`), the words of the query (or step) that match it.
    pub matched: std::collections::BTreeMap<String, Vec<String>>,
    /// The raw cosine between query (or step) and tool; absent if not a vector candidate.
    pub vector_score: Option<f64>,
    /// The raw text score, `s / (1 + s)` of BM25; absent if not a text candidate.
    pub text_score: Option<f64>,
    /// The share of the query (or step) the tool accounts for, its words weighted by
    /// rarity; the text rank counted in proportion to its square root (hybrid mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_coverage: Option<f64>,
    /// The score that ranked the hit (in hybrid mode the weighted sum of both normalised).
    pub fused_score: f64,
    /// The vector weight the hit's ranking was fused with (hybrid mode only): the request's
    /// (a step's: its square root), raised by what the best-covering text candidate leaves
    /// uncovered (not for the whole of a multi-step request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_weight: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub tools: Vec<SearchHit>,
    pub mode: AnsweredMode,
    pub took_ms: f64,
}

/// Best first; ties broken by the raw signals, then by name so answers are stable.
pub fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| {
                fusion::raw_signals_order(
                    a.vector_score,
                    a.text_score,
                    b.vector_score,
                    b.text_score,
                )
            })
            .then_with(|| a.tool.name().cmp(b.tool.name()))
    });
}

pub use crate::index::fusion::{Fused, fuse, hybrid_candidates, text_list, vector_list};
