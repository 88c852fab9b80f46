//! The client: one chunk of texts a call through the circuit breaker, retried with backoff,
//! the answer checked; counters and health for `/health` and metrics.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use reqwest::Url;
use serde::Serialize;

use super::attempt::{AttemptError, retry_after};
use super::breaker::{BreakerState, CircuitBreaker};
use super::format::{EmbeddingFormat, check_vectors, parse_response};
use super::formats::WireFormat;
use super::{HttpEmbedderConfig, HttpEmbedderConfigError, model_less_id, redact_url, snippet};
use crate::embedding::{EmbedError, Embedder, EmbedderHealth};

/// Counters since start, for `/health` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HttpEmbedderStats {
    /// `embed` calls with at least one text.
    pub calls: u64,
    /// Chunk calls (one per `batch_size` texts), each through the breaker.
    pub batches: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Chunk calls that ended unavailable or with a bad answer.
    pub failures: u64,
    /// Chunk calls refused by the service (4xx other than 429).
    pub rejected: u64,
    /// Chunk calls failed fast by the open breaker.
    pub short_circuited: u64,
    /// Texts embedded successfully.
    pub texts: u64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    batches: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    rejected: AtomicU64,
    short_circuited: AtomicU64,
    texts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Client for the user's embedding endpoint. See the module documentation.
pub struct HttpEmbedder {
    client: reqwest::Client,
    url: Url,
    display_url: String,
    api_key: Option<String>,
    model: Option<String>,
    dimensions: usize,
    format: EmbeddingFormat,
    request_format: EmbeddingFormat,
    wire: &'static WireFormat,
    batch_size: usize,
    backoff: ExponentialBuilder,
    retry_after_cap: Duration,
    breaker: CircuitBreaker,
    model_id: String,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

impl fmt::Debug for HttpEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEmbedder")
            .field("url", &self.display_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model_id", &self.model_id)
            .field("format", &self.format)
            .field("request_format", &self.request_format)
            .finish_non_exhaustive()
    }
}

