//! The answers of recent searches of one index, kept until the index next changes.
//!
//! Agents ask the same questions again and again, and the query's vector already comes from
//! the embedding cache: a repeated search would scan every vector and every posting again for
//! the same answer. An answer is kept with the index's generation (bumped by every write
//! under the index's write lock) and served only while that generation is current, so a kept
//! answer is exactly what searching again would return.

use std::{collections::HashMap, hash::Hash, sync::Mutex};

use uuid::Uuid;

use crate::domain::ToolFilter;

/// Answers kept per index: enough for the questions agents repeat, small beside the index
/// (an answer is a few dozen ids; a vector search's key holds its query vector).
pub const KEPT_ANSWERS: usize = 256;

/// A search's filter as part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterKey {
    category: Option<String>,
    tags: Vec<String>,
    active_only: bool,
}

impl From<&ToolFilter> for FilterKey {
    fn from(filter: &ToolFilter) -> Self {
        Self {
            category: filter.category.clone(),
            tags: filter.tags.clone(),
            active_only: filter.active_only,
        }
    }
}

/// Kept answers by search, all of one generation of the index.
#[derive(Debug)]
pub struct RecentAnswers<K, Hit = (Uuid, f64)> {
    kept: Mutex<Kept<K, Hit>>,
}

#[derive(Debug)]
struct Kept<K, Hit> {
    generation: u64,
    answers: HashMap<K, Vec<Hit>>,
}

impl<K, Hit> Default for RecentAnswers<K, Hit> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(Kept {
                generation: 0,
                answers: HashMap::new(),
            }),
        }
    }
}

impl<K: Hash + Eq, Hit: Clone> RecentAnswers<K, Hit> {
    /// The answer kept for `key`, if it was found at `generation`.
    pub fn get(&self, key: &K, generation: u64) -> Option<Vec<Hit>> {
        let kept = self.lock();
        if kept.generation != generation {
            return None;
        }
        kept.answers.get(key).cloned()
    }

    /// Keeps the answer found for `key` at `generation`; the answers of an older generation
    /// go, and an answer of an older generation than those kept is not kept.
    pub fn put(&self, key: K, generation: u64, answer: &[Hit]) {
        let mut kept = self.lock();
        if generation < kept.generation {
            return;
        }
        if generation > kept.generation || kept.answers.len() >= KEPT_ANSWERS {
            kept.answers.clear();
            kept.generation = generation;
        }
        kept.answers.insert(key, answer.to_vec());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept<K, Hit>> {
        // The map is whole at every step: a panic elsewhere leaves nothing half-written.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_only_in_its_generation() {
        let answers = RecentAnswers::<&str>::default();
        let found = vec![(Uuid::new_v4(), 0.5)];
        answers.put("q", 1, &found);
        assert_eq!(answers.get(&"q", 1), Some(found.clone()));
        assert_eq!(answers.get(&"q", 2), None, "the index changed since");
        assert_eq!(answers.get(&"other", 1), None);
        // A newer answer replaces the older generation's; an older one is not kept.
        answers.put("q", 2, &[]);
        answers.put("q", 1, &found);
        assert_eq!(answers.get(&"q", 2), Some(vec![]));
        assert_eq!(answers.get(&"q", 1), None);
    }

    #[test]
    fn a_full_cache_starts_again() {
        let answers = RecentAnswers::<usize>::default();
        for query in 0..KEPT_ANSWERS {
            answers.put(query, 1, &[]);
        }
        assert!(answers.get(&0, 1).is_some());
        answers.put(KEPT_ANSWERS, 1, &[]);
        assert!(answers.get(&0, 1).is_none());
        assert!(answers.get(&KEPT_ANSWERS, 1).is_some());
    }
}
