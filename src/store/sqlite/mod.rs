//! The embedded backend: one SQLite file (WAL), with an exact in-memory vector index and the
//! catalogue index (full text, listings), both loaded at open and kept in step with every
//! write through the store's mirror.

mod executions;
mod rows;

use std::{collections::HashMap, path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::{
    QueryBuilder, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::broadcast;
use uuid::Uuid;

use self::rows::{
    TOOL_COLUMNS, VECTOR_COLUMNS, VERSION_COLUMNS, insert_tool, insert_version, store_embedding,
    tool_from_row, update_tool, vector_from_row,
};
use super::{
    Catalogue, EmbeddingCounts, Embeddings, Replacement, StoreError, StoreHealth, StoreResult,
    ToolCache, ToolVectors, Updated, VectorSearchChoice,
    mirror::{Change, Mirror, Signal},
    version_from_tool,
};
use crate::{
    domain::{Page, Paged, Tool, ToolFilter, ToolVersion, now_micros},
    index::{
        catalogue::{CatalogueIndex, TextHit},
        shared_vectors::SharedVectors,
        vector::VectorIndex,
    },
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/embedded");

const DIMENSIONS_KEY: &str = "embedding_dimensions";

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "registry.db";

pub struct EmbeddedStore {
    pool: SqlitePool,
    dimensions: usize,
    mirror: Mirror,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `registry.db` in `data_dir`, migrates it and loads the
    /// vector index. Vectors of another dimension are dropped, never mixed.
    pub async fn open(data_dir: &Path, dimensions: usize) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Other(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // SQLite's own page cache stays at its default (2 MB a connection) and the file is
            // not memory-mapped: searches, listings and calls read the in-memory indexes and
            // the tool cache, not the file, and a mapping or a larger cache held up to 100 MiB
            // of pages a process once read (startup, bulk registration) without making any of
            // them faster.
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Self {
            pool,
            dimensions,
            mirror: Mirror::new(true, Signal::OwnWrites),
        };
        store.reconcile_dimensions().await?;
        let vectors = store.read_vectors().await?;
        let catalogue = store.read_catalogue().await?;
        store.mirror.replace(catalogue, Some(vectors), &[]);
        Ok(store)
    }

    async fn reconcile_dimensions(&self) -> StoreResult<()> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM registry_meta WHERE key = ?")
                .bind(DIMENSIONS_KEY)
                .fetch_optional(&self.pool)
                .await?;
        let wanted = self.dimensions.to_string();
        if stored.as_deref() == Some(wanted.as_str()) {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if stored.is_some() {
            tracing::warn!(
                from = stored,
                to = self.dimensions,
                "embedding dimension changed; stored vectors are dropped and tools will be re-embedded"
            );
            sqlx::query(
                "UPDATE tools SET embedding = NULL, description_embedding = NULL, \
                 embedding_model = NULL",
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO registry_meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(DIMENSIONS_KEY)
        .bind(wanted)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn read_vectors(&self) -> StoreResult<VectorIndex> {
        // Rows are taken one at a time: all of them at once would hold every vector twice.
        let query = format!(
            "SELECT {VECTOR_COLUMNS} FROM tools \
             WHERE embedding IS NOT NULL AND embedding_model IS NOT NULL"
        );
        let mut rows = sqlx::query(&query).fetch(&self.pool);
        let mut index = VectorIndex::default();
        while let Some(row) = rows.try_next().await? {
            let (id, vector, description, meta) = vector_from_row(&row)?;
            index.upsert(id, &vector, description.as_deref(), meta);
        }
        Ok(index)
    }

    async fn read_catalogue(&self) -> StoreResult<CatalogueIndex> {
        // One tool decoded at a time: the whole catalogue decoded at once took several times
        // the memory the index keeps, which the allocator did not all give back.
        let query = format!("SELECT {TOOL_COLUMNS} FROM tools");
        let mut rows = sqlx::query(&query).fetch(&self.pool);
        let mut index = CatalogueIndex::default();
        while let Some(row) = rows.try_next().await? {
            index.add(&tool_from_row(&row)?);
        }
        tracing::debug!(tools = index.len(), "embedded catalogue index loaded");
        Ok(index)
    }

    fn check_dimensions(&self, vector: &[f32]) -> StoreResult<()> {
        super::check_dimensions(vector, self.dimensions)
    }

    fn vectors(&self) -> &SharedVectors {
        self.mirror
            .vectors()
            .expect("the embedded store keeps every vector")
    }
}

#[async_trait]
impl Catalogue for EmbeddedStore {
    fn catalogue_changes(&self) -> broadcast::Receiver<()> {
        self.mirror.subscribe()
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "INSERT",
        db.collection.name = "tools", code.function.name = "create_many"))]
    async fn create_many(&self, tools: &[Tool]) -> StoreResult<()> {
        // One statement commits alone: no lock held across round trips.
        if let [tool] = tools {
            insert_tool(&self.pool, tool).await?;
        } else {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            for tool in tools {
                insert_tool(&mut *tx, tool).await?;
            }
            tx.commit().await?;
        }
        self.mirror.committed(&Change::Created(tools));
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get"))]
    async fn get(&self, id: Uuid) -> StoreResult<Option<Tool>> {
        let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tool_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get_by_name"))]
    async fn get_by_name(&self, name: &str) -> StoreResult<Option<Tool>> {
        let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tool_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "update_if"))]
    async fn update_if(&self, tool: &Tool, expected: Option<&Tool>) -> StoreResult<Updated> {
        // IMMEDIATE takes the write lock before reading the current row: the row compared
        // with `expected` and kept as a version is the one this write replaces.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let replaced = replace_row(&mut tx, tool, expected).await?;
        if replaced != Updated::Written {
            return Ok(replaced);
        }
        tx.commit().await?;
        self.mirror.committed(&Change::Updated(tool));
        Ok(Updated::Written)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "INSERT",
        db.collection.name = "tools", code.function.name = "write_together"))]
    async fn write_together(
        &self,
        creates: &[Tool],
        replacements: &[Replacement],
    ) -> StoreResult<Updated> {
        if creates.is_empty() && replacements.is_empty() {
            // Nothing changes: no transaction, and nobody is told of a change.
            return Ok(Updated::Written);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for tool in creates {
            insert_tool(&mut *tx, tool).await?;
        }
        for Replacement { tool, replaces } in replacements {
            let replaced = replace_row(&mut tx, tool, Some(replaces)).await?;
            if replaced != Updated::Written {
                // Dropping the transaction rolls back what it wrote.
                return Ok(replaced);
            }
        }
        tx.commit().await?;
        self.mirror.committed(&Change::Created(creates));
        for replacement in replacements {
            self.mirror.committed(&Change::Updated(&replacement.tool));
        }
        Ok(Updated::Written)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_versions",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tool_versions", code.function.name = "versions"))]
    async fn versions(&self, id: Uuid) -> StoreResult<Vec<ToolVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM tool_versions \
             WHERE tool_id = ? ORDER BY seq DESC"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| tool_from_row(row).map(version_from_tool))
            .collect::<Result<Vec<_>, _>>()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "DELETE tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "DELETE",
        db.collection.name = "tools", code.function.name = "delete"))]
    async fn delete(&self, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tools WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        let existed = done.rows_affected() == 1;
        self.mirror.committed(&Change::Deleted { id, existed });
        Ok(existed)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "set_active"))]
    async fn set_active(&self, id: Uuid, active: bool) -> StoreResult<Option<Tool>> {
        let row = sqlx::query(&format!(
            "UPDATE tools SET is_active = ?2, updated_at = ?3 WHERE id = ?1 \
             RETURNING {TOOL_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(active)
        .bind(now_micros().timestamp_micros())
        .fetch_optional(&self.pool)
        .await?;
        let tool = row.as_ref().map(tool_from_row).transpose()?;
        if let Some(tool) = &tool {
            self.mirror.committed(&Change::Switched(tool));
        }
        Ok(tool)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "list_ids"))]
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>> {
        let (items, total) = self.mirror.catalogue().list(filter, page);
        Ok(Paged { items, total })
    }

    fn indexed_id_named(&self, name: &str) -> Option<Uuid> {
        self.mirror.catalogue().id_named(name)
    }

    fn visit_indexed_active(&self, visit: &mut dyn FnMut(&str, &crate::domain::Facets)) {
        self.mirror.catalogue().visit_active(visit);
    }

    fn indexed_changes(&self) -> u64 {
        self.mirror.catalogue().changes()
    }

    fn tool_cache(&self) -> &ToolCache {
        self.mirror.tool_cache()
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "get_many"))]
    async fn get_many(&self, ids: &[Uuid]) -> StoreResult<Vec<Tool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::new(format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id IN ("));
        let mut separated = qb.separated(", ");
        for id in ids {
            separated.push_bind(id.to_string());
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(tool_from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "count"))]
    async fn count(&self, filter: &ToolFilter) -> StoreResult<u64> {
        Ok(self.mirror.catalogue().count(filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "text_search_ids"))]
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<TextHit>> {
        Ok(self.mirror.catalogue().search(query, k, filter))
    }
}