impl HttpEmbedder {
    /// Checks the settings and builds the HTTP client. Makes no request.
    pub fn new(config: HttpEmbedderConfig) -> Result<Self, HttpEmbedderConfigError> {
        let bad = |msg: String| Err(HttpEmbedderConfigError(msg));
        let url = match Url::parse(config.url.trim()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            Ok(u) => {
                return bad(format!(
                    "URL scheme must be http or https, not {:?}",
                    u.scheme()
                ));
            }
            Err(e) => return bad(format!("URL is not valid: {e}")),
        };
        if config.dimensions == 0 {
            return bad("dimensions must be at least 1".to_owned());
        }
        if config.batch_size == 0 {
            return bad("batch size must be at least 1".to_owned());
        }
        if config.timeout.is_zero() {
            return bad("timeout must be longer than zero".to_owned());
        }
        let model = config.model.filter(|m| !m.trim().is_empty());
        let api_key = config.api_key.filter(|k| !k.trim().is_empty());
        let request_format = match config.format {
            EmbeddingFormat::Auto => EmbeddingFormat::detect_from_path(url.path()),
            explicit => explicit,
        };
        let wire = request_format
            .wire()
            .expect("a resolved format has a wire format");
        if let (Some(required), None) = (wire.model_required, &model) {
            return bad(required.to_owned());
        }
        // Proxy variables are ignored, as by every outbound client (see
        // `execution::url_guard::outbound_client`): the address resolved is the one reached.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timeout)
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| HttpEmbedderConfigError(format!("cannot build the HTTP client: {e}")))?;
        let display_url = redact_url(&url);
        let model_id = format!(
            "http:{}:{}",
            model.clone().unwrap_or_else(|| model_less_id(&url)),
            config.dimensions
        );
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.retry_min_delay)
            .with_max_delay(config.retry_max_delay.max(config.retry_min_delay))
            .with_max_times(config.max_retries as usize)
            .with_jitter();
        Ok(Self {
            client,
            url,
            display_url,
            api_key,
            model,
            dimensions: config.dimensions,
            format: config.format,
            request_format,
            wire,
            batch_size: config.batch_size,
            backoff,
            retry_after_cap: config.retry_after_cap,
            breaker: CircuitBreaker::new(config.breaker_failures, config.breaker_cooldown),
            model_id,
            counters: Counters::default(),
            last_error: Mutex::new(None),
        })
    }

    /// The request shape actually sent (`Auto` resolved from the URL).
    pub fn request_format(&self) -> EmbeddingFormat {
        self.request_format
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn stats(&self) -> HttpEmbedderStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HttpEmbedderStats {
            calls: get(&c.calls),
            batches: get(&c.batches),
            requests: get(&c.requests),
            retries: get(&c.retries),
            failures: get(&c.failures),
            rejected: get(&c.rejected),
            short_circuited: get(&c.short_circuited),
            texts: get(&c.texts),
        }
    }

    fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    fn request_body(&self, texts: &[&str]) -> serde_json::Value {
        (self.wire.request)(texts, self.model.as_deref())
    }

    /// One HTTP attempt for one chunk, answer checked.
    async fn attempt(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, AttemptError> {
        bump(&self.counters.requests);
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(crate::telemetry::otel::outgoing_headers())
            .json(&self.request_body(texts));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(AttemptError::transport)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(AttemptError::transport)?;
        if !status.is_success() {
            return Err(AttemptError::Status {
                status,
                retry_after,
                body: snippet(&body),
            });
        }
        let vectors = parse_response(&body).map_err(AttemptError::Bad)?;
        check_vectors(&vectors, texts.len(), self.dimensions).map_err(AttemptError::Bad)?;
        Ok(vectors)
    }

    /// One chunk through the breaker, with retries.
    async fn embed_chunk(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        bump(&self.counters.batches);
        let Ok(permit) = self.breaker.try_acquire() else {
            bump(&self.counters.short_circuited);
            metrics::counter!("embedding_short_circuited_total").increment(1);
            return Err(EmbedError::Unavailable("circuit open".to_owned()));
        };
        let cap = self.retry_after_cap;
        let result = (|| self.attempt(texts))
            .retry(self.backoff)
            .sleep(tokio::time::sleep)
            .when(AttemptError::is_retryable)
            .adjust(|err, delay| match (err, delay) {
                (
                    AttemptError::Status {
                        retry_after: Some(wait),
                        ..
                    },
                    Some(delay),
                ) => Some(delay.max((*wait).min(cap))),
                (_, delay) => delay,
            })
            .notify(|err, delay| {
                bump(&self.counters.retries);
                metrics::counter!("embedding_retries_total").increment(1);
                tracing::warn!(
                    url = %self.display_url,
                    error = %err,
                    delay_ms = delay.as_millis() as u64,
                    "embedding request failed; retrying"
                );
            })
            .await;
        match result {
            Ok(vectors) => {
                permit.success();
                self.set_last_error(None);
                self.counters
                    .texts
                    .fetch_add(vectors.len() as u64, Ordering::Relaxed);
                Ok(vectors)
            }
            Err(err) => {
                let err = err.into_embed_error(&self.display_url);
                match &err {
                    EmbedError::Rejected(_) => {
                        permit.neutral();
                        bump(&self.counters.rejected);
                    }
                    EmbedError::Unavailable(_) | EmbedError::BadResponse(_) => {
                        permit.failure();
                        bump(&self.counters.failures);
                    }
                }
                tracing::warn!(url = %self.display_url, error = %err, "embedding call failed");
                self.set_last_error(Some(err.to_string()));
                Err(err)
            }
        }
    }
}

#[async_trait]
impl Embedder for HttpEmbedder {
    #[tracing::instrument(level = "debug", name = "embedding.model", skip_all, fields(
        embedding.provider = "http", embedding.model = %self.model_id(),
        embedding.batch_size = texts.len() as i64))]
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        bump(&self.counters.calls);
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            out.extend(self.embed_chunk(chunk).await?);
        }
        Ok(out)
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn health(&self) -> EmbedderHealth {
        let breaker = self.breaker.state();
        let status = match breaker.state {
            BreakerState::Closed => "up",
            BreakerState::HalfOpen => "degraded",
            BreakerState::Open => "down",
        };
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        EmbedderHealth {
            provider: "http".to_owned(),
            model: self.model_id.clone(),
            dimensions: self.dimensions,
            status,
            detail: serde_json::json!({
                "url": self.display_url,
                "format": self.format,
                "request_format": self.request_format,
                "model": self.model,
                "breaker": breaker,
                "stats": self.stats(),
                "last_error": last_error,
            }),
        }
    }
}
