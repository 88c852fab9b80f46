//! What a store keeps in memory beside its database, and the one sequence that keeps it in
//! step: after a write, the catalogue index (full text, listings), the vectors, the tool
//! cache and the change signal. Both backends apply every write through [`Mirror`], and a
//! PostgreSQL replica applies what it reads back after other replicas' writes through it too.
//!
//! A PostgreSQL replica changes its vectors while the write's transaction still holds the
//! rows ([`Mirror::before_commit`]), so that a re-read following another replica's write of
//! the same tool is ordered after it, and the rest once the write committed
//! ([`Mirror::after_commit`]). The embedded store, the only writer of its file, applies both
//! after the commit ([`Mirror::committed`]).

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use super::{ToolCache, ToolVectors};
use crate::{
    domain::Tool,
    index::{
        Facets,
        catalogue::{CatalogueIndex, SharedCatalogueIndex},
        shared_vectors::{SharedVectors, StoredVector},
        vector::VectorIndex,
    },
};

/// Change signals kept for slow subscribers; a lagging one still learns that something changed.
const CHANGE_BACKLOG: usize = 16;

/// One write of the catalogue, as the copies see it.
pub enum Change<'a> {
    /// New tools (without vectors).
    Created(&'a [Tool]),
    /// A tool replaced whole; its vector goes when it has no embedding model any more.
    Updated(&'a Tool),
    /// A tool switched on or off: its words are unchanged.
    Switched(&'a Tool),
    /// A tool deleted; `existed` tells whether there was one.
    Deleted { id: Uuid, existed: bool },
    /// Vectors stored by `model`; each with its tool's facets, `None` when no such tool.
    Embedded {
        model: &'a str,
        vectors: &'a [ToolVectors<'a>],
        facets: &'a [Option<Facets>],
    },
}

/// Who tells subscribers of catalogue changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The store itself, after each of its writes.
    OwnWrites,
    /// The database's notifications (PostgreSQL), for every replica's writes alike.
    Notifications,
}

/// The in-memory copies of one store.
#[derive(Clone)]
pub struct Mirror {
    catalogue: SharedCatalogueIndex,
    /// `None` when vectors are searched in the database.
    vectors: Option<Arc<SharedVectors>>,
    tool_cache: Arc<ToolCache>,
    changes: broadcast::Sender<()>,
    signal: Signal,
}

impl Mirror {
    pub fn new(keeps_vectors: bool, signal: Signal) -> Self {
        Self {
            catalogue: SharedCatalogueIndex::default(),
            vectors: keeps_vectors.then(Arc::default),
            tool_cache: Arc::default(),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            signal,
        }
    }

    pub fn catalogue(&self) -> &SharedCatalogueIndex {
        &self.catalogue
    }

    pub fn vectors(&self) -> Option<&SharedVectors> {
        self.vectors.as_deref()
    }

    pub fn tool_cache(&self) -> &ToolCache {
        &self.tool_cache
    }

    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    /// Tells subscribers that the catalogue changed.
    pub fn signal_change(&self) {
        // No subscriber is fine: nobody is listening yet.
        let _ = self.changes.send(());
    }

    /// Applies a committed write to every copy.
    pub fn committed(&self, change: &Change<'_>) {
        self.before_commit(change);
        self.after_commit(change);
    }

    /// The part of a write applied while its transaction holds the rows: the vectors.
    pub fn before_commit(&self, change: &Change<'_>) {
        let Some(vectors) = &self.vectors else {
            return;
        };
        match change {
            Change::Created(_) => {}
            Change::Updated(tool) | Change::Switched(tool) => vectors.follow(tool),
            Change::Deleted { id, .. } => vectors.remove(id),
            Change::Embedded {
                model,
                vectors: written,
                facets,
            } => {
                for (written, facets) in written.iter().zip(*facets) {
                    if let Some(facets) = facets {
                        vectors.set(
                            written.id,
                            written.document,
                            written.description,
                            model,
                            facets.clone(),
                        );
                    }
                }
            }
        }
    }

    /// The part of a write applied once it committed: the catalogue index, the tool cache
    /// and, where the store signals its own writes, the change signal.
    pub fn after_commit(&self, change: &Change<'_>) {
        let changed = match change {
            Change::Created(tools) => {
                for tool in *tools {
                    self.catalogue.index(tool);
                }
                true
            }
            Change::Updated(tool) => {
                self.catalogue.index(tool);
                self.tool_cache.drop_tool(&tool.id);
                true
            }
            Change::Switched(tool) => {
                self.catalogue.refilter(tool);
                self.tool_cache.drop_tool(&tool.id);
                true
            }
            Change::Deleted { id, existed } => {
                self.catalogue.remove(id);
                self.tool_cache.drop_tool(id);
                *existed
            }
            // A stored embedding changes no definition: nobody to tell.
            Change::Embedded {
                vectors: written,
                facets,
                ..
            } => {
                for (written, facets) in written.iter().zip(*facets) {
                    if facets.is_some() {
                        self.tool_cache.drop_tool(&written.id);
                    }
                }
                false
            }
        };
        if changed && self.signal == Signal::OwnWrites {
            self.signal_change();
        }
    }

    /// Applies what was read back of one tool after a write elsewhere: `tool` when its
    /// definition was read (`Some(None)`: deleted), `vector` when its vector was.
    pub fn apply_read(&self, id: Uuid, tool: Option<Option<Tool>>, vector: Option<StoredVector>) {
        match tool {
            Some(Some(tool)) => self.catalogue.index(&tool),
            Some(None) => self.catalogue.remove(&id),
            None => {}
        }
        if let (Some(vectors), Some(vector)) = (&self.vectors, vector) {
            vectors.apply(id, vector);
        }
    }

    /// Replaces the copies with what was read of the whole catalogue, but keeps the entries
    /// of the tools in `keep` (changed here while it was read).
    pub fn replace(&self, catalogue: CatalogueIndex, vectors: Option<VectorIndex>, keep: &[Uuid]) {
        self.catalogue.replace(catalogue, keep.iter());
        if let (Some(copy), Some(fresh)) = (&self.vectors, vectors) {
            copy.replace(fresh, keep);
        }
    }
}
