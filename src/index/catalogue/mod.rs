//! The catalogue in memory, without its schemas and implementations: each tool's words for
//! BM25 full-text search, its name for listings in name order, and what filters apply to it.
//!
//! Both backends keep one. Full text ranks with tuned parameters and field weights that
//! neither SQLite's FTS5 nor PostgreSQL's `ts_rank` offers; listings and counts need no scan
//! of the table. Each answers in microseconds, the same whichever backend holds the
//! catalogue; the store then reads the rows of the ids it returns.

mod bm25;
mod listing;
mod shared;

use std::{
    collections::{BTreeMap, HashMap},
    sync::OnceLock,
};

use uuid::Uuid;

pub use bm25::TextHit;
pub use shared::SharedCatalogueIndex;

use super::{Facets, lexical};
use crate::domain::Tool;

/// One indexed tool.
#[derive(Debug, Clone)]
struct Entry {
    id: Uuid,
    /// `updated_at` of the version indexed, so an older write arriving late is ignored.
    version: i64,
    name: String,
    terms: Vec<u32>,
    /// Of the terms with their frequencies, to tell a re-read of the same words cheaply.
    terms_fingerprint: u64,
    facets: Facets,
}

#[derive(Debug, Default)]
pub struct CatalogueIndex {
    term_ids: HashMap<String, u32>,
    /// Per term id: (slot, weighted term frequency) of each tool containing it.
    postings: Vec<Vec<(u32, f32)>>,
    slots: Vec<Option<Entry>>,
    /// Per slot, the entry's length: what scoring a posting reads, kept dense so a search
    /// streams through it instead of visiting every entry.
    lengths: Vec<f32>,
    /// Per slot, whether the tool is switched on (false for a free slot): what the usual
    /// listings filter by, kept dense so a deep page walks past tools without reading them.
    switched_on: Vec<bool>,
    slot_of: HashMap<Uuid, u32>,
    free_slots: Vec<u32>,
    total_length: f64,
    /// Every tool's slot in name order (ids break ties while two replicas' renames cross).
    by_name: BTreeMap<(String, Uuid), u32>,
    /// The slots of `by_name` in its order, in one array: built when a listing first needs
    /// it after a change, so deep pages step through 4 bytes a tool, not the tree's nodes.
    name_order: OnceLock<Vec<u32>>,
    /// Tools switched on, so that the usual listings know their total without a count.
    active: usize,
}

