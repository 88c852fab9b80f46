//! The storage contract: every behaviour of `ToolStore`, run against both backends, one
//! file per concern; the helpers they share are here.

mod catalogue;
mod executions;
mod replicas;
mod search;

use std::sync::Arc;

use tokio::{sync::Barrier, task::JoinSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tool_registry::{
    build_registry,
    domain::{
        Execution, ExecutionFilter, ExecutionStatus, Implementation, Page, Tool, ToolFilter,
        now_micros,
    },
    registry::requests::{NewTool, ToolPatch},
    store::{Replacement, StoreError, StoreResult, ToolStore, ToolVectors, Updated},
};
use uuid::Uuid;

use crate::helpers::{Backend, DIMS, TestDb};

pub(crate) fn tool(name: &str, category: &str, tags: &[&str], description: &str) -> Tool {
    let now = now_micros();
    Tool {
        id: Uuid::new_v4(),
        name: name.into(),
        description: description.into(),
        category: category.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        output_schema: None,
        version: "1.0.0".into(),
        implementation: Implementation::Http {
            url: "https://tools.example/run".into(),
            method: "POST".into(),
            headers: [("x-team".to_string(), "search".to_string())].into(),
            timeout_ms: Some(1500),
        },
        metadata: json!({"owner": "tests"}),
        is_active: true,
        embedding_model: None,
        created_at: now,
        updated_at: now,
    }
}

async fn fresh(backend: Backend) -> (TestDb, Arc<dyn ToolStore>) {
    let db = TestDb::new(backend).await;
    let store = db.open(DIMS).await;
    (db, store)
}

/// A tool's document vector, without a description vector.
fn document_only(id: Uuid, document: &[f32]) -> ToolVectors<'_> {
    ToolVectors {
        id,
        document,
        description: None,
    }
}

/// Deterministic pseudo-random vectors (a linear congruential generator).
fn vectors(count: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            (0..DIMS)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// A tool with its score, as the searches below return them.
#[derive(Debug)]
struct Scored {
    tool: Tool,
    score: f64,
}

/// The store's ranked ids with their tools as served (through the tool cache), as the
/// registry answers a search.
#[async_trait::async_trait]
trait SearchWithTools {
    async fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>>;
    async fn text_search(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>>;
}

#[async_trait::async_trait]
impl SearchWithTools for Arc<dyn ToolStore> {
    async fn nearest(
        &self,
        query: &[f32],
        model: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>> {
        let ranked = self.nearest_ids(query, model, k, filter).await?;
        with_tools(self, ranked).await
    }

    async fn text_search(
        &self,
        query: &str,
        k: u32,
        filter: &ToolFilter,
    ) -> StoreResult<Vec<Scored>> {
        let ranked = self.text_search_ids(query, k, filter).await?;
        with_tools(self, ranked.iter().map(|hit| (hit.id, hit.score)).collect()).await
    }
}

async fn with_tools(
    store: &Arc<dyn ToolStore>,
    ranked: Vec<(Uuid, f64)>,
) -> StoreResult<Vec<Scored>> {
    let ids: Vec<Uuid> = ranked.iter().map(|(id, _)| *id).collect();
    let served = store.served_many(&ids).await?;
    Ok(ranked
        .into_iter()
        .filter_map(|(id, score)| {
            let tool = served.iter().find(|tool| tool.id() == id)?;
            Some(Scored {
                tool: tool.decode().expect("a served tool decodes"),
                score,
            })
        })
        .collect())
}

const ALL: Page = Page {
    limit: 500,
    offset: 0,
};

fn execution(tool: &Tool, status: ExecutionStatus, duration_ms: f64, ago_s: i64) -> Execution {
    let started = now_micros() - Duration::seconds(ago_s);
    Execution {
        id: Uuid::new_v4(),
        tool_id: tool.id,
        tool_name: tool.name.clone(),
        status,
        arguments: json!({"q": "x", "n": [1, 2]}),
        result: (status == ExecutionStatus::Success).then(|| json!({"ok": true})),
        error: (status != ExecutionStatus::Success).then(|| "it failed".to_string()),
        duration_ms,
        started_at: started,
        completed_at: started + Duration::microseconds((duration_ms * 1000.0) as i64),
        note: None,
    }
}

/// Waits for one change signal, then swallows any that arrive right after it.
async fn expect_change(changes: &mut tokio::sync::broadcast::Receiver<()>, after: &str) {
    let signal = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv()).await;
    assert!(
        matches!(signal, Ok(Ok(()))),
        "no change announced after {after}: {signal:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    while changes.try_recv().is_ok() {}
}

async fn expect_quiet(changes: &mut tokio::sync::broadcast::Receiver<()>, after: &str) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        changes.try_recv().is_err(),
        "a change was announced after {after}"
    );
}

/// The one tool served under `id` (through the tool cache), decoded.
async fn served(store: &Arc<dyn ToolStore>, id: Uuid) -> Option<Tool> {
    let served = store.served_many(&[id]).await.unwrap();
    assert!(served.len() <= 1);
    served.first().map(|tool| tool.decode().unwrap())
}

/// The tool served under `name`, as a call finds it, decoded.
async fn served_named(store: &Arc<dyn ToolStore>, name: &str) -> Option<Tool> {
    let served = store.served_by_name(name).await.unwrap();
    served.map(|tool| tool.decode().unwrap())
}

/// Polls `current` until it gives `expected` (notifications arrive asynchronously), for up
/// to five seconds.
async fn eventually_equal<T, F, Fut>(mut current: F, expected: T, what: &str)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut last = current().await;
    for _ in 0..100 {
        if last == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        last = current().await;
    }
    assert_eq!(last, expected, "{what}");
}

/// The ids of the active tools nearest to the all-ones vector of model `m`.
async fn nearest_active(store: &Arc<dyn ToolStore>) -> Vec<Uuid> {
    let active = ToolFilter {
        active_only: true,
        ..ToolFilter::default()
    };
    store
        .nearest_ids(&[1.0; DIMS], "m", 5, &active)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// A tool definition of the built-in `string_uppercase`, as an operator registers it.
fn new_tool(name: &str) -> NewTool {
    NewTool {
        name: name.into(),
        description: "Shouts the text back".into(),
        category: None,
        tags: Vec::new(),
        input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        output_schema: None,
        version: None,
        implementation: Implementation::Builtin {
            handler: "string_uppercase".into(),
        },
        metadata: None,
        is_active: true,
        upsert: false,
    }
}

/// Makes the database refuse records whose result (or arguments) mention "poison".
async fn refuse_poisoned_records(db: &TestDb) {
    use sqlx::Connection;
    match db.database_url() {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
                   IF NEW.result::text LIKE '%poison%' OR NEW.arguments::text LIKE '%poison%' THEN \
                     RAISE EXCEPTION 'poisoned record'; \
                   END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_executions \
                   FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        None => {
            let file = db.data_dir().join("registry.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", file.display()))
                .await
                .unwrap();
            sqlx::raw_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_executions \
                 WHEN NEW.result LIKE '%poison%' OR NEW.arguments LIKE '%poison%' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned record'); END;",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}
