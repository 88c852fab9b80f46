//! PostgreSQL's schema at start: migrations, the embedding column sized to the model, the
//! HNSW index kept or dropped, and where this replica searches vectors.

use std::time::Duration;

use sqlx::{Executor, PgPool};

use crate::{
    index::vector::estimated_bytes_per_vector,
    store::{StoreResult, VectorSearchChoice},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Serialises schema changes made at start-up across replicas (an arbitrary constant).
const SCHEMA_LOCK_KEY: i64 = 0x0074_6f6f_6c72_6567;

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
    /// HNSW search breadth: higher is closer to exact and slower.
    pub hnsw_ef_search: u32,
    /// Where vectors are searched: in this replica's memory (exact) or through the HNSW
    /// index, or chosen at start by the memory the vectors need.
    pub vector_search: VectorPlacement,
    /// Whether the database keeps the HNSW index.
    pub hnsw_index: HnswIndex,
}

/// Whether the database keeps pgvector's HNSW index of the embeddings. Inserting into it
/// is most of what storing a vector costs (about 1.7 ms each here), building it afresh far
/// less (3 s for 10,000 vectors), and only searches through the database need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HnswIndex {
    /// Built at start by a replica that searches through it (`hnsw`, or `auto` beyond its
    /// memory budget) when missing; kept once there, since other replicas may search
    /// through it; never built for searches in memory.
    Auto,
    /// Built at start when missing.
    Kept,
    /// Dropped at start: only for replicas that search in memory.
    Dropped,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            hnsw_ef_search: 100,
            vector_search: VectorPlacement::Index,
            hnsw_index: HnswIndex::Auto,
        }
    }
}

/// Where a PostgreSQL replica searches vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorPlacement {
    /// pgvector's HNSW index, in the database: nothing held per replica.
    Index,
    /// Every vector also in the replica's memory, searched exactly there.
    Memory,
    /// In memory when the catalogue's vectors fit `budget_bytes` at start (one vector per
    /// tool, at `estimated_bytes_per_vector`), else through the index.
    Auto { budget_bytes: u64 },
}

/// Settles where this replica searches: `Auto` counts the tools (each holds at most one
/// vector) and compares what their vectors would take with the budget.
pub(super) async fn choose_vector_search(
    pool: &PgPool,
    dimensions: usize,
    placement: VectorPlacement,
) -> StoreResult<VectorSearchChoice> {
    const MIB: f64 = 1024.0 * 1024.0;
    let choice = match placement {
        VectorPlacement::Index => VectorSearchChoice {
            place: "index",
            reason: "DATABASE_VECTOR_SEARCH=hnsw".into(),
        },
        VectorPlacement::Memory => VectorSearchChoice {
            place: "memory",
            reason: "DATABASE_VECTOR_SEARCH=memory".into(),
        },
        VectorPlacement::Auto { budget_bytes } => {
            let tools: i64 = sqlx::query_scalar("SELECT count(*) FROM tools")
                .fetch_one(pool)
                .await?;
            let needed = tools as u64 * estimated_bytes_per_vector(dimensions);
            let (place, relation) = if needed <= budget_bytes {
                ("memory", "within")
            } else {
                ("index", "beyond")
            };
            VectorSearchChoice {
                place,
                reason: format!(
                    "auto: the vectors of {tools} tools at {dimensions} dimensions take about \
                     {:.1} MiB, {relation} the {:.1} MiB budget (DATABASE_VECTOR_MEMORY_MIB)",
                    needed as f64 / MIB,
                    budget_bytes as f64 / MIB,
                ),
            }
        }
    };
    tracing::info!(
        vector_search = choice.place,
        reason = %choice.reason,
        "vector search place chosen"
    );
    Ok(choice)
}

/// Applies migrations.
pub(super) async fn migrate(pool: &PgPool) -> StoreResult<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Makes the embedding column `vector(dimensions)`, with the HNSW index as `hnsw_index`
/// and where this replica searches (`searches_index`) want it. A change of dimension drops
/// the old vectors: they cannot be compared with new ones. The change of type resets the
/// column's storage, so migration 0006's is set again.
pub(super) async fn prepare_vectors(
    pool: &PgPool,
    dimensions: usize,
    hnsw_index: HnswIndex,
    searches_index: bool,
) -> StoreResult<()> {
    let (build, drop) = match hnsw_index {
        HnswIndex::Auto => (searches_index, false),
        HnswIndex::Kept => (true, false),
        HnswIndex::Dropped => (false, true),
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let current: Option<i32> = sqlx::query_scalar(
        "SELECT nullif(atttypmod, -1) FROM pg_attribute \
             WHERE attrelid = 'tools'::regclass AND attname = 'embedding'",
    )
    .fetch_one(&mut *tx)
    .await?;
    if current != Some(dimensions as i32) {
        if current.is_some() {
            tracing::warn!(
                from = current,
                to = dimensions,
                "embedding dimension changed; stored vectors are dropped and tools will be re-embedded"
            );
        }
        let dims = dimensions;
        tx.execute("DROP INDEX IF EXISTS tools_embedding_hnsw_idx")
            .await?;
        tx.execute(
            format!(
                "ALTER TABLE tools ALTER COLUMN embedding TYPE vector({dims}) USING NULL; \
                     ALTER TABLE tools ALTER COLUMN embedding SET STORAGE MAIN; \
                     UPDATE tools SET embedding_model = NULL, description_embedding = NULL \
                     WHERE embedding IS NULL"
            )
            .as_str(),
        )
        .await?;
    }
    let indexed: bool =
        sqlx::query_scalar("SELECT to_regclass('tools_embedding_hnsw_idx') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
    if build && !indexed {
        tracing::info!("building the HNSW index of the embeddings");
        tx.execute(
            "CREATE INDEX tools_embedding_hnsw_idx ON tools \
                 USING hnsw (embedding vector_cosine_ops)",
        )
        .await?;
    } else if drop && indexed {
        tracing::warn!(
            "dropping the HNSW index (DATABASE_HNSW_INDEX=false): replicas searching through \
             the database now scan every vector"
        );
        tx.execute("DROP INDEX tools_embedding_hnsw_idx").await?;
    }
    tx.commit().await?;
    Ok(())
}
