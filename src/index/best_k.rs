//! The best k of many scored ids, kept on a min-heap as they stream by, so a scan holds k
//! entries instead of collecting and sorting every one.

use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
};

use uuid::Uuid;

/// A scored row; `Ord` puts the better one last: higher score, then lower id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub score: f32,
    pub id: Uuid,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// The best `k` candidates seen so far, the worst of them on top of the heap.
pub struct BestK {
    k: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
}

impl BestK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub fn admits(&self, candidate: &Candidate) -> bool {
        self.heap.len() < self.k || self.heap.peek().is_some_and(|worst| *candidate > worst.0)
    }

    /// The worst of the k kept, once there are k.
    pub fn worst_when_full(&self) -> Option<Candidate> {
        (self.heap.len() == self.k)
            .then(|| self.heap.peek().map(|worst| worst.0))
            .flatten()
    }

    /// Once k are kept, the newcomer takes the worst one's place and sinks to where it
    /// belongs: one pass down the heap instead of a push and a pop.
    pub fn push(&mut self, candidate: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate > worst.0
        {
            *worst = Reverse(candidate);
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        // Sorting `Reverse`s ascending puts the greatest candidate first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(candidate)| candidate)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_best_first_ties_by_lower_id() {
        let id = |n: u128| Uuid::from_u128(n);
        let mut best = BestK::new(3);
        for (n, score) in [(5, 0.2), (1, 0.9), (9, 0.5), (3, 0.5), (7, 0.1), (2, 0.5)] {
            let candidate = Candidate { score, id: id(n) };
            if best.admits(&candidate) {
                best.push(candidate);
            }
        }
        assert_eq!(best.worst_when_full().map(|c| c.id), Some(id(3)));
        // Pushed without asking first, a worse candidate leaves the best k as they were.
        best.push(Candidate {
            score: 0.5,
            id: id(4),
        });
        assert_eq!(best.worst_when_full().map(|c| c.id), Some(id(3)));
        let kept: Vec<_> = best.into_sorted().iter().map(|c| c.id).collect();
        assert_eq!(kept, vec![id(1), id(2), id(3)]);
        assert!(!BestK::new(0).admits(&Candidate {
            score: 1.0,
            id: id(1)
        }));
        assert_eq!(BestK::new(2).worst_when_full(), None);
    }
}
