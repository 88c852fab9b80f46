//! The embedded store's execution log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{
    EmbeddedStore,
    rows::{EXECUTION_COLUMNS, execution_from_row, time_from_micros, to_json},
};
use crate::{
    domain::{CallBucket, Execution, ExecutionFilter, Page, Paged, ToolStats},
    store::{ExecutionLog, StoreResult, percentile_cont},
};

/// Rows of one INSERT of execution records: 11 parameters each, well under SQLite's limit
/// of 32,766 parameters a statement.
const EXECUTIONS_PER_INSERT: usize = 500;

#[async_trait]
impl ExecutionLog for EmbeddedStore {
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
}
