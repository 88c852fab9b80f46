//! Finding tools: for a task described in words (`find_tool`), and near a given tool.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    time::Instant,
};

use uuid::Uuid;

use super::{
    ToolRegistry,
    catalogue::no_such_category,
    embeddings::log_embed_failure,
    literals,
    search::{self, AnsweredMode, SearchHit, SearchMode, SearchRequest, SearchResult},
    steps,
};
use crate::{
    domain::{
        RegistryError, ServedTool, ToolFilter,
        document::{self, embedded_text},
    },
    index::{fusion, lexical},
    store::StoreError,
    telemetry::otel::{self, searched},
};

impl ToolRegistry {
    /// `find` as agents ask it: when a category filter finds nothing, the category is
    /// matched in any case and the search made again; when no category matches, the note
    /// names the categories there are.
    pub async fn find_for_agent(
        &self,
        mut search: SearchRequest,
    ) -> Result<(SearchResult, Option<String>), RegistryError> {
        let mut found = self.find(&search).await?;
        let mut note = None;
        if found.tools.is_empty()
            && let Some(requested) = search.category.clone()
        {
            match self.stored_category(&requested).await? {
                Ok(stored) if stored != requested => {
                    search.category = Some(stored);
                    found = self.find(&search).await?;
                }
                Ok(_) => {}
                Err(categories) => note = Some(no_such_category(&requested, &categories)),
            }
        }
        Ok((found, note))
    }

