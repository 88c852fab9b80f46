//! `EMBEDDING_*` and `REDIS_*`: the embedder and its cache tiers.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::Secret;
pub use crate::embedding::http::EmbeddingFormat;
use crate::embedding::{
    cache::{memory::CacheConfig, redis::RedisCacheConfig},
    http::HttpEmbedderConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    Local,
    Hash,
    Http,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingSettings {
    /// `local` (the offline model, the default), `hash` or `http`.
    #[serde(rename = "embedding_provider")]
    pub provider: EmbeddingProvider,
    /// Folder of the local model (model.safetensors, tokenizer.json, config.json).
    #[serde(rename = "embedding_model_dir")]
    pub model_dir: PathBuf,
    /// The user's embedding endpoint, for `http`.
    #[serde(rename = "embedding_url")]
    pub url: Option<Secret>,
    #[serde(rename = "embedding_api_key")]
    pub api_key: Option<Secret>,
    /// Model name sent to the endpoint (required by Ollama, optional elsewhere).
    #[serde(rename = "embedding_model")]
    pub model: Option<String>,
    /// Dimension of the vectors of the `hash` and `http` providers (the local model has 384).
    #[serde(rename = "embedding_dimensions")]
    pub dimensions: usize,
    /// Wire format of the endpoint: auto, openai, tei, ollama or generic.
    #[serde(rename = "embedding_format")]
    pub format: EmbeddingFormat,
    #[serde(rename = "embedding_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(rename = "embedding_max_retries")]
    pub max_retries: u32,
    /// Texts per request to the embedder.
    #[serde(rename = "embedding_batch_size")]
    pub batch_size: usize,
    /// Entries of the per-text embedding cache (0 disables it).
    #[serde(rename = "embedding_cache_size")]
    pub cache_size: u64,
    #[serde(rename = "embedding_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Consecutive failures that open the endpoint's circuit breaker.
    #[serde(rename = "embedding_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before letting a trial request through.
    #[serde(rename = "embedding_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// A Redis server shared by the replicas as a second embedding cache tier; unset or
    /// empty: none.
    pub redis_url: Option<Secret>,
    /// How long vectors stay in Redis (0: until Redis evicts them).
    pub redis_cache_ttl_secs: u64,
    /// Longest wait for a Redis round trip before embedding without it.
    pub redis_timeout_ms: u64,
}

impl EmbeddingSettings {
    pub fn cache_ttl(&self) -> Option<Duration> {
        (self.cache_ttl_secs > 0).then(|| Duration::from_secs(self.cache_ttl_secs))
    }

    pub fn redis_cache_ttl(&self) -> Option<Duration> {
        (self.redis_cache_ttl_secs > 0).then(|| Duration::from_secs(self.redis_cache_ttl_secs))
    }

    /// The HTTP embedder's configuration for `url`.
    pub fn http_config(&self, url: &Secret) -> HttpEmbedderConfig {
        let mut config = HttpEmbedderConfig::new(url.expose(), self.dimensions);
        config.api_key = self.api_key.as_ref().map(|k| k.expose().to_owned());
        config.model.clone_from(&self.model);
        config.format = self.format;
        config.timeout = Duration::from_millis(self.timeout_ms);
        config.max_retries = self.max_retries;
        config.batch_size = self.batch_size;
        config.breaker_failures = self.breaker_failures;
        config.breaker_cooldown = Duration::from_millis(self.breaker_cooldown_ms);
        config
    }

    /// The shared Redis tier's configuration, when `REDIS_URL` is set.
    pub fn redis_config(&self) -> Option<RedisCacheConfig> {
        let url = self.redis_url.as_ref()?;
        let mut config = RedisCacheConfig::new(url.expose());
        config.ttl = self.redis_cache_ttl();
        config.timeout = Duration::from_millis(self.redis_timeout_ms);
        Some(config)
    }

    /// The in-process cache's configuration, or `None` when `EMBEDDING_CACHE_SIZE=0`.
    pub fn cache_config(&self) -> Option<CacheConfig> {
        (self.cache_size > 0).then(|| CacheConfig {
            capacity: self.cache_size,
            ttl: self.cache_ttl(),
            ..CacheConfig::default()
        })
    }
}
