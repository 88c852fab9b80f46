//! An exact in-memory cosine index: every vector is L2-normalised once, so a query is one
//! dot product per tool: estimated from one byte per component for every tool, then
//! computed in full for the few whose estimate's error bound reaches the best ones.
//!
//! A tool has two vectors: one of its whole document and one of its description alone
//! (`document::description_text`), the second kept only as one byte per component. A
//! tool's score is the first cosine raised by part of the second's excess over it
//! ([`tool_score`]): a tool whose description reads as the query gains, while the whole
//! document still decides for the rest.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    Facets,
    best_k::{BestK, Candidate},
    simd::{self, QuantisedQuery, normalised},
};

/// What is kept beside each vector: the model that made it and what searches filter on.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryMeta {
    pub model: String,
    pub facets: Facets,
}

/// How much of the description vector's excess over the document's cosine a tool's score
/// gains. Chosen on the development sets (docs/search.md): at 0.5 no set lost hit@1 or
/// recall@5 in any mode; 0.4 and 0.6 each lost somewhere, 1 (the better of the two) more.
pub const DESCRIPTION_EXCESS_WEIGHT: f64 = 0.5;

/// A tool's vector score from the cosine of its whole document and, when it has one, of
/// its description vector: the first raised by [`DESCRIPTION_EXCESS_WEIGHT`] of the
/// second's excess.
pub fn tool_score(document: f64, description: Option<f64>) -> f64 {
    match description {
        Some(description) if description > document => {
            document + DESCRIPTION_EXCESS_WEIGHT * (description - document)
        }
        _ => document,
    }
}

/// Vectors of one model, stored row after row in one buffer so a search streams through
/// memory, twice: in full precision and as one byte per component with a scale per row
/// (`simd::quantise_row`), which a search scans first. Each row's description vector is
/// kept as one byte per component only (`description_codes`, `description_scales`; a scale
/// of 0 when the tool has none yet). `ids[i]`, `scales[i]`, `description_scales[i]` and
/// `metas[i]` belong to row `i`.
#[derive(Debug, Default)]
struct Partition {
    dimensions: usize,
    rows: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    description_codes: Vec<i8>,
    description_scales: Vec<f32>,
    ids: Vec<Uuid>,
    metas: Vec<EntryMeta>,
}

/// A tool's entry as held: its normalised document vector, its description vector's codes
/// and scale (scale 0: none) and what is kept beside them.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub vector: &'a [f32],
    pub description_codes: &'a [i8],
    pub description_scale: f32,
    pub meta: &'a EntryMeta,
}

impl Entry<'_> {
    /// Whether the tool has its description vector.
    pub fn has_description_vector(&self) -> bool {
        self.description_scale > 0.0
    }
}

/// The codes and scale a description vector is held as; zeros and 0 for none.
fn description_codes(description: Option<&[f32]>, dimensions: usize) -> (Vec<i8>, f32) {
    let mut codes = Vec::with_capacity(dimensions);
    match description.filter(|description| description.len() == dimensions) {
        Some(description) => {
            let scale = simd::quantise_row(&normalised(description), &mut codes);
            (codes, scale)
        }
        None => (vec![0; dimensions], 0.0),
    }
}

