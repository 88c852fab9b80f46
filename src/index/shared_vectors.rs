//! The vector index a store shares between its requests: the embedded store's every vector,
//! or a PostgreSQL replica's copy of them (`DATABASE_VECTOR_SEARCH=memory`).

use std::sync::{
    RwLock, RwLockReadGuard, RwLockWriteGuard,
    atomic::{AtomicU64, Ordering},
};

use uuid::Uuid;

use super::{
    Facets,
    answers::{FilterKey, RecentAnswers},
    fusion::unit_score,
    vector::{EntryMeta, VectorIndex},
};
use crate::domain::{Tool, ToolFilter};

/// A tool's vectors as stored: its id, document vector, description vector (if made yet) and
/// meta.
pub type VectorRow = (Uuid, Vec<f32>, Option<Vec<f32>>, EntryMeta);

/// A tool's vectors as stored; `None` when it has none.
pub type StoredVector = Option<VectorRow>;

#[derive(Debug, Default)]
pub struct SharedVectors {
    index: RwLock<VectorIndex>,
    /// Bumped by every write, under the write lock: the version of the index kept answers
    /// were found in.
    generation: AtomicU64,
    answers: RecentAnswers<NearestQuery>,
}

/// A vector search as the key of its kept answer: the query's exact components.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NearestQuery {
    components: Vec<u32>,
    model: String,
    k: u32,
    filter: FilterKey,
}

impl SharedVectors {
    /// Takes a fresh index, but keeps this copy's entries of the tools in `keep` (changed
    /// here while the fresh one was read).
    pub fn replace(&self, mut fresh: VectorIndex, keep: &[Uuid]) {
        let mut index = self.write();
        for id in keep {
            match index.entry(id) {
                Some(entry) => fresh.upsert_entry(*id, entry),
                None => fresh.remove(id),
            }
        }
        tracing::debug!(vectors = fresh.len(), "vector index loaded");
        *index = fresh;
    }

    /// Sets what was read of one tool. A replica reads back its own writes too: what is
    /// held already is left alone, without the write lock, and kept answers stay.
    pub fn apply(&self, id: Uuid, stored: StoredVector) {
        let held = match &stored {
            Some((id, vector, description, meta)) => {
                self.read().holds(id, vector, description.as_deref(), meta)
            }
            None => self.read().entry(&id).is_none(),
        };
        if held {
            return;
        }
        let mut index = self.write();
        match stored {
            Some((id, vector, description, meta)) => {
                index.upsert(id, &vector, description.as_deref(), meta)
            }
            None => index.remove(&id),
        }
    }

    pub fn set(
        &self,
        id: Uuid,
        vector: &[f32],
        description: Option<&[f32]>,
        model: &str,
        facets: Facets,
    ) {
        let meta = EntryMeta {
            model: model.to_owned(),
            facets,
        };
        self.write().upsert(id, vector, description, meta);
    }

    /// Follows a tool's new definition: its vector goes when its text changed (no model).
    pub fn follow(&self, tool: &Tool) {
        let mut index = self.write();
        match &tool.embedding_model {
            Some(model) => index.update_meta(
                tool.id,
                EntryMeta {
                    model: model.clone(),
                    facets: Facets::of(tool),
                },
            ),
            None => index.remove(&tool.id),
        }
    }

    pub fn remove(&self, id: &Uuid) {
        self.write().remove(id);
    }