impl CatalogueIndex {
    /// Indexes (or re-indexes) a tool from its weighted terms. A version older than the one
    /// indexed is ignored: two writes of one tool may reach the index out of order.
    pub fn upsert(
        &mut self,
        id: Uuid,
        version: i64,
        name: &str,
        terms: &[(String, f32)],
        facets: Facets,
    ) {
        if let Some(&slot) = self.slot_of.get(&id)
            && self.slots[slot as usize]
                .as_ref()
                .is_some_and(|e| e.version > version)
        {
            return;
        }
        self.remove(&id);
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.lengths.push(0.0);
            self.switched_on.push(false);
            (self.slots.len() - 1) as u32
        });
        let mut frequencies: HashMap<u32, f32> = HashMap::with_capacity(terms.len());
        for (term, weight) in terms {
            let next_id = self.term_ids.len() as u32;
            let term_id = *self.term_ids.entry(term.clone()).or_insert(next_id);
            if term_id == next_id {
                self.postings.push(Vec::new());
            }
            *frequencies.entry(term_id).or_default() += weight;
        }
        let terms_fingerprint = fingerprint(&frequencies);
        let length: f32 = frequencies.values().sum();
        for (&term_id, &frequency) in &frequencies {
            self.postings[term_id as usize].push((slot, frequency));
        }
        self.total_length += f64::from(length);
        self.lengths[slot as usize] = length;
        self.by_name.insert((name.to_owned(), id), slot);
        self.name_order.take();
        self.active += usize::from(facets.is_active);
        self.switched_on[slot as usize] = facets.is_active;
        self.slots[slot as usize] = Some(Entry {
            id,
            version,
            name: name.to_owned(),
            terms: frequencies.into_keys().collect(),
            terms_fingerprint,
            facets,
        });
        self.slot_of.insert(id, slot);
    }

    /// Whether `id`'s entry is this version with these words and facets: upserting them
    /// again would change nothing.
    pub fn holds(
        &self,
        id: &Uuid,
        version: i64,
        name: &str,
        terms: &[(String, f32)],
        facets: &Facets,
    ) -> bool {
        let Some(entry) = self
            .slot_of
            .get(id)
            .and_then(|&slot| self.slots[slot as usize].as_ref())
        else {
            return false;
        };
        if entry.version != version || entry.name != name || entry.facets != *facets {
            return false;
        }
        // As `upsert` counts them; a word never indexed cannot be this entry's.
        let mut frequencies: HashMap<u32, f32> = HashMap::with_capacity(terms.len());
        for (term, weight) in terms {
            let Some(&term_id) = self.term_ids.get(term) else {
                return false;
            };
            *frequencies.entry(term_id).or_default() += weight;
        }
        frequencies.len() == entry.terms.len()
            && fingerprint(&frequencies) == entry.terms_fingerprint
    }

    /// Changes what a tool is filtered by (switched on or off) without re-reading its text.
    pub fn update_facets(&mut self, id: Uuid, version: i64, facets: Facets) {
        if let Some(&slot) = self.slot_of.get(&id)
            && let Some(entry) = self.slots[slot as usize].as_mut()
            && entry.version <= version
        {
            self.active =
                self.active + usize::from(facets.is_active) - usize::from(entry.facets.is_active);
            entry.version = version;
            self.switched_on[slot as usize] = facets.is_active;
            entry.facets = facets;
        }
    }

    pub fn remove(&mut self, id: &Uuid) {
        let Some(slot) = self.slot_of.remove(id) else {
            return;
        };
        let Some(entry) = self.slots[slot as usize].take() else {
            return;
        };
        for term_id in entry.terms {
            self.postings[term_id as usize].retain(|(s, _)| *s != slot);
        }
        self.total_length -= f64::from(self.lengths[slot as usize]);
        self.by_name.remove(&(entry.name, entry.id));
        self.name_order.take();
        self.active -= usize::from(entry.facets.is_active);
        self.switched_on[slot as usize] = false;
        self.free_slots.push(slot);
    }

    /// Indexes (or re-indexes) a tool: loaders add the tools they read one at a time, so
    /// the whole catalogue is never decoded in memory at once.
    pub fn add(&mut self, tool: &Tool) {
        let terms = lexical::tool_terms(tool);
        self.upsert(
            tool.id,
            tool.updated_at.timestamp_micros(),
            &tool.name,
            &terms,
            Facets::of(tool),
        );
    }

    /// Makes a tool's entry here what it is in `from` (absent if absent there). Rare: it
    /// scans `from`'s vocabulary for the entry's words.
    fn copy_entry(&mut self, from: &CatalogueIndex, id: &Uuid) {
        self.remove(id);
        let Some((slot, entry)) = from
            .slot_of
            .get(id)
            .and_then(|&slot| Some((slot, from.slots[slot as usize].as_ref()?)))
        else {
            return;
        };
        let terms: Vec<(String, f32)> = from
            .term_ids
            .iter()
            .filter(|(_, term_id)| entry.terms.contains(term_id))
            .map(|(term, &term_id)| {
                let frequency = from.postings[term_id as usize]
                    .iter()
                    .find(|(s, _)| *s == slot)
                    .map_or(0.0, |(_, frequency)| *frequency);
                (term.clone(), frequency)
            })
            .collect();
        self.upsert(
            *id,
            entry.version,
            &entry.name,
            &terms,
            entry.facets.clone(),
        );
    }

    /// The id of the one tool of this name; `None` when there is none, or two while
    /// replicas' renames cross.
    pub fn id_named(&self, name: &str) -> Option<Uuid> {
        let mut named = self
            .by_name
            .range((name.to_owned(), Uuid::nil())..)
            .take_while(|((indexed, _), _)| indexed == name);
        match (named.next(), named.next()) {
            (Some(((_, id), _)), None) => Some(*id),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.slot_of.contains_key(id)
    }

    /// Each switched-on tool's name and facets, in no order.
    pub fn active_entries(&self) -> impl Iterator<Item = (&str, &Facets)> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|entry| entry.facets.is_active)
            .map(|entry| (entry.name.as_str(), &entry.facets))
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Every indexed tool's id and version (`updated_at` in microseconds).
    fn versions(&self) -> impl Iterator<Item = (Uuid, i64)> + '_ {
        self.slots
            .iter()
            .flatten()
            .map(|entry| (entry.id, entry.version))
    }
}

