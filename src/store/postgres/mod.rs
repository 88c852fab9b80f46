//! PostgreSQL + pgvector: the production backend, shared by many replicas. Each replica
//! keeps a mirror (catalogue index, tool cache, vectors when searched in memory) current with
//! its own writes and, through the catalogue's notifications, everyone's (`follow`).

mod executions;
mod follow;
mod own_changes;
mod planner_statistics;
mod rows;
mod schema;

use async_trait::async_trait;
use pgvector::Vector;
use sqlx::{
    Executor, PgPool, QueryBuilder, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

pub use self::schema::{HnswIndex, PostgresOptions, VectorPlacement};
use self::{
    follow::{Followers, follow_changes, listen_for_changes},
    planner_statistics::PlannerStatistics,
    rows::{
        TOOL_COLUMNS, VERSION_COLUMNS, insert_tool, insert_tools, insert_version, push_tool_filter,
        store_embedding, store_embeddings, tool_from_row, update_tool,
    },
    schema::{choose_vector_search, migrate, prepare_vectors},
};
use super::{
    Catalogue, EmbeddingCounts, Embeddings, Replacement, StoreError, StoreHealth, StoreResult,
    ToolCache, ToolVectors, Updated, VectorSearchChoice,
    mirror::{Change, Mirror, Signal},
    version_from_tool,
};
use crate::{
    domain::{Page, Paged, Tool, ToolFilter, ToolVersion},
    index::{
        catalogue::TextHit,
        fusion::unit_score,
        vector::{estimated_bytes_per_vector, tool_score},
    },
};

/// A search through the HNSW index takes this many candidates per hit asked for by the
/// document vector, then rescores them with the description vector too.
const HNSW_CANDIDATES_PER_HIT: i64 = 2;

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
        migrate(&pool).await?;
        let vector_search = choose_vector_search(&pool, dimensions, options.vector_search).await?;
        let searches_index = vector_search.place == "index";
        prepare_vectors(&pool, dimensions, options.hnsw_index, searches_index).await?;
        let followers = Followers::new(Mirror::new(
            vector_search.place == "memory",
            Signal::Notifications,
        ));
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

    fn mirror(&self) -> &Mirror {
        &self.followers.mirror
    }

    fn check_dimensions(&self, vector: &[f32]) -> StoreResult<()> {
        super::check_dimensions(vector, self.dimensions)
    }
}

#[async_trait]
impl Catalogue for PostgresStore {
    fn catalogue_changes(&self) -> broadcast::Receiver<()> {
        self.mirror().subscribe()
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT",
        db.collection.name = "tools", code.function.name = "create_many"))]
    async fn create_many(&self, tools: &[Tool]) -> StoreResult<()> {
        // One statement commits alone: no BEGIN and COMMIT round trips.
        if let [tool] = tools {
            insert_tool(&self.pool, tool).await?;
        } else {
            // One statement for the batch; a taken name rolls it back, so none is stored.
            let mut tx = self.pool.begin().await?;
            if let Some(refused) = insert_tools(&mut *tx, tools).await? {
                tx.rollback().await?;
                return Err(StoreError::Duplicate(refused.name.clone()));
            }
            tx.commit().await?;
        }
        self.mirror().committed(&Change::Created(tools));
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
        let replaced = replace_row(&mut tx, tool, expected).await?;
        if replaced != Updated::Written {
            return Ok(replaced);
        }
        let change = Change::Updated(tool);
        let write = self.followers.begin_write(&self.pool, vec![tool.id]);
        self.mirror().before_commit(&change);
        tx.commit().await?;
        self.mirror().after_commit(&change);
        write.applied();
        Ok(Updated::Written)
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "INSERT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT",
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
        let mut tx = self.pool.begin().await?;
        // The new tools in one statement, as `create_many` stores a batch.
        if !creates.is_empty()
            && let Some(refused) = insert_tools(&mut *tx, creates).await?
        {
            // Dropping the transaction rolls back what it wrote.
            return Err(StoreError::Duplicate(refused.name.clone()));
        }
        for Replacement { tool, replaces } in replacements {
            let replaced = replace_row(&mut tx, tool, Some(replaces)).await?;
            if replaced != Updated::Written {
                // Dropping the transaction rolls back what it wrote.
                return Ok(replaced);
            }
        }
        let changes: Vec<Change<'_>> = replacements
            .iter()
            .map(|replacement| Change::Updated(&replacement.tool))
            .collect();
        let ids = replacements.iter().map(|r| r.tool.id).collect();
        let write = self.followers.begin_write(&self.pool, ids);
        for change in &changes {
            self.mirror().before_commit(change);
        }
        tx.commit().await?;
        self.mirror().committed(&Change::Created(creates));
        for change in &changes {
            self.mirror().after_commit(change);
        }
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
        let existed = done.rows_affected() == 1;
        let change = Change::Deleted { id, existed };
        let write = self.followers.begin_write(&self.pool, vec![id]);
        self.mirror().before_commit(&change);
        tx.commit().await?;
        self.mirror().after_commit(&change);
        write.applied();
        Ok(existed)
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
        let change = Change::Switched(&tool);
        let write = self.followers.begin_write(&self.pool, vec![id]);
        self.mirror().before_commit(&change);
        tx.commit().await?;
        self.mirror().after_commit(&change);
        write.applied();
        Ok(Some(tool))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "list_ids"))]
    async fn list_ids(&self, filter: &ToolFilter, page: Page) -> StoreResult<Paged<Uuid>> {
        let (items, total) = self.mirror().catalogue().list(filter, page);
        Ok(Paged { items, total })
    }

    fn indexed_id_named(&self, name: &str) -> Option<Uuid> {
        self.mirror().catalogue().id_named(name)
    }

    fn visit_indexed_active(&self, visit: &mut dyn FnMut(&str, &crate::domain::Facets)) {
        self.mirror().catalogue().visit_active(visit);
    }

    fn indexed_changes(&self) -> u64 {
        self.mirror().catalogue().changes()
    }

    fn tool_cache(&self) -> &ToolCache {
        self.mirror().tool_cache()
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
        Ok(self.mirror().catalogue().count(filter))
    }

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "SELECT tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT",
        db.collection.name = "tools", code.function.name = "text_search_ids"))]
    async fn text_search_ids(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<TextHit>> {
        Ok(self.mirror().catalogue().search(query, k, filter))
    }
}

