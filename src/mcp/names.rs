//! `MCP_PORTABLE_NAMES`: registered tools presented under names every model API takes.
//!
//! MCP allows dotted names (`github.create_issue`, every imported tool), but OpenAI-style
//! function names are `^[a-zA-Z0-9_-]{1,64}$`, and some agent frameworks pass names through
//! unchanged. In `direct` and `both` mode, with this setting, `.` is shown as `_`; when that
//! would give two tools one name, the dotted one also gets a short stable hash of its real
//! name. No tool is shown under a meta tool's name (`find_tool`, `call_tool`,
//! `list_tools`), whatever the mode: a tool whose name would become one (`find.tool`, or
//! `find_tool` itself) is shown with the hash too, and a warning is logged. `tools/call`
//! maps a presented name back. The map is built from the catalogue index's names, again
//! only after the index changed (this replica's own writes count at once).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::meta_tools;
use crate::registry::ToolRegistry;

/// Presented names and the real names they stand for.
#[derive(Default)]
pub struct NameMap {
    presented: HashMap<String, String>,
    real: HashMap<String, String>,
}

impl NameMap {
    /// The presented names of `names`; no tool is presented under a name of `reserved`
    /// (the meta tools'): one that would be gets a short stable hash of its real name too.
    pub fn build(names: &[String], reserved: &[&str]) -> Self {
        let is_reserved = |name: &str| reserved.contains(&name);
        let needs_renaming = |name: &String| name.contains('.') || is_reserved(name);
        let mut plain_count: HashMap<String, usize> = HashMap::new();
        for name in names.iter().filter(|n| needs_renaming(n)) {
            *plain_count.entry(name.replace('.', "_")).or_default() += 1;
        }
        let mut map = Self::default();
        for name in names.iter().filter(|n| !needs_renaming(n)) {
            map.insert(name.clone(), name.clone());
        }
        for name in names.iter().filter(|n| needs_renaming(n)) {
            let plain = name.replace('.', "_");
            let mut shown = plain.clone();
            let mut salt = 0u32;
            // Plain names were inserted first, so `real` holds every name already shown.
            while is_reserved(&shown)
                || map.real.contains_key(&shown)
                || (plain_count[&plain] > 1 && shown == plain)
            {
                shown = format!("{plain}_{:08x}", stable_hash(name, salt));
                salt += 1;
            }
            if is_reserved(&plain) {
                tracing::warn!(
                    tool = %name,
                    shown = %shown,
                    "a tool's portable name is a meta tool's; it is shown under another"
                );
            }
            map.insert(name.clone(), shown);
        }
        map
    }

    fn insert(&mut self, real: String, shown: String) {
        self.real.insert(shown.clone(), real.clone());
        self.presented.insert(real, shown);
    }

    /// The name a tool is shown under.
    pub fn presented<'a>(&'a self, real: &'a str) -> &'a str {
        self.presented.get(real).map_or(real, String::as_str)
    }

    /// The tool a presented name stands for (itself when it is no presented name).
    pub fn real<'a>(&'a self, shown: &'a str) -> &'a str {
        self.real.get(shown).map_or(shown, String::as_str)
    }
}

/// FNV-1a: the same on every replica and every run, unlike std's hasher.
fn stable_hash(name: &str, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes().chain(salt.to_le_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The current map, made again from the store's catalogue index (no database read) on
/// its first use after the index changed, and only then: a name the map does not know
/// costs nothing more than a known one.
pub struct PortableNames {
    registry: Arc<ToolRegistry>,
    current: Mutex<Option<Current>>,
}

struct Current {
    map: Arc<NameMap>,
    /// The index's change count read before the names: the map is current while the index
    /// still counts as many. This replica's own writes count at once; others' once they are
    /// heard of, as in listings.
    made_at: u64,
}

impl PortableNames {
    pub fn start(registry: Arc<ToolRegistry>) -> Arc<Self> {
        Arc::new(Self {
            registry,
            current: Mutex::new(None),
        })
    }

    /// The map as the catalogue stands.
    pub fn map(&self) -> Arc<NameMap> {
        let mut current = self.current.lock().expect("name map lock poisoned");
        let changes = self.registry.store().indexed_changes();
        match &*current {
            Some(current) if current.made_at == changes => current.map.clone(),
            _ => {
                let names = self.registry.active_names();
                let map = Arc::new(NameMap::build(&names, &meta_tools::NAMES));
                metrics::counter!("mcp_name_map_builds_total").increment(1);
                *current = Some(Current {
                    map: map.clone(),
                    made_at: changes,
                });
                map
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn dots_become_underscores_without_collisions_and_map_back() {
        let names: Vec<String> = [
            "github.create_issue",
            "a.b_c",
            "a_b.c",
            "x.y",
            "x_y",
            "plain",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let map = NameMap::build(&names, &[]);
        assert_eq!(map.presented("github.create_issue"), "github_create_issue");
        assert_eq!(map.presented("plain"), "plain");
        assert_eq!(map.presented("x_y"), "x_y");
        let mut shown = HashSet::new();
        for name in &names {
            let presented = map.presented(name);
            assert!(
                crate::domain::portability::is_portable_name(presented),
                "{presented}"
            );
            assert!(shown.insert(presented.to_owned()), "{presented} twice");
            assert_eq!(map.real(presented), name);
        }
        assert_ne!(map.presented("x.y"), "x_y");
        assert_ne!(map.presented("a.b_c"), map.presented("a_b.c"));
        assert_eq!(map.real("unknown.name"), "unknown.name");
    }

    #[test]
    fn meta_tool_names_are_never_presented_for_a_registered_tool() {
        let names: Vec<String> = ["find.tool", "call_tool", "list.tools", "plain"]
            .into_iter()
            .map(String::from)
            .collect();
        let map = NameMap::build(&names, &crate::mcp::meta_tools::NAMES);
        let mut shown = HashSet::new();
        for name in &names {
            let presented = map.presented(name);
            assert!(
                !crate::mcp::meta_tools::is_meta_tool(presented),
                "{name} shown as {presented}"
            );
            assert!(shown.insert(presented.to_owned()), "{presented} twice");
            assert_eq!(map.real(presented), name);
        }
        assert!(map.presented("find.tool").starts_with("find_tool_"));
        assert_eq!(map.presented("plain"), "plain");
        // The meta tools' own names stand for themselves.
        assert_eq!(map.real("find_tool"), "find_tool");
    }
}
