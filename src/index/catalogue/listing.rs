//! Listings in name order, and counts, answered from the catalogue index without a scan of
//! the table.

use uuid::Uuid;

use super::CatalogueIndex;
use crate::{domain::ToolFilter, index::Facets};

impl CatalogueIndex {
    /// The ids of one page of the tools `filter` keeps, in name order, and how many it
    /// keeps in all. With the total already known the walk stops at the page's end.
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
        filter: &ToolFilter,
        known_total: Option<u64>,
    ) -> (Vec<Uuid>, u64) {
        let order = self
            .name_order
            .get_or_init(|| self.by_name.values().copied().collect());
        let id_in = |slot: u32| self.slots[slot as usize].as_ref().map(|entry| entry.id);
        let keeps_all = filter.category.is_none()
            && filter.tags.is_empty()
            && (!filter.active_only || self.active == self.len());
        if keeps_all {
            let ids = order.iter().skip(offset).take(limit);
            return (ids.copied().filter_map(id_in).collect(), order.len() as u64);
        }
        let mut ids = Vec::with_capacity(limit.min(self.len()));
        let mut total = 0;
        for &slot in order {
            if !self.keeps(slot, filter) {
                continue;
            }
            if total >= offset
                && ids.len() < limit
                && let Some(id) = id_in(slot)
            {
                ids.push(id);
            }
            total += 1;
            if known_total.is_some() && ids.len() == limit {
                break;
            }
        }
        (ids, known_total.unwrap_or(total as u64))
    }

    /// Whether `filter` keeps the tool in `slot`. Filters on the on/off state alone, the
    /// usual listings, are answered without reading the tool's entry.
    fn keeps(&self, slot: u32, filter: &ToolFilter) -> bool {
        if filter.category.is_none() && filter.tags.is_empty() {
            return !filter.active_only || self.switched_on[slot as usize];
        }
        self.slots[slot as usize]
            .as_ref()
            .is_some_and(|entry| entry.facets.matches(filter))
    }

    /// How many tools are switched on.
    pub fn active(&self) -> u64 {
        self.active as u64
    }

    pub fn count(&self, keep: impl Fn(&Facets) -> bool) -> u64 {
        self.slots
            .iter()
            .flatten()
            .filter(|entry| keep(&entry.facets))
            .count() as u64
    }
}
