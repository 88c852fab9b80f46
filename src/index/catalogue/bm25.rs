//! BM25 full-text ranking over the catalogue index's postings, with tuned parameters and
//! field weights that neither SQLite's FTS5 nor PostgreSQL's `ts_rank` offers.

use uuid::Uuid;

use super::CatalogueIndex;
use crate::index::{
    Facets,
    best_k::{BestK, Candidate},
};

/// Term-frequency saturation: how quickly repeating a word stops adding to the score.
const K1: f32 = 1.2;
/// Length normalisation: how much a long tool text is penalised against a short one.
const B: f32 = 0.75;

impl CatalogueIndex {
    /// The `k` best (id, BM25 score) pairs among tools accepted by `keep`, best first.
    /// `query_terms` are analysed like the tools' terms and free of repeats.
    pub fn search(
        &self,
        query_terms: &[String],
        k: usize,
        keep: impl Fn(&Facets) -> bool,
    ) -> Vec<(Uuid, f64)> {
        let documents = self.len();
        if k == 0 || documents == 0 {
            return Vec::new();
        }
        let average_length = (self.total_length / documents as f64).max(f64::MIN_POSITIVE) as f32;
        let length_weight = B / average_length;
        let mut scores = vec![0.0f32; self.slots.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in query_terms {
            let Some(&term_id) = self.term_ids.get(term) else {
                continue;
            };
            let postings = &self.postings[term_id as usize];
            if postings.is_empty() {
                continue;
            }
            let n = postings.len() as f32;
            let idf = (1.0 + (documents as f32 - n + 0.5) / (n + 0.5)).ln();
            // Postings name live slots only: `remove` takes a tool's out.
            for &(slot, frequency) in postings {
                let norm = K1 * (1.0 - B + length_weight * self.lengths[slot as usize]);
                let score = &mut scores[slot as usize];
                if *score == 0.0 {
                    touched.push(slot);
                }
                *score += idf * frequency * (K1 + 1.0) / (frequency + norm);
            }
        }
        // An entry is read (for its id and facets) only when its score can enter the best k:
        // most touched tools score below the worst kept and are passed over unread.
        let mut best = BestK::new(k);
        let mut worst_kept = 0.0f32;
        for slot in touched {
            let score = scores[slot as usize];
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
        best.into_sorted()
            .into_iter()
            .map(|hit| (hit.id, f64::from(hit.score)))
            .collect()
    }
}
