//! find_tool: semantic (cosine), text (full-text rank) and hybrid (both, fused).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::served::ServedTool;

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// The agent view of the tool (no `implementation`).
    #[schema(value_type = super::served::AgentTool)]
    pub tool: ServedTool,
    pub score: f64,
    pub vector_score: Option<f64>,
    pub text_score: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub tools: Vec<SearchHit>,
    pub mode: AnsweredMode,
    pub took_ms: f64,
}

/// How many candidates each side contributes to a hybrid search.
pub fn hybrid_candidates(limit: u32) -> u32 {
    (limit * 5).max(50)
}

/// One candidate of a hybrid search, before its tool is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: Uuid,
    pub score: f64,
    pub vector_score: Option<f64>,
    pub text_score: Option<f64>,
}

/// Weighted fusion of the two candidate lists of (id, score) pairs, best first (ties by
/// id). The full-text scores are min-max normalised over the candidates (their scale
/// depends on the query); cosines are used as they are, since they are comparable across
/// queries already. A tool missing from one list gets that list's lowest score: it ranked
/// below every candidate there.
pub fn fuse(vector: &[(Uuid, f64)], text: &[(Uuid, f64)], vector_weight: f64) -> Vec<Fused> {
    let text_min = text.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let text_max = text.iter().map(|h| h.1).fold(f64::NEG_INFINITY, f64::max);
    let vector_floor = vector.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let normalise_text = |score: f64| {
        if text_max > text_min {
            (score - text_min) / (text_max - text_min)
        } else {
            1.0
        }
    };

    let mut merged: HashMap<Uuid, Fused> = HashMap::with_capacity(vector.len() + text.len());
    for &(id, cosine) in vector {
        merged.insert(
            id,
            Fused {
                id,
                score: 0.0,
                vector_score: Some(cosine),
                text_score: None,
            },
        );
    }
    for &(id, rank) in text {
        merged
            .entry(id)
            .or_insert(Fused {
                id,
                score: 0.0,
                vector_score: None,
                text_score: None,
            })
            .text_score = Some(rank);
    }
    let mut fused: Vec<Fused> = merged
        .into_values()
        .map(|mut hit| {
            let cosine = hit.vector_score.unwrap_or(if vector_floor.is_finite() {
                vector_floor
            } else {
                0.0
            });
            let lexical = hit.text_score.map(normalise_text).unwrap_or(0.0);
            hit.score = (vector_weight * cosine + (1.0 - vector_weight) * lexical).clamp(0.0, 1.0);
            hit
        })
        .collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    fused
}

/// Best first; ties broken by name so answers are stable.
pub fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.tool.name().cmp(b.tool.name()))
    });
}

/// The candidates of one ranking alone (vector or full text), as fusion would give them.
pub fn single_list(hits: &[(Uuid, f64)], vector: bool) -> Vec<Fused> {
    hits.iter()
        .map(|&(id, score)| Fused {
            id,
            score,
            vector_score: vector.then_some(score),
            text_score: (!vector).then_some(score),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Uuid {
        Uuid::from_u128(name.bytes().fold(7u128, |h, b| h * 31 + u128::from(b)))
    }

    #[test]
    fn fusion_weighs_cosine_and_normalised_text() {
        let vector = [(id("a"), 0.9), (id("b"), 0.5), (id("c"), 0.4)];
        let text = [(id("b"), 8.0), (id("d"), 2.0)];
        let fused = fuse(&vector, &text, 0.7);
        let by_id: HashMap<_, _> = fused.iter().map(|h| (h.id, h)).collect();
        assert!((by_id[&id("a")].score - 0.63).abs() < 1e-9);
        assert!((by_id[&id("b")].score - (0.35 + 0.3)).abs() < 1e-9);
        // d only matched text, at the bottom of it: cosine floor 0.4, text 0.
        assert!((by_id[&id("d")].score - 0.28).abs() < 1e-9);
        assert_eq!(by_id[&id("d")].vector_score, None);
        assert_eq!(by_id[&id("b")].text_score, Some(8.0));
        let order: Vec<_> = fused.iter().map(|h| h.id).collect();
        assert_eq!(order, vec![id("b"), id("a"), id("c"), id("d")]);
    }

    #[test]
    fn fusion_of_empty_lists_is_empty_and_never_nan() {
        assert!(fuse(&[], &[], 0.7).is_empty());
        let only_text = fuse(&[], &[(id("x"), 1.0)], 0.5);
        assert!((only_text[0].score - 0.5).abs() < 1e-9);
        let only_vector = fuse(&[(id("y"), 0.8)], &[], 1.0);
        assert!((only_vector[0].score - 0.8).abs() < 1e-9);
    }
}
