//! PostgreSQL's vectors in this replica's memory (`DATABASE_VECTOR_SEARCH=memory`), searched
//! exactly in-process as the embedded store does, instead of through pgvector's HNSW index:
//! a search then costs the database nothing.
//!
//! The database stays the truth; the copy follows it. The replica's own writes change the
//! copy *before* their transaction commits, while holding the row's lock, and every change
//! (its own and every other replica's) is read back from the database when its notification
//! arrives, one after the other. A later write of the same row waits for the lock, so its
//! notification, and the re-read it causes, come after any earlier write's own change of the
//! copy: the last re-read of a tool always sets what the database holds. A re-read that began
//! before this replica's own change of the same tool had committed is not applied (it may be
//! older, and that change's own notification follows), so a replica searches its own writes.

use std::{collections::HashMap, sync::RwLock};

use pgvector::Vector;
use sqlx::{PgPool, Row, postgres::PgRow};
use uuid::Uuid;

use super::{
    Facets, StoreResult,
    vector_index::{EntryMeta, VectorIndex},
};
use crate::registry::model::{Tool, ToolFilter};

const VECTOR_COLUMNS: &str = "id, category, tags, is_active, embedding, embedding_model";

#[derive(Default)]
pub struct ReplicaVectors {
    index: RwLock<Copy>,
}

#[derive(Default)]
struct Copy {
    vectors: VectorIndex,
    /// Counts this replica's own changes.
    generation: u64,
    /// The generation of each tool's latest own change or commit, kept until no re-read
    /// that began before it can still be applied.
    changed_at: HashMap<Uuid, u64>,
}

impl Copy {
    fn own_change(&mut self, id: Uuid) -> &mut VectorIndex {
        self.generation += 1;
        self.changed_at.insert(id, self.generation);
        &mut self.vectors
    }
}

impl ReplicaVectors {
    /// Reads every stored vector into a fresh index.
    pub async fn reload(&self, pool: &PgPool) -> StoreResult<()> {
        let rows = sqlx::query(&format!(
            "SELECT {VECTOR_COLUMNS} FROM tools \
             WHERE embedding IS NOT NULL AND embedding_model IS NOT NULL"
        ))
        .fetch_all(pool)
        .await?;
        let mut index = VectorIndex::default();
        for row in &rows {
            let (id, vector, meta) = entry_from_row(row)?;
            index.upsert(id, &vector, meta);
        }
        tracing::debug!(vectors = index.len(), "replica vector index loaded");
        // Own changes made while this read ran are re-read when their notifications arrive.
        self.write().vectors = index;
        Ok(())
    }

    /// Re-reads one tool's vector, after a notification named it.
    pub async fn refresh(&self, pool: &PgPool, id: Uuid) -> StoreResult<()> {
        let began = {
            let mut copy = self.write();
            let generation = copy.generation;
            // Own changes committed before this read cannot be newer than what it will see;
            // one not yet committed is marked again when it commits.
            copy.changed_at.retain(|_, at| *at > generation);
            generation
        };
        let row = sqlx::query(&format!(
            "SELECT {VECTOR_COLUMNS} FROM tools \
             WHERE id = $1 AND embedding IS NOT NULL AND embedding_model IS NOT NULL"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let entry = row.as_ref().map(entry_from_row).transpose()?;
        let mut copy = self.write();
        if copy.changed_at.get(&id).is_some_and(|at| *at > began) {
            return Ok(());
        }
        match entry {
            Some((id, vector, meta)) => copy.vectors.upsert(id, &vector, meta),
            None => copy.vectors.remove(&id),
        }
        Ok(())
    }

    pub fn set(&self, id: Uuid, vector: &[f32], model: &str, facets: Facets) {
        let meta = EntryMeta {
            model: model.to_owned(),
            facets,
        };
        self.write().own_change(id).upsert(id, vector, meta);
    }

    /// Follows a tool's new definition: its vector goes when its text changed (no model).
    pub fn follow(&self, tool: &Tool) {
        let mut copy = self.write();
        let index = copy.own_change(tool.id);
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

    /// An own change of the tool has committed: re-reads that began before may be older.
    pub fn committed(&self, id: Uuid) {
        self.write().own_change(id);
    }

    pub fn remove(&self, id: &Uuid) {
        self.write().own_change(*id).remove(id);
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
            .vectors
            .nearest(query, model, k as usize, |meta| meta.facets.matches(filter))
            .into_iter()
            .map(|(id, cosine)| (id, f64::from(cosine).clamp(0.0, 1.0)))
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Copy> {
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