impl Partition {
    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.dimensions..(i + 1) * self.dimensions]
    }

    fn description_codes_of(&self, i: usize) -> &[i8] {
        &self.description_codes[i * self.dimensions..(i + 1) * self.dimensions]
    }

    fn push(&mut self, id: Uuid, unit: &[f32], description: (&[i8], f32), meta: EntryMeta) {
        reserve_gently(&mut self.rows, unit.len());
        reserve_gently(&mut self.codes, unit.len());
        reserve_gently(&mut self.scales, 1);
        reserve_gently(&mut self.description_codes, unit.len());
        reserve_gently(&mut self.description_scales, 1);
        reserve_gently(&mut self.ids, 1);
        reserve_gently(&mut self.metas, 1);
        self.rows.extend_from_slice(unit);
        self.scales.push(simd::quantise_row(unit, &mut self.codes));
        self.description_codes.extend_from_slice(description.0);
        self.description_scales.push(description.1);
        self.ids.push(id);
        self.metas.push(meta);
    }

    /// Row `i`'s score for `query` (normalised): its document cosine, in full precision,
    /// raised by its description vector's excess.
    fn score(&self, i: usize, query: &[f32]) -> f32 {
        let document = simd::dot(self.row(i), query);
        let scale = self.description_scales[i];
        let description =
            (scale > 0.0).then(|| simd::code_dot_f32(self.description_codes_of(i), query) * scale);
        tool_score(f64::from(document), description.map(f64::from)) as f32
    }

    /// Removes row `i` by moving the last row into its place.
    fn swap_remove(&mut self, i: usize) -> Uuid {
        let last = self.ids.len() - 1;
        let dims = self.dimensions;
        if i != last {
            self.rows
                .copy_within(last * dims..(last + 1) * dims, i * dims);
            self.codes
                .copy_within(last * dims..(last + 1) * dims, i * dims);
            self.description_codes
                .copy_within(last * dims..(last + 1) * dims, i * dims);
        }
        self.rows.truncate(last * dims);
        self.codes.truncate(last * dims);
        self.description_codes.truncate(last * dims);
        self.scales.swap_remove(i);
        self.description_scales.swap_remove(i);
        self.metas.swap_remove(i);
        self.ids.swap_remove(i);
        self.ids.get(i).copied().unwrap_or(Uuid::nil())
    }
}

/// Makes room for `additional` more items, growing by an eighth of the length at a time:
/// these buffers hold most of the store's memory, and doubling would leave up to half of
/// them unused (10,000 rows of 384 floats took 25 MiB instead of 15).
fn reserve_gently<T>(buffer: &mut Vec<T>, additional: usize) {
    if buffer.capacity() - buffer.len() < additional {
        buffer.reserve_exact(additional.max(buffer.len() / 8));
    }
}

/// Bytes held per vector beside its components: its id, scale and metadata rows, their
/// eighth of growth room, the strings of the metadata (model, category, a few tags) and its
/// entry in `positions`, which a hash table keeps at most half empty. Measured by
/// `estimate_covers_what_vectors_take` at 384 and 1,536 dimensions.
const BYTES_PER_VECTOR_BESIDE_COMPONENTS: u64 = 512;

