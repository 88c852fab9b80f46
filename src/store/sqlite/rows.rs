//! The embedded store's rows: the column list of each table, and tools, versions,
//! executions and vectors to and from SQLite's values (UUIDs and JSON as text, times as
//! microseconds, vectors as little-endian `f32` blobs).

use chrono::{DateTime, Utc};
use sqlx::{Executor, Row, Sqlite, sqlite::SqliteRow};
use uuid::Uuid;

use crate::{
    domain::{Execution, ExecutionStatus, Tool},
    index::{shared_vectors::VectorRow, vector::EntryMeta},
    store::{Facets, StoreError, StoreResult, ToolVectors},
};

pub(super) const TOOL_COLUMNS: &str = "tools.id, tools.name, tools.description, tools.category, tools.tags, \
     tools.input_schema, tools.output_schema, tools.version, tools.implementation, \
     tools.metadata, tools.is_active, tools.embedding_model, tools.created_at, tools.updated_at";

/// The columns of a `tool_versions` row under the names of `TOOL_COLUMNS`, so that
/// `tool_from_row` reads it (see `version_from_tool`).
pub(super) const VERSION_COLUMNS: &str = "tool_id AS id, name, description, category, tags, input_schema, \
     output_schema, version, implementation, metadata, 1 AS is_active, embedding_model, \
     changed_at AS created_at, changed_at AS updated_at";

/// The columns a tool's vector is read with, with what searches filter it by.
pub(super) const VECTOR_COLUMNS: &str =
    "id, category, tags, is_active, embedding, description_embedding, embedding_model";

pub(super) const EXECUTION_COLUMNS: &str = "id, tool_id, tool_name, status, arguments, result, error, \
     duration_ms, started_at, completed_at, note";

/// Binds a tool's id and the columns both writes of a tool set (?1 to ?11, in the order of
/// `TOOL_COLUMNS`), so that a new column is bound in one place.
fn bind_tool<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    tool: &'q Tool,
) -> StoreResult<sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>> {
    Ok(query
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
        .bind(tool.is_active))
}

pub(super) async fn insert_tool<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    tool: &Tool,
) -> StoreResult<()> {
    bind_tool(
        sqlx::query(
            "INSERT INTO tools (id, name, description, category, tags, input_schema, \
             output_schema, version, implementation, metadata, is_active, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        tool,
    )?
    .bind(tool.created_at.timestamp_micros())
    .bind(tool.updated_at.timestamp_micros())
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

/// Stores one tool's vectors; the tool's filter fields, or `None` if there is no such tool.
pub(super) async fn store_embedding<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    vectors: &ToolVectors<'_>,
    model: &str,
) -> StoreResult<Option<Facets>> {
    let row = sqlx::query(
        "UPDATE tools SET embedding = ?2, description_embedding = ?3, embedding_model = ?4 \
         WHERE id = ?1 RETURNING category, tags, is_active",
    )
    .bind(vectors.id.to_string())
    .bind(vector_to_blob(vectors.document))
    .bind(vectors.description.map(vector_to_blob))
    .bind(model)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(facets_from_row).transpose()?)
}

/// Keeps `current`, about to be replaced at `changed_at`, as a version of its tool.
pub(super) async fn insert_version<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    current: &Tool,
    changed_at: DateTime<Utc>,
) -> StoreResult<()> {
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
    .bind(changed_at.timestamp_micros())
    .execute(executor)
    .await?;
    Ok(())
}

/// Replaces the tool of the same id; its embedding goes when `embedding_model` is `None`.
pub(super) async fn update_tool<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    tool: &Tool,
) -> StoreResult<()> {
    bind_tool(
        sqlx::query(
            "UPDATE tools SET name = ?2, description = ?3, category = ?4, tags = ?5, \
             input_schema = ?6, output_schema = ?7, version = ?8, implementation = ?9, \
             metadata = ?10, is_active = ?11, updated_at = ?12, embedding_model = ?13, \
             embedding = CASE WHEN ?13 IS NULL THEN NULL ELSE embedding END, \
             description_embedding = \
                CASE WHEN ?13 IS NULL THEN NULL ELSE description_embedding END \
             WHERE id = ?1",
        ),
        tool,
    )?
    .bind(tool.updated_at.timestamp_micros())
    .bind(&tool.embedding_model)
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx(e, Some(&tool.name)))?;
    Ok(())
}

pub(super) fn facets_from_row(row: &SqliteRow) -> Result<Facets, sqlx::Error> {
    Ok(Facets {
        category: row.try_get("category")?,
        tags: parse_json(row.try_get("tags")?)?,
        is_active: row.try_get("is_active")?,
    })
}

pub(super) fn vector_to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn vector_from_blob(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

pub(super) fn parse_uuid(text: String) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(&text).map_err(|e| decode_error(format!("bad uuid {text}: {e}")))
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(text: String) -> Result<T, sqlx::Error> {
    serde_json::from_str(&text).map_err(|e| decode_error(format!("bad stored JSON: {e}")))
}

pub(super) fn to_json(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

pub(super) fn time_from_micros(micros: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| decode_error(format!("timestamp out of range: {micros}")))
}

pub(super) fn tool_from_row(row: &SqliteRow) -> Result<Tool, sqlx::Error> {
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

pub(super) fn execution_from_row(row: &SqliteRow) -> Result<Execution, sqlx::Error> {
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

/// A tool's vector row (`VECTOR_COLUMNS`) as an entry of the vector index.
pub(super) fn vector_from_row(row: &SqliteRow) -> Result<VectorRow, sqlx::Error> {
    let blob: &[u8] = row.try_get("embedding")?;
    let description: Option<&[u8]> = row.try_get("description_embedding")?;
    Ok((
        parse_uuid(row.try_get("id")?)?,
        vector_from_blob(blob),
        description.map(vector_from_blob),
        EntryMeta {
            model: row.try_get("embedding_model")?,
            facets: facets_from_row(row)?,
        },
    ))
}
