//! PostgreSQL's rows: the column list of each table, and tools, versions, executions and
//! vectors to and from its values; records cleaned of what PostgreSQL cannot store.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use pgvector::Vector;
use sqlx::{Executor, Postgres, QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use crate::{
    domain::{Execution, ExecutionStatus, Tool, ToolFilter},
    index::{shared_vectors::StoredVector, vector::EntryMeta},
    store::{Facets, StoreError, StoreResult, ToolVectors},
};

pub(super) const TOOL_COLUMNS: &str = "id, name, description, category, tags, input_schema, output_schema, \
     version, implementation, metadata, is_active, embedding_model, created_at, updated_at";

/// The columns of a `tool_versions` row under the names of `TOOL_COLUMNS`, so that
/// `tool_from_row` reads it (see `version_from_tool`).
pub(super) const VERSION_COLUMNS: &str = "tool_id AS id, name, description, category, tags, input_schema, \
     output_schema, version, implementation, metadata, TRUE AS is_active, embedding_model, \
     changed_at AS created_at, changed_at AS updated_at";

pub(super) const EXECUTION_COLUMNS: &str = "id, tool_id, tool_name, status, arguments, result, error, \
     duration_ms, started_at, completed_at, note";

/// The columns a tool's vector is read with, with what searches filter it by.
pub(super) const VECTOR_COLUMNS: &str =
    "id, category, tags, is_active, embedding, description_embedding, embedding_model";

/// Binds a tool's id and the columns both writes of a tool set ($1 to $11, in the order of
/// `TOOL_COLUMNS`), so that a new column is bound in one place.
fn bind_tool<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    tool: &'q Tool,
) -> StoreResult<sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>> {
    Ok(query
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
        .bind(tool.is_active))
}

pub(super) async fn insert_tool<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    tool: &Tool,
) -> StoreResult<()> {
    bind_tool(
        sqlx::query(
            "INSERT INTO tools (id, name, description, category, tags, input_schema, \
             output_schema, version, implementation, metadata, is_active, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        ),
        tool,
    )?
    .bind(tool.created_at)
    .bind(tool.updated_at)
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

/// One field of every tool, as the array a batch statement binds for its column.
fn column<'t, T>(tools: &'t [Tool], field: impl Fn(&'t Tool) -> T) -> Vec<T> {
    tools.iter().map(field).collect()
}

/// Inserts many new tools in one statement (each column sent as one array), skipping those
/// whose name (or id) is taken. Returns the first tool of `tools`, in their order, not inserted: the
/// caller rolls back when there is one.
pub(super) async fn insert_tools<'e, 't>(
    executor: impl Executor<'e, Database = Postgres>,
    tools: &'t [Tool],
) -> StoreResult<Option<&'t Tool>> {
    let implementations = tools
        .iter()
        .map(implementation_json)
        .collect::<StoreResult<Vec<_>>>()?;
    // A row's tags go as one JSON array: PostgreSQL's arrays of arrays must be rectangular.
    let tags: Vec<serde_json::Value> = tools.iter().map(|tool| tool.tags.clone().into()).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO tools (id, name, description, category, tags, input_schema, \
         output_schema, version, implementation, metadata, is_active, created_at, updated_at) \
         SELECT id, name, description, category, \
                ARRAY(SELECT jsonb_array_elements_text(tags)), input_schema, output_schema, \
                version, implementation, metadata, is_active, created_at, updated_at \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], \
                     $6::jsonb[], $7::jsonb[], $8::text[], $9::jsonb[], $10::jsonb[], \
                     $11::boolean[], $12::timestamptz[], $13::timestamptz[]) \
              AS batch(id, name, description, category, tags, input_schema, output_schema, \
                       version, implementation, metadata, is_active, created_at, updated_at) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(column(tools, |tool| tool.id))
    .bind(column(tools, |tool| tool.name.as_str()))
    .bind(column(tools, |tool| tool.description.as_str()))
    .bind(column(tools, |tool| tool.category.as_str()))
    .bind(tags)
    .bind(column(tools, |tool| &tool.input_schema))
    .bind(column(tools, |tool| tool.output_schema.as_ref()))
    .bind(column(tools, |tool| tool.version.as_str()))
    .bind(implementations)
    .bind(column(tools, |tool| &tool.metadata))
    .bind(column(tools, |tool| tool.is_active))
    .bind(column(tools, |tool| tool.created_at))
    .bind(column(tools, |tool| tool.updated_at))
    .fetch_all(executor)
    .await?;
    if inserted.len() == tools.len() {
        return Ok(None);
    }
    // A name met twice in the batch keeps its first row, as inserting in order would.
    let mut inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    Ok(tools.iter().find(|tool| !inserted.remove(&tool.id)))
}

