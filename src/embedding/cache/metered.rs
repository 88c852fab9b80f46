//! Counts and times every call that reaches the embedding provider (beneath the cache, so
//! cache hits are not provider calls).

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;

use crate::embedding::{EmbedError, Embedder, EmbedderHealth};

pub struct MeteredEmbedder {
    inner: Arc<dyn Embedder>,
}

impl MeteredEmbedder {
    pub fn new(inner: Arc<dyn Embedder>) -> Self {
        Self { inner }
    }
}

/// Records one provider call of `texts` that ended with `result` after `clock` started.
fn record<T>(texts: &[&str], clock: Instant, result: &Result<T, EmbedError>) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("embedding_requests_total", "outcome" => outcome).increment(1);
    metrics::counter!("embedding_texts_total").increment(texts.len() as u64);
    metrics::histogram!("embedding_request_duration_seconds").record(clock.elapsed().as_secs_f64());
}

#[async_trait]
impl Embedder for MeteredEmbedder {
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let clock = Instant::now();
        let result = self.inner.embed(texts).await;
        record(texts, clock, &result);
        result
    }

    async fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let clock = Instant::now();
        let result = self.inner.embed_documents(texts).await;
        record(texts, clock, &result);
        result
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn request_frame(&self) -> Option<&'static str> {
        self.inner.request_frame()
    }

    fn health(&self) -> EmbedderHealth {
        self.inner.health()
    }
}
