//! find_tool: semantic (cosine), text (full-text rank) and hybrid (both, fused).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::ServedTool;

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
    /// Per part of the tool's text (`name`, `name_order`, `tags`, `description`,
    /// `parameters`), the words of the query (or step) that match it.
    pub matched: std::collections::BTreeMap<String, Vec<String>>,
    /// The raw cosine between query (or step) and tool; absent if not a vector candidate.
    pub vector_score: Option<f64>,
    /// The raw text score, `s / (1 + s)` of BM25; absent if not a text candidate.
    pub text_score: Option<f64>,
    /// The score that ranked the hit (in hybrid mode the weighted sum of both normalised).
    pub fused_score: f64,
    /// The vector weight the fusion used (hybrid mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_weight: Option<f64>,
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

/// One candidate of a search, before its tool is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: Uuid,
    /// What ranks the candidate: in hybrid mode the weighted sum of both normalised
    /// signals, which compares candidates of one query only.
    pub score: f64,
    /// What `threshold` is compared with, on a scale that means the same for every query:
    /// the cosine in semantic and hybrid mode (a candidate found by full text alone counts
    /// the lowest cosine of the vector candidates, which bounds its own from above), the
    /// text score in text mode.
    pub relevance: f64,
    pub vector_score: Option<f64>,
    pub text_score: Option<f64>,
}

/// The band the cosines of all-MiniLM-L6-v2 fall in between a task and a tool: about 0.1 for
/// unrelated texts, 0.6 and above for a close match. Fusion stretches it onto [0, 1], the
/// scale of the normalised text rank, so that `vector_weight` is the share the cosine
/// really gets.
const COSINE_UNRELATED: f64 = 0.1;
const COSINE_CLOSE: f64 = 0.6;

/// A cosine on the [0, 1] scale of the normalised text rank.
fn calibrate(cosine: f64) -> f64 {
    ((cosine - COSINE_UNRELATED) / (COSINE_CLOSE - COSINE_UNRELATED)).clamp(0.0, 1.0)
}

/// Maps scores onto [0, 1] by the lowest and highest of them; all equal map to 1.
fn min_max(scores: impl Iterator<Item = f64>) -> impl Fn(f64) -> f64 {
    let (low, high) = scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), s| {
        (low.min(s), high.max(s))
    });
    move |score| {
        if high > low {
            ((score - low) / (high - low)).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// Weighted fusion of the two candidate lists of (id, score) pairs, best first (ties by
/// id). Both signals are brought to one scale before weighting. The text ranks are min-max
/// normalised over their candidates (their scale depends on the query). This model's
/// cosines crowd into a narrow band, so raw they would leave the ranking to the text side
/// whatever the weight says; they are stretched from that band onto [0, 1] by a fixed
/// calibration instead of min-max, which measured worse: it makes the best vector candidate
/// of every query look like a perfect match, however poor. A tool missing from one list
/// gets that list's lowest score: it ranked below every candidate there.
pub fn fuse(vector: &[(Uuid, f64)], text: &[(Uuid, f64)], vector_weight: f64) -> Vec<Fused> {
    let vector_floor = vector.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let vector_floor = if vector_floor.is_finite() {
        vector_floor
    } else {
        COSINE_UNRELATED
    };
    let normalise_text = min_max(text.iter().map(|h| h.1));

    let mut merged: HashMap<Uuid, Fused> = HashMap::with_capacity(vector.len() + text.len());
    for &(id, cosine) in vector {
        merged.insert(
            id,
            Fused {
                id,
                score: 0.0,
                relevance: cosine,
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
                relevance: vector_floor,
                vector_score: None,
                text_score: None,
            })
            .text_score = Some(rank);
    }
    let mut fused: Vec<Fused> = merged
        .into_values()
        .map(|mut hit| {
            let semantic = calibrate(hit.vector_score.unwrap_or(vector_floor));
            let lexical = hit.text_score.map(&normalise_text).unwrap_or(0.0);
            hit.score =
                (vector_weight * semantic + (1.0 - vector_weight) * lexical).clamp(0.0, 1.0);
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
            relevance: score,
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
    fn fusion_weighs_both_signals_on_one_scale() {
        let vector = [(id("a"), 0.6), (id("b"), 0.5), (id("c"), 0.35)];
        let text = [(id("b"), 8.0), (id("d"), 2.0)];
        let fused = fuse(&vector, &text, 0.7);
        let by_id: HashMap<_, _> = fused.iter().map(|h| (h.id, h)).collect();
        assert!((by_id[&id("a")].score - 0.7).abs() < 1e-9);
        assert!((by_id[&id("b")].score - (0.7 * 0.8 + 0.3)).abs() < 1e-9);
        assert!((by_id[&id("c")].score - 0.7 * 0.5).abs() < 1e-9);
        // d only matched text, at the bottom of it: the lowest cosine, text 0.
        assert!((by_id[&id("d")].score - 0.7 * 0.5).abs() < 1e-9);
        assert_eq!(by_id[&id("d")].vector_score, None);
        assert_eq!(by_id[&id("b")].text_score, Some(8.0));
        // Relevance stays absolute: the cosine, or the lowest one for a text-only hit.
        assert!((by_id[&id("a")].relevance - 0.6).abs() < 1e-9);
        assert!((by_id[&id("d")].relevance - 0.35).abs() < 1e-9);
        let order: Vec<_> = fused.iter().map(|h| h.id).collect();
        assert_eq!(order[..2], [id("b"), id("a")]);
    }

    #[test]
    fn the_weight_decides_between_a_cosine_lead_and_a_text_lead() {
        // Cosines 0.45 and 0.20 are far apart for this model (raw, the cosine's share of
        // the difference was a third of what its weight said); the weight must be able to
        // let that difference beat a text lead, and the other way round.
        let vector = [(id("dense"), 0.45), (id("lexical"), 0.20)];
        let text = [(id("lexical"), 9.0), (id("dense"), 3.0)];
        assert_eq!(fuse(&vector, &text, 0.7)[0].id, id("dense"));
        assert_eq!(fuse(&vector, &text, 0.3)[0].id, id("lexical"));
    }

    #[test]
    fn fusion_of_empty_lists_is_empty_and_never_nan() {
        assert!(fuse(&[], &[], 0.7).is_empty());
        let only_text = fuse(&[], &[(id("x"), 1.0)], 0.5);
        assert!((only_text[0].score - 0.5).abs() < 1e-9);
        let only_vector = fuse(&[(id("y"), 0.35)], &[], 1.0);
        assert!((only_vector[0].score - 0.5).abs() < 1e-9);
        assert!((only_vector[0].relevance - 0.35).abs() < 1e-9);
    }
}
