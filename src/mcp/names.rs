//! `MCP_PORTABLE_NAMES`: registered tools presented under names every model API takes.
//!
//! MCP allows dotted names (`github.create_issue`, every imported tool), but OpenAI-style
//! function names are `^[a-zA-Z0-9_-]{1,64}$`, and some agent frameworks pass names through
//! unchanged. In `direct` and `both` mode, with this setting, `.` is shown as `_`; when that
//! would give two tools one name, the dotted one also gets a short stable hash of its real
//! name. `tools/call` maps a presented name back. The map is built from the catalogue's
//! names and rebuilt after each catalogue change.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::ChangeHub;
use crate::{domain::RegistryError, registry::ToolRegistry};

/// Presented names and the real names they stand for.
#[derive(Default)]
pub struct NameMap {
    presented: HashMap<String, String>,
    real: HashMap<String, String>,
}

impl NameMap {
    pub fn build(names: &[String]) -> Self {
        let mut plain_count: HashMap<String, usize> = HashMap::new();
        for name in names.iter().filter(|n| n.contains('.')) {
            *plain_count.entry(name.replace('.', "_")).or_default() += 1;
        }
        let mut map = Self::default();
        for name in names.iter().filter(|n| !n.contains('.')) {
            map.insert(name.clone(), name.clone());
        }
        for name in names.iter().filter(|n| n.contains('.')) {
            let plain = name.replace('.', "_");
            let mut shown = plain.clone();
            let mut salt = 0u32;
            // Plain names were inserted first, so `real` holds every name already shown.
            while map.real.contains_key(&shown) || (plain_count[&plain] > 1 && shown == plain) {
                shown = format!("{plain}_{:08x}", stable_hash(name, salt));
                salt += 1;
            }
            map.insert(name.clone(), shown);
        }
        map
    }

    fn insert(&mut self, real: String, shown: String) {
        self.real.insert(shown.clone(), real.clone());
        self.presented.insert(real, shown);
    }

    /// Whether `name` is a real or presented name of this map.
    pub fn knows(&self, name: &str) -> bool {
        self.presented.contains_key(name) || self.real.contains_key(name)
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

/// The current map, rebuilt lazily after catalogue changes.
pub struct PortableNames {
    registry: Arc<ToolRegistry>,
    current: Mutex<Option<Arc<NameMap>>>,
}

impl PortableNames {
    pub fn start(registry: Arc<ToolRegistry>, hub: &ChangeHub) -> Arc<Self> {
        let names = Arc::new(Self {
            registry,
            current: Mutex::new(None),
        });
        let mut changes = hub.listen();
        let weak = Arc::downgrade(&names);
        tokio::spawn(async move {
            while let Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) =
                changes.recv().await
            {
                let Some(names) = weak.upgrade() else {
                    return;
                };
                *names.current.lock().expect("name map lock poisoned") = None;
            }
        });
        names
    }

    /// A map that knows `wanted` (a page's names or a called name): one built before
    /// the catalogue's last change (its notice takes a moment) is rebuilt.
    pub async fn map(&self, wanted: &[&str]) -> Result<Arc<NameMap>, RegistryError> {
        let current = self.current.lock().expect("name map lock poisoned").clone();
        if let Some(map) = current
            && wanted.iter().all(|name| map.knows(name))
        {
            return Ok(map);
        }
        let mut names = Vec::new();
        self.registry
            .visit_active(|tool| names.push(tool.name))
            .await?;
        let map = Arc::new(NameMap::build(&names));
        *self.current.lock().expect("name map lock poisoned") = Some(map.clone());
        Ok(map)
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
        let map = NameMap::build(&names);
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
}