/// Writes `tool` over its stored row inside `tx`, if the row is still `expected` (when
/// given), keeping the row it replaces as a version when the definition changes. The row
/// lock holds off concurrent writers of this tool: the row compared with `expected` and
/// kept as a version is the one this write replaces.
async fn replace_row(
    tx: &mut sqlx::PgConnection,
    tool: &Tool,
    expected: Option<&Tool>,
) -> StoreResult<Updated> {
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
        insert_version(&mut *tx, &current, tool.updated_at).await?;
    }
    update_tool(&mut *tx, tool).await?;
    Ok(Updated::Written)
}

#[async_trait]
impl Embeddings for PostgresStore {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// A copy chosen within its budget that has since outgrown it says so: the choice
    /// stands until the next start, which will search through the index.
    fn vector_search(&self) -> VectorSearchChoice {
        let mut choice = self.vector_search.clone();
        if let (Some(budget), Some(vectors)) = (self.memory_budget, self.mirror().vectors()) {
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

    #[tracing::instrument(level = "debug", name = "db", skip_all, fields(otel.name = "UPDATE tools",
        otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE",
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
        // The vectors in memory change before the commit, so they need a transaction.
        let tx = match (self.mirror().vectors(), embeddings) {
            (None, [vectors]) => {
                stored.push(store_embedding(&self.pool, vectors, model).await?);
                None
            }
            _ => {
                let mut tx = self.pool.begin().await?;
                stored = store_embeddings(&mut *tx, embeddings, model).await?;
                Some(tx)
            }
        };
        let found: Vec<bool> = stored.iter().map(Option::is_some).collect();
        let written: Vec<Uuid> = embeddings
            .iter()
            .zip(&found)
            .filter(|(_, found)| **found)
            .map(|(vectors, _)| vectors.id)
            .collect();
        let change = Change::Embedded {
            model,
            vectors: embeddings,
            facets: &stored,
        };
        let write = match self.mirror().vectors() {
            Some(_) if !written.is_empty() => {
                let write = self.followers.begin_write(&self.pool, written.clone());
                self.mirror().before_commit(&change);
                Some(write)
            }
            _ => None,
        };
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        self.mirror().after_commit(&change);
        if let Some(write) = write {
            write.applied();
        }
        let catalogue_size = self.mirror().catalogue().count(&ToolFilter::default());
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
                OR description_embedding IS NULL \
             ORDER BY (embedding IS NOT NULL), (embedding_model IS NOT DISTINCT FROM $1), \
                updated_at LIMIT $2"
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
        if let Some(vectors) = self.mirror().vectors() {
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
        if let Some(vectors) = self.mirror().vectors() {
            return Ok(vectors.nearest(query, model, k, filter));
        }
        // The candidates are the nearest by the document vector (what the HNSW index holds),
        // twice as many as asked for, rescored with the description vector: a tool that its
        // description vector would lift from further down is not found this way, which the
        // exact search in memory does find.
        let vector = Vector::from(query.to_vec());
        let mut qb = QueryBuilder::new("SELECT id, 1 - (embedding <=> ");
        qb.push_bind(vector.clone())
            .push(") AS similarity, 1 - (description_embedding <=> ")
            .push_bind(vector.clone())
            .push(
                ") AS description_similarity FROM tools \
                 WHERE embedding IS NOT NULL AND embedding_model = ",
            )
            .push_bind(model.to_owned());
        push_tool_filter(&mut qb, filter);
        qb.push(" ORDER BY embedding <=> ")
            .push_bind(vector)
            .push(", id LIMIT ")
            .push_bind(i64::from(k) * HNSW_CANDIDATES_PER_HIT);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut found = rows
            .iter()
            .map(|row| {
                let similarity: f64 = row.try_get("similarity")?;
                let description: Option<f64> = row.try_get("description_similarity")?;
                Ok((
                    row.try_get("id")?,
                    unit_score(tool_score(similarity, description)),
                ))
            })
            .collect::<Result<Vec<(Uuid, f64)>, sqlx::Error>>()?;
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        found.truncate(k as usize);
        Ok(found)
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
}

#[async_trait]
impl StoreHealth for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn pool_connections(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
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
