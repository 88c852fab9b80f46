//! Tools as served (encoded JSON), kept in memory between requests so that listings and
//! searches need neither a database read nor a re-encoding of the tools they return.
//!
//! The store drops a tool from the cache after every change it makes or hears of (with
//! PostgreSQL, the notifications of other replicas' changes). A read that started before a
//! drop may carry the old tool, so a read's tools are kept only when nothing was dropped
//! since it began: the cache never holds a tool older than the last change it heard of.

use std::sync::RwLock;

use uuid::Uuid;

use crate::domain::ServedTool;

/// Room for about 70,000 tools of 800 bytes of JSON; the least used go first beyond it.
const DEFAULT_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

pub struct ToolCache {
    tools: moka::sync::Cache<Uuid, ServedTool>,
    generation: RwLock<Generation>,
}

#[derive(Default)]
struct Generation {
    /// Counts the drops; readers compare it before and after reading the database.
    drops: u64,
    /// While changes may go unheard (a lost notification connection), nothing is kept.
    suspended: bool,
}

/// The cache's generation when a read of the database began.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart(u64);

impl Default for ToolCache {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl ToolCache {
    pub fn with_budget(bytes: u64) -> Self {
        Self {
            tools: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, tool: &ServedTool| u32::try_from(tool.weight()).unwrap_or(u32::MAX))
                .build(),
            generation: RwLock::default(),
        }
    }

    pub fn get(&self, id: &Uuid) -> Option<ServedTool> {
        self.tools.get(id)
    }

    /// Taken before reading tools from the database, to hand to `keep`.
    pub fn read_start(&self) -> ReadStart {
        ReadStart(
            self.generation
                .read()
                .expect("tool cache lock poisoned")
                .drops,
        )
    }

    /// Keeps tools read from the database, unless some tool was dropped since the read
    /// began (the read may predate that change).
    pub fn keep<'a>(&self, since: ReadStart, tools: impl IntoIterator<Item = &'a ServedTool>) {
        // Held shared while inserting: a drop (exclusive) cannot slip between check and insert.
        let generation = self.generation.read().expect("tool cache lock poisoned");
        if generation.drops != since.0 || generation.suspended {
            return;
        }
        for tool in tools {
            self.tools.insert(tool.id(), tool.clone());
        }
    }

    /// Forgets a tool that changed or was deleted. Call after the change is committed.
    pub fn drop_tool(&self, id: &Uuid) {
        let mut generation = self.generation.write().expect("tool cache lock poisoned");
        self.tools.invalidate(id);
        generation.drops += 1;
    }

    /// Forgets every tool and keeps none until `clear`: changes are going unheard (the
    /// notification connection is lost), so nothing read now is known to stay current.
    pub fn suspend(&self) {
        let mut generation = self.generation.write().expect("tool cache lock poisoned");
        self.tools.invalidate_all();
        generation.drops += 1;
        generation.suspended = true;
    }

    /// Forgets every tool: changes may have been missed. Ends a suspension: call once
    /// changes are heard again.
    pub fn clear(&self) {
        let mut generation = self.generation.write().expect("tool cache lock poisoned");
        self.tools.invalidate_all();
        generation.drops += 1;
        generation.suspended = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tool;

    fn served(name: &str, id: Uuid) -> ServedTool {
        ServedTool::from(&Tool {
            id,
            ..Tool::example(name)
        })
    }

    #[test]
    fn keeps_reads_until_the_tool_changes() {
        let cache = ToolCache::default();
        let id = Uuid::new_v4();
        let start = cache.read_start();
        cache.keep(start, [&served("v1", id)]);
        assert_eq!(cache.get(&id).unwrap().name(), "v1");
        cache.drop_tool(&id);
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_change_is_not_kept() {
        let cache = ToolCache::default();
        let id = Uuid::new_v4();
        let stale_read = cache.read_start();
        // Another tool changed while the read was under way: the read may be older than it.
        cache.drop_tool(&Uuid::new_v4());
        cache.keep(stale_read, [&served("old", id)]);
        assert!(cache.get(&id).is_none());
        let fresh_read = cache.read_start();
        cache.keep(fresh_read, [&served("new", id)]);
        assert_eq!(cache.get(&id).unwrap().name(), "new");
        cache.clear();
        assert!(cache.get(&id).is_none());
        cache.keep(fresh_read, [&served("new", id)]);
        assert!(cache.get(&id).is_none(), "clearing also ends earlier reads");
    }

    #[test]
    fn keeps_nothing_while_suspended() {
        let cache = ToolCache::default();
        let id = Uuid::new_v4();
        cache.keep(cache.read_start(), [&served("before", id)]);
        cache.suspend();
        assert!(cache.get(&id).is_none(), "suspending forgets every tool");
        cache.keep(cache.read_start(), [&served("during", id)]);
        assert!(cache.get(&id).is_none(), "nothing is kept while suspended");
        cache.clear();
        cache.keep(cache.read_start(), [&served("after", id)]);
        assert_eq!(cache.get(&id).unwrap().name(), "after");
    }

    #[test]
    fn stays_within_its_budget() {
        let one = served("sized", Uuid::new_v4()).weight() as u64;
        let cache = ToolCache::with_budget(one * 10);
        for i in 0..100 {
            let start = cache.read_start();
            cache.keep(start, [&served("sized", Uuid::from_u128(i))]);
        }
        cache.tools.run_pending_tasks();
        assert!(cache.tools.weighted_size() <= one * 10);
        assert!(cache.tools.entry_count() > 0);
    }
}
