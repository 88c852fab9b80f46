//! The embedded backend: one SQLite file (WAL), with an exact in-memory vector index and the
//! catalogue index (full text, listings), both loaded at open and kept in step with every
//! write.

use std::{
    collections::HashMap,
    path::Path,
    str::FromStr,
    sync::{Arc, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{
    Executor, QueryBuilder, Row, Sqlite, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    EmbeddingCounts, Facets, StoreError, StoreResult, ToolCache, ToolStore, Updated,
    catalogue_index::{CatalogueIndex, SharedCatalogueIndex},
    percentile_cont,
    vector_index::{EntryMeta, VectorIndex},
    version_from_tool,
};
use crate::domain::{
    CallBucket, Execution, ExecutionFilter, ExecutionStatus, Page, Paged, Tool, ToolFilter,
    ToolStats, ToolVersion, now_micros,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/embedded");

const TOOL_COLUMNS: &str = "tools.id, tools.name, tools.description, tools.category, tools.tags, \
     tools.input_schema, tools.output_schema, tools.version, tools.implementation, \
     tools.metadata, tools.is_active, tools.embedding_model, tools.created_at, tools.updated_at";

/// The columns of a `tool_versions` row under the names of `TOOL_COLUMNS`, so that
/// `tool_from_row` reads it (see `version_from_tool`).
const VERSION_COLUMNS: &str = "tool_id AS id, name, description, category, tags, input_schema, \
     output_schema, version, implementation, metadata, 1 AS is_active, embedding_model, \
     changed_at AS created_at, changed_at AS updated_at";

const EXECUTION_COLUMNS: &str = "id, tool_id, tool_name, status, arguments, result, error, \
     duration_ms, started_at, completed_at, note";

const DIMENSIONS_KEY: &str = "embedding_dimensions";
/// Rows of one INSERT of execution records: 11 parameters each, well under SQLite's limit
/// of 32,766 parameters a statement.
const EXECUTIONS_PER_INSERT: usize = 500;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "registry.db";

pub struct EmbeddedStore {
    pool: SqlitePool,
    dimensions: usize,
    index: Arc<RwLock<VectorIndex>>,
    catalogue: SharedCatalogueIndex,
    changes: broadcast::Sender<()>,
    tool_cache: ToolCache,
}

/// Change signals kept for slow subscribers; a lagging one still learns that something changed.
const CHANGE_BACKLOG: usize = 16;

impl EmbeddedStore {
    fn announce_change(&self) {
        // No subscriber is fine: nobody is listening yet.
        let _ = self.changes.send(());
    }

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
            index: Arc::default(),
            catalogue: SharedCatalogueIndex::default(),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            tool_cache: ToolCache::default(),
        };
        store.reconcile_dimensions().await?;
        store.load_index().await?;
        store.load_catalogue_index().await?;
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
            sqlx::query("UPDATE tools SET embedding = NULL, embedding_model = NULL")
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

    async fn load_index(&self) -> StoreResult<()> {
        // Rows are taken one at a time: all of them at once would hold every vector twice.
        let mut rows = sqlx::query(
            "SELECT id, category, tags, is_active, embedding, embedding_model FROM tools \
             WHERE embedding IS NOT NULL AND embedding_model IS NOT NULL",
        )
        .fetch(&self.pool);
        let mut index = VectorIndex::default();
        while let Some(row) = rows.try_next().await? {
            let id = parse_uuid(row.try_get("id")?)?;
            let blob: &[u8] = row.try_get("embedding")?;
            let meta = EntryMeta {
                model: row.try_get("embedding_model")?,
                facets: facets_from_row(&row)?,
            };
            index.upsert(id, &vector_from_blob(blob), meta);
        }
        tracing::debug!(vectors = index.len(), "embedded vector index loaded");
        *self.index.write().expect("vector index lock poisoned") = index;
        Ok(())
    }

    async fn load_catalogue_index(&self) -> StoreResult<()> {
        // One tool decoded at a time: the whole catalogue decoded at once took several times
        // the memory the index keeps, which the allocator did not all give back.
        let query = format!("SELECT {TOOL_COLUMNS} FROM tools");
        let mut rows = sqlx::query(&query).fetch(&self.pool);
        let mut index = CatalogueIndex::default();
        while let Some(row) = rows.try_next().await? {
            index.add(&tool_from_row(&row)?);
        }
        tracing::debug!(tools = index.len(), "embedded catalogue index loaded");
        self.catalogue.replace(index, std::iter::empty());
        Ok(())
    }

    fn check_dimensions(&self, vector: &[f32]) -> StoreResult<()> {
        super::check_dimensions(vector, self.dimensions)
    }

    fn with_index<T>(&self, f: impl FnOnce(&mut VectorIndex) -> T) -> T {
        f(&mut self.index.write().expect("vector index lock poisoned"))
    }
}

async fn insert_tool<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    tool: &Tool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tools (id, name, description, category, tags, input_schema, \
         output_schema, version, implementation, metadata, is_active, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(tool.id.to_string())
    .bind(&tool.name)
    .bind(&tool.description)
    .bind(&tool.category)
    .bind(to_json(&tool.tags)?)
    .bind(to_json(&tool.input_schema)?)
    .bind(tool.output_schema.as_ref().map(to_json).transpose()?)
    .bind(&tool.version)
    .bind(to_json(&tool.implementation)?)
    .bind(to_json(&tool.metadata)?)
    .bind(tool.is_active)
    .bind(tool.created_at.timestamp_micros())
    .bind(tool.updated_at.timestamp_micros())
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

/// Stores one embedding; the tool's filter fields, or `None` if there is no such tool.
async fn store_embedding<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    id: Uuid,
    embedding: &[f32],
    model: &str,
) -> StoreResult<Option<Facets>> {
    let row = sqlx::query(
        "UPDATE tools SET embedding = ?2, embedding_model = ?3 WHERE id = ?1 \
         RETURNING category, tags, is_active",
    )
    .bind(id.to_string())
    .bind(vector_to_blob(embedding))
    .bind(model)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(facets_from_row).transpose()?)
}

/// The index entry of a tool that has a vector (`embedding_model` is set).
fn meta_of(tool: &Tool) -> EntryMeta {
    EntryMeta {
        model: tool.embedding_model.clone().unwrap_or_default(),
        facets: Facets::of(tool),
    }
}

fn facets_from_row(row: &SqliteRow) -> Result<Facets, sqlx::Error> {
    Ok(Facets {
        category: row.try_get("category")?,
        tags: parse_json(row.try_get("tags")?)?,
        is_active: row.try_get("is_active")?,
    })
}

fn vector_to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_from_blob(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn parse_uuid(text: String) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(&text).map_err(|e| decode_error(format!("bad uuid {text}: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(text: String) -> Result<T, sqlx::Error> {
    serde_json::from_str(&text).map_err(|e| decode_error(format!("bad stored JSON: {e}")))
}

fn to_json(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

fn time_from_micros(micros: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| decode_error(format!("timestamp out of range: {micros}")))
}

fn tool_from_row(row: &SqliteRow) -> Result<Tool, sqlx::Error> {
    let output_schema: Option<String> = row.try_get("output_schema")?;
    Ok(Tool {
        id: parse_uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        tags: parse_json(row.try_get("tags")?)?,
        input_schema: parse_json(row.try_get("input_schema")?)?,
        output_schema: output_schema.map(parse_json).transpose()?,
        version: row.try_get("version")?,
        implementation: parse_json(row.try_get("implementation")?)?,
        metadata: parse_json(row.try_get("metadata")?)?,
        is_active: row.try_get("is_active")?,
        embedding_model: row.try_get("embedding_model")?,
        created_at: time_from_micros(row.try_get("created_at")?)?,
        updated_at: time_from_micros(row.try_get("updated_at")?)?,
    })
}

fn execution_from_row(row: &SqliteRow) -> Result<Execution, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(Execution {
        id: parse_uuid(row.try_get("id")?)?,
        tool_id: parse_uuid(row.try_get("tool_id")?)?,
        tool_name: row.try_get("tool_name")?,
        status: ExecutionStatus::parse(&status)
            .ok_or_else(|| decode_error(format!("unknown status {status}")))?,
        arguments: parse_json(row.try_get("arguments")?)?,
        result: result.map(parse_json).transpose()?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        started_at: time_from_micros(row.try_get("started_at")?)?,
        completed_at: time_from_micros(row.try_get("completed_at")?)?,
        note: row.try_get("note")?,
    })
}

#[async_trait]
impl ToolStore for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn vector_search(&self) -> super::VectorSearchChoice {
        super::VectorSearchChoice {
            place: "memory",
            reason: "the embedded store keeps every vector in memory".into(),
        }
    }

    fn pool_connections(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    fn catalogue_changes(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
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
        for tool in tools {
            self.catalogue.index(tool);
        }
        self.announce_change();
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
            sqlx::query(
                "INSERT INTO tool_versions (tool_id, version, name, description, category, \
                 tags, input_schema, output_schema, implementation, metadata, embedding_model, \
                 changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(current.id.to_string())
            .bind(&current.version)
            .bind(&current.name)
            .bind(&current.description)
            .bind(&current.category)
            .bind(to_json(&current.tags)?)
            .bind(to_json(&current.input_schema)?)
            .bind(current.output_schema.as_ref().map(to_json).transpose()?)
            .bind(to_json(&current.implementation)?)
            .bind(to_json(&current.metadata)?)
            .bind(&current.embedding_model)
            .bind(tool.updated_at.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE tools SET name = ?2, description = ?3, category = ?4, tags = ?5, \
             input_schema = ?6, output_schema = ?7, version = ?8, implementation = ?9, \
             metadata = ?10, is_active = ?11, updated_at = ?12, embedding_model = ?13, \
             embedding = CASE WHEN ?13 IS NULL THEN NULL ELSE embedding END \
             WHERE id = ?1",
        )
        .bind(tool.id.to_string())
        .bind(&tool.name)
        .bind(&tool.description)
        .bind(&tool.category)
        .bind(to_json(&tool.tags)?)
        .bind(to_json(&tool.input_schema)?)
        .bind(tool.output_schema.as_ref().map(to_json).transpose()?)
        .bind(&tool.version)
        .bind(to_json(&tool.implementation)?)
        .bind(to_json(&tool.metadata)?)
        .bind(tool.is_active)
        .bind(tool.updated_at.timestamp_micros())
        .bind(&tool.embedding_model)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
        tx.commit().await?;
        self.catalogue.index(tool);
        self.tool_cache.drop_tool(&tool.id);
        self.announce_change();
        self.with_index(|index| {
            if tool.embedding_model.is_none() {
                index.remove(&tool.id);
            } else {
                index.update_meta(tool.id, meta_of(tool));
            }
        });
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
        self.with_index(|index| index.remove(&id));
        self.catalogue.remove(&id);
        self.tool_cache.drop_tool(&id);
        let deleted = done.rows_affected() == 1;
        if deleted {
            self.announce_change();
        }
        Ok(deleted)
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
            self.catalogue.refilter(tool);
            self.tool_cache.drop_tool(&id);
            self.announce_change();
            self.with_index(|index| index.update_meta(tool.id, meta_of(tool)));
        }
        Ok(tool)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "list_ids"))]
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>> {
        let (items, total) = self.catalogue.list(filter, page);
        Ok(Paged { items, total })
    }

    fn indexed_id_named(&self, name: &str) -> Option<Uuid> {
        self.catalogue.id_named(name)
    }

    fn tool_cache(&self) -> &ToolCache {
        &self.tool_cache
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
        Ok(self.catalogue.count(filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "UPDATE",
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
        if let [(id, embedding)] = embeddings {
            stored.push(store_embedding(&self.pool, *id, embedding, model).await?);
        } else {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            for (id, embedding) in embeddings {
                stored.push(store_embedding(&mut *tx, *id, embedding, model).await?);
            }
            tx.commit().await?;
        }
        self.with_index(|index| {
            for ((id, embedding), facets) in embeddings.iter().zip(&stored) {
                if let Some(facets) = facets {
                    let meta = EntryMeta {
                        model: model.to_owned(),
                        facets: facets.clone(),
                    };
                    index.upsert(*id, embedding, meta);
                }
            }
        });
        for ((id, _), facets) in embeddings.iter().zip(&stored) {
            if facets.is_some() {
                self.tool_cache.drop_tool(id);
            }
        }
        Ok(stored.iter().map(Option::is_some).collect())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "tools_needing_embedding"))]
    async fn tools_needing_embedding(&self, model: &str, limit: u32) -> StoreResult<Vec<Tool>> {
        // Chosen from the indexes in memory: a query would read the whole table (every vector
        // and schema) each time the indexer wakes, which is once per registered batch.
        let tools = self.catalogue.versions();
        let mut waiting: Vec<(bool, i64, Uuid)> = {
            let index = self.index.read().expect("vector index lock poisoned");
            tools
                .into_iter()
                .filter_map(|(id, version)| match index.model_of(&id) {
                    Some(made_by) if made_by == model => None,
                    // Tools without a vector first, then those with another model's.
                    made_by => Some((made_by.is_some(), version, id)),
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
        Ok(self
            .index
            .read()
            .expect("vector index lock poisoned")
            .vector_of(&id, model))
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
        Ok(self
            .index
            .read()
            .expect("vector index lock poisoned")
            .nearest(query, model, k as usize, |meta| meta.facets.matches(filter))
            .into_iter()
            .map(|(id, cosine)| (id, f64::from(cosine).clamp(0.0, 1.0)))
            .collect())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "embedding_counts"))]
    async fn embedding_counts(&self, model: &str) -> StoreResult<EmbeddingCounts> {
        // From the indexes in memory: counting in SQL reads the whole table, on every
        // `/health`.
        let total = self.catalogue.len() as u64;
        let indexed = self
            .index
            .read()
            .expect("vector index lock poisoned")
            .count_of(model) as u64;
        Ok(EmbeddingCounts {
            indexed,
            pending: total.saturating_sub(indexed),
        })
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "text_search_ids"))]
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<(Uuid, f64)>> {
        Ok(self.catalogue.search(query, k, filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tool_executions",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "INSERT",
        db.collection.name = "tool_executions", code.function.name = "record_executions"))]
    async fn record_executions(&self, executions: &[Execution]) -> StoreResult<()> {
        if executions.is_empty() {
            return Ok(());
        }
        // (arguments, result) as JSON text, encoded before the transaction starts.
        let encoded = executions
            .iter()
            .map(|e| {
                Ok((
                    to_json(&e.arguments)?,
                    e.result.as_ref().map(to_json).transpose()?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // One statement per chunk: a call waits for its batch's commit in durable mode, and
        // one statement a row made the batch's write (and so the call) several times longer.
        let mut tx = self.pool.begin().await?;
        for (records, json) in executions
            .chunks(EXECUTIONS_PER_INSERT)
            .zip(encoded.chunks(EXECUTIONS_PER_INSERT))
        {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO tool_executions ({EXECUTION_COLUMNS}) "
            ));
            qb.push_values(
                records.iter().zip(json),
                |mut row, (e, (arguments, result))| {
                    row.push_bind(e.id.to_string())
                        .push_bind(e.tool_id.to_string())
                        .push_bind(e.tool_name.clone())
                        .push_bind(e.status.as_str())
                        .push_bind(arguments.clone())
                        .push_bind(result.clone())
                        .push_bind(e.error.clone())
                        .push_bind(e.duration_ms)
                        .push_bind(e.started_at.timestamp_micros())
                        .push_bind(e.completed_at.timestamp_micros())
                        .push_bind(e.note.clone());
                },
            );
            qb.push(" ON CONFLICT (id) DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "get_execution"))]
    async fn get_execution(&self, id: Uuid) -> StoreResult<Option<Execution>> {
        let row = sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM tool_executions WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(execution_from_row).transpose()?)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "list_executions"))]
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
        page: Page,
    ) -> StoreResult<Paged<Execution>> {
        fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &ExecutionFilter) {
            if let Some(tool_id) = filter.tool_id {
                qb.push(" AND tool_id = ").push_bind(tool_id.to_string());
            }
            if let Some(name) = &filter.tool_name {
                qb.push(" AND tool_name = ").push_bind(name.clone());
            }
            if let Some(status) = filter.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(since) = filter.since {
                qb.push(" AND started_at >= ")
                    .push_bind(since.timestamp_micros());
            }
        }
        let mut qb = QueryBuilder::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM tool_executions WHERE 1"
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
        let mut qb = QueryBuilder::new("SELECT count(*) FROM tool_executions WHERE 1");
        push_filter(&mut qb, filter);
        let total: i64 = qb.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(Paged {
            items,
            total: total as u64,
        })
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tool_executions",
        otel.kind = "client", db.system.name = "sqlite", db.operation.name = "SELECT",
        db.collection.name = "tool_executions", code.function.name = "tool_stats"))]
    async fn tool_stats(&self, tool_id: Uuid) -> StoreResult<ToolStats> {
        let id = tool_id.to_string();
        let row = sqlx::query(
            "SELECT count(*) AS calls, \
                    coalesce(sum(status = 'success'), 0) AS successes, \
                    coalesce(sum(status = 'error'), 0) AS errors, \
                    coalesce(sum(status = 'timeout'), 0) AS timeouts, \
                    avg(duration_ms) AS mean, \
                    max(started_at) AS last_called \
             FROM tool_executions WHERE tool_id = ?",
        )
        .bind(&id)
        .fetch_one(&self.pool)
        .await?;
        let durations: Vec<f64> = sqlx::query_scalar(
            "SELECT duration_ms FROM tool_executions WHERE tool_id = ? ORDER BY duration_ms",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let calls = row.try_get::<i64, _>("calls")? as u64;
        let successes = row.try_get::<i64, _>("successes")? as u64;
        let last_called: Option<i64> = row.try_get("last_called")?;
        Ok(ToolStats {
            tool_id,
            calls,
            successes,
            errors: row.try_get::<i64, _>("errors")? as u64,
            timeouts: row.try_get::<i64, _>("timeouts")? as u64,
            success_rate: (calls > 0).then(|| successes as f64 / calls as f64),
            mean_duration_ms: row.try_get("mean")?,
            p50_duration_ms: percentile_cont(&durations, 0.5),
            p95_duration_ms: percentile_cont(&durations, 0.95),
            last_called_at: last_called.map(time_from_micros).transpose()?,
        })
    }

    async fn call_buckets(
        &self,
        tool_id: Option<Uuid>,
        since: DateTime<Utc>,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<CallBucket>> {
        let width = bucket.num_microseconds().unwrap_or(i64::MAX).max(1);
        let start = since.timestamp_micros();
        // SQLite has no percentile aggregate: the durations come sorted per interval and
        // the percentiles are taken here, as in `tool_stats`.
        let mut qb = QueryBuilder::new("SELECT (started_at - ");
        qb.push_bind(start)
            .push(") / ")
            .push_bind(width)
            .push(" AS slot, status, duration_ms FROM tool_executions WHERE started_at >= ")
            .push_bind(start);
        if let Some(id) = tool_id {
            qb.push(" AND tool_id = ").push_bind(id.to_string());
        }
        qb.push(" ORDER BY slot, duration_ms");
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut buckets = Vec::new();
        let mut slot_rows = rows.iter().peekable();
        while let Some(first) = slot_rows.peek() {
            let slot: i64 = first.try_get("slot")?;
            let (mut errors, mut timeouts, mut durations) = (0, 0, Vec::new());
            while let Some(row) =
                slot_rows.next_if(|row| row.try_get::<i64, _>("slot").ok() == Some(slot))
            {
                match row.try_get::<&str, _>("status")? {
                    "error" => errors += 1,
                    "timeout" => timeouts += 1,
                    _ => {}
                }
                durations.push(row.try_get::<f64, _>("duration_ms")?);
            }
            buckets.push(CallBucket {
                start: time_from_micros(start + slot * width)?,
                calls: durations.len() as u64,
                errors,
                timeouts,
                p50_duration_ms: percentile_cont(&durations, 0.5),
                p95_duration_ms: percentile_cont(&durations, 0.95),
            });
        }
        Ok(buckets)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
