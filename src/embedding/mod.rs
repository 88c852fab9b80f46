//! Embedders turn tool texts and queries into vectors. One trait; caching and retries wrap
//! any embedder rather than living inside one.

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// The embedder cannot answer now (endpoint down, breaker open, timeout); try later.
    #[error("embedder unavailable: {0}")]
    Unavailable(String),
    /// The embedder answered something unusable (wrong count or dimension, bad shape).
    #[error("embedder answered badly: {0}")]
    BadResponse(String),
    /// The request itself was refused (e.g. a 4xx other than 429); retrying will not help.
    #[error("embedding request refused: {0}")]
    Rejected(String),
}

/// What `/health` shows of an embedder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedderHealth {
    /// `local`, `hash`, `http`, ...
    pub provider: String,
    pub model: String,
    pub dimensions: usize,
    /// `up`, `degraded` or `down`.
    pub status: &'static str,
    /// Provider-specific detail (breaker state, endpoint, cache counters ...).
    pub detail: serde_json::Value,
}

impl EmbedderHealth {
    /// Adds a wrapper's part (`cache`, `redis_cache` …) to the detail of the embedder it
    /// wraps; a detail that is not an object moves under `inner`.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        match &mut self.detail {
            serde_json::Value::Object(map) => {
                map.insert(key.to_owned(), value);
            }
            other => {
                let inner = std::mem::take(other);
                self.detail = serde_json::json!({ "inner": inner, key: value });
            }
        }
        self
    }
}

#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// One vector per text, in order, each of `dimensions()` floats.
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// As `embed`, for the texts of stored tools. Their vectors are stored with the tools and
    /// rarely asked for again, so the caches pass them through: a bulk registration would
    /// otherwise fill them with tool texts and push out the queries they are there for.
    async fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts).await
    }
    fn dimensions(&self) -> usize;
    /// Names the model and anything that changes its vectors; stored beside each vector.
    fn model_id(&self) -> &str;
    /// Words put before a request of one step when this model reads it, where they were
    /// measured to find tools better (docs/search.md); none by default.
    fn request_frame(&self) -> Option<&'static str> {
        None
    }
    fn health(&self) -> EmbedderHealth;
}

pub mod cache;
pub mod hash;
pub mod http;
pub mod local;

/// Vector size of the local model, all-MiniLM-L6-v2.
pub const LOCAL_MODEL_DIMENSIONS: usize = 384;
