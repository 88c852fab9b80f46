//! Fusion of the vector and full-text rankings, and the one rule every search score obeys:
//! it lies in [0, 1], higher is better. The stores' vector searches, the BM25 ranking and
//! the fused scores all report through [`unit_score`].

use std::collections::HashMap;

use uuid::Uuid;

use super::catalogue::TextHit;

/// A score as every search reports it: in [0, 1], higher is better. Cosines below 0 (opposed
/// texts) and rounding above 1 are clamped here and nowhere else.
pub fn unit_score(score: f64) -> f64 {
    score.clamp(0.0, 1.0)
}

/// A BM25 score `s` (unbounded, 0 for no match) as a unit score: `s / (1 + s)`.
pub fn text_score(bm25: f64) -> f64 {
    unit_score(bm25 / (1.0 + bm25))
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
    /// The share of the query a text candidate accounts for, when fusion scaled its text
    /// rank by it (see [`TextHit::coverage`]).
    pub text_coverage: Option<f64>,
}

/// The band the cosines of all-MiniLM-L6-v2 fall in between a task and a tool: about 0.1 for
/// unrelated texts, 0.6 and above for a close match. Fusion stretches it onto [0, 1], the
/// scale of the normalised text rank, so that `vector_weight` is the share the cosine
/// really gets.
const COSINE_UNRELATED: f64 = 0.1;
const COSINE_CLOSE: f64 = 0.6;

/// A cosine on the [0, 1] scale of the normalised text rank.
fn calibrate(cosine: f64) -> f64 {
    unit_score((cosine - COSINE_UNRELATED) / (COSINE_CLOSE - COSINE_UNRELATED))
}

/// Maps scores onto [0, 1] by the lowest and highest of them; all equal map to 1.
fn min_max(scores: impl Iterator<Item = f64>) -> impl Fn(f64) -> f64 {
    let (low, high) = scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), s| {
        (low.min(s), high.max(s))
    });
    move |score| {
        if high > low {
            unit_score((score - low) / (high - low))
        } else {
            1.0
        }
    }
}

/// How much of the query a text candidate must account for to keep its whole text rank:
/// the rank is scaled by the square root of its coverage (see [`TextHit::coverage`]).
fn coverage_factor(coverage: f64) -> f64 {
    coverage.clamp(0.0, 1.0).sqrt()
}

/// The vector side's best this many candidates always rank within the first
/// [`VECTOR_PLACES_WITHIN`] of a hybrid answer: full text can put a tool first, but a
/// request worded unlike the catalogue (as people write) gives it incidental words to rank
/// by, and then it pushed the model's own choices out of view (MCP set recall@5 .797 →
/// .816, Seal-Tools dev .928 → .930; docs/search.md).
const VECTOR_PLACES: usize = 3;
const VECTOR_PLACES_WITHIN: usize = 5;

/// The vector weight of one step's own search, given the request's: its square root, so
/// 0 and 1 stay themselves and 0.4 becomes about 0.63. A step is a few words, and full text
/// over a few words ranks by whichever one a tool happens to share ("save it to the shared
/// folder" put a page tool whose error notes say "shared" over `write_file`); the model
/// reads the step whole. Measured against the request's weight for steps too (docs/search.md): MCP set
/// recall@5 .816 → .819, Seal-Tools dev .930 → .933, hit@1 unchanged on both.
pub fn step_vector_weight(vector_weight: f64) -> f64 {
    vector_weight.clamp(0.0, 1.0).sqrt()
}

/// How far the vector weight moves toward 1 when no text candidate accounts for any of the
/// request: the weight used is `w + (1 − w) · COVERAGE_TRUST · (1 − best coverage)`.
const COVERAGE_TRUST: f64 = 0.6;
/// Below this weight the raise shrinks in proportion, so that a weight near 0 (nearly full
/// text alone) stays near 0.
const FULL_RAISE_FROM: f64 = 0.4;

/// The vector weight a text is fused with, given the caller's and its text candidates: the
/// more of the text the best-covering candidate leaves uncovered, the more the model decides.
/// Full text ranks well when the request uses the catalogue's words and by accident when it
/// does not (as people write); the model reads both alike. Measured with the model reading
/// a one-step request as a question (docs/search.md): MCP set hybrid .659 / .845 → .667 /
/// .874, Seal-Tools dev .969 / .933 → .966 / .932. Weight 0 (full text alone) and 1 (the
/// model alone) stay as asked, as does a text no tool can account for alone
/// (`by_coverage` false).
pub fn coverage_weight(vector_weight: f64, text: &[TextHit], by_coverage: bool) -> f64 {
    if !by_coverage || vector_weight <= 0.0 || vector_weight >= 1.0 {
        return vector_weight;
    }
    let best = text
        .iter()
        .map(|hit| hit.coverage.clamp(0.0, 1.0))
        .fold(0.0, f64::max);
    let scale = (vector_weight / FULL_RAISE_FROM).min(1.0);
    vector_weight + (1.0 - vector_weight) * COVERAGE_TRUST * (1.0 - best) * scale
}

