//! An exact in-memory cosine index: every vector is L2-normalised once, so a query is one
//! dot product per tool.

use std::collections::HashMap;

use uuid::Uuid;

/// What a search filters on, kept beside each vector so no database read is needed to filter.
#[derive(Debug, Clone)]
pub struct EntryMeta {
    /// The model that made the vector.
    pub model: String,
    pub category: String,
    pub tags: Vec<String>,
    pub is_active: bool,
}

#[derive(Debug, Default)]
pub struct VectorIndex {
    entries: HashMap<Uuid, (Vec<f32>, EntryMeta)>,
}

impl VectorIndex {
    pub fn upsert(&mut self, id: Uuid, vector: &[f32], meta: EntryMeta) {
        self.entries.insert(id, (normalised(vector), meta));
    }

    /// Updates the filter fields of an indexed tool; tools without a vector are ignored.
    pub fn update_meta(&mut self, id: Uuid, meta: EntryMeta) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.1 = meta;
        }
    }

    pub fn remove(&mut self, id: &Uuid) {
        self.entries.remove(id);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `k` best (id, cosine) pairs among entries accepted by `keep`, best first.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(&EntryMeta) -> bool,
    ) -> Vec<(Uuid, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let query = normalised(query);
        let mut scored: Vec<(Uuid, f32)> = self
            .entries
            .iter()
            .filter(|(_, (vector, meta))| vector.len() == query.len() && keep(meta))
            .map(|(id, (vector, _))| (*id, dot(vector, &query)))
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

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
            category: category.into(),
            tags: vec![],
            is_active: true,
        }
    }

    #[test]
    fn nearest_orders_by_cosine_and_filters() {
        let mut index = VectorIndex::default();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        index.upsert(a, &[1.0, 0.0], meta("x"));
        index.upsert(b, &[1.0, 1.0], meta("x"));
        index.upsert(c, &[0.0, 5.0], meta("y"));
        let hits = index.nearest(&[2.0, 0.1], 3, |_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![a, b, c]);
        let expected = 2.1 / (4.01f32.sqrt() * 2f32.sqrt());
        assert!((hits[1].1 - expected).abs() < 1e-6);
        let only_x = index.nearest(&[0.0, 1.0], 5, |m| m.category == "x");
        assert_eq!(only_x.iter().map(|h| h.0).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(index.nearest(&[0.0, 1.0], 1, |_| true)[0].0, c);
        index.remove(&c);
        assert_eq!(index.len(), 2);
    }
}
