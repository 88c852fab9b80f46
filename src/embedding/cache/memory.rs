//! A per-text vector cache in front of any embedder.
//!
//! Each text is looked up on its own, so a batch with some hits sends only its misses to the
//! inner embedder, in one call, each distinct text once; the answer keeps the caller's order and
//! duplicates. Entries are keyed on the inner embedder's `model_id()` and the full text (no hash,
//! so no collisions): vectors of another model are never served. The capacity counts entries
//! (texts), evicted by moka's TinyLFU policy, and entries expire `ttl` after insertion.
//!
//! Texts longer than `max_text_bytes` (default 8 KiB) are embedded but not cached: they are
//! usually one-off documents, and would make the cache's memory use depend on input size.
//!
//! Tool texts (`embed_documents`) pass through: their vectors are stored with the tools, and a
//! bulk registration would otherwise evict the queries the cache is for.
//!
//! Errors are not cached. Hit and miss counters count texts (a batch of five with two hits adds
//! two hits and three misses) and appear in `health().detail.cache` as `hits`, `misses` and
//! `entries` (moka's entry count, which can lag a little behind inserts).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use serde::Serialize;

use crate::embedding::{EmbedError, Embedder, EmbedderHealth};

/// Cache settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Most texts kept. Default 10 000.
    pub capacity: u64,
    /// How long a vector stays after insertion; `None` keeps it until evicted. Default 1 hour.
    pub ttl: Option<Duration>,
    /// Texts longer than this (in bytes) are not cached. Default 8 KiB.
    pub max_text_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Some(Duration::from_secs(3600)),
            max_text_bytes: 8 * 1024,
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Texts answered from the cache.
    pub hits: u64,
    /// Texts sent to the inner embedder.
    pub misses: u64,
    /// Vectors held now (approximate).
    pub entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    model: Arc<str>,
    text: Box<str>,
}

