//! The catalogue: tools, their versions, listings and full-text search.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Replacement, StoreResult, ToolCache, Updated, in_order};
use crate::{
    domain::{Facets, Page, Paged, ServedTool, Tool, ToolFilter, ToolVersion},
    index::catalogue::TextHit,
};

/// The tools of the catalogue, as stored and as served. Listings, counts and full-text
/// searches are answered from the store's catalogue index (see `store::mirror`).
///
/// Scores returned by the search methods are unit scores (`index::fusion::unit_score`).
#[async_trait]
pub trait Catalogue: Send + Sync + 'static {
    /// A signal each time the catalogue changes (a tool created, updated, switched on or
    /// off, deleted). With PostgreSQL it covers changes made through any replica; signals
    /// close together may arrive as one, and a lost listener connection counts as a change.
    fn catalogue_changes(&self) -> tokio::sync::broadcast::Receiver<()>;

    /// Inserts new tools in one transaction: all of them or none. `StoreError::Duplicate`
    /// names the first taken name met.
    async fn create_many(&self, tools: &[Tool]) -> StoreResult<()>;

    /// Inserts a new tool; `StoreError::Duplicate` when the name is taken.
    async fn create(&self, tool: &Tool) -> StoreResult<()> {
        self.create_many(std::slice::from_ref(tool)).await
    }
    async fn get(&self, id: Uuid) -> StoreResult<Option<Tool>>;
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Tool>>;
    /// Replaces the stored tool with the same id. When `tool.embedding_model` is `None`
    /// the stored embedding is dropped (its text changed). When the definition changes
    /// (see `Tool::definition`) the one replaced is kept as a version, in the same
    /// transaction. Returns false if no such tool.
    async fn update(&self, tool: &Tool) -> StoreResult<bool> {
        Ok(self.update_if(tool, None).await? == Updated::Written)
    }
    /// `update`, written only while the stored tool still equals `expected` (when given):
    /// the comparison and the write share one transaction holding the row (PostgreSQL's
    /// `FOR UPDATE`, SQLite's write lock), so a change decided on an earlier read never
    /// overwrites one made since. `Updated::Changed` writes nothing.
    async fn update_if(&self, tool: &Tool, expected: Option<&Tool>) -> StoreResult<Updated>;
    /// New tools and replacements of stored ones in one transaction: all of them or none.
    /// Each replacement is written as `update_if` writes it, only while the stored row is
    /// still the one it `replaces`; when one is not (`Updated::Changed`) or its tool is gone
    /// (`Updated::NotFound`), nothing at all is written. `StoreError::Duplicate` names the
    /// first taken name met. Nothing to write announces no change.
    async fn write_together(
        &self,
        creates: &[Tool],
        replacements: &[Replacement],
    ) -> StoreResult<Updated>;
    /// The definitions a tool had before, newest first; they go with the tool.
    async fn versions(&self, id: Uuid) -> StoreResult<Vec<ToolVersion>>;
    async fn delete(&self, id: Uuid) -> StoreResult<bool>;
    async fn set_active(&self, id: Uuid, active: bool) -> StoreResult<Option<Tool>>;
    /// The tools with these ids, in any order; ids of tools that do not exist are skipped.
    async fn get_many(&self, ids: &[Uuid]) -> StoreResult<Vec<Tool>>;
    /// The ids of one page of tools ordered by name, and how many tools match the filter.
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>>;

    /// Tools ordered by name, read from the database.
    async fn list(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Tool>> {
        let ids = self.list_ids(filter, page).await?;
        let tools = self.get_many(&ids.items).await?;
        let keyed = ids.items.into_iter().map(|id| (id, ())).collect();
        Ok(Paged {
            items: in_order(keyed, tools)
                .into_iter()
                .map(|(tool, ())| tool)
                .collect(),
            total: ids.total,
        })
    }

    /// Tools ordered by name, as served (from the tool cache where it has them).
    async fn list_served(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<ServedTool>> {
        let ids = self.list_ids(filter, page).await?;
        Ok(Paged {
            items: self.served_many(&ids.items).await?,
            total: ids.total,
        })
    }

    /// The tools served from this store: the store drops a tool from it on every change.
    fn tool_cache(&self) -> &ToolCache;

    /// The tools with these ids as served, in the ids' order; ids of tools that do not
    /// exist are skipped. The cache answers what it holds, the database the rest.
    async fn served_many(&self, ids: &[Uuid]) -> StoreResult<Vec<ServedTool>> {
        let cache = self.tool_cache();
        let mut found: Vec<Option<ServedTool>> = ids.iter().map(|id| cache.get(id)).collect();
        let missing: Vec<Uuid> = ids
            .iter()
            .zip(&found)
            .filter(|(_, tool)| tool.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let start = cache.read_start();
            let read: Vec<ServedTool> = self
                .get_many(&missing)
                .await?
                .iter()
                .map(ServedTool::from)
                .collect();
            cache.keep(start, &read);
            for tool in read {
                if let Some(at) = ids.iter().position(|id| *id == tool.id()) {
                    found[at] = Some(tool);
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn count(&self, filter: &ToolFilter) -> StoreResult<u64>;

    /// The id of the tool of this name in the store's catalogue index (kept current with
    /// every change the store makes or hears of), without a database read.
    fn indexed_id_named(&self, name: &str) -> Option<Uuid>;

    /// Hands each switched-on tool's name and facets in the store's catalogue index (kept
    /// current as `indexed_id_named` says) to `visit`, without a database read.
    fn visit_indexed_active(&self, visit: &mut dyn FnMut(&str, &Facets));

    /// How many changes the store's catalogue index has taken, this replica's own writes
    /// counted as soon as they are indexed (unlike `catalogue_changes`, which on PostgreSQL
    /// waits for the database's notification): what was read from the index is current
    /// while this stays the same.
    fn indexed_changes(&self) -> u64;

    /// The tool of this name as served: found through the catalogue index and the tool
    /// cache, so a call needs no database read; the database answers what they cannot.
    /// As fresh as listings and searches: a change by another replica counts once its
    /// notification has arrived.
    async fn served_by_name(&self, name: &str) -> StoreResult<Option<ServedTool>> {
        if let Some(id) = self.indexed_id_named(name)
            && let Some(tool) = self.served_many(&[id]).await?.pop()
            && tool.name() == name
        {
            return Ok(Some(tool));
        }
        let cache = self.tool_cache();
        let start = cache.read_start();
        let Some(tool) = self.get_by_name(name).await? else {
            return Ok(None);
        };
        let served = ServedTool::from(&tool);
        cache.keep(start, [&served]);
        Ok(Some(served))
    }

    /// Full-text search over name, tags, description and parameters, as (id, score) pairs,
    /// best first, without reading the tools.
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<TextHit>>;
}
