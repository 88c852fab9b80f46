//! `DATABASE_*` and `REGISTRY_DATA_DIR`: which store, and how PostgreSQL is used.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::Secret;
use crate::store::postgres::{HnswIndex, PostgresOptions, VectorPlacement};

/// Where a PostgreSQL replica searches vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorSearch {
    /// `memory` while the vectors fit `DATABASE_VECTOR_MEMORY_MIB` at start, else `hnsw`.
    Auto,
    /// pgvector's HNSW index, in the database: nothing held per replica.
    #[serde(alias = "index")]
    Hnsw,
    /// Every vector also in the replica's memory, searched exactly there.
    Memory,
}

/// The default memory budget of a replica's copy of the vectors, sized for a 512 MiB
/// container: the local model, caches and requests keep the rest. About 43,000 tools at 384
/// dimensions, 12,000 at 1,536 (see `store::estimated_bytes_per_vector`); a reload briefly
/// holds a second copy.
pub const DEFAULT_VECTOR_MEMORY_MIB: u64 = 128;

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// PostgreSQL URL; unset or empty selects the embedded single-file store.
    #[serde(rename = "database_url")]
    pub url: Option<Secret>,
    #[serde(rename = "database_max_connections")]
    pub max_connections: u32,
    /// How long a request waits for a database connection before answering 503.
    #[serde(rename = "database_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// With PostgreSQL: `auto` (the default), `hnsw` (the database's index) or `memory`
    /// (each replica's own).
    #[serde(rename = "database_vector_search")]
    pub vector_search: VectorSearch,
    /// With `auto`: the memory a replica may give its copy of the vectors; beyond it at
    /// start, searches go through the HNSW index.
    #[serde(rename = "database_vector_memory_mib")]
    pub vector_memory_mib: u64,
    /// With PostgreSQL: whether the database keeps the HNSW index (`auto`, `true` or
    /// `false`); only searches through it need it, and inserting into it is most of what a
    /// registration costs there.
    #[serde(
        rename = "database_hnsw_index",
        deserialize_with = "hnsw_index_setting"
    )]
    pub hnsw_index: HnswIndex,
    /// Where the embedded store keeps `registry.db`.
    #[serde(rename = "registry_data_dir")]
    pub data_dir: PathBuf,
}

/// `DATABASE_HNSW_INDEX`: `auto`, or `true` / `false` (read from the environment as a
/// boolean or as text).
fn hnsw_index_setting<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<HnswIndex, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Flag(bool),
        Word(String),
    }
    match Given::deserialize(deserializer)? {
        Given::Flag(true) => Ok(HnswIndex::Kept),
        Given::Flag(false) => Ok(HnswIndex::Dropped),
        Given::Word(word) => match word.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(HnswIndex::Auto),
            "true" => Ok(HnswIndex::Kept),
            "false" => Ok(HnswIndex::Dropped),
            other => Err(serde::de::Error::custom(format!(
                "'{other}' is not auto, true or false"
            ))),
        },
    }
}

impl DatabaseSettings {
    /// Where a PostgreSQL replica searches vectors.
    pub fn vector_placement(&self) -> VectorPlacement {
        match self.vector_search {
            VectorSearch::Hnsw => VectorPlacement::Index,
            VectorSearch::Memory => VectorPlacement::Memory,
            VectorSearch::Auto => VectorPlacement::Auto {
                budget_bytes: self.vector_memory_mib.saturating_mul(1024 * 1024),
            },
        }
    }

    /// The PostgreSQL store's options.
    pub fn postgres_options(&self) -> PostgresOptions {
        PostgresOptions {
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            vector_search: self.vector_placement(),
            hnsw_index: self.hnsw_index,
            ..PostgresOptions::default()
        }
    }
}
