//! BM25 full-text ranking over the catalogue index's postings, with tuned parameters and
//! field weights that neither SQLite's FTS5 nor PostgreSQL's `ts_rank` offers.

use uuid::Uuid;

use super::CatalogueIndex;
use crate::index::{
    Facets,
    best_k::{BestK, Candidate},
    lexical::is_ordered_pair,
};

/// Term-frequency saturation: how quickly repeating a word stops adding to the score.
const K1: f32 = 1.2;
/// Length normalisation: how much a long tool text is penalised against a short one.
const B: f32 = 0.75;

/// The scores of one search and the slots it touched, kept by each thread between its
/// searches: a search sets every score it wrote back to 0, so the next one starts from zero
/// without allocating and clearing an array of the whole catalogue.
#[derive(Default)]
struct ScoreBuffers {
    scores: Vec<f32>,
    /// The summed inverse document frequency of the query words each slot contains.
    matched: Vec<f32>,
    touched: Vec<u32>,
}

/// One tool found by full text: its BM25 score, and how much of the query it accounts for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextHit {
    pub id: Uuid,
    pub score: f64,
    /// The share of the query's words the tool contains, each word weighted by its inverse
    /// document frequency, in [0, 1]. Words no tool contains count at the highest
    /// frequency a word can have: a query the catalogue's words explain only in part is
    /// one whose BM25 ranking says little (ordered name pairs are left out).
    pub coverage: f64,
}

/// Slots whose scores a thread keeps between searches.
const SCORE_BUFFERS_KEPT: usize = 1 << 18;

thread_local! {
    static SCORE_BUFFERS: std::cell::RefCell<ScoreBuffers> = std::cell::RefCell::default();
}

impl CatalogueIndex {
    /// The `k` best tools by BM25 score among those accepted by `keep`, best first.
    /// `query_terms` are analysed like the tools' terms and free of repeats.
    pub fn search(
        &self,
        query_terms: &[String],
        k: usize,
        keep: impl Fn(&Facets) -> bool,
    ) -> Vec<TextHit> {
        let documents = self.len();
        if k == 0 || documents == 0 {
            return Vec::new();
        }
        SCORE_BUFFERS.with_borrow_mut(|buffers| {
            let found = self.search_with(query_terms, k, keep, buffers);
            // Every score written was set back to 0; the room beyond what a catalogue of
            // ordinary size needs is given back.
            if buffers.scores.capacity() > SCORE_BUFFERS_KEPT
                || buffers.matched.capacity() > SCORE_BUFFERS_KEPT
            {
                *buffers = ScoreBuffers::default();
            }
            found
        })
    }

    fn search_with(
        &self,
        query_terms: &[String],
        k: usize,
        keep: impl Fn(&Facets) -> bool,
        buffers: &mut ScoreBuffers,
    ) -> Vec<TextHit> {
        let documents = self.len();
        let average_length = (self.total_length / documents as f64).max(f64::MIN_POSITIVE) as f32;
        let length_weight = B / average_length;
        let idf_of = |containing: f32| {
            (1.0 + (documents as f32 - containing + 0.5) / (containing + 0.5)).ln()
        };
        let ScoreBuffers {
            scores,
            matched,
            touched,
        } = buffers;
        // Slots left scored by a search that did not finish (a panic in `keep`) start at 0.
        for slot in touched.drain(..) {
            scores[slot as usize] = 0.0;
            matched[slot as usize] = 0.0;
        }
        if scores.len() < self.slots.len() {
            scores.resize(self.slots.len(), 0.0);
            matched.resize(self.slots.len(), 0.0);
        }
        let mut query_weight = 0.0f32;
        for term in query_terms {
            let pair = is_ordered_pair(term);
            let postings = self
                .term_ids
                .get(term)
                .map_or(&[][..], |&term_id| &self.postings[term_id as usize][..]);
            let idf = idf_of(postings.len() as f32);
            if !pair {
                query_weight += idf;
            }
            // Postings name live slots only: `remove` takes a tool's out.
            for &(slot, frequency) in postings {
                let norm = K1 * (1.0 - B + length_weight * self.lengths[slot as usize]);
                let score = &mut scores[slot as usize];
                if *score == 0.0 {
                    touched.push(slot);
                }
                *score += idf * frequency * (K1 + 1.0) / (frequency + norm);
                if !pair {
                    matched[slot as usize] += idf;
                }
            }
        }
        // An entry is read (for its id and facets) only when its score can enter the best k:
        // most touched tools score below the worst kept and are passed over unread.
        let mut best = BestK::new(k);
        let mut worst_kept = 0.0f32;
        for &slot in touched.iter() {
            let score = std::mem::take(&mut scores[slot as usize]);
            if score <= 0.0 || score < worst_kept {
                continue;
            }
            let Some(entry) = &self.slots[slot as usize] else {
                continue;
            };
            let candidate = Candidate {
                score,
                id: entry.id,
            };
            if best.admits(&candidate) && keep(&entry.facets) {
                best.push(candidate);
                if let Some(worst) = best.worst_when_full() {
                    worst_kept = worst.score;
                }
            }
        }
        let found = best
            .into_sorted()
            .into_iter()
            .map(|hit| {
                let words = self
                    .slot_of
                    .get(&hit.id)
                    .map_or(0.0, |&slot| matched[slot as usize]);
                TextHit {
                    id: hit.id,
                    score: f64::from(hit.score),
                    coverage: if query_weight > 0.0 {
                        f64::from(words / query_weight).clamp(0.0, 1.0)
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        for slot in touched.drain(..) {
            matched[slot as usize] = 0.0;
        }
        found
    }
}