    /// How many vectors the index holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn vector_of(&self, id: &Uuid, model: &str) -> Option<Vec<f32>> {
        self.read().vector_of(id, model)
    }

    /// How many vectors `model` made.
    pub fn count_of(&self, model: &str) -> usize {
        self.read().count_of(model)
    }

    /// The index as it is now, for reads of several entries under one lock.
    pub fn read(&self) -> RwLockReadGuard<'_, VectorIndex> {
        self.index.read().expect("vector index lock poisoned")
    }

    /// The `k` nearest (id, cosine as a unit score) among vectors of `model`; a search
    /// asked again before the index changed is answered from the kept answers.
    pub fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> Vec<(Uuid, f64)> {
        let index = self.read();
        let generation = self.generation.load(Ordering::Relaxed);
        let key = NearestQuery {
            components: query.iter().map(|x| x.to_bits()).collect(),
            model: model.to_owned(),
            k,
            filter: filter.into(),
        };
        if let Some(found) = self.answers.get(&key, generation) {
            return found;
        }
        let found: Vec<(Uuid, f64)> = index
            .nearest(query, model, k as usize, |meta| meta.facets.matches(filter))
            .into_iter()
            .map(|(id, cosine)| (id, unit_score(f64::from(cosine))))
            .collect();
        drop(index);
        self.answers.put(key, generation, &found);
        found
    }

    fn write(&self) -> RwLockWriteGuard<'_, VectorIndex> {
        let index = self.index.write().expect("vector index lock poisoned");
        // No reader sees the index between this and the change the guard makes.
        self.generation.fetch_add(1, Ordering::Relaxed);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facets(active: bool) -> Facets {
        Facets {
            category: "c".into(),
            tags: vec![],
            is_active: active,
        }
    }

    #[test]
    fn a_reread_vector_is_applied_only_when_it_differs() {
        let shared = SharedVectors::default();
        let id = Uuid::new_v4();
        let meta = |active| EntryMeta {
            model: "m".into(),
            facets: facets(active),
        };
        shared.apply(id, Some((id, vec![3.0, 4.0], None, meta(true))));
        let index = shared.read();
        assert!(
            index.holds(&id, &[3.0, 4.0], None, &meta(true)),
            "held as stored"
        );
        assert!(!index.holds(&id, &[4.0, 3.0], None, &meta(true)));
        assert!(!index.holds(&id, &[3.0, 4.0], None, &meta(false)));
        assert!(!index.holds(&id, &[3.0, 4.0], Some(&[1.0, 0.0]), &meta(true)));
        drop(index);
        shared.apply(id, Some((id, vec![4.0, 3.0], None, meta(false))));
        assert!(shared.read().holds(&id, &[4.0, 3.0], None, &meta(false)));
        // The description vector, made later, is a change; read again, it is held.
        shared.apply(
            id,
            Some((id, vec![4.0, 3.0], Some(vec![0.0, 2.0]), meta(false))),
        );
        assert!(
            shared
                .read()
                .holds(&id, &[4.0, 3.0], Some(&[0.0, 2.0]), &meta(false))
        );
        shared.apply(id, None);
        assert!(shared.is_empty());
        shared.apply(id, None);
        assert!(shared.is_empty());
    }

    #[test]
    fn a_search_asked_again_sees_every_change_since() {
        let shared = SharedVectors::default();
        let filter = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        shared.set(a, &[1.0, 0.2], None, "m", facets(true));
        let ids = |found: Vec<(Uuid, f64)>| found.into_iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)), vec![a]);
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)), vec![a]);
        // Each kind of write: a nearer vector, a tool switched off, one removed.
        shared.set(b, &[1.0, 0.0], None, "m", facets(true));
        assert_eq!(
            ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)),
            vec![b, a]
        );
        shared.set(b, &[1.0, 0.0], None, "m", facets(false));
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)), vec![a]);
        shared.remove(&a);
        assert!(shared.nearest(&[1.0, 0.0], "m", 5, &filter).is_empty());
        // Another question, another answer: the key is the whole search.
        shared.set(a, &[1.0, 0.2], None, "m", facets(true));
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)), vec![a]);
        assert!(shared.nearest(&[1.0, 0.0], "other", 5, &filter).is_empty());
        let all = ToolFilter::default();
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &all)), vec![b, a]);
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 1, &all)), vec![b]);
        let mut fresh = VectorIndex::default();
        fresh.upsert(
            b,
            &[1.0, 0.0],
            None,
            EntryMeta {
                model: "m".into(),
                facets: facets(true),
            },
        );
        shared.replace(fresh, &[]);
        assert_eq!(ids(shared.nearest(&[1.0, 0.0], "m", 5, &filter)), vec![b]);
    }
}
