//! The one orchestrator: every rule of the catalogue lives here, between the HTTP layer and
//! the store.

pub mod batch;
pub mod import;
pub mod indexer;
pub mod model;
pub mod portability;
pub mod recorder;
pub mod search;
pub mod secrets;
pub mod served;
pub mod stdio;
pub mod steps;
pub mod validation;
pub mod versions;

use std::{collections::HashMap, sync::Arc, time::Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::telemetry::otel::{self, searched};
use crate::{
    builtins::BuiltinTool,
    embedding::{EmbedError, Embedder},
    error::ApiError,
    execution::{Executor, Outcome},
    store::{StoreError, ToolStore, Updated},
};
use indexer::Indexer;
use model::{
    CallResult, DEFAULT_CATEGORY, DEFAULT_VERSION, Execution, ExecutionFilter, ExecutionStatus,
    Implementation, NewTool, Page, Paged, Tool, ToolFilter, ToolPatch, ToolStats, now_micros,
};
use recorder::ExecutionRecorder;
use search::{AnsweredMode, SearchHit, SearchMode, SearchRequest, SearchResult};
use served::ServedTool;
pub use versions::Registered;

/// How often a change is decided again after other writers changed the tool first; each
/// lost attempt means another write succeeded, so this bounds only a request's wait.
const CHANGE_ATTEMPTS: usize = 64;

pub struct ToolRegistry {
    store: Arc<dyn ToolStore>,
    executor: Arc<Executor>,
    recorder: ExecutionRecorder,
    embedder: Arc<dyn Embedder>,
    indexer: Arc<Indexer>,
}

impl ToolRegistry {
    pub fn new(
        store: Arc<dyn ToolStore>,
        executor: Arc<Executor>,
        recorder: ExecutionRecorder,
        embedder: Arc<dyn Embedder>,
        indexer: Arc<Indexer>,
    ) -> Self {
        Self {
            store,
            executor,
            recorder,
            embedder,
            indexer,
        }
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn indexer(&self) -> &Arc<Indexer> {
        &self.indexer
    }

    /// Embeds tools' texts in one embedder call and stores the vectors in one transaction.
    /// When the embedder or the store fails, the tools keep their embeddings pending and the
    /// indexer retries later; the writes themselves never fail.
    async fn embed_now(&self, tools: &mut [Tool]) {
        if let Some(vectors) = self.embed_texts(tools).await {
            self.store_vectors(tools, &vectors).await;
        }
    }

    /// The vectors of tools' texts, or `None` (logged) when the embedder cannot make them.
    async fn embed_texts(&self, tools: &[Tool]) -> Option<Vec<Vec<f32>>> {
        let texts: Vec<String> = tools.iter().map(embedded_text).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        match self.embedder.embed_documents(&texts).await {
            Ok(vectors) if vectors.len() == tools.len() => Some(vectors),
            Ok(_) => {
                tracing::warn!(
                    tools = tools.len(),
                    "embedder returned too few vectors; pending"
                );
                None
            }
            Err(err) => {
                tracing::warn!(%err, tools = tools.len(), "embeddings pending until the embedder answers");
                self.indexer.wake();
                None
            }
        }
    }

    /// Stores tools' vectors and marks the tools stored with the current model.
    async fn store_vectors(&self, tools: &mut [Tool], vectors: &[Vec<f32>]) {
        let model = self.embedder.model_id().to_owned();
        let embeddings: Vec<(Uuid, &[f32])> = tools
            .iter()
            .zip(vectors)
            .map(|(tool, vector)| (tool.id, vector.as_slice()))
            .collect();
        match self.store.set_embeddings(&model, &embeddings).await {
            Ok(written) => {
                for (tool, written) in tools.iter_mut().zip(written) {
                    if written {
                        tool.embedding_model = Some(model.clone());
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, tools = tools.len(), "embeddings not stored; pending");
                self.indexer.wake();
            }
        }
    }

    /// Re-embeds one tool now; 503 when the embedder is unavailable.
    pub async fn reindex_tool(&self, id: Uuid) -> Result<Tool, ApiError> {
        let tool = self.get(id).await?;
        let model = self.embedder.model_id().to_owned();
        if self
            .indexer
            .embed_batch(std::slice::from_ref(&tool), &model)
            .await
        {
            self.get(id).await
        } else {
            Err(ApiError::Unavailable(
                "the embedder is unavailable; try again later".into(),
            ))
        }
    }

    /// Finds the tools that best match a task described in words.
    #[tracing::instrument(level = "debug", name = "registry.find", skip_all, fields(
        search.mode = request.mode.as_str(), search.k = request.limit))]
    pub async fn find(&self, request: &SearchRequest) -> Result<SearchResult, ApiError> {
        let clock = Instant::now();
        let filter = ToolFilter {
            category: request.category.clone(),
            tags: Vec::new(),
            active_only: true,
        };
        let limit = request.limit;
        // A request of several steps is searched whole and step by step; all its texts are
        // embedded in one model call.
        let steps = steps::split(&request.query);
        let texts: Vec<&str> = std::iter::once(request.query.as_str())
            .chain(steps.iter().map(String::as_str))
            .collect();
        let vectors = if request.mode == SearchMode::Text {
            None
        } else {
            match self.embedder.embed(&texts).await {
                Ok(vectors) if vectors.len() == texts.len() => Some(vectors),
                Ok(_) => None,
                Err(err) => {
                    log_embed_failure(&err);
                    None
                }
            }
        };
        let mode = match (request.mode, &vectors) {
            (SearchMode::Text, _) => AnsweredMode::Text,
            (_, None) => AnsweredMode::TextFallback,
            (SearchMode::Semantic, Some(_)) => AnsweredMode::Semantic,
            (SearchMode::Hybrid, Some(_)) => AnsweredMode::Hybrid,
        };
        let mut rankings = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let vector = vectors.as_ref().map(|v| v[i].as_slice());
            let mut ranked = self.rank(mode, text, vector, request, &filter).await?;
            // The fused score ranks within one answer only; the floor is absolute.
            ranked.retain(|hit| hit.relevance >= request.threshold);
            rankings.push(ranked);
        }
        let whole = rankings.remove(0);
        let (hits, answered_steps) = if rankings.is_empty() {
            let mut ranked = whole;
            ranked.truncate(limit as usize);
            let mut hits = self.with_tools(ranked).await?;
            search::sort_hits(&mut hits);
            let none = vec![None; hits.len()];
            (hits, none)
        } else {
            let merged = steps::merge(whole, rankings, limit as usize);
            let (ranked, answered): (Vec<_>, Vec<_>) = merged.into_iter().unzip();
            let hits = self.with_tools(ranked).await?;
            (hits, answered)
        };
        let mut hits = hits;
        if request.explain {
            for (hit, step) in hits.iter_mut().zip(answered_steps) {
                let asked = step.map_or(request.query.as_str(), |s| steps[s].as_str());
                let matched = match hit.tool.decode() {
                    Ok(tool) => crate::index::lexical::matched_fields(&tool, asked)
                        .into_iter()
                        .map(|(field, words)| (field.to_owned(), words))
                        .collect(),
                    Err(_) => Default::default(),
                };
                hit.explain = Some(search::Explanation {
                    step: step.map(|s| steps[s].clone()),
                    matched,
                    vector_score: hit.vector_score,
                    text_score: hit.text_score,
                    fused_score: hit.score,
                    vector_weight: (mode == AnsweredMode::Hybrid).then_some(request.vector_weight),
                });
            }
        }
        let took = clock.elapsed();
        let span = tracing::Span::current();
        otel::set_attribute(&span, "search.answered_mode", mode.as_str());
        otel::set_attribute(&span, "search.hits", hits.len() as i64);
        metrics::counter!("find_tool_requests_total",
            "requested" => request.mode.as_str(), "answered" => mode.as_str())
        .increment(1);
        metrics::histogram!("find_tool_duration_seconds", "mode" => mode.as_str())
            .record(took.as_secs_f64());
        Ok(SearchResult {
            tools: hits,
            mode,
            took_ms: took.as_secs_f64() * 1000.0,
        })
    }

    /// The candidates for one text in the mode that answers, best first.
    async fn rank(
        &self,
        mode: AnsweredMode,
        text: &str,
        vector: Option<&[f32]>,
        request: &SearchRequest,
        filter: &ToolFilter,
    ) -> Result<Vec<search::Fused>, ApiError> {
        let limit = request.limit;
        let model = self.embedder.model_id();
        Ok(match (mode, vector) {
            (AnsweredMode::Semantic, Some(vector)) => {
                let near = searched(
                    "search.vector",
                    limit,
                    self.store.nearest_ids(vector, model, limit, filter),
                )
                .await?;
                search::single_list(&near, true)
            }
            (AnsweredMode::Hybrid, Some(vector)) => {
                // Candidates are ranked and fused as ids; only the winners are read.
                let pool = search::hybrid_candidates(limit);
                let (near, lexical) = tokio::try_join!(
                    searched(
                        "search.vector",
                        pool,
                        self.store.nearest_ids(vector, model, pool, filter)
                    ),
                    searched(
                        "search.text",
                        pool,
                        self.store.text_search_ids(text, pool, filter)
                    ),
                )?;
                search::fuse(&near, &lexical, request.vector_weight)
            }
            _ => {
                let lexical = searched(
                    "search.text",
                    limit,
                    self.store.text_search_ids(text, limit, filter),
                )
                .await?;
                search::single_list(&lexical, false)
            }
        })
    }

    /// The hits of ranked candidates, in their order, with their tools as served.
    async fn with_tools(&self, ranked: Vec<search::Fused>) -> Result<Vec<SearchHit>, ApiError> {
        let ids: Vec<Uuid> = ranked.iter().map(|hit| hit.id).collect();
        let mut tools: HashMap<Uuid, ServedTool> = self
            .store
            .served_many(&ids)
            .await?
            .into_iter()
            .map(|tool| (tool.id(), tool))
            .collect();
        Ok(ranked
            .into_iter()
            .filter_map(|hit| {
                Some(SearchHit {
                    tool: tools.remove(&hit.id)?,
                    score: hit.score,
                    vector_score: hit.vector_score,
                    text_score: hit.text_score,
                    explain: None,
                })
            })
            .collect())
    }

    /// Tools whose vectors are nearest to this tool's, itself excluded.
    pub async fn similar(&self, id: Uuid, limit: u32) -> Result<Vec<SearchHit>, ApiError> {
        let tool = self.get(id).await?;
        let model = self.embedder.model_id();
        // The stored vector is the tool's own: no model run, and no embedder needed. A tool
        // still waiting for one has its text embedded now.
        let vector = match self.store.embedding(id, model).await? {
            Some(vector) => vector,
            None => {
                let text = embedded_text(&tool);
                let mut vectors = self.embedder.embed(&[text.as_str()]).await.map_err(|err| {
                    log_embed_failure(&err);
                    ApiError::Unavailable("the embedder is unavailable; try again later".into())
                })?;
                let Some(vector) = vectors.pop() else {
                    return Ok(Vec::new());
                };
                vector
            }
        };
        let filter = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let mut near = self
            .store
            .nearest_ids(&vector, model, limit + 1, &filter)
            .await?;
        near.retain(|(near_id, _)| *near_id != id);
        near.truncate(limit as usize);
        let mut hits = self.with_tools(search::single_list(&near, true)).await?;
        search::sort_hits(&mut hits);
        Ok(hits)
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    pub fn recorder(&self) -> &ExecutionRecorder {
        &self.recorder
    }

    /// Checks what only the running service knows: built-in handlers exist, and HTTP tools
    /// do not point at private addresses unless that is allowed.
    fn check_runnable(&self, implementation: &Implementation) -> Result<(), ApiError> {
        validation::implementation(implementation)?;
        match implementation {
            Implementation::Builtin { handler } if !self.executor.has_builtin(handler) => {
                Err(ApiError::validation(
                    "implementation.handler",
                    format!("there is no built-in tool '{handler}'"),
                ))
            }
            Implementation::Mcp {
                stdio: Some(server),
                ..
            } => self
                .executor
                .stdio()
                .check_command(&server.command)
                .map_err(|refused| ApiError::validation("implementation.stdio.command", refused)),
            Implementation::Http { url, .. } | Implementation::Mcp { url, .. } => {
                let guard = self.executor.url_guard();
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| ApiError::validation("implementation.url", e.to_string()))?;
                let named_local = !guard.allow_private
                    && parsed.host_str().is_some_and(|h| {
                        h.eq_ignore_ascii_case("localhost") || h.ends_with(".localhost")
                    });
                if named_local {
                    return Err(ApiError::validation(
                        "implementation.url",
                        "localhost is not allowed (ALLOW_PRIVATE_TOOL_URLS)",
                    ));
                }
                guard
                    .check_url(&parsed)
                    .map_err(|refused| ApiError::validation("implementation.url", refused))
            }
            _ => Ok(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn ToolStore> {
        &self.store
    }

    /// Registers a new tool, or with `upsert` updates the tool of that name.
    pub async fn register(&self, new: NewTool) -> Result<Registered, ApiError> {
        let (upsert, version_given) = (new.upsert, new.version.is_some());
        let tool = self.new_tool(new)?;
        if upsert && secrets::has_placeholder(&tool.implementation) {
            // The placeholder stands for a stored secret, so it only ever updates: a tool
            // that is not there is refused rather than created holding the literal.
            if self.store.get_by_name(&tool.name).await?.is_none() {
                secrets::refuse_placeholder(&tool.implementation)?;
            }
            let updated = self.replace_definition(tool, version_given).await?;
            return Ok(Registered::Updated(updated));
        }
        match self.store.create(&tool).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(_)) if upsert => {
                let updated = self.replace_definition(tool, version_given).await?;
                return Ok(Registered::Updated(updated));
            }
            Err(err) => return Err(err.into()),
        }
        let mut tool = tool;
        self.embed_now(std::slice::from_mut(&mut tool)).await;
        tracing::info!(tool = %tool.name, id = %tool.id, "tool registered");
        Ok(Registered::Created(tool))
    }

    /// A new tool from a checked definition (`upsert` aside), not stored yet.
    fn new_tool(&self, new: NewTool) -> Result<Tool, ApiError> {
        validation::name(&new.name)?;
        validation::description(&new.description)?;
        let category = new.category.unwrap_or_else(|| DEFAULT_CATEGORY.to_owned());
        validation::category(&category)?;
        let tags = validation::tags(new.tags)?;
        validation::schema("input_schema", &new.input_schema)?;
        if let Some(output) = &new.output_schema {
            validation::schema("output_schema", output)?;
        }
        let version = new.version.unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        validation::version(&version)?;
        self.check_runnable(&new.implementation)?;
        if !new.upsert {
            secrets::refuse_placeholder(&new.implementation)?;
        }
        let metadata = new.metadata.unwrap_or_else(|| serde_json::json!({}));
        validation::metadata(&metadata)?;

        let now = now_micros();
        let tool = Tool {
            id: Uuid::new_v4(),
            name: new.name,
            description: new.description,
            category,
            tags,
            input_schema: new.input_schema,
            output_schema: new.output_schema,
            version,
            implementation: new.implementation,
            metadata,
            is_active: new.is_active,
            embedding_model: None,
            created_at: now,
            updated_at: now,
        };
        validation::storable(&tool)?;
        Ok(tool)
    }

    pub async fn get(&self, id: Uuid) -> Result<Tool, ApiError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn get_by_name(&self, name: &str) -> Result<Tool, ApiError> {
        self.store
            .get_by_name(name)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("named '{name}'")))
    }

    /// The tool a call by name runs, as served (no database read while the tool cache holds
    /// it), so it is switched off for calls when it is for listings and searches.
    async fn callable(&self, name: &str) -> Result<Tool, ApiError> {
        let served = self
            .store
            .served_by_name(name)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("named '{name}'")))?;
        served.decode().map_err(|err| {
            ApiError::Internal(format!("the stored tool '{name}' cannot be read: {err}"))
        })
    }

    /// Applies a partial update. A `version`, when given, must not go down, and must go up
    /// if the definition changes: both checked against the row the update replaces.
    pub async fn update(&self, id: Uuid, patch: ToolPatch) -> Result<Tool, ApiError> {
        let before = self.get(id).await?;
        let patch = self.checked_patch(patch)?;
        self.change(before, |current| {
            let mut tool = current.clone();
            apply_patch(&patch, &mut tool);
            secrets::restore_metadata(&mut tool.metadata, &current.metadata);
            if let Some(implementation) = &patch.implementation {
                // Secrets sent back as the redaction placeholder keep their stored values;
                // restored first, so the version check compares what would be stored.
                tool.implementation =
                    secrets::restore(implementation.clone(), &current.implementation)?;
                self.check_runnable(&tool.implementation)?;
            }
            if patch.version.is_some() {
                versions::version_must_rise(current, &tool)?;
            }
            Ok(Some(tool))
        })
        .await
    }

    /// The patch with each field it names checked (and tags normalised).
    fn checked_patch(&self, mut patch: ToolPatch) -> Result<ToolPatch, ApiError> {
        if let Some(name) = &patch.name {
            validation::name(name)?;
        }
        if let Some(description) = &patch.description {
            validation::description(description)?;
        }
        if let Some(category) = &patch.category {
            validation::category(category)?;
        }
        if let Some(tags) = patch.tags.take() {
            patch.tags = Some(validation::tags(tags)?);
        }
        if let Some(schema) = &patch.input_schema {
            validation::schema("input_schema", schema)?;
        }
        if let Some(Some(schema)) = &patch.output_schema {
            validation::schema("output_schema", schema)?;
        }
        if let Some(version) = &patch.version {
            validation::version(version)?;
        }
        if let Some(metadata) = &patch.metadata {
            validation::metadata(metadata)?;
        }
        Ok(patch)
    }

    /// Stores what `decide` makes of the tool (`None`: leave it as it is). A decision made
    /// on a row that another writer changed before it was written is not stored: the tool
    /// is read again and the decision made again, so no concurrent change is overwritten
    /// and every rule `decide` checks holds for the row it replaces.
    async fn change(
        &self,
        mut before: Tool,
        mut decide: impl FnMut(&Tool) -> Result<Option<Tool>, ApiError> + Send,
    ) -> Result<Tool, ApiError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let Some(tool) = decide(&before)? else {
                return Ok(before);
            };
            if let Some(saved) = self.save(&before, tool).await? {
                return Ok(saved);
            }
            before = self.get(before.id).await?;
        }
        Err(ApiError::Unavailable(format!(
            "the tool {} changed under each of {CHANGE_ATTEMPTS} attempts to update it; try again",
            before.id
        )))
    }

    /// Stores `tool` in place of `before` (same id) if the stored row is still `before`;
    /// `None` if it changed since. A change to the text that is embedded drops the stored
    /// embedding and makes it again.
    async fn save(&self, before: &Tool, mut tool: Tool) -> Result<Option<Tool>, ApiError> {
        let text_changed = embedded_text(&tool) != embedded_text(before);
        if text_changed {
            tool.embedding_model = None;
        }
        tool.updated_at = now_micros();
        validation::storable(&tool)?;
        match self.store.update_if(&tool, Some(before)).await? {
            Updated::Written => {}
            Updated::Changed => return Ok(None),
            Updated::NotFound => {
                return Err(ApiError::tool_not_found(format_args!(
                    "with id {}",
                    tool.id
                )));
            }
        }
        if text_changed {
            self.embed_now(std::slice::from_mut(&mut tool)).await;
        }
        tracing::info!(tool = %tool.name, id = %tool.id, "tool updated");
        Ok(Some(tool))
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), ApiError> {
        if self.store.delete(id).await? {
            tracing::info!(%id, "tool deleted");
            Ok(())
        } else {
            Err(ApiError::tool_not_found(format_args!("with id {id}")))
        }
    }

    pub async fn set_active(&self, id: Uuid, active: bool) -> Result<Tool, ApiError> {
        self.store
            .set_active(id, active)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn list(&self, filter: &ToolFilter, page: Page) -> Result<Paged<Tool>, ApiError> {
        Ok(self.store.list(filter, page).await?)
    }

    /// The categories of active tools, sorted. It reads the whole catalogue, so it serves
    /// answers that found nothing (to name the categories there are), not every request.
    pub async fn active_categories(&self) -> Result<Vec<String>, ApiError> {
        let mut categories = std::collections::BTreeSet::new();
        self.visit_active(|tool| {
            categories.insert(tool.category);
        })
        .await?;
        Ok(categories.into_iter().collect())
    }

    /// Hands every active tool to `visit`, reading the catalogue a page at a time, for the
    /// few answers that need all of it.
    pub async fn visit_active(&self, mut visit: impl FnMut(Tool) + Send) -> Result<(), ApiError> {
        const PAGE: u32 = 500;
        let filter = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let mut offset = 0;
        loop {
            let paged = self
                .store
                .list(
                    &filter,
                    Page {
                        limit: PAGE,
                        offset,
                    },
                )
                .await?;
            let count = paged.items.len() as u32;
            paged.items.into_iter().for_each(&mut visit);
            offset += count;
            if count < PAGE || u64::from(offset) >= paged.total {
                return Ok(());
            }
        }
    }

    /// `list` as the read routes serve it: tools encoded once and shared between responses.
    pub async fn list_served(
        &self,
        filter: &ToolFilter,
        page: Page,
    ) -> Result<Paged<ServedTool>, ApiError> {
        Ok(self.store.list_served(filter, page).await?)
    }

    /// Validates the arguments, runs the tool and queues its execution record. A tool that
    /// fails is a result with status `error`, not an `Err`.
    #[tracing::instrument(level = "debug", name = "registry.call_tool", skip_all, fields(
        gen_ai.tool.name = name))]
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallResult, ApiError> {
        let tool = self.callable(name).await?;
        if !tool.is_active {
            return Err(ApiError::NotFound {
                code: "tool_inactive",
                message: format!("the tool '{name}' is deactivated"),
            });
        }
        validation::without_nul("arguments", &arguments)?;
        self.executor.validate_arguments(&tool, &arguments)?;
        let started_at = now_micros();
        let clock = Instant::now();
        let outcome = self.executor.run(&tool, arguments.clone()).await?;
        let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let completed_at =
            started_at + chrono::Duration::microseconds((duration_ms * 1000.0).round() as i64);
        let mut upstream = None;
        let (status, result, error) = match outcome {
            Outcome::Success(value) => (ExecutionStatus::Success, Some(value), None),
            Outcome::Error(message) => (ExecutionStatus::Error, None, Some(message)),
            Outcome::Timeout(message) => (ExecutionStatus::Timeout, None, Some(message)),
            Outcome::Upstream(answer) => {
                let value = serde_json::to_value(&answer).ok();
                let failed = answer.is_error == Some(true);
                let message = failed.then(|| upstream_error_text(&answer));
                upstream = Some(answer);
                let status = if failed {
                    ExecutionStatus::Error
                } else {
                    ExecutionStatus::Success
                };
                (status, value, message)
            }
        };
        let execution = Execution {
            id: Uuid::new_v4(),
            tool_id: tool.id,
            tool_name: tool.name.clone(),
            status,
            arguments,
            result: result.clone(),
            error: error.clone(),
            duration_ms,
            started_at,
            completed_at,
            note: None,
        };
        metrics::counter!("tool_executions_total",
            "tool" => execution.tool_name.clone(), "status" => status.as_str())
        .increment(1);
        metrics::histogram!("tool_execution_duration_seconds", "tool" => execution.tool_name.clone())
            .record(duration_ms / 1000.0);
        let answer = CallResult {
            execution_id: execution.id,
            tool: tool.name,
            status,
            result,
            error,
            duration_ms,
            upstream,
        };
        self.recorder.record(execution).await;
        Ok(answer)
    }

    /// Executions, newest first, including those of every call this process has answered.
    pub async fn executions(
        &self,
        filter: &ExecutionFilter,
        page: Page,
    ) -> Result<Paged<Execution>, ApiError> {
        self.recorder.caught_up().await;
        Ok(self.store.list_executions(filter, page).await?)
    }

    pub async fn execution(&self, id: Uuid) -> Result<Execution, ApiError> {
        self.recorder.caught_up().await;
        self.store
            .get_execution(id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                code: "execution_not_found",
                message: format!("no execution with id {id}"),
            })
    }

    /// Call statistics counting every call this process has answered.
    pub async fn stats(&self, id: Uuid) -> Result<ToolStats, ApiError> {
        self.get(id).await?;
        self.recorder.caught_up().await;
        Ok(self.store.tool_stats(id).await?)
    }

    /// Registers every built-in tool, or brings its stored definition up to date; tools
    /// that already match are left alone, so this is safe at every start of every replica.
    pub async fn sync_builtins(&self) -> Result<(), ApiError> {
        for builtin in self.executor.builtins() {
            let wanted = builtin_definition(builtin.as_ref());
            match self.store.get_by_name(&wanted.name).await? {
                None => match self.register(wanted).await {
                    Ok(_) | Err(ApiError::Conflict { .. }) => {}
                    Err(err) => return Err(err),
                },
                Some(stored) => {
                    let patch = ToolPatch {
                        description: Some(wanted.description),
                        category: wanted.category,
                        tags: Some(wanted.tags),
                        input_schema: Some(wanted.input_schema),
                        output_schema: Some(wanted.output_schema),
                        implementation: Some(wanted.implementation),
                        ..ToolPatch::default()
                    };
                    if !patch_matches(&stored, &patch) {
                        self.update(stored.id, patch).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn log_embed_failure(err: &EmbedError) {
    tracing::warn!(%err, "embedder failed; answering from full text");
}

fn builtin_definition(builtin: &dyn BuiltinTool) -> NewTool {
    NewTool {
        name: builtin.name().to_owned(),
        description: builtin.description().to_owned(),
        category: Some(builtin.category().to_owned()),
        tags: builtin.tags().iter().map(|t| t.to_string()).collect(),
        input_schema: builtin.input_schema(),
        output_schema: builtin.output_schema(),
        version: None,
        implementation: Implementation::Builtin {
            handler: builtin.name().to_owned(),
        },
        metadata: Some(serde_json::json!({"builtin": true})),
        is_active: true,
        upsert: false,
    }
}

/// Sets the fields `patch` names; the others stay as stored.
fn apply_patch(patch: &ToolPatch, tool: &mut Tool) {
    if let Some(name) = &patch.name {
        tool.name.clone_from(name);
    }
    if let Some(description) = &patch.description {
        tool.description.clone_from(description);
    }
    if let Some(category) = &patch.category {
        tool.category.clone_from(category);
    }
    if let Some(tags) = &patch.tags {
        tool.tags.clone_from(tags);
    }
    if let Some(schema) = &patch.input_schema {
        tool.input_schema.clone_from(schema);
    }
    if let Some(output) = &patch.output_schema {
        tool.output_schema.clone_from(output);
    }
    if let Some(version) = &patch.version {
        tool.version.clone_from(version);
    }
    if let Some(implementation) = &patch.implementation {
        tool.implementation = implementation.clone();
    }
    if let Some(metadata) = &patch.metadata {
        tool.metadata.clone_from(metadata);
    }
    if let Some(active) = patch.is_active {
        tool.is_active = active;
    }
}

/// True when applying `patch` would change nothing the built-in defines.
fn patch_matches(stored: &Tool, patch: &ToolPatch) -> bool {
    patch.description.as_ref() == Some(&stored.description)
        && patch.category.as_ref() == Some(&stored.category)
        && patch.tags.as_ref() == Some(&stored.tags)
        && patch.input_schema.as_ref() == Some(&stored.input_schema)
        && patch.output_schema.as_ref() == Some(&stored.output_schema)
        && patch.implementation.as_ref() == Some(&stored.implementation)
}

/// The text an embedding is made from: name, description, tags, and the names and
/// descriptions of the input parameters.
/// The text blocks of an upstream error result, for the execution record's `error`.
fn upstream_error_text(answer: &rmcp::model::CallToolResult) -> String {
    let text: Vec<&str> = answer
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect();
    if text.is_empty() {
        "the upstream tool reported an error".to_owned()
    } else {
        text.join("\n")
    }
}

pub fn embedded_text(tool: &Tool) -> String {
    let mut text = format!("{}: {}", tool.name, tool.description);
    if !tool.tags.is_empty() {
        text.push_str("\nTags: ");
        text.push_str(&tool.tags.join(", "));
    }
    if let Some(properties) = tool
        .input_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (param, spec) in properties {
            text.push_str("\n- ");
            text.push_str(param);
            if let Some(description) = spec.get("description").and_then(|d| d.as_str()) {
                text.push_str(": ");
                text.push_str(description);
            }
        }
    }
    text
}