/// Stores many embeddings in one statement; each one's tool's filter fields, in the order
/// given, or `None` where there is no such tool. An id given twice gets its last vector.
pub(super) async fn store_embeddings<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    embeddings: &[ToolVectors<'_>],
    model: &str,
) -> StoreResult<Vec<Option<Facets>>> {
    let mut last_of_id = std::collections::HashMap::with_capacity(embeddings.len());
    for (at, vectors) in embeddings.iter().enumerate() {
        last_of_id.insert(vectors.id, at);
    }
    let mut ids = Vec::with_capacity(last_of_id.len());
    let mut documents = Vec::with_capacity(last_of_id.len());
    let mut descriptions: Vec<Option<Vector>> = Vec::with_capacity(last_of_id.len());
    for (at, vectors) in embeddings.iter().enumerate() {
        if last_of_id[&vectors.id] == at {
            ids.push(vectors.id);
            documents.push(Vector::from(vectors.document.to_vec()));
            descriptions.push(
                vectors
                    .description
                    .map(|description| Vector::from(description.to_vec())),
            );
        }
    }
    let rows = sqlx::query(
        "UPDATE tools SET embedding = batch.embedding, \
         description_embedding = batch.description_embedding, embedding_model = $4 \
         FROM UNNEST($1::uuid[], $2::vector[], $3::vector[]) \
         AS batch(id, embedding, description_embedding) \
         WHERE tools.id = batch.id RETURNING tools.id, category, tags, is_active",
    )
    .bind(ids)
    .bind(documents)
    .bind(descriptions)
    .bind(model)
    .fetch_all(executor)
    .await?;
    let mut facets = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        facets.insert(row.try_get::<Uuid, _>("id")?, facets_from_row(row)?);
    }
    Ok(embeddings
        .iter()
        .map(|vectors| facets.get(&vectors.id).cloned())
        .collect())
}

/// Stores one tool's vectors; the tool's filter fields, or `None` if there is no such tool.
pub(super) async fn store_embedding<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    vectors: &ToolVectors<'_>,
    model: &str,
) -> StoreResult<Option<Facets>> {
    let row = sqlx::query(
        "UPDATE tools SET embedding = $2, description_embedding = $3, embedding_model = $4 \
         WHERE id = $1 RETURNING category, tags, is_active",
    )
    .bind(vectors.id)
    .bind(Vector::from(vectors.document.to_vec()))
    .bind(
        vectors
            .description
            .map(|description| Vector::from(description.to_vec())),
    )
    .bind(model)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(facets_from_row).transpose()?)
}

pub(super) fn facets_from_row(row: &PgRow) -> Result<Facets, sqlx::Error> {
    Ok(Facets {
        category: row.try_get("category")?,
        tags: row.try_get("tags")?,
        is_active: row.try_get("is_active")?,
    })
}

pub(super) fn push_tool_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &ToolFilter) {
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

pub(super) fn tool_from_row(row: &PgRow) -> Result<Tool, sqlx::Error> {
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

pub(super) fn execution_from_row(row: &PgRow) -> Result<Execution, sqlx::Error> {
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
pub(super) fn without_nul_characters(execution: &Execution) -> Cow<'_, Execution> {
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

pub(super) fn implementation_json(tool: &Tool) -> StoreResult<serde_json::Value> {
    serde_json::to_value(&tool.implementation).map_err(|e| StoreError::Other(e.to_string()))
}

/// Keeps `current`, about to be replaced at `changed_at`, as a version of its tool.
pub(super) async fn insert_version<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    current: &Tool,
    changed_at: DateTime<Utc>,
) -> StoreResult<()> {
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
    .bind(implementation_json(current)?)
    .bind(&current.metadata)
    .bind(&current.embedding_model)
    .bind(changed_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Replaces the tool of the same id; its embedding goes when `embedding_model` is `None`.
pub(super) async fn update_tool<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    tool: &Tool,
) -> StoreResult<()> {
    bind_tool(
        sqlx::query(
            "UPDATE tools SET name = $2, description = $3, category = $4, tags = $5, \
             input_schema = $6, output_schema = $7, version = $8, implementation = $9, \
             metadata = $10, is_active = $11, updated_at = $12, embedding_model = $13, \
             embedding = CASE WHEN $13::text IS NULL THEN NULL ELSE embedding END, \
             description_embedding = \
                CASE WHEN $13::text IS NULL THEN NULL ELSE description_embedding END \
             WHERE id = $1",
        ),
        tool,
    )?
    .bind(tool.updated_at)
    .bind(&tool.embedding_model)
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

/// A tool's vector row (`VECTOR_COLUMNS`) as an entry of the vector index.
pub(super) fn vector_from_row(row: &PgRow) -> Result<StoredVector, sqlx::Error> {
    let vector: Vector = row.try_get("embedding")?;
    let description: Option<Vector> = row.try_get("description_embedding")?;
    Ok(Some((
        row.try_get("id")?,
        vector.to_vec(),
        description.map(|description| description.to_vec()),
        EntryMeta {
            model: row.try_get("embedding_model")?,
            facets: facets_from_row(row)?,
        },
    )))
}