/// What one tool's vectors of `dimensions` components take in a [`VectorIndex`], as an
/// upper estimate for tools with ordinary metadata: each component of the document vector
/// is kept in full (4 bytes) and as one byte, each of the description vector as one byte, with an
/// eighth of growth room, plus what is kept beside them. About 3.0 KiB at 384 dimensions
/// (2.6 KiB before the description vector) and 10.6 KiB at 1,536.
pub fn estimated_bytes_per_vector(dimensions: usize) -> u64 {
    (dimensions as u64 * 6 + 4).div_ceil(8) * 9 + BYTES_PER_VECTOR_BESIDE_COMPONENTS
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
    /// Sets a tool's document vector and, when it has one, its description vector (of the same
    /// model and dimension; another length counts as none).
    pub fn upsert(
        &mut self,
        id: Uuid,
        vector: &[f32],
        description: Option<&[f32]>,
        meta: EntryMeta,
    ) {
        let (codes, scale) = description_codes(description, vector.len());
        self.upsert_held(id, vector, (&codes, scale), meta);
    }

    /// Copies a tool's entry as another index holds it.
    pub fn upsert_entry(&mut self, id: Uuid, entry: Entry<'_>) {
        self.upsert_held(
            id,
            entry.vector,
            (entry.description_codes, entry.description_scale),
            entry.meta.clone(),
        );
    }

    fn upsert_held(
        &mut self,
        id: Uuid,
        vector: &[f32],
        description: (&[i8], f32),
        meta: EntryMeta,
    ) {
        self.remove(&id);
        let partition = self.partitions.entry(meta.model.clone()).or_default();
        if partition.ids.is_empty() {
            partition.dimensions = vector.len();
        } else if partition.dimensions != vector.len() {
            // A model has one dimension; a stray vector of another length is not searchable.
            return;
        }
        let row = partition.ids.len();
        self.positions.insert(id, (meta.model.clone(), row));
        partition.push(id, &normalised(vector), description, meta);
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

    /// Whether `id` has these vectors (as stored: normalised, the description vector quantised)
    /// with this meta: upserting them again would change nothing.
    pub fn holds(
        &self,
        id: &Uuid,
        vector: &[f32],
        description: Option<&[f32]>,
        meta: &EntryMeta,
    ) -> bool {
        self.entry(id).is_some_and(|held| {
            let (codes, scale) = description_codes(description, vector.len());
            held.meta == meta
                && held.vector == normalised(vector).as_slice()
                && held.description_scale == scale
                && held.description_codes == codes.as_slice()
        })
    }

    /// A tool's entry: its (normalised) vector, its description vector as held, its meta.
    pub fn entry(&self, id: &Uuid) -> Option<Entry<'_>> {
        let (model, row) = self.positions.get(id)?;
        let partition = self.partitions.get(model)?;
        Some(Entry {
            vector: partition.row(*row),
            description_codes: partition.description_codes_of(*row),
            description_scale: partition.description_scales[*row],
            meta: &partition.metas[*row],
        })
    }

    /// A tool's (normalised) vector when `model` made it.
    pub fn vector_of(&self, id: &Uuid, model: &str) -> Option<Vec<f32>> {
        self.entry(id)
            .filter(|entry| entry.meta.model == model)
            .map(|entry| entry.vector.to_vec())
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The bytes this index holds on the heap, from the capacities of its buffers and
    /// strings (the allocator's own rounding and bookkeeping come on top).
    #[cfg(test)]
    fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        let strings = |meta: &EntryMeta| {
            meta.model.capacity()
                + meta.facets.category.capacity()
                + meta.facets.tags.capacity() * size_of::<String>()
                + meta.facets.tags.iter().map(String::capacity).sum::<usize>()
        };
        let partitions: usize = self
            .partitions
            .values()
            .map(|p| {
                p.rows.capacity() * size_of::<f32>()
                    + p.codes.capacity()
                    + p.scales.capacity() * size_of::<f32>()
                    + p.description_codes.capacity()
                    + p.description_scales.capacity() * size_of::<f32>()
                    + p.ids.capacity() * size_of::<Uuid>()
                    + p.metas.capacity() * size_of::<EntryMeta>()
                    + p.metas.iter().map(strings).sum::<usize>()
            })
            .sum();
        // A hash table's buckets: its capacity is at most 7/8 of them, a power of two,
        // each with one control byte.
        let buckets = (self.positions.capacity() * 8 / 7 + 1).next_power_of_two();
        let positions = buckets * (size_of::<(Uuid, (String, usize))>() + 1)
            + self
                .positions
                .values()
                .map(|(m, _)| m.capacity())
                .sum::<usize>();
        (partitions + positions) as u64
    }

    /// The model of a tool's vector; None for a tool without one.
    pub fn model_of(&self, id: &Uuid) -> Option<&str> {
        self.positions.get(id).map(|(model, _)| model.as_str())
    }

    /// How many vectors `model` made.
    pub fn count_of(&self, model: &str) -> usize {
        self.partitions.get(model).map_or(0, |p| p.ids.len())
    }

    /// The `k` best (id, score) pairs among the vectors of `model` accepted by `keep`,
    /// best first (ties by id); the score is [`tool_score`] of the tool's two cosines.
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
        let quantised = QuantisedQuery::new(&query);
        let rows = partition.ids.len();
        SCAN_BUFFERS.with_borrow_mut(|buffers| {
            let ScanBuffers {
                sums,
                description_sums,
                lowers,
                uppers,
            } = buffers;
            sums.resize(rows, 0);
            simd::code_dot_each_row(&partition.codes, &quantised.codes, sums);
            description_sums.resize(rows, 0);
            simd::code_dot_each_row(
                &partition.description_codes,
                &quantised.codes,
                description_sums,
            );
            // Each row's bounds in a loop of plain arithmetic the compiler turns into SIMD;
            // the two passes below then compare one number a row. The score never falls
            // below the document's cosine, and grows with both cosines, so the document's
            // lower bound and the score of both upper bounds bound it (a row without a
            // description vector has scale 0: its bound is 0 ± 1e-6, which only loosens it).
            lowers.resize(rows, 0.0);
            uppers.resize(rows, 0.0);
            let weight = DESCRIPTION_EXCESS_WEIGHT as f32;
            let bounds = lowers.iter_mut().zip(uppers.iter_mut());
            let document = sums.iter().zip(&partition.scales);
            let description = description_sums.iter().zip(&partition.description_scales);
            for ((lower, upper), ((&sum, &scale), (&description_sum, &description_scale))) in
                bounds.zip(document.zip(description))
            {
                let (estimate, error) = quantised.estimate(sum, scale);
                let (description_estimate, description_error) =
                    quantised.estimate(description_sum, description_scale);
                let upper_document = estimate + error;
                let upper_description = description_estimate + description_error;
                *lower = estimate - error;
                *upper = upper_document + weight * (upper_description - upper_document).max(0.0);
            }
            let found = best_rows(partition, &query, k, &keep, lowers, uppers);
            buffers.shrink_beyond(SCAN_BUFFERS_KEPT);
            found
        })
    }
}

