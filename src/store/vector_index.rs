//! An exact in-memory cosine index: every vector is L2-normalised once, so a query is one
//! dot product per tool.

use std::collections::HashMap;

use uuid::Uuid;

use super::Facets;

/// What is kept beside each vector: the model that made it and what searches filter on.
#[derive(Debug, Clone)]
pub struct EntryMeta {
    pub model: String,
    pub facets: Facets,
}

/// Vectors of one model, stored row after row in one buffer so a search streams through
/// memory; `ids[i]` and `metas[i]` belong to row `i`.
#[derive(Debug, Default)]
struct Partition {
    dimensions: usize,
    rows: Vec<f32>,
    ids: Vec<Uuid>,
    metas: Vec<EntryMeta>,
}

impl Partition {
    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dimensions..(i + 1) * self.dimensions]
    }

    /// Removes row `i` by moving the last row into its place.
    fn swap_remove(&mut self, i: usize) -> Uuid {
        let last = self.ids.len() - 1;
        if i != last {
            let (head, tail) = self.rows.split_at_mut(last * self.dimensions);
            head[i * self.dimensions..(i + 1) * self.dimensions].copy_from_slice(tail);
        }
        self.rows.truncate(last * self.dimensions);
        self.metas.swap_remove(i);
        self.ids.swap_remove(i);
        self.ids.get(i).copied().unwrap_or(Uuid::nil())
    }
}

/// Vectors partitioned by the model that made them: a search reads only the partition of
/// the query's model, so vectors of two models are never compared.
#[derive(Debug, Default)]
pub struct VectorIndex {
    partitions: HashMap<String, Partition>,
    /// Where each tool's row is: (model, row).
    positions: HashMap<Uuid, (String, usize)>,
}

impl VectorIndex {
    pub fn upsert(&mut self, id: Uuid, vector: &[f32], meta: EntryMeta) {
        self.remove(&id);
        let partition = self.partitions.entry(meta.model.clone()).or_default();
        if partition.ids.is_empty() {
            partition.dimensions = vector.len();
        } else if partition.dimensions != vector.len() {
            // A model has one dimension; a stray vector of another length is not searchable.
            return;
        }
        let row = partition.ids.len();
        partition.rows.extend(normalised(vector));
        partition.ids.push(id);
        self.positions.insert(id, (meta.model.clone(), row));
        partition.metas.push(meta);
    }

    /// Updates the filter fields of an indexed tool; tools without a vector are ignored.
    /// A change of model drops the vector: it no longer belongs to the tool.
    pub fn update_meta(&mut self, id: Uuid, meta: EntryMeta) {
        let Some((model, row)) = self.positions.get(&id).cloned() else {
            return;
        };
        if model != meta.model {
            self.remove(&id);
            return;
        }
        if let Some(partition) = self.partitions.get_mut(&model) {
            partition.metas[row] = meta;
        }
    }

    pub fn remove(&mut self, id: &Uuid) {
        let Some((model, row)) = self.positions.remove(id) else {
            return;
        };
        if let Some(partition) = self.partitions.get_mut(&model) {
            let moved = partition.swap_remove(row);
            if row < partition.ids.len() {
                self.positions.insert(moved, (model, row));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// The `k` best (id, cosine) pairs among the vectors of `model` accepted by `keep`,
    /// best first.
    pub fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: usize,
        keep: impl Fn(&EntryMeta) -> bool,
    ) -> Vec<(Uuid, f32)> {
        let Some(partition) = self.partitions.get(model) else {
            return Vec::new();
        };
        if k == 0 || query.len() != partition.dimensions {
            return Vec::new();
        }
        let query = normalised(query);
        let mut scored: Vec<(Uuid, f32)> = (0..partition.ids.len())
            .filter(|&i| keep(&partition.metas[i]))
            .map(|i| (partition.ids[i], dot(partition.row(i), &query)))
            .collect();
        let by_score_then_id =
            |a: &(Uuid, f32), b: &(Uuid, f32)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_score_then_id);
            scored.truncate(k);
        }
        scored.sort_unstable_by(by_score_then_id);
        scored
    }
}

/// Eight independent sums, so the compiler can keep them in one SIMD register instead of
/// waiting on each addition in turn.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

pub fn normalised(vector: &[f32]) -> Vec<f32> {
    let norm = dot(vector, vector).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vector.to_vec();
    }
    vector.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(category: &str) -> EntryMeta {
        EntryMeta {
            model: "m".into(),
            facets: Facets {
                category: category.into(),
                tags: vec![],
                is_active: true,
            },
        }
    }

    #[test]
    fn nearest_orders_by_cosine_and_filters() {
        let mut index = VectorIndex::default();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        index.upsert(a, &[1.0, 0.0], meta("x"));
        index.upsert(b, &[1.0, 1.0], meta("x"));
        index.upsert(c, &[0.0, 5.0], meta("y"));
        let hits = index.nearest(&[2.0, 0.1], "m", 3, |_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![a, b, c]);
        let expected = 2.1 / (4.01f32.sqrt() * 2f32.sqrt());
        assert!((hits[1].1 - expected).abs() < 1e-6);
        let only_x = index.nearest(&[0.0, 1.0], "m", 5, |m| m.facets.category == "x");
        assert_eq!(only_x.iter().map(|h| h.0).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(index.nearest(&[0.0, 1.0], "m", 1, |_| true)[0].0, c);
        assert!(index.nearest(&[0.0, 1.0], "other", 1, |_| true).is_empty());
        index.remove(&c);
        assert_eq!(index.len(), 2);
        assert_eq!(index.nearest(&[0.0, 1.0], "m", 5, |_| true).len(), 2);
    }

    #[test]
    fn removals_keep_rows_and_ids_together() {
        let mut index = VectorIndex::default();
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
        for (n, id) in ids.iter().enumerate() {
            let mut v = vec![0.0; 12];
            v[n % 12] = 1.0 + n as f32;
            index.upsert(*id, &v, meta("x"));
        }
        for id in ids.iter().step_by(3) {
            index.remove(id);
        }
        // Re-inserting under another model moves the vector out of the first partition.
        let mut other = meta("x");
        other.model = "m2".into();
        index.upsert(ids[1], &[1.0; 12], other);
        for (n, id) in ids.iter().enumerate() {
            let mut q = vec![0.0; 12];
            q[n % 12] = 1.0;
            let found = index.nearest(&q, "m", 50, |_| true);
            let present = found.iter().any(|(hit, score)| hit == id && *score > 0.99);
            assert_eq!(present, n % 3 != 0 && n != 1, "tool {n}");
        }
        assert_eq!(index.nearest(&[1.0; 12], "m2", 5, |_| true)[0].0, ids[1]);
        assert_eq!(index.len(), 50 - 17);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|n| n as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|n| (n as f32).sin()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }
}
