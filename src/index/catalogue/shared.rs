//! The catalogue index a store shares between its requests, fed with whole tools.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU64, Ordering},
};

use uuid::Uuid;

use super::{CatalogueIndex, TextHit};
use crate::{
    domain::{Page, Tool, ToolFilter},
    index::{
        Facets,
        answers::{FilterKey, RecentAnswers},
        fusion::text_score,
        lexical,
    },
};

/// The index a store shares between its requests, fed with whole tools.
#[derive(Debug, Clone, Default)]
pub struct SharedCatalogueIndex(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    index: RwLock<CatalogueIndex>,
    /// Counts the changes made to `index`: what was read from it at one count is current
    /// while the count stays the same.
    changes: AtomicU64,
    /// Answers of recent searches, kept while `changes` stays the same.
    answers: RecentAnswers<(String, u32, FilterKey), TextHit>,
}

impl SharedCatalogueIndex {
    pub fn index(&self, tool: &Tool) {
        // The terms are made before the lock is taken.
        let terms = lexical::tool_terms(tool);
        let (version, facets) = (tool.updated_at.timestamp_micros(), Facets::of(tool));
        // A replica reads back its own writes too: what is indexed already is left alone,
        // without the write lock, and kept answers stay.
        if self
            .read()
            .holds(&tool.id, version, &tool.name, &terms, &facets)
        {
            return;
        }
        self.change(|index| index.upsert(tool.id, version, &tool.name, &terms, facets));
    }

    /// A tool switched on or off: its words are unchanged.
    pub fn refilter(&self, tool: &Tool) {
        self.change(|index| {
            index.update_facets(
                tool.id,
                tool.updated_at.timestamp_micros(),
                Facets::of(tool),
            );
        });
    }

    pub fn remove(&self, id: &Uuid) {
        if self.read().contains(id) {
            self.change(|index| index.remove(id));
        }
    }

    /// Replaces the whole index with `fresh`, but keeps the entries (or absence) of the
    /// tools in `keep` as they are now.
    pub fn replace<'a>(&self, mut fresh: CatalogueIndex, keep: impl Iterator<Item = &'a Uuid>) {
        self.change(|index| {
            for id in keep {
                fresh.copy_entry(index, id);
            }
            *index = fresh;
        });
    }

    /// The number of changes made to the index so far: a view of it read while this stays
    /// the same is current. A change is counted once it can be read.
    pub fn changes(&self) -> u64 {
        self.0.changes.load(Ordering::Acquire)
    }

    /// The `k` best tools for a free-text query, scored by `fusion::text_score`; a search
    /// asked again before the index changed is answered from the kept answers.
    pub fn search(&self, query: &str, k: u32, filter: &ToolFilter) -> Vec<TextHit> {
        let index = self.read();
        // Stays the same while the read lock is held: changes are counted under the write lock.
        let generation = self.0.changes.load(Ordering::Acquire);
        let key = (query.to_owned(), k, FilterKey::from(filter));
        if let Some(found) = self.0.answers.get(&key, generation) {
            return found;
        }
        let terms = lexical::query_terms(query);
        if terms.is_empty() {
            return Vec::new();
        }
        let found: Vec<TextHit> = index
            .search(&terms, k as usize, |facets| facets.matches(filter))
            .into_iter()
            .map(|hit| TextHit {
                score: text_score(hit.score),
                ..hit
            })
            .collect();
        drop(index);
        self.0.answers.put(key, generation, &found);
        found
    }

    pub fn id_named(&self, name: &str) -> Option<Uuid> {
        self.read().id_named(name)
    }

    /// The ids of one page of a listing, in name order, and the total.
    pub fn list(&self, filter: &ToolFilter, page: Page) -> (Vec<Uuid>, u64) {
        let index = self.read();
        let known_total = Self::kept_without_counting(&index, filter);
        index.page(
            page.offset as usize,
            page.limit as usize,
            filter,
            known_total,
        )
    }

    /// Hands each switched-on tool's name and facets to `visit`, under the read lock.
    pub fn visit_active(&self, visit: &mut dyn FnMut(&str, &Facets)) {
        for (name, facets) in self.read().active_entries() {
            visit(name, facets);
        }
    }

    /// How many tools are indexed, switched on or off.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every indexed tool's id and version (`updated_at` in microseconds), in no order.
    pub fn versions(&self) -> Vec<(Uuid, i64)> {
        self.read().versions().collect()
    }

    pub fn count(&self, filter: &ToolFilter) -> u64 {
        let index = self.read();
        Self::kept_without_counting(&index, filter)
            .unwrap_or_else(|| index.count(|facets| facets.matches(filter)))
    }

    /// How many tools `filter` keeps, when the index knows without counting.
    fn kept_without_counting(index: &CatalogueIndex, filter: &ToolFilter) -> Option<u64> {
        if filter.category.is_some() || !filter.tags.is_empty() {
            return None;
        }
        Some(if filter.active_only {
            index.active()
        } else {
            index.len() as u64
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CatalogueIndex> {
        self.0.index.read().expect("catalogue index lock poisoned")
    }

    /// Makes a change under the write lock, and counts it before the lock is let go.
    fn change<T>(&self, change: impl FnOnce(&mut CatalogueIndex) -> T) -> T {
        let mut index = self.0.index.write().expect("catalogue index lock poisoned");
        let changed = change(&mut index);
        self.0.changes.fetch_add(1, Ordering::AcqRel);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_asked_again_sees_every_change_since() {
        let shared = SharedCatalogueIndex::default();
        let filter = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let ids = |found: Vec<TextHit>| found.into_iter().map(|h| h.id).collect::<Vec<_>>();
        let weather = Tool {
            description: "weather forecast for a city".into(),
            ..Tool::example("weather")
        };
        shared.index(&weather);
        assert_eq!(
            ids(shared.search("city forecast", 5, &filter)),
            vec![weather.id]
        );
        assert_eq!(
            ids(shared.search("city forecast", 5, &filter)),
            vec![weather.id]
        );
        let population = Tool {
            description: "population of a city".into(),
            ..Tool::example("population")
        };
        shared.index(&population);
        assert_eq!(shared.search("city forecast", 5, &filter).len(), 2);
        let switched_off = Tool {
            is_active: false,
            updated_at: population.updated_at + chrono::Duration::seconds(1),
            ..population.clone()
        };
        shared.refilter(&switched_off);
        assert_eq!(
            ids(shared.search("city forecast", 5, &filter)),
            vec![weather.id]
        );
        assert_eq!(
            shared
                .search("city forecast", 5, &ToolFilter::default())
                .len(),
            2
        );
        shared.remove(&weather.id);
        assert!(shared.search("city forecast", 5, &filter).is_empty());
        shared.replace(CatalogueIndex::default(), std::iter::empty());
        assert!(shared.search("city", 5, &ToolFilter::default()).is_empty());
    }
}