/// The buffers of one vector scan, kept by each thread between its scans: allocating and
/// freeing them (four of 40 KB a query at 10,000 tools) cost more than filling them.
#[derive(Default)]
struct ScanBuffers {
    sums: Vec<i32>,
    description_sums: Vec<i32>,
    lowers: Vec<f32>,
    uppers: Vec<f32>,
}

/// Rows whose scan buffers a thread keeps between scans: a scan of more frees its buffers'
/// room beyond this after it.
const SCAN_BUFFERS_KEPT: usize = 1 << 17;

impl ScanBuffers {
    fn shrink_beyond(&mut self, rows: usize) {
        if self.sums.capacity() > rows {
            self.sums = Vec::new();
            self.description_sums = Vec::new();
            self.lowers = Vec::new();
            self.uppers = Vec::new();
        }
    }
}

thread_local! {
    static SCAN_BUFFERS: std::cell::RefCell<ScanBuffers> = std::cell::RefCell::default();
}

/// The `k` best rows of `partition` accepted by `keep`, given each row's lower and upper
/// bound of its score: rows that might be among them are scored exactly.
fn best_rows(
    partition: &Partition,
    query: &[f32],
    k: usize,
    keep: &impl Fn(&EntryMeta) -> bool,
    lowers: &[f32],
    uppers: &[f32],
) -> Vec<(Uuid, f32)> {
    // The k best lower bounds: the k-th of them is below the k-th best exact score.
    let mut floor = BestK::new(k);
    // Once the floor is full, a row whose bound is below its worst cannot enter it: one
    // float comparison settles most rows (a tie may still enter, by id).
    let mut floor_worst = f32::NEG_INFINITY;
    for (row, &lower) in lowers.iter().enumerate() {
        if lower < floor_worst {
            continue;
        }
        let lower = Candidate {
            score: lower,
            id: partition.ids[row],
        };
        // The filter is asked only of rows good enough to enter the best k.
        if floor.admits(&lower) && keep(&partition.metas[row]) {
            floor.push(lower);
            if let Some(worst) = floor.worst_when_full() {
                floor_worst = worst.score;
            }
        }
    }
    let cut = floor_worst;

    // Every row that might beat the cut is scored exactly; the others cannot be among
    // the best k.
    let mut best = BestK::new(k);
    for (row, &upper) in uppers.iter().enumerate() {
        if upper < cut || !keep(&partition.metas[row]) {
            continue;
        }
        let candidate = Candidate {
            score: partition.score(row, query),
            id: partition.ids[row],
        };
        if best.admits(&candidate) {
            best.push(candidate);
        }
    }
    best.into_sorted()
        .into_iter()
        .map(|hit| (hit.id, hit.score))
        .collect()
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
        index.upsert(a, &[1.0, 0.0], None, meta("x"));
        index.upsert(b, &[1.0, 1.0], None, meta("x"));
        index.upsert(c, &[0.0, 5.0], None, meta("y"));
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
            index.upsert(*id, &v, None, meta("x"));
        }
        for id in ids.iter().step_by(3) {
            index.remove(id);
        }
        // Re-inserting under another model moves the vector out of the first partition.
        let mut other = meta("x");
        other.model = "m2".into();
        index.upsert(ids[1], &[1.0; 12], None, other);
        for (n, id) in ids.iter().enumerate() {
            let mut q = vec![0.0; 12];
            q[n % 12] = 1.0;
            let found = index.nearest(&q, "m", 50, |_| true);
            let present = found.iter().any(|(hit, score)| hit == id && *score > 0.99);
            assert_eq!(present, n % 3 != 0 && n != 1, "tool {n}");
        }
        assert_eq!(index.nearest(&[1.0; 12], "m2", 5, |_| true)[0].0, ids[1]);
        assert_eq!(index.len(), 50 - 17);
        // Entries follow their rows through the moves.
        for (n, id) in ids.iter().enumerate().skip(2) {
            let entry = index
                .entry(id)
                .map(|entry| (entry.vector[n % 12], entry.meta.model.as_str()));
            assert_eq!(entry, (n % 3 != 0).then_some((1.0, "m")), "tool {n}");
        }
        assert_eq!(index.entry(&ids[1]).unwrap().meta.model, "m2");
    }

    /// The estimate the start-up choice relies on covers what vectors of ordinary tools
    /// take, without overstating it by much.
    #[test]
    fn estimate_covers_what_vectors_take() {
        for dimensions in [384, 1_536] {
            let mut index = VectorIndex::default();
            let count = 3_000;
            for n in 0..count {
                let vector: Vec<f32> = (0..dimensions).map(|d| (n + d) as f32).collect();
                let meta = EntryMeta {
                    model: "sentence-transformers/all-MiniLM-L6-v2".into(),
                    facets: Facets {
                        category: "data-processing".into(),
                        tags: vec!["convert".into(), "units".into(), "math".into()],
                        is_active: true,
                    },
                };
                index.upsert(Uuid::new_v4(), &vector, Some(&vector), meta);
            }
            let measured = index.heap_bytes() / count as u64;
            let estimate = estimated_bytes_per_vector(dimensions);
            assert!(
                measured <= estimate && estimate * 10 <= measured * 12,
                "{dimensions} dimensions: {measured} bytes measured, {estimate} estimated"
            );
        }
    }

    #[test]
    fn buffers_grow_by_an_eighth_not_double() {
        let mut index = VectorIndex::default();
        for n in 0..3_000 {
            index.upsert(Uuid::new_v4(), &[1.0 + n as f32; 16], None, meta("x"));
        }
        let partition = &index.partitions["m"];
        assert_eq!(partition.rows.len(), 3_000 * 16);
        // Doubling would have left 4,096 rows of room here.
        assert!(partition.rows.capacity() <= partition.rows.len() / 8 * 9 + 16);
        assert!(partition.codes.capacity() <= partition.codes.len() / 8 * 9 + 16);
        assert!(partition.ids.capacity() <= partition.ids.len() / 8 * 9 + 1);
    }

    #[test]
    fn a_tool_scores_its_document_cosine_raised_by_half_its_description_vectors_excess() {
        assert_eq!(tool_score(0.4, None), 0.4);
        assert_eq!(
            tool_score(0.4, Some(0.3)),
            0.4,
            "a lower description cosine takes nothing"
        );
        assert!((tool_score(0.4, Some(0.6)) - 0.5).abs() < 1e-12);
        assert_eq!(tool_score(-0.2, Some(0.2)), 0.0);
    }

    /// A tool whose description and description alone match the query rises above one whose whole
    /// document matches a little better; a tool without a description vector keeps its cosine.
    #[test]
    fn the_description_vector_lifts_a_tool_and_a_tool_without_one_keeps_its_cosine() {
        let mut index = VectorIndex::default();
        let (plain, named, old) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        index.upsert(plain, &[0.8, 0.6], Some(&[0.0, 1.0]), meta("x"));
        index.upsert(named, &[0.7, 0.714], Some(&[1.0, 0.0]), meta("x"));
        index.upsert(old, &[0.6, 0.8], None, meta("x"));
        let hits = index.nearest(&[1.0, 0.0], "m", 3, |_| true);
        assert_eq!(
            hits.iter().map(|h| h.0).collect::<Vec<_>>(),
            vec![named, plain, old]
        );
        let document = 0.7 / (0.7f64 * 0.7 + 0.714 * 0.714).sqrt();
        assert!((f64::from(hits[0].1) - tool_score(document, Some(1.0))).abs() < 1e-3);
        assert!((hits[1].1 - 0.8).abs() < 1e-6 && (hits[2].1 - 0.6).abs() < 1e-6);
        assert!(index.entry(&named).unwrap().has_description_vector());
        assert!(!index.entry(&old).unwrap().has_description_vector());
        // Its description vector comes later: the tool keeps its row and gains the score.
        index.upsert(old, &[0.6, 0.8], Some(&[1.0, 0.0]), meta("x"));
        let hits = index.nearest(&[1.0, 0.0], "m", 3, |_| true);
        assert_eq!(hits[0].0, named);
        assert!((hits.iter().find(|h| h.0 == old).unwrap().1 - 0.8).abs() < 1e-3);
    }

    /// The best-k scan answers what scoring, filtering and sorting every row would:
    /// duplicate vectors tie and are ordered by id.
    #[test]
    fn nearest_equals_a_full_sort() {
        let mut index = VectorIndex::default();
        let mut rows = Vec::new();
        for n in 0..300u32 {
            let seed = n % 120; // each vector appears two or three times
            let vector: Vec<f32> = (0..24)
                .map(|d| ((seed * 31 + d * 17) % 23) as f32 - 11.0)
                .collect();
            let id = Uuid::from_u128(u128::from(n) * 7919 % 1009);
            let category = if n % 4 == 0 { "odd" } else { "x" };
            // Two rows in three have a description vector, as held: one byte per component.
            let description: Option<Vec<f32>> = (n % 3 != 0).then(|| {
                (0..24)
                    .map(|d| ((seed * 7 + d * 11) % 17) as f32 - 8.0)
                    .collect()
            });
            index.upsert(id, &vector, description.as_deref(), meta(category));
            let held_description = description.map(|description| {
                let mut codes = Vec::new();
                let scale = simd::quantise_row(&normalised(&description), &mut codes);
                codes
                    .iter()
                    .map(|&c| f32::from(c) * scale)
                    .collect::<Vec<f32>>()
            });
            rows.push((id, normalised(&vector), held_description, category));
        }
        for q in 0..20u32 {
            let query: Vec<f32> = (0..24)
                .map(|d| ((q * 13 + d * 5) % 19) as f32 - 9.0)
                .collect();
            let unit = normalised(&query);
            let mut expected: Vec<(Uuid, f32)> = rows
                .iter()
                .filter(|row| row.3 == "x")
                .map(|row| {
                    let document = f64::from(simd::dot(&row.1, &unit));
                    let description = row
                        .2
                        .as_ref()
                        .map(|description| f64::from(simd::dot(description, &unit)));
                    (row.0, tool_score(document, description) as f32)
                })
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            for k in [1, 7, 50, 400] {
                let found = index.nearest(&query, "m", k, |m| m.facets.category == "x");
                let want = &expected[..k.min(expected.len())];
                assert_eq!(found.len(), want.len());
                for (got, want) in found.iter().zip(want) {
                    // Equal scores may come out of the SIMD and portable sums a rounding
                    // apart, so compare ranks by score and ids where scores differ.
                    assert!((got.1 - want.1).abs() < 1e-5, "query {q} k {k}");
                }
                for pair in found.windows(2) {
                    assert!(pair[0].1 > pair[1].1 || pair[0].0 < pair[1].0, "ties by id");
                }
                let found_ids: std::collections::HashSet<_> = found.iter().map(|h| h.0).collect();
                let cut = want.last().map_or(0.0, |w| w.1);
                for w in want.iter().filter(|w| w.1 > cut + 1e-5) {
                    assert!(found_ids.contains(&w.0), "query {q} k {k} misses {}", w.0);
                }
            }
        }
    }
}