/// Weighted fusion of the vector candidates, (id, cosine) pairs, and the text candidates,
/// best first (ties by the raw cosine, the text score, then the id). Both signals are brought to one scale before weighting. The
/// text ranks are min-max normalised over their candidates (their scale depends on the
/// query), then scaled by how much of the query each candidate accounts for: BM25 ranks
/// the tools that share some rare word with a request first even when that word is all
/// they share, and a request phrased in words the catalogue does not use (as people write)
/// is one whose text ranking says little. This model's cosines crowd into a narrow band,
/// so raw they would leave the ranking to the text side whatever the weight says; they
/// are stretched from that band onto [0, 1] by a fixed calibration instead of min-max,
/// which measured worse: it makes the best vector candidate of every query look like a
/// perfect match, however poor. A tool missing from one list gets that list's lowest
/// score: it ranked below every candidate there.
/// `by_coverage` false fuses the text ranks as they are: for a text of which no one tool
/// can account for all (the whole of a request of several steps).
pub fn fuse(
    vector: &[(Uuid, f64)],
    text: &[TextHit],
    vector_weight: f64,
    by_coverage: bool,
) -> Vec<Fused> {
    let vector_floor = vector.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let vector_floor = if vector_floor.is_finite() {
        vector_floor
    } else {
        COSINE_UNRELATED
    };
    let normalise_text = min_max(text.iter().map(|h| h.score));

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
                text_coverage: None,
            },
        );
    }
    for hit in text {
        let fused = merged.entry(hit.id).or_insert(Fused {
            id: hit.id,
            score: 0.0,
            relevance: vector_floor,
            vector_score: None,
            text_score: None,
            text_coverage: None,
        });
        fused.text_score = Some(hit.score);
        fused.text_coverage = by_coverage.then_some(hit.coverage);
    }
    let mut fused: Vec<Fused> = merged
        .into_values()
        .map(|mut hit| {
            let semantic = calibrate(hit.vector_score.unwrap_or(vector_floor));
            let lexical = hit.text_score.map_or(0.0, |rank| {
                normalise_text(rank) * hit.text_coverage.map_or(1.0, coverage_factor)
            });
            hit.score = unit_score(vector_weight * semantic + (1.0 - vector_weight) * lexical);
            hit
        })
        .collect();
    best_first(&mut fused);
    fused
}

