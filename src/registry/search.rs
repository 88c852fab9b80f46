//! find_tool: semantic (cosine), text (full-text rank) and hybrid (both, fused).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{ScoredTool, Tool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
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
    pub tool: Tool,
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

/// Weighted fusion of the two candidate lists. The full-text scores are min-max normalised
/// over the candidates (their scale depends on the engine and the query); cosines are used
/// as they are, since they are comparable across queries already. A tool missing from one
/// list gets that list's lowest score: it ranked below every candidate there.
pub fn fuse(vector: Vec<ScoredTool>, text: Vec<ScoredTool>, vector_weight: f64) -> Vec<SearchHit> {
    let text_min = text.iter().map(|h| h.score).fold(f64::INFINITY, f64::min);
    let text_max = text
        .iter()
        .map(|h| h.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let vector_floor = vector.iter().map(|h| h.score).fold(f64::INFINITY, f64::min);
    let normalise_text = |score: f64| {
        if text_max > text_min {
            (score - text_min) / (text_max - text_min)
        } else {
            1.0
        }
    };

    let mut merged: HashMap<Uuid, SearchHit> = HashMap::new();
    for hit in vector {
        merged.insert(
            hit.tool.id,
            SearchHit {
                tool: hit.tool,
                score: 0.0,
                vector_score: Some(hit.score),
                text_score: None,
            },
        );
    }
    for hit in text {
        merged
            .entry(hit.tool.id)
            .or_insert_with(|| SearchHit {
                tool: hit.tool,
                score: 0.0,
                vector_score: None,
                text_score: None,
            })
            .text_score = Some(hit.score);
    }
    let mut hits: Vec<SearchHit> = merged
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
    sort_hits(&mut hits);
    hits
}

/// Best first; ties broken by name so answers are stable.
pub fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.tool.name.cmp(&b.tool.name))
    });
}

pub fn single_list(hits: Vec<ScoredTool>, vector: bool) -> Vec<SearchHit> {
    hits.into_iter()
        .map(|hit| SearchHit {
            score: hit.score,
            vector_score: vector.then_some(hit.score),
            text_score: (!vector).then_some(hit.score),
            tool: hit.tool,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::model::{Implementation, now_micros};

    fn scored(name: &str, score: f64) -> ScoredTool {
        let now = now_micros();
        ScoredTool {
            tool: Tool {
                id: Uuid::from_u128(name.bytes().fold(7u128, |h, b| h * 31 + u128::from(b))),
                name: name.into(),
                description: "d".into(),
                category: "c".into(),
                tags: vec![],
                input_schema: json!({"type": "object"}),
                output_schema: None,
                version: "1".into(),
                implementation: Implementation::Builtin {
                    handler: "calculator".into(),
                },
                metadata: json!({}),
                is_active: true,
                embedding_model: None,
                created_at: now,
                updated_at: now,
            },
            score,
        }
    }

    #[test]
    fn fusion_weighs_cosine_and_normalised_text() {
        let vector = vec![scored("a", 0.9), scored("b", 0.5), scored("c", 0.4)];
        let text = vec![scored("b", 8.0), scored("d", 2.0)];
        let hits = fuse(vector, text, 0.7);
        let by_name: HashMap<_, _> = hits.iter().map(|h| (h.tool.name.as_str(), h)).collect();
        assert!((by_name["a"].score - 0.63).abs() < 1e-9);
        assert!((by_name["b"].score - (0.35 + 0.3)).abs() < 1e-9);
        // d only matched text, at the bottom of it: cosine floor 0.4, text 0.
        assert!((by_name["d"].score - 0.28).abs() < 1e-9);
        assert_eq!(by_name["d"].vector_score, None);
        assert_eq!(by_name["b"].text_score, Some(8.0));
        let order: Vec<_> = hits.iter().map(|h| h.tool.name.as_str()).collect();
        assert_eq!(order, vec!["b", "a", "c", "d"]);
    }

    #[test]
    fn fusion_of_empty_lists_is_empty_and_never_nan() {
        assert!(fuse(vec![], vec![], 0.7).is_empty());
        let only_text = fuse(vec![], vec![scored("x", 1.0)], 0.5);
        assert!((only_text[0].score - 0.5).abs() < 1e-9);
        let only_vector = fuse(vec![scored("y", 0.8)], vec![], 1.0);
        assert!((only_vector[0].score - 0.8).abs() < 1e-9);
    }
}