/// Writes `tool` over its stored row inside `tx`, if the row is still `expected` (when
/// given), keeping the row it replaces as a version when the definition changes.
async fn replace_row(
    tx: &mut sqlx::SqliteConnection,
    tool: &Tool,
    expected: Option<&Tool>,
) -> StoreResult<Updated> {
    let current = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id = ?"))
        .bind(tool.id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(current) = current.as_ref().map(tool_from_row).transpose()? else {
        return Ok(Updated::NotFound);
    };
    if expected.is_some_and(|expected| *expected != current) {
        return Ok(Updated::Changed);
    }
    if current.definition() != tool.definition() {
        insert_version(&mut *tx, &current, tool.updated_at).await?;
    }
    update_tool(&mut *tx, tool).await?;
    Ok(Updated::Written)
}

#[async_trait]
impl Embeddings for EmbeddedStore {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn vector_search(&self) -> VectorSearchChoice {
        VectorSearchChoice {
            place: "memory",
            reason: "the embedded store keeps every vector in memory".into(),
        }
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "UPDATE",
        db.collection.name = "tools", code.function.name = "set_embeddings"))]
    async fn set_embeddings(
        &self,
        model: &str,
        embeddings: &[ToolVectors<'_>],
    ) -> StoreResult<Vec<bool>> {
        for vectors in embeddings {
            self.check_dimensions(vectors.document)?;
            if let Some(description) = vectors.description {
                self.check_dimensions(description)?;
            }
        }
        let mut stored = Vec::with_capacity(embeddings.len());
        if let [vectors] = embeddings {
            stored.push(store_embedding(&self.pool, vectors, model).await?);
        } else {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            for vectors in embeddings {
                stored.push(store_embedding(&mut *tx, vectors, model).await?);
            }
            tx.commit().await?;
        }
        self.mirror.committed(&Change::Embedded {
            model,
            vectors: embeddings,
            facets: &stored,
        });
        Ok(stored.iter().map(Option::is_some).collect())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "tools_needing_embedding"))]
    async fn tools_needing_embedding(&self, model: &str, limit: u32) -> StoreResult<Vec<Tool>> {
        // Chosen from the indexes in memory: a query would read the whole table (every vector
        // and schema) each time the indexer wakes, which is once per registered batch.
        let tools = self.mirror.catalogue().versions();
        let mut waiting: Vec<(u8, i64, Uuid)> = {
            let index = self.vectors().read();
            tools
                .into_iter()
                .filter_map(|(id, version)| match index.entry(&id) {
                    // Tools without a vector first, then those with another model's, then
                    // those stored before description vectors were made.
                    None => Some((0, version, id)),
                    Some(entry) if entry.meta.model != model => Some((1, version, id)),
                    Some(entry) if !entry.has_description_vector() => Some((2, version, id)),
                    Some(_) => None,
                })
                .collect()
        };
        waiting.sort_unstable();
        waiting.truncate(limit as usize);
        let order: HashMap<Uuid, usize> = waiting
            .iter()
            .enumerate()
            .map(|(at, (_, _, id))| (*id, at))
            .collect();
        let ids: Vec<Uuid> = waiting.into_iter().map(|(_, _, id)| id).collect();
        let mut tools = self.get_many(&ids).await?;
        tools.sort_by_key(|tool| order.get(&tool.id).copied());
        Ok(tools)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "embedding"))]
    async fn embedding(&self, id: Uuid, model: &str) -> StoreResult<Option<Vec<f32>>> {
        Ok(self.vectors().vector_of(&id, model))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "nearest_ids"))]
    async fn nearest_ids(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>> {
        self.check_dimensions(query)?;
        Ok(self.vectors().nearest(query, model, k, filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "embedding_counts"))]
    async fn embedding_counts(&self, model: &str) -> StoreResult<EmbeddingCounts> {
        // From the indexes in memory: counting in SQL reads the whole table, on every
        // `/health`.
        let total = self.mirror.catalogue().len() as u64;
        let indexed = self.vectors().count_of(model) as u64;
        Ok(EmbeddingCounts {
            indexed,
            pending: total.saturating_sub(indexed),
        })
    }
}

#[async_trait]
impl StoreHealth for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn pool_connections(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