/// Sorts candidates best first, ties by the raw signals (see [`raw_signals_order`]), then id.
fn best_first(fused: &mut [Fused]) {
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| {
                raw_signals_order(a.vector_score, a.text_score, b.vector_score, b.text_score)
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Orders two equal fused scores by their raw signals, the cosine first: the calibration
/// clamps every cosine above its band to 1, so at `vector_weight` 1 all close matches
/// would tie, and the model's own order among them must decide. A missing signal counts
/// below any present one. `Ordering::Less` puts the first pair first.
pub fn raw_signals_order(
    vector: Option<f64>,
    text: Option<f64>,
    other_vector: Option<f64>,
    other_text: Option<f64>,
) -> std::cmp::Ordering {
    let missing_last = |s: Option<f64>| s.unwrap_or(f64::NEG_INFINITY);
    missing_last(other_vector)
        .total_cmp(&missing_last(vector))
        .then_with(|| missing_last(other_text).total_cmp(&missing_last(text)))
}

/// Makes room in the first [`VECTOR_PLACES_WITHIN`] of a hybrid answer, fused from these
/// vector candidates (best first, as searches give them), for the vector side's
/// [`VECTOR_PLACES`] best: the others keep the
/// best of those places, and each of the best ranked below the first other hit left out
/// takes a fused score just above that hit's, in cosine order, so the answer stays ordered
/// by score. Nothing moves at `vector_weight` 0: the caller asked for the text ranking.
/// Only for vectors that cover the catalogue: the best of part of it are no model's choice.
pub fn keep_vector_places(fused: &mut [Fused], vector: &[(Uuid, f64)], vector_weight: f64) {
    if fused.len() <= VECTOR_PLACES_WITHIN || vector_weight <= 0.0 {
        return;
    }
    let kept: Vec<Uuid> = vector
        .iter()
        .map(|&(id, _)| id)
        .filter(|id| fused.iter().any(|hit| hit.id == *id))
        .take(VECTOR_PLACES)
        .collect();
    // The first hit of the others that the kept ones leave out of the first places.
    let Some((left_out_at, left_out_score)) = fused
        .iter()
        .enumerate()
        .filter(|(_, hit)| !kept.contains(&hit.id))
        .nth(VECTOR_PLACES_WITHIN - kept.len())
        .map(|(at, hit)| (at, hit.score))
    else {
        return;
    };
    let below: Vec<Uuid> = kept
        .iter()
        .copied()
        .filter(|id| {
            fused
                .iter()
                .position(|hit| hit.id == *id)
                .is_some_and(|at| at > left_out_at)
        })
        .collect();
    if below.is_empty() {
        return;
    }
    // The kept hits take the scores just above the left-out one's. Scores end at 1.0: when
    // there is no room above it, the left-out hit and the others after it give way instead.
    let steps_up = |from: f64| (0..below.len()).fold(from, |score, _| score.next_up());
    let mut score = left_out_score;
    if steps_up(score) > 1.0 {
        score = (0..below.len()).fold(1.0_f64, |score, _| score.next_down());
        for hit in fused[left_out_at..]
            .iter_mut()
            .filter(|hit| !kept.contains(&hit.id))
        {
            hit.score = hit.score.min(score);
        }
    }
    for id in below.iter().rev() {
        score = score.next_up();
        if let Some(hit) = fused.iter_mut().find(|hit| hit.id == *id) {
            hit.score = score;
        }
    }
    best_first(fused);
}

/// The candidates of the vector ranking alone, as fusion would give them.
pub fn vector_list(hits: &[(Uuid, f64)]) -> Vec<Fused> {
    hits.iter()
        .map(|&(id, score)| Fused {
            id,
            score,
            relevance: score,
            vector_score: Some(score),
            text_score: None,
            text_coverage: None,
        })
        .collect()
}

/// The candidates of the full-text ranking alone, as fusion would give them.
pub fn text_list(hits: &[TextHit]) -> Vec<Fused> {
    hits.iter()
        .map(|hit| Fused {
            id: hit.id,
            score: hit.score,
            relevance: hit.score,
            vector_score: None,
            text_score: Some(hit.score),
            text_coverage: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Uuid {
        Uuid::from_u128(name.bytes().fold(7u128, |h, b| h * 31 + u128::from(b)))
    }

    /// A text candidate that accounts for the whole query.
    fn text_hit(name: &str, score: f64) -> TextHit {
        TextHit {
            id: id(name),
            score,
            coverage: 1.0,
        }
    }

    #[test]
    fn fusion_weighs_both_signals_on_one_scale() {
        let vector = [(id("a"), 0.6), (id("b"), 0.5), (id("c"), 0.35)];
        let text = [text_hit("b", 8.0), text_hit("d", 2.0)];
        let fused = fuse(&vector, &text, 0.7, true);
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
        let text = [text_hit("lexical", 9.0), text_hit("dense", 3.0)];
        assert_eq!(fuse(&vector, &text, 0.7, true)[0].id, id("dense"));
        assert_eq!(fuse(&vector, &text, 0.3, true)[0].id, id("lexical"));
    }

    /// Six text candidates, t1 to t6, best first.
    fn six_text_hits() -> Vec<TextHit> {
        ["t1", "t2", "t3", "t4", "t5", "t6"]
            .iter()
            .enumerate()
            .map(|(i, name)| text_hit(name, 0.9 - 0.01 * i as f64))
            .collect()
    }

    #[test]
    fn the_vector_sides_best_three_stay_within_the_first_five() {
        // Six text candidates that share words with the request, and the model's three
        // best, which full text never found.
        let text = six_text_hits();
        let vector = [
            (id("v1"), 0.45),
            (id("v2"), 0.44),
            (id("v3"), 0.43),
            (id("v4"), 0.42),
        ];
        let mut fused = fuse(&vector, &text, 0.4, true);
        keep_vector_places(&mut fused, &vector, 0.4);
        let first_five: Vec<Uuid> = fused.iter().take(5).map(|h| h.id).collect();
        for kept in ["v1", "v2", "v3"] {
            assert!(
                first_five.contains(&id(kept)),
                "{kept} within the first five"
            );
        }
        assert!(
            !first_five.contains(&id("v4")),
            "only the best three are kept"
        );
        assert_eq!(fused[0].id, id("t1"), "full text still ranks first");
        // They take the last three of the five places, in cosine order, each scoring just
        // above the hit whose place it took: the answer stays ordered by score.
        let names: Vec<Uuid> = ["t1", "t2", "v1", "v2", "v3", "t3"].map(id).to_vec();
        assert_eq!(
            fused.iter().take(6).map(|h| h.id).collect::<Vec<_>>(),
            names
        );
        assert!(fused[..6].windows(2).all(|w| w[0].score > w[1].score));
        assert!(fused.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(fused[4].score - fused[5].score < 1e-9);
        assert_eq!(fused[2].vector_score, Some(0.45));
    }

    /// A fused list in this order, scores falling by 0.1 from 0.9.
    fn ranked(names: &[&str]) -> Vec<Fused> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| Fused {
                id: id(name),
                score: 0.9 - 0.1 * i as f64,
                relevance: 0.0,
                vector_score: None,
                text_score: None,
                text_coverage: None,
            })
            .collect()
    }

    #[test]
    fn making_room_never_pushes_out_one_of_the_vector_sides_best() {
        let vector = [(id("v1"), 0.40), (id("v2"), 0.38), (id("v3"), 0.36)];
        // v1 already fifth, v2 and v3 below: two of the others give way, not v1.
        let mut fused = ranked(&["t1", "t2", "t3", "t4", "v1", "t5", "v2", "v3"]);
        keep_vector_places(&mut fused, &vector, 0.4);
        let order: Vec<Uuid> = fused.iter().map(|h| h.id).collect();
        assert_eq!(
            order,
            ["t1", "t2", "v1", "v2", "v3", "t3", "t4", "t5"].map(id)
        );
        // Already within the first five: nothing moves.
        let mut fused = ranked(&["v2", "t1", "v1", "v3", "t2", "t3"]);
        let before = fused.clone();
        keep_vector_places(&mut fused, &vector, 0.4);
        assert_eq!(fused, before);
        // One outside, the others inside: it takes the place of the last other.
        let mut fused = ranked(&["t1", "v1", "t2", "v2", "t3", "t4", "v3"]);
        keep_vector_places(&mut fused, &vector, 0.4);
        let order: Vec<Uuid> = fused.iter().map(|h| h.id).collect();
        assert_eq!(order, ["t1", "v1", "t2", "v2", "v3", "t3", "t4"].map(id));
        assert!(fused.windows(2).all(|w| w[0].score > w[1].score));
    }

    #[test]
    fn making_room_below_a_perfect_score() {
        // Six hits at 1.0 (ties by id), the vector side's best three among the last.
        let mut fused = ranked(&["t1", "t2", "t3", "v1", "v2", "v3", "t4"]);
        for hit in fused.iter_mut().take(6) {
            hit.score = 1.0;
        }
        fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        let vector = [(id("v1"), 0.9), (id("v2"), 0.8), (id("v3"), 0.7)];
        keep_vector_places(&mut fused, &vector, 1.0);
        let first_five: Vec<Uuid> = fused.iter().take(5).map(|h| h.id).collect();
        for kept in ["v1", "v2", "v3"] {
            assert!(first_five.contains(&id(kept)), "{kept}: {fused:?}");
        }
        assert!(fused.iter().all(|h| h.score <= 1.0));
        assert!(fused.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            fused[4].score > fused[5].score,
            "the kept ones above the rest"
        );
    }

    fn covering(coverages: &[f64]) -> Vec<TextHit> {
        coverages
            .iter()
            .enumerate()
            .map(|(n, &coverage)| TextHit {
                id: Uuid::from_u128(n as u128 + 1),
                score: 1.0,
                coverage,
            })
            .collect()
    }

    #[test]
    fn at_vector_weight_one_close_matches_keep_the_models_order() {
        // Every cosine above the calibrated band fuses to 1: the raw cosine breaks the tie,
        // whatever the ids say.
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let vector = [(b, 0.73), (a, 0.65), (c, 0.61)];
        let fused = fuse(&vector, &[], 1.0, true);
        assert!(fused.iter().all(|hit| hit.score == 1.0), "{fused:?}");
        let order: Vec<Uuid> = fused.iter().map(|hit| hit.id).collect();
        assert_eq!(order, vec![b, a, c]);
        // Equal cosines: the text score, then the id.
        assert_eq!(
            raw_signals_order(Some(0.7), Some(0.2), Some(0.7), Some(0.5)),
            std::cmp::Ordering::Greater
        );
        assert_eq!(
            raw_signals_order(Some(0.7), None, None, Some(0.9)),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn the_less_full_text_accounts_for_the_more_the_model_decides() {
        // The best-covering candidate decides: all of the request, the weight as asked.
        assert_eq!(coverage_weight(0.4, &covering(&[0.2, 1.0]), true), 0.4);
        let half = coverage_weight(0.4, &covering(&[0.5, 0.1]), true);
        let none = coverage_weight(0.4, &covering(&[0.0]), true);
        assert!((half - (0.4 + 0.6 * 0.6 * 0.5)).abs() < 1e-12, "{half}");
        assert!((none - (0.4 + 0.6 * 0.6)).abs() < 1e-12, "{none}");
        // Below 0.4 the raise shrinks with the weight: near 0 stays near full text.
        let small = coverage_weight(0.01, &covering(&[0.0]), true);
        assert!(
            (small - (0.01 + 0.99 * 0.6 * 0.025)).abs() < 1e-12,
            "{small}"
        );
        // No text candidate at all: nothing of the request is accounted for.
        assert_eq!(coverage_weight(0.4, &[], true), none);
        // Coverage out of range is read within it.
        assert_eq!(coverage_weight(0.4, &covering(&[1.5]), true), 0.4);
        // Full text alone, the model alone and the whole of several steps stay as asked.
        for (weight, by_coverage) in [(0.0, true), (1.0, true), (0.4, false)] {
            assert_eq!(
                coverage_weight(weight, &covering(&[0.0]), by_coverage),
                weight
            );
        }
    }

    #[test]
    fn a_step_leans_more_on_the_model_within_the_same_bounds() {
        assert_eq!(step_vector_weight(0.0), 0.0);
        assert_eq!(step_vector_weight(1.0), 1.0);
        assert!((step_vector_weight(0.4) - 0.632).abs() < 0.001);
        let weights: Vec<f64> = (0..=10)
            .map(|w| step_vector_weight(w as f64 / 10.0))
            .collect();
        assert!(weights.windows(2).all(|w| w[0] < w[1]), "{weights:?}");
        assert!((1..10).all(|w| weights[w] > w as f64 / 10.0), "{weights:?}");
    }

    #[test]
    fn at_vector_weight_zero_the_text_ranking_stands_alone() {
        let text = six_text_hits();
        let vector = [(id("v1"), 0.45)];
        let mut fused = fuse(&vector, &text, 0.0, true);
        keep_vector_places(&mut fused, &vector, 0.0);
        assert_eq!(
            fused.iter().take(5).map(|h| h.id).collect::<Vec<_>>(),
            ["t1", "t2", "t3", "t4", "t5"].map(id)
        );
    }

    #[test]
    fn fusion_of_empty_lists_is_empty_and_never_nan() {
        assert!(fuse(&[], &[], 0.7, true).is_empty());
        let only_text = fuse(&[], &[text_hit("x", 1.0)], 0.5, true);
        assert!((only_text[0].score - 0.5).abs() < 1e-9);
        let only_vector = fuse(&[(id("y"), 0.35)], &[], 1.0, true);
        assert!((only_vector[0].score - 0.5).abs() < 1e-9);
        assert!((only_vector[0].relevance - 0.35).abs() < 1e-9);
    }

    #[test]
    fn a_text_rank_counts_as_much_as_its_tool_accounts_for_the_query() {
        // "give a thumbs-up to the last message": `rare` shares only the rare word
        // "thumbs" with the request and leads BM25; `covering` shares most of its words.
        let vector = [(id("rare"), 0.30), (id("covering"), 0.30)];
        let text = [
            TextHit {
                coverage: 0.25,
                ..text_hit("rare", 9.0)
            },
            TextHit {
                coverage: 0.81,
                ..text_hit("covering", 6.0)
            },
            text_hit("floor", 1.0),
        ];
        let fused = fuse(&vector, &text, 0.4, true);
        assert_eq!(fused[0].id, id("covering"));
        let by_id: HashMap<_, _> = fused.iter().map(|h| (h.id, h)).collect();
        // The text rank 5/8 of `covering` keeps 0.9 of itself, that of `rare` (1) half.
        let semantic = 0.4 * calibrate(0.30);
        assert!((by_id[&id("covering")].score - (semantic + 0.6 * 0.625 * 0.9)).abs() < 1e-9);
        assert!((by_id[&id("rare")].score - (semantic + 0.6 * 0.5)).abs() < 1e-9);
        // What each hit reports is its text score as ranked, not scaled, and its coverage.
        assert_eq!(by_id[&id("rare")].text_score, Some(9.0));
        assert_eq!(by_id[&id("rare")].text_coverage, Some(0.25));
        // Without coverage the BM25 lead wins, and no coverage is reported.
        let as_ranked = fuse(&vector, &text, 0.4, false);
        assert_eq!(as_ranked[0].id, id("rare"));
        assert_eq!(as_ranked[0].text_coverage, None);
    }
}