/// A hash of term ids and their frequencies, in any order.
fn fingerprint(frequencies: &HashMap<u32, f32>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut pairs: Vec<(u32, u32)> = frequencies
        .iter()
        .map(|(&term_id, &frequency)| (term_id, frequency.to_bits()))
        .collect();
    pairs.sort_unstable();
    let mut hasher = std::hash::DefaultHasher::new();
    pairs.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ToolFilter;

    fn facets(category: &str, active: bool) -> Facets {
        Facets {
            category: category.into(),
            tags: vec![],
            is_active: active,
        }
    }

    fn terms(words: &str) -> Vec<(String, f32)> {
        words
            .split_whitespace()
            .map(|w| (w.to_owned(), 1.0))
            .collect()
    }

    fn query(words: &str) -> Vec<String> {
        words.split_whitespace().map(str::to_owned).collect()
    }

    /// The built-in tools, indexed as a store indexes them.
    fn builtins_index() -> (CatalogueIndex, HashMap<Uuid, String>) {
        let mut index = CatalogueIndex::default();
        let mut names = HashMap::new();
        for builtin in crate::builtins::builtin_tools(crate::builtins::BuiltinLimits::default()) {
            let tool = Tool {
                description: builtin.description().into(),
                tags: builtin.tags().iter().map(|t| t.to_string()).collect(),
                input_schema: builtin.input_schema(),
                ..Tool::example(builtin.name())
            };
            names.insert(tool.id, tool.name.clone());
            index.add(&tool);
        }
        (index, names)
    }

    #[test]
    fn the_tool_whose_name_reads_as_the_query_ranks_first() {
        let (index, names) = builtins_index();
        let first = |q: &str| {
            let hits = index.search(&lexical::query_terms(q), 5, |_| true);
            names[&hits[0].id].clone()
        };
        for query in [
            "convert csv to json",
            "turn this CSV into JSON",
            "parse CSV text into JSON records",
        ] {
            assert_eq!(first(query), "csv_to_json", "{query}");
        }
        for query in [
            "convert json to csv",
            "export these JSON records as a CSV file",
        ] {
            assert_eq!(first(query), "json_to_csv", "{query}");
        }
    }

    #[test]
    fn rare_words_and_repeats_rank_higher() {
        let mut index = CatalogueIndex::default();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        index.upsert(
            a,
            1,
            "t",
            &terms("weather forecast city"),
            facets("x", true),
        );
        index.upsert(b, 1, "t", &terms("city population city"), facets("x", true));
        index.upsert(c, 1, "t", &terms("stock price city"), facets("y", true));
        let hits = index.search(&query("forecast city"), 10, |_| true);
        assert_eq!(hits[0].id, a, "the rare word decides");
        assert_eq!(hits.len(), 3);
        let population = index.search(&query("city"), 10, |_| true);
        assert_eq!(population[0].id, b, "two mentions beat one");
        let only_y = index.search(&query("city"), 10, |f| f.category == "y");
        assert_eq!(only_y.iter().map(|h| h.id).collect::<Vec<_>>(), vec![c]);
        assert!(index.search(&query("unknown"), 10, |_| true).is_empty());
        assert_eq!(index.search(&query("city"), 1, |_| true).len(), 1);
    }

    #[test]
    fn coverage_is_the_share_of_the_query_a_tool_holds_by_rarity() {
        let mut index = CatalogueIndex::default();
        let (both, common, rare) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        index.upsert(
            both,
            1,
            "t",
            &terms("send slack message"),
            facets("x", true),
        );
        index.upsert(common, 1, "t", &terms("send email"), facets("x", true));
        index.upsert(rare, 1, "t", &terms("slack channels"), facets("x", true));
        let coverage = |q: &str| -> HashMap<Uuid, f64> {
            index
                .search(&query(q), 10, |_| true)
                .into_iter()
                .map(|hit| (hit.id, hit.coverage))
                .collect()
        };
        let found = coverage("send slack");
        assert!((found[&both] - 1.0).abs() < 1e-6);
        // "send" and "slack" are each in two of the three tools, so they weigh alike and
        // each of the other tools holds half the query.
        assert!((found[&common] - 0.5).abs() < 1e-6);
        assert!((found[&rare] - 0.5).abs() < 1e-6);
        // A word no tool holds counts as the rarest of all; ordered pairs count for nothing.
        let with_unknown = coverage("send slack zzyzx send>slack");
        assert!(with_unknown[&both] < 0.5 && with_unknown[&both] > 0.2);
        // Scores were cleared between searches: asking again gives the same.
        assert_eq!(coverage("send slack"), found);
    }

    #[test]
    fn a_search_starts_from_zero_after_one_that_panicked() {
        let mut index = CatalogueIndex::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        index.upsert(a, 1, "t", &terms("weather city"), facets("x", true));
        index.upsert(b, 1, "t", &terms("stock city"), facets("x", true));
        let before = index.search(&query("city weather"), 10, |_| true);
        // The filter panics after the scores are written: the thread's buffers keep them.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            index.search(&query("city weather"), 10, |_| panic!("filter"))
        }));
        assert!(panicked.is_err());
        assert_eq!(index.search(&query("city weather"), 10, |_| true), before);
        let stock = index.search(&query("stock"), 10, |_| true);
        assert_eq!(stock.iter().map(|h| h.id).collect::<Vec<_>>(), vec![b]);
    }

    #[test]
    fn an_entry_holds_only_its_own_version_words_and_facets() {
        let mut index = CatalogueIndex::default();
        let id = Uuid::new_v4();
        let words = terms("weather city city");
        index.upsert(id, 5, "weather", &words, facets("x", true));
        assert!(index.holds(&id, 5, "weather", &words, &facets("x", true)));
        assert!(!index.holds(&id, 6, "weather", &words, &facets("x", true)));
        assert!(!index.holds(&id, 5, "forecast", &words, &facets("x", true)));
        assert!(!index.holds(&id, 5, "weather", &words, &facets("x", false)));
        assert!(!index.holds(
            &id,
            5,
            "weather",
            &terms("weather city"),
            &facets("x", true)
        ));
        assert!(!index.holds(
            &id,
            5,
            "weather",
            &terms("weather town"),
            &facets("x", true)
        ));
        let weighted = vec![("weather".to_owned(), 2.0), ("city".to_owned(), 2.0)];
        assert!(!index.holds(&id, 5, "weather", &weighted, &facets("x", true)));
        assert!(!index.holds(&Uuid::new_v4(), 5, "weather", &words, &facets("x", true)));
    }

    #[test]
    fn weights_count_as_repeats() {
        let mut index = CatalogueIndex::default();
        let (named, described) = (Uuid::new_v4(), Uuid::new_v4());
        let filler = [("filler".to_owned(), 1.0)];
        index.upsert(
            named,
            1,
            "t",
            &[("issue".into(), 3.0), filler[0].clone()],
            facets("x", true),
        );
        index.upsert(
            described,
            1,
            "t",
            &[("issue".into(), 1.0), filler[0].clone()],
            facets("x", true),
        );
        let hits = index.search(&query("issue"), 10, |_| true);
        assert_eq!(hits[0].id, named);
        assert!(hits[0].score > hits[1].score);
    }

    #[test]
    fn updates_replace_and_stale_versions_are_ignored() {
        let mut index = CatalogueIndex::default();
        let id = Uuid::new_v4();
        index.upsert(id, 2, "t", &terms("new words"), facets("x", true));
        index.upsert(id, 1, "t", &terms("old words"), facets("x", true));
        assert!(index.search(&query("old"), 10, |_| true).is_empty());
        assert_eq!(index.search(&query("new"), 10, |_| true)[0].id, id);
        index.update_facets(id, 3, facets("x", false));
        assert!(index.search(&query("new"), 10, |f| f.is_active).is_empty());
        index.update_facets(id, 2, facets("x", true));
        assert!(index.search(&query("new"), 10, |f| f.is_active).is_empty());
        index.upsert(id, 4, "t", &terms("newer"), facets("x", true));
        assert!(index.search(&query("words"), 10, |_| true).is_empty());
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn copied_entries_score_as_in_their_index() {
        let (kept, gone, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut current = CatalogueIndex::default();
        let kept_terms = [("weather".to_owned(), 3.0), ("city".to_owned(), 1.5)];
        current.upsert(kept, 7, "kept", &kept_terms, facets("x", false));
        current.upsert(other, 1, "other", &terms("city council"), facets("x", true));
        let mut fresh = CatalogueIndex::default();
        fresh.upsert(kept, 5, "kept", &terms("stale words"), facets("x", true));
        fresh.upsert(gone, 5, "gone", &terms("weather"), facets("x", true));
        fresh.upsert(other, 1, "other", &terms("city council"), facets("x", true));

        fresh.copy_entry(&current, &kept);
        fresh.copy_entry(&current, &gone);
        for words in ["weather", "city", "stale"] {
            assert_eq!(
                fresh.search(&query(words), 10, |_| true),
                current.search(&query(words), 10, |_| true),
                "{words}"
            );
        }
        assert_eq!(fresh.len(), 2);
        assert_eq!(fresh.active(), 1);
        // The copied version still refuses older writes.
        fresh.upsert(kept, 6, "kept", &terms("stale"), facets("x", true));
        assert!(fresh.search(&query("stale"), 10, |_| true).is_empty());
    }

    #[test]
    fn names_lead_to_one_tool_or_none() {
        let mut index = CatalogueIndex::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        index.upsert(a, 1, "calc", &terms("add"), facets("x", true));
        index.upsert(b, 1, "calc.v2", &terms("add"), facets("x", true));
        assert_eq!(index.id_named("calc"), Some(a));
        assert_eq!(index.id_named("calc.v2"), Some(b));
        assert_eq!(index.id_named("cal"), None);
        // While two replicas' renames cross, a name may be held twice: no answer then.
        index.upsert(b, 2, "calc", &terms("add"), facets("x", true));
        assert_eq!(index.id_named("calc"), None);
        assert_eq!(index.id_named("calc.v2"), None);
        index.remove(&a);
        assert_eq!(index.id_named("calc"), Some(b));
    }

    #[test]
    fn removed_slots_are_reused_without_ghosts() {
        let mut index = CatalogueIndex::default();
        let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
        for (n, id) in ids.iter().enumerate() {
            index.upsert(
                *id,
                1,
                "t",
                &terms(&format!("common word{n}")),
                facets("x", true),
            );
        }
        for id in ids.iter().step_by(2) {
            index.remove(id);
        }
        let fresh = Uuid::new_v4();
        index.upsert(fresh, 1, "t", &terms("common fresh"), facets("x", true));
        let all = index.search(&query("common"), 100, |_| true);
        assert_eq!(all.len(), 21);
        assert!(
            all.iter()
                .all(|hit| hit.id == fresh || ids.iter().skip(1).step_by(2).any(|k| *k == hit.id))
        );
        assert!(index.search(&query("word0"), 10, |_| true).is_empty());
        assert_eq!(index.search(&query("word1"), 10, |_| true)[0].id, ids[1]);
    }

    #[test]
    fn pages_follow_names_and_filters() {
        let mut index = CatalogueIndex::default();
        let names = ["delta", "alpha", "echo", "charlie", "bravo"];
        let ids: Vec<Uuid> = names.iter().map(|_| Uuid::new_v4()).collect();
        for (name, id) in names.iter().zip(&ids) {
            let category = if *name == "echo" { "y" } else { "x" };
            index.upsert(
                *id,
                1,
                name,
                &terms(name),
                facets(category, *name != "charlie"),
            );
        }
        let id_of = |name: &str| ids[names.iter().position(|n| *n == name).unwrap()];
        let all = ToolFilter::default();
        let active = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let in_x = |active_only| ToolFilter {
            category: Some("x".into()),
            active_only,
            ..ToolFilter::default()
        };
        let (page, total) = index.page(0, 2, &all, None);
        assert_eq!((page, total), (vec![id_of("alpha"), id_of("bravo")], 5));
        let (page, total) = index.page(1, 2, &active, None);
        assert_eq!((page, total), (vec![id_of("bravo"), id_of("delta")], 4));
        let (page, total) = index.page(10, 2, &all, None);
        assert_eq!((page, total), (vec![], 5));
        let (page, total) = index.page(0, 5, &in_x(true), None);
        let expected = ["alpha", "bravo", "delta"].map(id_of).to_vec();
        assert_eq!((page, total), (expected, 3));
        let (page, total) = index.page(2, 5, &in_x(false), None);
        assert_eq!((page, total), (vec![id_of("charlie"), id_of("delta")], 4));
        assert_eq!(index.count(|f| f.category == "x"), 4);
        assert_eq!(index.count(|f| f.category == "x" && f.is_active), 3);
        assert_eq!(index.active(), 4);
        // A known total stops the walk at the page's end and is reported as given.
        let (page, total) = index.page(1, 2, &active, Some(4));
        assert_eq!((page, total), (vec![id_of("bravo"), id_of("delta")], 4));
        index.update_facets(id_of("charlie"), 2, facets("x", true));
        assert_eq!(index.active(), 5);
        let (page, total) = index.page(2, 1, &active, None);
        assert_eq!((page, total), (vec![id_of("charlie")], 5));

        // A rename moves the tool; a removal takes it out of every page.
        index.upsert(id_of("alpha"), 2, "zulu", &terms("zulu"), facets("x", true));
        index.remove(&id_of("bravo"));
        let (page, total) = index.page(0, 10, &all, None);
        let expected: Vec<Uuid> = ["charlie", "delta", "echo", "alpha"]
            .iter()
            .map(|n| id_of(n))
            .collect();
        assert_eq!((page, total), (expected.clone(), 4));
        assert_eq!(index.page(0, 10, &active, None), (expected, 4));
        assert_eq!(index.active(), 4);
    }
}
