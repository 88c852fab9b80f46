//! PostgreSQL's vectors in this replica's memory (`DATABASE_VECTOR_SEARCH=memory`), searched
//! exactly in-process as the embedded store does, instead of through pgvector's HNSW index:
//! a search then costs the database nothing.
//!
//! The database stays the truth; the copy follows it. The replica's own writes change the
//! copy *before* their transaction commits, while holding the row's lock, and every change
//! (its own and every other replica's) is read back from the database when its notification
//! arrives, one after the other. A later write of the same row waits for the lock, so its
//! notification, and the re-read it causes, come after any earlier write's own change of the
//! copy: the last re-read of a tool always sets what the database holds. A re-read racing an
//! own write of the same tool is not applied (see `own_changes`), so a replica searches its
//! own writes as soon as they return.

use std::sync::RwLock;

use futures_util::TryStreamExt;
use pgvector::Vector;
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use super::{
    Facets, StoreResult,
    vector_index::{EntryMeta, VectorIndex},
};
use crate::domain::{Tool, ToolFilter};

const VECTOR_COLUMNS: &str = "id, category, tags, is_active, embedding, embedding_model";

/// A tool's vector as stored; `None` when it has none.
pub type StoredVector = Option<(Uuid, Vec<f32>, EntryMeta)>;

#[derive(Default)]
pub struct ReplicaVectors {
    index: RwLock<VectorIndex>,
}

impl ReplicaVectors {
    /// Reads every stored vector into a fresh index.
    pub async fn read_all(pool: &PgPool) -> StoreResult<VectorIndex> {
        // Rows are taken one at a time: all of them at once would hold every vector twice.
        let query = format!(
            "SELECT {VECTOR_COLUMNS} FROM tools \
             WHERE embedding IS NOT NULL AND embedding_model IS NOT NULL"
        );
        let mut rows = sqlx::query(&query).fetch(pool);
        let mut index = VectorIndex::default();
        while let Some(row) = rows.try_next().await? {
            let (id, vector, meta) = entry_from_row(&row)?;
            index.upsert(id, &vector, meta);
        }
        Ok(index)
    }

    /// Takes a fresh index, but keeps this copy's entries of the tools the read must leave.
    pub fn replace<'a>(&self, mut fresh: VectorIndex, changed: impl Iterator<Item = &'a Uuid>) {
        let mut index = self.write();
        for id in changed {
            match index.entry(id) {
                Some((vector, meta)) => fresh.upsert(*id, vector, meta.clone()),
                None => fresh.remove(id),
            }
        }
        tracing::debug!(vectors = fresh.len(), "replica vector index loaded");
        *index = fresh;
    }

    /// Reads one tool's vector.
    pub async fn read_one(pool: &PgPool, id: Uuid) -> StoreResult<StoredVector> {
        let row = sqlx::query(&format!(
            "SELECT {VECTOR_COLUMNS} FROM tools \
             WHERE id = $1 AND embedding IS NOT NULL AND embedding_model IS NOT NULL"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?;
        Ok(row.as_ref().map(entry_from_row).transpose()?)
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

    /// How many vectors the copy holds.
    pub fn len(&self) -> usize {
        self.index
            .read()
            .expect("replica vector index lock poisoned")
            .len()
    }

    pub fn vector_of(&self, id: &Uuid, model: &str) -> Option<Vec<f32>> {
        self.index
            .read()
            .expect("replica vector index lock poisoned")
            .vector_of(id, model)
    }

    /// The `k` nearest (id, cosine clamped to [0, 1]) among vectors of `model`.
    pub fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> Vec<(Uuid, f64)> {
        self.index
            .read()
            .expect("replica vector index lock poisoned")
            .nearest(query, model, k as usize, |meta| meta.facets.matches(filter))
            .into_iter()
            .map(|(id, cosine)| (id, f64::from(cosine).clamp(0.0, 1.0)))
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, VectorIndex> {
        self.index
            .write()
            .expect("replica vector index lock poisoned")
    }
}

fn entry_from_row(row: &PgRow) -> Result<(Uuid, Vec<f32>, EntryMeta), sqlx::Error> {
    let vector: Vector = row.try_get("embedding")?;
    Ok((
        row.try_get("id")?,
        vector.to_vec(),
        EntryMeta {
            model: row.try_get("embedding_model")?,
            facets: Facets {
                category: row.try_get("category")?,
                tags: row.try_get("tags")?,
                is_active: row.try_get("is_active")?,
            },
        },
    ))
}
