//! A vector cache shared by every replica, in Redis, beneath the in-process cache: what any
//! replica embedded, the others read instead of embedding it again. Queries only: tool texts
//! (`embed_documents`) pass through, their vectors being stored with the tools.
//!
//! Keys are `{prefix}:{model id}:{dimensions}:{SHA-256 of the text, hex}`, so vectors of two
//! models never meet; values are the vector as little-endian f32 bytes, written with a TTL.
//! A batch costs one `MGET` and, for its misses, one pipelined round of `SET … EX`.
//!
//! Redis never fails a request. Any error or a reply slower than `timeout` counts as an
//! error, the batch goes to the inner embedder as if every text had missed, and Redis is left
//! alone for `pause` before it is tried again (a reconnection happens on that next try). A
//! value of the wrong length is a miss.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::embedding::{EmbedError, Embedder, EmbedderHealth};

#[derive(Debug, Clone)]
pub struct RedisCacheConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// How long a vector stays; `None` keeps it until Redis evicts it.
    pub ttl: Option<Duration>,
    /// Longest wait for one Redis round trip.
    pub timeout: Duration,
    /// How long Redis is skipped after an error.
    pub pause: Duration,
    /// The first part of every key.
    pub prefix: String,
}

impl RedisCacheConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ttl: Some(Duration::from_secs(86_400)),
            timeout: Duration::from_millis(200),
            pause: Duration::from_secs(2),
            prefix: "tool-registry:embedding".to_owned(),
        }
    }
}

/// Counters since start, in texts (`errors` in failed round trips).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RedisCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    /// Round trips not attempted because Redis was paused after an error.
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisCacheError {
    #[error("invalid REDIS_URL: {0}")]
    InvalidUrl(String),
}

pub struct RedisCachedEmbedder {
    inner: std::sync::Arc<dyn Embedder>,
    client: redis::Client,
    /// Replaced by a fresh one after an error, so the first try after a pause connects anew
    /// instead of meeting the failed reconnection of the old one.
    connection: Mutex<ConnectionManager>,
    config: RedisCacheConfig,
    /// Where the server is, without credentials, for `/health`.
    display_url: String,
    paused_until: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
}

impl RedisCachedEmbedder {
    /// Does not connect: the first batch does, so a Redis that is down at start-up only
    /// means the first batches miss.
    pub fn new(
        inner: std::sync::Arc<dyn Embedder>,
        config: RedisCacheConfig,
    ) -> Result<Self, RedisCacheError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| RedisCacheError::InvalidUrl(e.to_string()))?;
        let info = client.get_connection_info();
        let display_url = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        let connection = connect_lazily(&client, config.timeout)
            .map_err(|e| RedisCacheError::InvalidUrl(e.to_string()))?;
        Ok(Self {
            inner,
            client,
            connection: Mutex::new(connection),
            config,
            display_url,
            paused_until: Mutex::new(None),
            last_error: Mutex::new(None),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    pub fn stats(&self) -> RedisCacheStats {
        RedisCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    fn key(&self, text: &str) -> String {
        let digest = Sha256::digest(text.as_bytes());
        let mut key = format!(
            "{}:{}:{}:",
            self.config.prefix,
            self.inner.model_id(),
            self.inner.dimensions()
        );
        for byte in digest {
            key.push_str(&format!("{byte:02x}"));
        }
        key
    }

    /// False while paused after an error; counts the skip.
    fn available(&self) -> bool {
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        match *paused {
            Some(until) if Instant::now() < until => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("embedding_cache_skipped_total", "tier" => "redis").increment(1);
                false
            }
            Some(_) => {
                *paused = None;
                true
            }
            None => true,
        }
    }

    fn failed(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("embedding_cache_errors_total", "tier" => "redis").increment(1);
        tracing::warn!(%error, pause = ?self.config.pause, "redis cache unavailable; embedding without it");
        *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + self.config.pause);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        if let Ok(fresh) = connect_lazily(&self.client, self.config.timeout) {
            *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
    }

    /// One Redis round trip, bounded by the timeout.
    async fn round_trip<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match tokio::time::timeout(self.config.timeout, pipe.query_async(&mut connection)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                self.failed(err.to_string());
                None
            }
            Err(_) => {
                self.failed(format!("no answer within {:?}", self.config.timeout));
                None
            }
        }
    }

    /// The cached vector of each key (`None`: a miss), or `None` when Redis did not answer.
    async fn lookup(&self, keys: &[String]) -> Option<Vec<Option<Vec<f32>>>> {
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(keys);
        let (values,): (Vec<Option<Vec<u8>>>,) = self.round_trip(&pipe).await?;
        let dimensions = self.inner.dimensions();
        Some(
            values
                .into_iter()
                .map(|value| value.and_then(|bytes| vector_from_bytes(&bytes, dimensions)))
                .collect(),
        )
    }

    async fn store(&self, entries: &[(&String, &Vec<f32>)]) {
        let mut pipe = redis::pipe();
        for (key, vector) in entries {
            let bytes = vector_to_bytes(vector);
            match self.config.ttl {
                Some(ttl) => pipe
                    .cmd("SET")
                    .arg(key.as_str())
                    .arg(bytes)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .ignore(),
                None => pipe.cmd("SET").arg(key.as_str()).arg(bytes).ignore(),
            };
        }
        let _: Option<()> = self.round_trip(&pipe).await;
    }
}

/// A connection made on first use, giving up after `timeout` rather than retrying: the
/// caller pauses instead.
fn connect_lazily(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_from_bytes(bytes: &[u8], dimensions: usize) -> Option<Vec<f32>> {
    (bytes.len() == dimensions * 4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

#[async_trait]
impl Embedder for RedisCachedEmbedder {
    #[tracing::instrument(level = "debug", name = "embedding.cache", skip_all, fields(
        embedding.cache.tier = "redis", embedding.batch_size = texts.len() as i64))]
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() || !self.available() {
            return self.inner.embed(texts).await;
        }
        let keys: Vec<String> = texts.iter().map(|t| self.key(t)).collect();
        let Some(mut found) = self.lookup(&keys).await else {
            return self.inner.embed(texts).await;
        };
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        let (hits, missed) = ((texts.len() - missing.len()) as u64, missing.len() as u64);
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(missed, Ordering::Relaxed);
        metrics::counter!("embedding_cache_hits_total", "tier" => "redis").increment(hits);
        metrics::counter!("embedding_cache_misses_total", "tier" => "redis").increment(missed);
        crate::telemetry::otel::cache_looked_up(hits, missed);
        if !missing.is_empty() {
            let wanted: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let vectors = self.inner.embed(&wanted).await?;
            if vectors.len() != wanted.len() {
                return Err(EmbedError::BadResponse(format!(
                    "embedder returned {} vectors for {} texts",
                    vectors.len(),
                    wanted.len()
                )));
            }
            let entries: Vec<(&String, &Vec<f32>)> =
                missing.iter().map(|&i| &keys[i]).zip(&vectors).collect();
            if self.available() {
                self.store(&entries).await;
            }
            for (i, vector) in missing.into_iter().zip(vectors) {
                found[i] = Some(vector);
            }
        }
        Ok(found.into_iter().flatten().collect())
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
        let paused = self
            .paused_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until);
        let redis = serde_json::json!({
            "url": self.display_url,
            "state": if paused { "paused" } else { "up" },
            "stats": self.stats(),
            "last_error": *self.last_error.lock().unwrap_or_else(|e| e.into_inner()),
        });
        self.inner.health().with_detail("redis_cache", redis)
    }
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
