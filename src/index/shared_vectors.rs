//! The vector index a store shares between its requests: the embedded store's every vector,
//! or a PostgreSQL replica's copy of them (`DATABASE_VECTOR_SEARCH=memory`).

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use uuid::Uuid;

use super::{
    Facets,
    fusion::unit_score,
    vector::{EntryMeta, VectorIndex},
};
use crate::domain::{Tool, ToolFilter};

/// A tool's vector as stored; `None` when it has none.
pub type StoredVector = Option<(Uuid, Vec<f32>, EntryMeta)>;

#[derive(Debug, Default)]
pub struct SharedVectors {
    index: RwLock<VectorIndex>,
}

impl SharedVectors {
    /// Takes a fresh index, but keeps this copy's entries of the tools in `keep` (changed
    /// here while the fresh one was read).
    pub fn replace(&self, mut fresh: VectorIndex, keep: &[Uuid]) {
        let mut index = self.write();
        for id in keep {
            match index.entry(id) {
                Some((vector, meta)) => fresh.upsert(*id, vector, meta.clone()),
                None => fresh.remove(id),
            }
        }
        tracing::debug!(vectors = fresh.len(), "vector index loaded");
        *index = fresh;
    }

    /// Sets what was read of one tool.
    pub fn apply(&self, id: Uuid, stored: StoredVector) {
        let mut index = self.write();
        match stored {
            Some((id, vector, meta)) => index.upsert(id, &vector, meta),
            None => index.remove(&id),
        }
    }

    pub fn set(&self, id: Uuid, vector: &[f32], model: &str, facets: Facets) {
        let meta = EntryMeta {
            model: model.to_owned(),
            facets,
        };
        self.write().upsert(id, vector, meta);
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

    /// The `k` nearest (id, cosine as a unit score) among vectors of `model`.
    pub fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> Vec<(Uuid, f64)> {
        self.read()
            .nearest(query, model, k as usize, |meta| meta.facets.matches(filter))
            .into_iter()
            .map(|(id, cosine)| (id, unit_score(f64::from(cosine))))
            .collect()
    }

    fn write(&self) -> RwLockWriteGuard<'_, VectorIndex> {
        self.index.write().expect("vector index lock poisoned")
    }
}
