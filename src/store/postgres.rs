//! PostgreSQL + pgvector: the production backend, shared by many replicas.

use std::{borrow::Cow, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use pgvector::Vector;
use sqlx::{
    Executor, PgPool, Postgres, QueryBuilder, Row,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow},
};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

use super::{
    EmbeddingCounts, Facets, StoreError, StoreResult, ToolCache, ToolStore, Updated,
    VectorSearchChoice,
    catalogue_index::{CatalogueIndex, SharedCatalogueIndex},
    own_changes::OwnChanges,
    planner_statistics::PlannerStatistics,
    replica_vectors::ReplicaVectors,
    vector_index::estimated_bytes_per_vector,
    version_from_tool,
};
use crate::domain::{
    CallBucket, Execution, ExecutionFilter, ExecutionStatus, Page, Paged, Tool, ToolFilter,
    ToolStats, ToolVersion,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const TOOL_COLUMNS: &str = "id, name, description, category, tags, input_schema, output_schema, \
     version, implementation, metadata, is_active, embedding_model, created_at, updated_at";

/// The columns of a `tool_versions` row under the names of `TOOL_COLUMNS`, so that
/// `tool_from_row` reads it (see `version_from_tool`).
const VERSION_COLUMNS: &str = "tool_id AS id, name, description, category, tags, input_schema, \
     output_schema, version, implementation, metadata, TRUE AS is_active, embedding_model, \
     changed_at AS created_at, changed_at AS updated_at";

const EXECUTION_COLUMNS: &str = "id, tool_id, tool_name, status, arguments, result, error, \
     duration_ms, started_at, completed_at, note";

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
    /// Keep the HNSW index: built at start when missing, dropped at start when not wanted
    /// (only with vectors in memory, where nothing searches through it).
    pub hnsw_index: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            hnsw_ef_search: 100,
            vector_search: VectorPlacement::Index,
            hnsw_index: true,
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
async fn choose_vector_search(
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

/// The channel migration 0002's triggers announce catalogue changes on.
const CHANGE_CHANNEL: &str = "tool_catalogue_changed";
/// The channel migration 0005's trigger announces a tool's new embedding model on: no change
/// of the catalogue, but the tool as served shows its model.
const EMBEDDING_CHANNEL: &str = "tool_embedding_changed";
const CHANGE_BACKLOG: usize = 16;

pub struct PostgresStore {
    pool: PgPool,
    dimensions: usize,
    /// This replica's copies of the catalogue, kept current by its own writes and by the
    /// notifications of everyone's.
    followers: Followers,
    /// Follows the catalogue's notifications into `followers`.
    listener: JoinHandle<()>,
    statistics: PlannerStatistics,
    vector_search: VectorSearchChoice,
    /// With `auto` searching in memory: the budget the copy was chosen within.
    memory_budget: Option<u64>,
}

impl PostgresStore {
    /// Connects, applies migrations and sizes the embedding column to `dimensions`.
    pub async fn connect(
        url: &str,
        dimensions: usize,
        options: &PostgresOptions,
    ) -> StoreResult<Self> {
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Other(format!("invalid DATABASE_URL: {e}")))?;
        let ef_search = options.hnsw_ef_search;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // strict_order keeps filtered HNSW scans exact in order and complete.
                    conn.execute(
                        format!(
                            "SET hnsw.ef_search = {ef_search}; \
                             SET hnsw.iterative_scan = strict_order"
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        migrate(&pool, dimensions, options.hnsw_index).await?;
        let vector_search = choose_vector_search(&pool, dimensions, options.vector_search).await?;
        let followers = Followers {
            catalogue: SharedCatalogueIndex::default(),
            tool_cache: Arc::new(ToolCache::default()),
            vectors: (vector_search.place == "memory").then(|| Arc::new(ReplicaVectors::default())),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            own_changes: Arc::new(OwnChanges::default()),
        };
        // Listening starts before the indexes are read, so no change falls in between.
        let listener = listen_for_changes(&pool).await?;
        followers.reload(&pool).await?;
        let listener = tokio::spawn(follow_changes(pool.clone(), listener, followers.clone()));
        Ok(Self {
            pool,
            dimensions,
            followers,
            listener,
            statistics: PlannerStatistics::default(),
            memory_budget: match options.vector_search {
                VectorPlacement::Auto { budget_bytes } if vector_search.place == "memory" => {
                    Some(budget_bytes)
                }
                _ => None,
            },
            vector_search,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn check_dimensions(&self, vector: &[f32]) -> StoreResult<()> {
        super::check_dimensions(vector, self.dimensions)
    }
}

async fn insert_tool<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    tool: &Tool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tools (id, name, description, category, tags, input_schema, \
         output_schema, version, implementation, metadata, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tool.id)
    .bind(&tool.name)
    .bind(&tool.description)
    .bind(&tool.category)
    .bind(&tool.tags)
    .bind(&tool.input_schema)
    .bind(&tool.output_schema)
    .bind(&tool.version)
    .bind(implementation_json(tool)?)
    .bind(&tool.metadata)
    .bind(tool.is_active)
    .bind(tool.created_at)
    .bind(tool.updated_at)
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

/// Stores one embedding; the tool's filter fields, or `None` if there is no such tool.
async fn store_embedding<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    id: Uuid,
    embedding: &[f32],
    model: &str,
) -> StoreResult<Option<Facets>> {
    let row = sqlx::query(
        "UPDATE tools SET embedding = $2, embedding_model = $3 WHERE id = $1 \
         RETURNING category, tags, is_active",
    )
    .bind(id)
    .bind(Vector::from(embedding.to_vec()))
    .bind(model)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(facets_from_row).transpose()?)
}

fn facets_from_row(row: &PgRow) -> Result<Facets, sqlx::Error> {
    Ok(Facets {
        category: row.try_get("category")?,
        tags: row.try_get("tags")?,
        is_active: row.try_get("is_active")?,
    })
}

/// Applies migrations and makes the embedding column `vector(dimensions)` with its index.
/// A change of dimension drops the old vectors: they cannot be compared with new ones. The
/// change of type resets the column's storage, so migration 0006's is set again.
async fn migrate(pool: &PgPool, dimensions: usize, hnsw_index: bool) -> StoreResult<()> {
    MIGRATOR.run(pool).await?;
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
                     UPDATE tools SET embedding_model = NULL WHERE embedding IS NULL"
            )
            .as_str(),
        )
        .await?;
    }
    let indexed: bool =
        sqlx::query_scalar("SELECT to_regclass('tools_embedding_hnsw_idx') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
    if hnsw_index && !indexed {
        tracing::info!("building the HNSW index of the embeddings");
        tx.execute(
            "CREATE INDEX tools_embedding_hnsw_idx ON tools \
                 USING hnsw (embedding vector_cosine_ops)",
        )
        .await?;
    } else if !hnsw_index && indexed {
        tracing::warn!(
            "dropping the HNSW index (DATABASE_HNSW_INDEX=false): replicas searching through \
             the database now scan every vector"
        );
        tx.execute("DROP INDEX tools_embedding_hnsw_idx").await?;
    }
    tx.commit().await?;
    Ok(())
}

fn push_tool_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &ToolFilter) {
    if let Some(category) = &filter.category {
        qb.push(" AND category = ").push_bind(category.clone());
    }
    if !filter.tags.is_empty() {
        qb.push(" AND tags && ").push_bind(filter.tags.clone());
    }
    if filter.active_only {
        qb.push(" AND is_active");
    }
}

fn tool_from_row(row: &PgRow) -> Result<Tool, sqlx::Error> {
    let implementation: serde_json::Value = row.try_get("implementation")?;
    Ok(Tool {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        tags: row.try_get("tags")?,
        input_schema: row.try_get("input_schema")?,
        output_schema: row.try_get("output_schema")?,
        version: row.try_get("version")?,
        implementation: serde_json::from_value(implementation)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        metadata: row.try_get("metadata")?,
        is_active: row.try_get("is_active")?,
        embedding_model: row.try_get("embedding_model")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn execution_from_row(row: &PgRow) -> Result<Execution, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Execution {
        id: row.try_get("id")?,
        tool_id: row.try_get("tool_id")?,
        tool_name: row.try_get("tool_name")?,
        status: ExecutionStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {status}").into()))?,
        arguments: row.try_get("arguments")?,
        result: row.try_get("result")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        note: row.try_get("note")?,
    })
}

/// PostgreSQL holds no U+0000 in `text` or `jsonb`: a record with some has them replaced by
/// U+FFFD, and its note says in which fields.
fn without_nul_characters(execution: &Execution) -> Cow<'_, Execution> {
    let fields: Vec<&str> = [
        ("arguments", json_has_nul(&execution.arguments)),
        (
            "result",
            execution.result.as_ref().is_some_and(json_has_nul),
        ),
        (
            "error",
            execution.error.as_ref().is_some_and(|e| e.contains('\0')),
        ),
        ("tool_name", execution.tool_name.contains('\0')),
        (
            "note",
            execution.note.as_ref().is_some_and(|n| n.contains('\0')),
        ),
    ]
    .into_iter()
    .filter_map(|(field, has_nul)| has_nul.then_some(field))
    .collect();
    if fields.is_empty() {
        return Cow::Borrowed(execution);
    }
    let mut clean = execution.clone();
    clean.arguments = json_without_nul(&execution.arguments);
    clean.result = execution.result.as_ref().map(json_without_nul);
    clean.error = execution.error.as_deref().map(text_without_nul);
    clean.tool_name = text_without_nul(&execution.tool_name);
    let replaced = format!(
        "NUL characters (U+0000) in {} replaced by U+FFFD: PostgreSQL cannot store them",
        fields.join(", ")
    );
    clean.note = Some(match execution.note.as_deref() {
        Some(note) => format!("{}; {replaced}", text_without_nul(note)),
        None => replaced,
    });
    Cow::Owned(clean)
}

fn text_without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

fn json_has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn json_without_nul(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text_without_nul(s)),
        Value::Array(items) => Value::Array(items.iter().map(json_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text_without_nul(k), json_without_nul(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn implementation_json(tool: &Tool) -> StoreResult<serde_json::Value> {
    serde_json::to_value(&tool.implementation).map_err(|e| StoreError::Other(e.to_string()))
}

#[async_trait]
impl ToolStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// A copy chosen within its budget that has since outgrown it says so: the choice
    /// stands until the next start, which will search through the index.
    fn vector_search(&self) -> VectorSearchChoice {
        let mut choice = self.vector_search.clone();
        if let (Some(budget), Some(vectors)) = (self.memory_budget, &self.followers.vectors) {
            let count = vectors.len() as u64;
            let needed = count * estimated_bytes_per_vector(self.dimensions);
            if needed > budget {
                choice.reason.push_str(&format!(
                    "; the {count} vectors held now take about {:.1} MiB, beyond the budget: \
                     the next start searches through the index",
                    needed as f64 / (1024.0 * 1024.0)
                ));
            }
        }
        choice
    }

    fn pool_connections(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    fn catalogue_changes(&self) -> broadcast::Receiver<()> {
        self.followers.changes.subscribe()
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT",
        db.collection.name = "tools", code.function.name = "create_many"))]
    async fn create_many(&self, tools: &[Tool]) -> StoreResult<()> {
        // One statement commits alone: no BEGIN and COMMIT round trips.
        if let [tool] = tools {
            insert_tool(&self.pool, tool).await?;
        } else {
            let mut tx = self.pool.begin().await?;
            for tool in tools {
                insert_tool(&mut *tx, tool).await?;
            }
            tx.commit().await?;
        }
        for tool in tools {
            self.followers.catalogue.index(tool);
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get"))]
    async fn get(&self, id: Uuid) -> StoreResult<Option<Tool>> {
        let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tool_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get_by_name"))]
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Tool>> {
        let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tool_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "update_if"))]
    async fn update_if(&self, tool: &Tool, expected: Option<&Tool>) -> StoreResult<Updated> {
        let mut tx = self.pool.begin().await?;
        // The row lock holds off concurrent writers of this tool: the row compared with
        // `expected` and kept as a version is the one this write replaces.
        let current = sqlx::query(&format!(
            "SELECT {TOOL_COLUMNS} FROM tools WHERE id = $1 FOR UPDATE"
        ))
        .bind(tool.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current.as_ref().map(tool_from_row).transpose()? else {
            return Ok(Updated::NotFound);
        };
        if expected.is_some_and(|expected| *expected != current) {
            return Ok(Updated::Changed);
        }
        if current.definition() != tool.definition() {
            sqlx::query(
                "INSERT INTO tool_versions (tool_id, version, name, description, category, \
                 tags, input_schema, output_schema, implementation, metadata, embedding_model, \
                 changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(current.id)
            .bind(&current.version)
            .bind(&current.name)
            .bind(&current.description)
            .bind(&current.category)
            .bind(&current.tags)
            .bind(&current.input_schema)
            .bind(&current.output_schema)
            .bind(implementation_json(&current)?)
            .bind(&current.metadata)
            .bind(&current.embedding_model)
            .bind(tool.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE tools SET name = $2, description = $3, category = $4, tags = $5, \
             input_schema = $6, output_schema = $7, version = $8, implementation = $9, \
             metadata = $10, is_active = $11, updated_at = $12, embedding_model = $13, \
             embedding = CASE WHEN $13::text IS NULL THEN NULL ELSE embedding END \
             WHERE id = $1",
        )
        .bind(tool.id)
        .bind(&tool.name)
        .bind(&tool.description)
        .bind(&tool.category)
        .bind(&tool.tags)
        .bind(&tool.input_schema)
        .bind(&tool.output_schema)
        .bind(&tool.version)
        .bind(implementation_json(tool)?)
        .bind(&tool.metadata)
        .bind(tool.is_active)
        .bind(tool.updated_at)
        .bind(&tool.embedding_model)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
        let write = self.followers.begin_write(&self.pool, vec![tool.id]);
        if let Some(vectors) = &self.followers.vectors {
            vectors.follow(tool);
        }
        tx.commit().await?;
        self.followers.catalogue.index(tool);
        self.followers.tool_cache.drop_tool(&tool.id);
        write.applied();
        Ok(Updated::Written)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_versions",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tool_versions", code.function.name = "versions"))]
    async fn versions(&self, id: Uuid) -> StoreResult<Vec<ToolVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM tool_versions \
             WHERE tool_id = $1 ORDER BY seq DESC"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| tool_from_row(row).map(version_from_tool))
            .collect::<Result<Vec<_>, _>>()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "DELETE tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "DELETE",
        db.collection.name = "tools", code.function.name = "delete"))]
    async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM tools WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let write = self.followers.begin_write(&self.pool, vec![id]);
        if let Some(vectors) = &self.followers.vectors {
            vectors.remove(&id);
        }
        tx.commit().await?;
        self.followers.catalogue.remove(&id);
        self.followers.tool_cache.drop_tool(&id);
        write.applied();
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "set_active"))]
    async fn set_active(&self, id: Uuid, active: bool) -> StoreResult<Option<Tool>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE tools SET is_active = $2, updated_at = $3 WHERE id = $1 \
             RETURNING {TOOL_COLUMNS}"
        ))
        .bind(id)
        .bind(active)
        .bind(crate::domain::now_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tool) = row.as_ref().map(tool_from_row).transpose()? else {
            return Ok(None);
        };
        let write = self.followers.begin_write(&self.pool, vec![id]);
        if let Some(vectors) = &self.followers.vectors {
            vectors.follow(&tool);
        }
        tx.commit().await?;
        self.followers.catalogue.refilter(&tool);
        self.followers.tool_cache.drop_tool(&id);
        write.applied();
        Ok(Some(tool))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "list_ids"))]
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>> {
        let (items, total) = self.followers.catalogue.list(filter, page);
        Ok(Paged { items, total })
    }

    fn indexed_id_named(&self, name: &str) -> Option<Uuid> {
        self.followers.catalogue.id_named(name)
    }

    fn tool_cache(&self) -> &ToolCache {
        &self.followers.tool_cache
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get_many"))]
    async fn get_many(&self, ids: &[Uuid]) -> StoreResult<Vec<Tool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {TOOL_COLUMNS} FROM tools WHERE id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(tool_from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "count"))]
    async fn count(&self, filter: &ToolFilter) -> StoreResult<u64> {
        Ok(self.followers.catalogue.count(filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "set_embeddings"))]
    async fn set_embeddings(
        &self,
        model: &str,
        embeddings: &[(Uuid, &[f32])],
    ) -> StoreResult<Vec<bool>> {
        for (_, embedding) in embeddings {
            self.check_dimensions(embedding)?;
        }
        let mut stored = Vec::with_capacity(embeddings.len());
        // The vectors in memory change before the commit, so they need a transaction.
        let tx = match (&self.followers.vectors, embeddings) {
            (None, [(id, embedding)]) => {
                stored.push(store_embedding(&self.pool, *id, embedding, model).await?);
                None
            }
            _ => {
                let mut tx = self.pool.begin().await?;
                for (id, embedding) in embeddings {
                    stored.push(store_embedding(&mut *tx, *id, embedding, model).await?);
                }
                Some(tx)
            }
        };
        let found: Vec<bool> = stored.iter().map(Option::is_some).collect();
        let written: Vec<Uuid> = embeddings
            .iter()
            .zip(&found)
            .filter(|(_, found)| **found)
            .map(|((id, _), _)| *id)
            .collect();
        let write = match &self.followers.vectors {
            Some(vectors) if !written.is_empty() => {
                let write = self.followers.begin_write(&self.pool, written.clone());
                for ((id, embedding), facets) in embeddings.iter().zip(stored) {
                    if let Some(facets) = facets {
                        vectors.set(*id, embedding, model, facets);
                    }
                }
                Some(write)
            }
            _ => None,
        };
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        if let Some(write) = write {
            write.applied();
        }
        for id in &written {
            self.followers.tool_cache.drop_tool(id);
        }
        let catalogue_size = self.followers.catalogue.count(&ToolFilter::default());
        self.statistics
            .embeddings_written(&self.pool, written.len(), catalogue_size as usize);
        Ok(found)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "tools_needing_embedding"))]
    async fn tools_needing_embedding(&self, model: &str, limit: u32) -> StoreResult<Vec<Tool>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOOL_COLUMNS} FROM tools \
             WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $1 \
             ORDER BY (embedding IS NOT NULL), updated_at LIMIT $2"
        ))
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(tool_from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "embedding"))]
    async fn embedding(&self, id: Uuid, model: &str) -> StoreResult<Option<Vec<f32>>> {
        if let Some(vectors) = &self.followers.vectors {
            return Ok(vectors.vector_of(&id, model));
        }
        let stored: Option<Vector> = sqlx::query_scalar(
            "SELECT embedding FROM tools WHERE id = $1 AND embedding_model = $2 \
             AND embedding IS NOT NULL",
        )
        .bind(id)
        .bind(model)
        .fetch_optional(&self.pool)
        .await?;
        Ok(stored.map(|vector| vector.to_vec()))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "nearest_ids"))]
    async fn nearest_ids(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>> {
        self.check_dimensions(query)?;
        if let Some(vectors) = &self.followers.vectors {
            return Ok(vectors.nearest(query, model, k, filter));
        }
        let vector = Vector::from(query.to_vec());
        let mut qb = QueryBuilder::new("SELECT id, 1 - (embedding <=> ");
        qb.push_bind(vector.clone())
            .push(") AS similarity FROM tools WHERE embedding IS NOT NULL AND embedding_model = ")
            .push_bind(model.to_owned());
        push_tool_filter(&mut qb, filter);
        qb.push(" ORDER BY embedding <=> ")
            .push_bind(vector)
            .push(", id LIMIT ")
            .push_bind(i64::from(k));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let similarity: f64 = row.try_get("similarity")?;
                Ok((row.try_get("id")?, similarity.clamp(0.0, 1.0)))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "embedding_counts"))]
    async fn embedding_counts(&self, model: &str) -> StoreResult<EmbeddingCounts> {
        let (indexed, total): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE embedding IS NOT NULL AND embedding_model = $1), \
                    count(*) FROM tools",
        )
        .bind(model)
        .fetch_one(&self.pool)
        .await?;
        Ok(EmbeddingCounts {
            indexed: indexed as u64,
            pending: (total - indexed) as u64,
        })
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "text_search_ids"))]
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>> {
        Ok(self.followers.catalogue.search(query, k, filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tool_executions",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT",
        db.collection.name = "tool_executions", code.function.name = "record_executions"))]
    async fn record_executions(&self, executions: &[Execution]) -> StoreResult<()> {
        if executions.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::new(format!(
            "INSERT INTO tool_executions ({EXECUTION_COLUMNS}) "
        ));
        let storable: Vec<Cow<'_, Execution>> =
            executions.iter().map(without_nul_characters).collect();
        qb.push_values(&storable, |mut row, e| {
            row.push_bind(e.id)
                .push_bind(e.tool_id)
                .push_bind(e.tool_name.clone())
                .push_bind(e.status.as_str())
                .push_bind(e.arguments.clone())
                .push_bind(e.result.clone())
                .push_bind(e.error.clone())
                .push_bind(e.duration_ms)
                .push_bind(e.started_at)
                .push_bind(e.completed_at)
                .push_bind(e.note.clone());
        });
        qb.push(" ON CONFLICT (id) DO NOTHING");
        qb.build().execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "get_execution"))]
    async fn get_execution(&self, id: Uuid) -> StoreResult<Option<Execution>> {
        let row = sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM tool_executions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(execution_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "list_executions"))]
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
        page: Page,
    ) -> StoreResult<Paged<Execution>> {
        fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &ExecutionFilter) {
            if let Some(tool_id) = filter.tool_id {
                qb.push(" AND tool_id = ").push_bind(tool_id);
            }
            if let Some(name) = &filter.tool_name {
                qb.push(" AND tool_name = ").push_bind(name.clone());
            }
            if let Some(status) = filter.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(since) = filter.since {
                qb.push(" AND started_at >= ").push_bind(since);
            }
        }
        let mut qb = QueryBuilder::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM tool_executions WHERE TRUE"
        ));
        push_filter(&mut qb, filter);
        qb.push(" ORDER BY started_at DESC, id LIMIT ")
            .push_bind(i64::from(page.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(page.offset));
        let rows = qb.build().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(execution_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut qb = QueryBuilder::new("SELECT count(*) FROM tool_executions WHERE TRUE");
        push_filter(&mut qb, filter);
        let total: i64 = qb.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(Paged {
            items,
            total: total as u64,
        })
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "tool_stats"))]
    async fn tool_stats(&self, tool_id: Uuid) -> StoreResult<ToolStats> {
        let row = sqlx::query(
            "SELECT count(*) AS calls, \
                    count(*) FILTER (WHERE status = 'success') AS successes, \
                    count(*) FILTER (WHERE status = 'error') AS errors, \
                    count(*) FILTER (WHERE status = 'timeout') AS timeouts, \
                    avg(duration_ms) AS mean, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50, \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95, \
                    max(started_at) AS last_called \
             FROM tool_executions WHERE tool_id = $1",
        )
        .bind(tool_id)
        .fetch_one(&self.pool)
        .await?;
        let calls = row.try_get::<i64, _>("calls")? as u64;
        let successes = row.try_get::<i64, _>("successes")? as u64;
        Ok(ToolStats {
            tool_id,
            calls,
            successes,
            errors: row.try_get::<i64, _>("errors")? as u64,
            timeouts: row.try_get::<i64, _>("timeouts")? as u64,
            success_rate: (calls > 0).then(|| successes as f64 / calls as f64),
            mean_duration_ms: row.try_get("mean")?,
            p50_duration_ms: row.try_get("p50")?,
            p95_duration_ms: row.try_get("p95")?,
            last_called_at: row.try_get("last_called")?,
        })
    }

    async fn call_buckets(
        &self,
        tool_id: Option<Uuid>,
        since: chrono::DateTime<chrono::Utc>,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<CallBucket>> {
        let width = bucket.num_microseconds().unwrap_or(i64::MAX).max(1);
        // Timestamps hold whole microseconds, so the epoch difference times 10^6 is exact
        // and integer division floors it to the interval.
        let rows = sqlx::query(
            "SELECT (extract(epoch FROM started_at - $1) * 1000000)::bigint / $2 AS slot, \
                    count(*) AS calls, \
                    count(*) FILTER (WHERE status = 'error') AS errors, \
                    count(*) FILTER (WHERE status = 'timeout') AS timeouts, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50, \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95 \
             FROM tool_executions \
             WHERE started_at >= $1 AND ($3::uuid IS NULL OR tool_id = $3) \
             GROUP BY slot ORDER BY slot",
        )
        .bind(since)
        .bind(width)
        .bind(tool_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| -> StoreResult<CallBucket> {
                let slot: i64 = row.try_get("slot")?;
                Ok(CallBucket {
                    start: since + chrono::Duration::microseconds(slot * width),
                    calls: row.try_get::<i64, _>("calls")? as u64,
                    errors: row.try_get::<i64, _>("errors")? as u64,
                    timeouts: row.try_get::<i64, _>("timeouts")? as u64,
                    p50_duration_ms: row.try_get("p50")?,
                    p95_duration_ms: row.try_get("p95")?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }
}

async fn listen_for_changes(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([CHANGE_CHANNEL, EMBEDDING_CHANNEL])
        .await?;
    Ok(listener)
}

/// The catalogue index of every stored tool, decoded one at a time: the whole catalogue
/// decoded at once took several times the memory the index keeps.
async fn read_catalogue(pool: &PgPool) -> StoreResult<CatalogueIndex> {
    let query = format!("SELECT {TOOL_COLUMNS} FROM tools");
    let mut rows = sqlx::query(&query).fetch(pool);
    let mut index = CatalogueIndex::default();
    while let Some(row) = rows.try_next().await? {
        index.add(&tool_from_row(&row)?);
    }
    tracing::debug!(tools = index.len(), "catalogue index loaded");
    Ok(index)
}

/// One tool as stored; `None` once deleted.
async fn read_tool(pool: &PgPool, id: Uuid) -> StoreResult<Option<Tool>> {
    let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(tool_from_row).transpose()?)
}

/// Follows the catalogue's notifications, whichever replica caused them: the tool named is
/// dropped from the tool cache and read again into the catalogue index (and the replica's
/// vectors), and subscribers are told of changed definitions. After a lost connection it
/// listens again, then re-reads everything (notifications sent meanwhile are gone) and
/// signals a change.
async fn follow_changes(pool: PgPool, mut listener: PgListener, followers: Followers) {
    loop {
        let (refreshed, catalogue_changed) = match listener.try_recv().await {
            Ok(Some(notification)) => {
                let id = Uuid::parse_str(notification.payload()).ok();
                // A stored embedding changes no definition: nothing to re-index, nobody to tell.
                let catalogue_changed = notification.channel() != EMBEDDING_CHANNEL;
                let refreshed = match id {
                    Some(id) => followers.refresh(&pool, id, catalogue_changed).await,
                    None => followers.reload(&pool).await,
                };
                (refreshed, catalogue_changed)
            }
            Ok(None) | Err(_) => {
                // Until listening again, other replicas' changes go unheard: tools are read
                // from the database meanwhile (calls included: a tool switched off elsewhere
                // must not run from a stale copy).
                followers.tool_cache.suspend();
                let Some(again) = listen_again(&pool).await else {
                    return;
                };
                listener = again;
                (followers.reload(&pool).await, true)
            }
        };
        if let Err(err) = refreshed {
            tracing::warn!(%err, "catalogue refresh failed; re-reading the catalogue");
            followers.retry_reload(&pool).await;
        }
        if catalogue_changed {
            let _ = followers.changes.send(());
        }
    }
}

/// What a replica keeps current from its own writes and the catalogue's notifications.
#[derive(Clone)]
struct Followers {
    /// The catalogue index (full text, listings).
    catalogue: SharedCatalogueIndex,
    /// Tools as served; whatever a notification names is dropped from it.
    tool_cache: Arc<ToolCache>,
    /// Every vector, when searches run in this replica's memory rather than in PostgreSQL.
    vectors: Option<Arc<ReplicaVectors>>,
    /// Told of every changed definition.
    changes: broadcast::Sender<()>,
    own_changes: Arc<OwnChanges>,
}

impl Followers {
    /// An own write of these tools is about to change the copies, before its transaction
    /// commits.
    fn begin_write(&self, pool: &PgPool, ids: Vec<Uuid>) -> OwnWrite {
        for id in &ids {
            self.own_changes.begin_write(*id);
        }
        OwnWrite {
            followers: self.clone(),
            pool: pool.clone(),
            ids,
            applied: false,
        }
    }

    /// Follows one tool's change: `definition` when the catalogue's channel named it (its
    /// text, filters or existence), otherwise only its embedding changed.
    async fn refresh(&self, pool: &PgPool, id: Uuid, definition: bool) -> StoreResult<()> {
        self.tool_cache.drop_tool(&id);
        let start = self.own_changes.begin_read();
        let tool = match definition {
            true => read_tool(pool, id).await.map(Some),
            false => Ok(None),
        };
        let vector = match &self.vectors {
            Some(_) => ReplicaVectors::read_one(pool, id).await.map(Some),
            None => Ok(None),
        };
        self.own_changes.end_read(start, |changed| {
            let (tool, vector) = (tool?, vector?);
            if changed.contains(&id) {
                return Ok(());
            }
            match tool {
                Some(Some(tool)) => self.catalogue.index(&tool),
                Some(None) => self.catalogue.remove(&id),
                None => {}
            }
            if let (Some(vectors), Some(vector)) = (&self.vectors, vector) {
                vectors.apply(id, vector);
            }
            Ok(())
        })
    }

    /// Re-reads everything: changes may have gone unheard.
    async fn reload(&self, pool: &PgPool) -> StoreResult<()> {
        self.tool_cache.clear();
        let start = self.own_changes.begin_read();
        let catalogue = read_catalogue(pool).await;
        let vectors = match &self.vectors {
            Some(_) => ReplicaVectors::read_all(pool).await.map(Some),
            None => Ok(None),
        };
        self.own_changes.end_read(start, |changed| {
            let (catalogue, vectors) = (catalogue?, vectors?);
            self.catalogue.replace(catalogue, changed.ids());
            if let (Some(copy), Some(fresh)) = (&self.vectors, vectors) {
                copy.replace(fresh, changed.ids());
            }
            Ok(())
        })
    }

    /// Re-reads everything until it succeeds (the database may be restarting).
    async fn retry_reload(&self, pool: &PgPool) {
        while !pool.is_closed() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.reload(pool).await {
                Ok(()) => return,
                Err(err) => tracing::debug!(%err, "catalogue reload failed; retrying"),
            }
        }
    }
}

/// An own write of some tools whose changes of the copies may be ahead of the database.
/// Dropped before [`OwnWrite::applied`] (its commit failed, or the caller was abandoned), the
/// tools are read back, since the database may have kept what it had.
#[must_use = "an own write settles once its commit is applied"]
struct OwnWrite {
    followers: Followers,
    pool: PgPool,
    ids: Vec<Uuid>,
    applied: bool,
}

impl OwnWrite {
    /// The write committed and every copy shows it.
    fn applied(mut self) {
        self.applied = true;
    }
}

impl Drop for OwnWrite {
    fn drop(&mut self) {
        for id in &self.ids {
            self.followers.own_changes.settle(*id);
        }
        if self.applied {
            return;
        }
        // Spawned, so that the re-reads run to their end whatever becomes of the caller.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (followers, pool) = (self.followers.clone(), self.pool.clone());
            let ids = std::mem::take(&mut self.ids);
            runtime.spawn(async move {
                for id in ids {
                    if let Err(err) = followers.refresh(&pool, id, true).await {
                        // The notification connection is likely lost too; its return
                        // reloads everything.
                        tracing::warn!(%err, "cannot re-read a tool after a failed write");
                        return;
                    }
                }
            });
        }
    }
}

/// A new listener once the database answers again; `None` when the store is closing.
async fn listen_again(pool: &PgPool) -> Option<PgListener> {
    while !pool.is_closed() {
        match listen_for_changes(pool).await {
            Ok(listener) => return Some(listener),
            Err(err) => {
                tracing::warn!(%err, "cannot listen for catalogue changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}