/// An embedder that remembers vectors per text. Works over a concrete embedder
/// (`CachedEmbedder<HttpEmbedder>`) or a trait object (`CachedEmbedder<dyn Embedder>`, the default).
pub struct CachedEmbedder<E: Embedder + ?Sized = dyn Embedder> {
    inner: Arc<E>,
    cache: Cache<CacheKey, Arc<[f32]>>,
    max_text_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<E: Embedder + ?Sized> std::fmt::Debug for CachedEmbedder<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("model_id", &self.inner.model_id())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<E: Embedder + ?Sized> CachedEmbedder<E> {
    pub fn new(inner: Arc<E>, config: CacheConfig) -> Self {
        let mut builder = Cache::builder().max_capacity(config.capacity);
        if let Some(ttl) = config.ttl {
            builder = builder.time_to_live(ttl);
        }
        Self {
            inner,
            cache: builder.build(),
            max_text_bytes: config.max_text_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn inner(&self) -> &Arc<E> {
        &self.inner
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
        }
    }

    /// Drops every cached vector (the counters stay).
    pub async fn clear(&self) {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks().await;
    }

    fn cacheable(&self, text: &str) -> bool {
        text.len() <= self.max_text_bytes
    }
}

#[async_trait]
impl<E: Embedder + ?Sized> Embedder for CachedEmbedder<E> {
    #[tracing::instrument(level = "debug", name = "embedding.cache", skip_all, fields(
        embedding.cache.tier = "memory", embedding.batch_size = texts.len() as i64))]
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model: Arc<str> = Arc::from(self.inner.model_id());
        let key = |text: &str| CacheKey {
            model: model.clone(),
            text: text.into(),
        };

        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        // Distinct texts to embed, and for each position still empty, which of them fills it.
        let mut misses: Vec<&str> = Vec::new();
        let mut miss_index: HashMap<&str, usize> = HashMap::new();
        let mut waiting: Vec<(usize, usize)> = Vec::new();
        for (pos, &text) in texts.iter().enumerate() {
            if self.cacheable(text)
                && let Some(hit) = self.cache.get(&key(text)).await
            {
                out[pos] = Some(hit.to_vec());
                continue;
            }
            let index = *miss_index.entry(text).or_insert_with(|| {
                misses.push(text);
                misses.len() - 1
            });
            waiting.push((pos, index));
        }
        let (hits, missed) = ((texts.len() - waiting.len()) as u64, waiting.len() as u64);
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(missed, Ordering::Relaxed);
        metrics::counter!("embedding_cache_hits_total", "tier" => "memory").increment(hits);
        metrics::counter!("embedding_cache_misses_total", "tier" => "memory").increment(missed);
        crate::telemetry::otel::cache_looked_up(hits, missed);

        if !misses.is_empty() {
            let vectors = self.inner.embed(&misses).await?;
            if vectors.len() != misses.len() {
                return Err(EmbedError::BadResponse(format!(
                    "embedder returned {} vectors for {} texts",
                    vectors.len(),
                    misses.len()
                )));
            }
            for (&text, vector) in misses.iter().zip(&vectors) {
                if self.cacheable(text) {
                    self.cache
                        .insert(key(text), Arc::from(vector.as_slice()))
                        .await;
                }
            }
            for (pos, index) in waiting {
                out[pos] = Some(vectors[index].clone());
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    async fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_documents(texts).await
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
        let cache = serde_json::to_value(self.stats()).unwrap_or_default();
        self.inner.health().with_detail("cache", cache)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use super::*;
    use crate::embedding::hash::HashEmbedder;
    use crate::embedding::http::test_server::{FakeEmbedServer, fake_vector};
    use crate::embedding::http::{HttpEmbedder, HttpEmbedderConfig};

    const DIMS: usize = 8;

    fn http(server: &FakeEmbedServer) -> Arc<HttpEmbedder> {
        Arc::new(
            HttpEmbedder::new(HttpEmbedderConfig {
                retry_min_delay: Duration::from_millis(10),
                max_retries: 0,
                breaker_failures: 0,
                ..HttpEmbedderConfig::new(server.url("/embed"), DIMS)
            })
            .unwrap(),
        )
    }

    fn expected(texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| fake_vector(t, DIMS)).collect()
    }

    #[tokio::test]
    async fn second_call_of_the_same_texts_makes_no_request() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(http(&server), CacheConfig::default());
        let texts = ["weather in Paris", "send an email"];
        assert_eq!(cached.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(cached.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(server.state.requests(), 1);
        cached.cache.run_pending_tasks().await;
        assert_eq!(
            cached.stats(),
            CacheStats {
                hits: 2,
                misses: 2,
                entries: 2
            }
        );
    }

    #[tokio::test]
    async fn tool_texts_pass_through_without_being_cached() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(http(&server), CacheConfig::default());
        let texts = ["weather: the forecast of a city", "email: send a message"];
        assert_eq!(
            cached.embed_documents(&texts).await.unwrap(),
            expected(&texts)
        );
        assert_eq!(
            cached.embed_documents(&texts).await.unwrap(),
            expected(&texts)
        );
        assert_eq!(server.state.requests(), 2, "each call reached the provider");
        // Nor does a query find them: only `embed` fills the cache.
        cached.embed(&texts[..1]).await.unwrap();
        assert_eq!(server.state.requests(), 3);
        cached.cache.run_pending_tasks().await;
        assert_eq!(
            cached.stats(),
            CacheStats {
                hits: 0,
                misses: 1,
                entries: 1
            }
        );
    }

    #[tokio::test]
    async fn partial_hits_send_only_the_misses_keeping_order_and_duplicates() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(http(&server), CacheConfig::default());
        cached.embed(&["a", "b"]).await.unwrap();
        let texts = ["c", "a", "c", "b", "d"];
        assert_eq!(cached.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(
            server.state.received_texts(),
            vec![vec!["a", "b"], vec!["c", "d"]]
        );
        let stats = cached.stats();
        assert_eq!((stats.hits, stats.misses), (2, 5));

        // All hits now, duplicates included.
        let again = ["d", "d", "a"];
        assert_eq!(cached.embed(&again).await.unwrap(), expected(&again));
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(
            http(&server),
            CacheConfig {
                ttl: Some(Duration::from_millis(300)),
                ..CacheConfig::default()
            },
        );
        cached.embed(&["x"]).await.unwrap();
        cached.embed(&["x"]).await.unwrap();
        assert_eq!(server.state.requests(), 1);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(cached.embed(&["x"]).await.unwrap(), expected(&["x"]));
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn long_texts_are_embedded_but_not_cached() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(
            http(&server),
            CacheConfig {
                max_text_bytes: 10,
                ..CacheConfig::default()
            },
        );
        let long = "a text well over ten bytes";
        let texts = [long, "short", long];
        assert_eq!(cached.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(cached.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(
            server.state.received_texts(),
            vec![vec![long, "short"], vec![long]]
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(http(&server), CacheConfig::default());
        server.state.fail_always.store(true, Ordering::SeqCst);
        assert!(matches!(
            cached.embed(&["x"]).await,
            Err(EmbedError::Unavailable(_))
        ));
        server.state.fail_always.store(false, Ordering::SeqCst);
        assert_eq!(cached.embed(&["x"]).await.unwrap(), expected(&["x"]));
        assert_eq!(server.state.requests(), 2);
        assert_eq!(cached.stats().hits, 0);
    }

    #[tokio::test]
    async fn health_shows_the_inner_embedder_and_the_counters() {
        let server = FakeEmbedServer::start(DIMS).await;
        let cached = CachedEmbedder::new(http(&server), CacheConfig::default());
        cached.embed(&["a", "a"]).await.unwrap();
        cached.embed(&["a"]).await.unwrap();
        cached.cache.run_pending_tasks().await;
        let health = cached.health();
        assert_eq!(health.provider, "http");
        assert_eq!(health.model, cached.model_id());
        assert_eq!(cached.dimensions(), DIMS);
        assert_eq!(
            health.detail["cache"],
            serde_json::json!({"hits": 1, "misses": 2, "entries": 1})
        );
        assert!(health.detail["breaker"].is_object());
    }

    /// Counts calls and can switch its model id.
    struct Switchable {
        inner: HashEmbedder,
        second_model: AtomicBool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Embedder for Switchable {
        async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut out = self.inner.embed(texts).await?;
            if self.second_model.load(Ordering::SeqCst) {
                for v in &mut out {
                    v.reverse();
                }
            }
            Ok(out)
        }
        fn dimensions(&self) -> usize {
            self.inner.dimensions()
        }
        fn model_id(&self) -> &str {
            if self.second_model.load(Ordering::SeqCst) {
                "model-b"
            } else {
                "model-a"
            }
        }
        fn health(&self) -> EmbedderHealth {
            EmbedderHealth {
                detail: serde_json::Value::Null,
                ..self.inner.health()
            }
        }
    }

    #[tokio::test]
    async fn a_model_change_never_serves_old_vectors() {
        let inner = Arc::new(Switchable {
            inner: HashEmbedder::new(16),
            second_model: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        });
        let cached: CachedEmbedder = CachedEmbedder::new(inner.clone(), CacheConfig::default());
        let a = cached.embed(&["tool"]).await.unwrap();
        inner.second_model.store(true, Ordering::SeqCst);
        let b = cached.embed(&["tool"]).await.unwrap();
        assert_ne!(a, b);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        assert_eq!(cached.model_id(), "model-b");
        cached.embed(&["tool"]).await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        // An inner detail that is not an object is kept beside the counters.
        let health = cached.health();
        assert_eq!(health.detail["inner"], serde_json::Value::Null);
        assert_eq!(health.detail["cache"]["hits"], 1);
    }

    #[tokio::test]
    async fn capacity_bounds_the_entries_and_clear_empties() {
        let cached = CachedEmbedder::new(
            Arc::new(HashEmbedder::new(4)),
            CacheConfig {
                capacity: 3,
                ..CacheConfig::default()
            },
        );
        let texts: Vec<String> = (0..20).map(|i| format!("text {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        cached.embed(&refs).await.unwrap();
        cached.cache.run_pending_tasks().await;
        assert!(cached.stats().entries <= 3, "{:?}", cached.stats());
        cached.clear().await;
        assert_eq!(cached.stats().entries, 0);
    }
}