    /// Finds the tools that best match a task described in words.
    #[tracing::instrument(level = "debug", name = "registry.find", skip_all, fields(
        search.mode = request.mode.as_str(), search.k = request.limit))]
    pub async fn find(&self, request: &SearchRequest) -> Result<SearchResult, RegistryError> {
        let clock = Instant::now();
        let filter = ToolFilter {
            category: request.category.clone(),
            tags: Vec::new(),
            active_only: true,
        };
        let limit = request.limit;
        // A request of several steps is searched whole and step by step. Only the steps go
        // through the model, in one call: the whole request's vector is their mean, which
        // ranks as well as its own and spares a pass over the whole request's tokens (the
        // batch would otherwise pad every step to the whole request's length).
        let steps = steps::split(&request.query);
        let texts: Vec<&str> = std::iter::once(request.query.as_str())
            .chain(steps.iter().map(String::as_str))
            .collect();
        let vectors = if request.mode == SearchMode::Text {
            None
        } else {
            let embedded = if steps.is_empty() {
                &texts[..]
            } else {
                &texts[1..]
            };
            let read: Vec<Cow<'_, str>> = embedded
                .iter()
                .map(|text| self.model_reads(text, steps.is_empty()))
                .collect();
            let embedded: Vec<&str> = read.iter().map(AsRef::as_ref).collect();
            match self.embedder.embed(&embedded).await {
                Ok(vectors) if vectors.len() == embedded.len() => {
                    Some(steps::with_whole(&steps, vectors))
                }
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
        // The vector weight each text was fused with (hybrid only), for `explain`.
        let mut weights = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let vector = vectors.as_ref().map(|v| v[i].as_slice());
            let part = match i {
                0 if steps.is_empty() => Part::Request,
                0 => Part::WholeOfSteps,
                _ => Part::Step,
            };
            let (mut ranked, weight) = self
                .rank(mode, text, vector, request, &filter, part)
                .await?;
            // The fused score ranks within one answer only; the floor is absolute.
            ranked.retain(|hit| hit.relevance >= request.threshold);
            rankings.push(ranked);
            weights.push(weight);
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
            let answered_by: HashMap<Uuid, Option<usize>> =
                merged.iter().map(|(hit, step)| (hit.id, *step)).collect();
            let hits = self
                .with_tools(merged.into_iter().map(|(hit, _)| hit).collect())
                .await?;
            // A tool deleted meanwhile is missing from `hits`: each hit's step is found by
            // its id, not its place.
            let answered = hits
                .iter()
                .map(|hit| answered_by.get(&hit.tool.id()).copied().flatten())
                .collect();
            (hits, answered)
        };
        let mut hits = hits;
        if request.explain {
            // Each text asked is split and stemmed once, whatever the number of hits.
            let mut prepared: Vec<lexical::MatchQuery> = std::iter::once(&request.query)
                .chain(&steps)
                .map(|asked| lexical::MatchQuery::new(asked))
                .collect();
            for (hit, step) in hits.iter_mut().zip(answered_steps) {
                let asked = step.map_or(request.query.as_str(), |s| steps[s].as_str());
                let matched = match hit.tool.decode() {
                    Ok(tool) => prepared[step.map_or(0, |s| s + 1)]
                        .matched_fields(&tool)
                        .into_iter()
                        .map(|(field, words)| (field.to_owned(), words))
                        .collect(),
                    Err(_) => Default::default(),
                };
                // The whole of a request of several steps is never read by the model: its
                // vector is its steps' mean.
                let model_read = match (mode, step) {
                    (AnsweredMode::Semantic | AnsweredMode::Hybrid, Some(_)) => Some(asked),
                    (AnsweredMode::Semantic | AnsweredMode::Hybrid, None) if steps.is_empty() => {
                        Some(asked)
                    }
                    _ => None,
                }
                .and_then(|asked| {
                    match self.model_reads(asked, steps.is_empty()) {
                        Cow::Owned(read) => Some(read),
                        Cow::Borrowed(_) => None,
                    }
                });
                hit.explain = Some(search::Explanation {
                    step: step.map(|s| steps[s].clone()),
                    model_read,
                    matched,
                    vector_score: hit.vector_score,
                    text_score: hit.text_score,
                    text_coverage: hit.text_coverage,
                    fused_score: hit.score,
                    vector_weight: weights[step.map_or(0, |s| s + 1)],
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

    /// A request (or one step of it) as the model reads it: literal values (quoted names,
    /// addresses, paths) as what they are, since full-text search matches them as written;
    /// a request of one step framed as the model finds tools best (`request_frame`).
    fn model_reads<'a>(&self, text: &'a str, one_step: bool) -> Cow<'a, str> {
        let generalised = literals::generalised(text);
        match self.embedder.request_frame() {
            Some(frame) if one_step => Cow::Owned(format!("{frame}{generalised}")),
            _ => generalised,
        }
    }

    /// The candidates for one text in the mode that answers, best first.
    async fn rank(
        &self,
        mode: AnsweredMode,
        text: &str,
        vector: Option<&[f32]>,
        request: &SearchRequest,
        filter: &ToolFilter,
        part: Part,
    ) -> Result<(Vec<fusion::Fused>, Option<f64>), RegistryError> {
        let limit = request.limit;
        Ok(match (mode, vector) {
            (AnsweredMode::Semantic, Some(vector)) => {
                let near =
                    searched("search.vector", limit, self.nearest(vector, limit, filter)).await?;
                (fusion::vector_list(&near), None)
            }
            (AnsweredMode::Hybrid, Some(vector)) => {
                // Candidates are ranked and fused as ids; only the winners are read.
                let pool = fusion::hybrid_candidates(limit);
                let (near, lexical) = tokio::try_join!(
                    searched("search.vector", pool, self.nearest(vector, pool, filter)),
                    searched(
                        "search.text",
                        pool,
                        self.store.text_search_ids(text, pool, filter)
                    ),
                )?;
                let by_coverage = part != Part::WholeOfSteps;
                let weight = fusion::coverage_weight(
                    part.vector_weight(request.vector_weight),
                    &lexical,
                    by_coverage,
                );
                let mut fused = fusion::fuse(&near, &lexical, weight, by_coverage);
                // The model's own best keep a place in the first five, unless the catalogue
                // is being re-embedded: its vectors then cover only part of it.
                if self.indexer.caught_up() {
                    fusion::keep_vector_places(&mut fused, &near, weight);
                }
                (fused, Some(weight))
            }
            _ => {
                let lexical = searched(
                    "search.text",
                    limit,
                    self.store.text_search_ids(text, limit, filter),
                )
                .await?;
                (fusion::text_list(&lexical), None)
            }
        })
    }

    /// The `k` tools nearest a vector, (id, cosine) pairs, best first: those with vectors of
    /// the current tag and, while the indexer has not caught up (after a start with a new
    /// tool text it is making every vector again), those with vectors this model made from an
    /// earlier tool text. One model made both, so their cosines compare, and each stands for
    /// its tool until it is made again: the catalogue stays searchable throughout.
    async fn nearest(
        &self,
        vector: &[f32],
        k: u32,
        filter: &ToolFilter,
    ) -> Result<Vec<(Uuid, f64)>, StoreError> {
        let mut near = self
            .store
            .nearest_ids(vector, self.vector_model(), k, filter)
            .await?;
        if !self.indexer.caught_up() {
            for model in document::earlier_vector_models(self.embedder.model_id()) {
                near.extend(self.store.nearest_ids(vector, &model, k, filter).await?);
            }
            near.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            // A tool has one vector of one tag, but one the indexer re-tags between the two
            // reads can be in both (or neither): it counts once.
            let mut seen = HashSet::with_capacity(near.len());
            near.retain(|(id, _)| seen.insert(*id));
            near.truncate(k as usize);
        }
        Ok(near)
    }

    /// The hits of ranked candidates, in their order, with their tools as served.
    pub(super) async fn with_tools(
        &self,
        ranked: Vec<fusion::Fused>,
    ) -> Result<Vec<SearchHit>, RegistryError> {
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
                    text_coverage: hit.text_coverage,
                    explain: None,
                })
            })
            .collect())
    }

    /// Tools whose vectors are nearest to this tool's, itself excluded.
    pub async fn similar(&self, id: Uuid, limit: u32) -> Result<Vec<SearchHit>, RegistryError> {
        let tool = self.get(id).await?;
        let model = self.vector_model();
        // The stored vector is the tool's own: no model run, and no embedder needed. A tool
        // still waiting for one has its text embedded now.
        let vector = match self.store.embedding(id, model).await? {
            Some(vector) => vector,
            None => {
                let text = embedded_text(&tool);
                let mut vectors = self.embedder.embed(&[text.as_str()]).await.map_err(|err| {
                    log_embed_failure(&err);
                    RegistryError::unavailable("the embedder is unavailable; try again later")
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
        let mut near = self.nearest(&vector, limit + 1, &filter).await?;
        near.retain(|(near_id, _)| *near_id != id);
        near.truncate(limit as usize);
        let mut hits = self.with_tools(fusion::vector_list(&near)).await?;
        search::sort_hits(&mut hits);
        Ok(hits)
    }
}

/// What a text searched for one request stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A request of one step.
    Request,
    /// The whole of a request of several steps. It asks for several tools, none of which
    /// accounts for all its words, so its text ranks are taken as they are.
    WholeOfSteps,
    /// One step of a request of several.
    Step,
}

impl Part {
    /// The vector weight this part is fused with, given the request's.
    fn vector_weight(self, requested: f64) -> f64 {
        match self {
            Part::Step => fusion::step_vector_weight(requested),
            Part::Request | Part::WholeOfSteps => requested,
        }
    }
}
