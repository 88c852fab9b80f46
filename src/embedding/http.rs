//! An embedder that calls the user's own HTTP embedding service.
//!
//! Wire formats (all `POST` with a JSON body):
//!
//! | format    | usual path       | request                              | response                           |
//! |-----------|------------------|--------------------------------------|------------------------------------|
//! | `openai`  | `/v1/embeddings` | `{"input": [..], "model": m}`        | `{"data": [{"embedding", "index"}]}` |
//! | `tei`     | `/embed`         | `{"inputs": [..], "truncate": true}` | `[[..], ..]`                       |
//! | `ollama`  | `/api/embed`     | `{"model": m, "input": [..]}`        | `{"embeddings": [[..], ..]}`       |
//! | `generic` | any              | `{"texts": [..]}`                    | `{"embeddings": [[..], ..]}`       |
//!
//! `openai` also covers Azure OpenAI, vLLM, LiteLLM and Ollama's `/v1/embeddings` route; `model`
//! is sent only when configured. `auto` picks the request shape from the URL path (`/api/embed`
//! → Ollama, `…/embeddings` → OpenAI, `…/embed` → TEI, anything else → OpenAI). Whatever the
//! format, the response is recognised by its shape (`data[]`, `embeddings[]`, a bare array of
//! arrays, or a single `{"embedding": [..]}` for one input), so a service that answers in another
//! dialect than the one asked is still understood. OpenAI items are put back in `index` order.
//!
//! The API key, when set, is sent as `Authorization: Bearer <key>`, which OpenAI, vLLM, LiteLLM,
//! TEI and most gateways accept. Azure OpenAI takes a Microsoft Entra ID token that way; its
//! resource keys (the `api-key` header) are not supported. The key never appears in `Debug`
//! output, logs or `/health`; the URL is shown there without credentials or query string.
//!
//! Texts are sent in chunks of `batch_size`, one chunk after another. Each chunk is one call
//! through the circuit breaker; within it, attempts are retried with exponential backoff and
//! jitter on transport errors and timeouts, 429 (waiting at least `Retry-After` seconds, capped
//! by `retry_after_cap`; the HTTP-date form of the header is ignored) and 5xx. Any other 4xx is
//! [`EmbedError::Rejected`] at once and does not count against the breaker. An answer with the
//! wrong number of vectors, the wrong dimension or an unknown shape is
//! [`EmbedError::BadResponse`]: not retried, but a breaker failure. A chunk that still fails after
//! `max_retries` retries is [`EmbedError::Unavailable`]; while the breaker is open every call fails
//! at once with `Unavailable("circuit open")`, without a request.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::breaker::{BreakerState, CircuitBreaker};
use super::{EmbedError, Embedder, EmbedderHealth};

#[cfg(test)]
#[path = "test_server.rs"]
pub(crate) mod test_server;

/// How requests are shaped (and, for `Auto`, guessed from the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingFormat {
    #[default]
    Auto,
    OpenAi,
    Tei,
    Ollama,
    Generic,
}

impl EmbeddingFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingFormat::Auto => "auto",
            EmbeddingFormat::OpenAi => "openai",
            EmbeddingFormat::Tei => "tei",
            EmbeddingFormat::Ollama => "ollama",
            EmbeddingFormat::Generic => "generic",
        }
    }

    /// The request shape `Auto` uses for this URL path.
    pub fn detect_from_path(path: &str) -> EmbeddingFormat {
        let path = path.trim_end_matches('/');
        if path.ends_with("/api/embed") {
            EmbeddingFormat::Ollama
        } else if path.ends_with("/embeddings") {
            EmbeddingFormat::OpenAi
        } else if path.ends_with("/embed") {
            EmbeddingFormat::Tei
        } else {
            EmbeddingFormat::OpenAi
        }
    }
}

impl fmt::Display for EmbeddingFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmbeddingFormat {
    type Err = String;

    /// Case-insensitive: `auto`, `openai` (or `open_ai`), `tei`, `ollama`, `generic`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(EmbeddingFormat::Auto),
            "openai" | "open_ai" | "open-ai" => Ok(EmbeddingFormat::OpenAi),
            "tei" => Ok(EmbeddingFormat::Tei),
            "ollama" => Ok(EmbeddingFormat::Ollama),
            "generic" => Ok(EmbeddingFormat::Generic),
            other => Err(format!(
                "unknown embedding format {other:?} (expected auto, openai, tei, ollama or generic)"
            )),
        }
    }
}

/// Settings of an [`HttpEmbedder`]. Start from [`HttpEmbedderConfig::new`] for the defaults.
#[derive(Clone)]
pub struct HttpEmbedderConfig {
    /// Full URL of the embedding route, e.g. `http://tei:8080/embed`.
    pub url: String,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Sent as `model` (OpenAI, Ollama); required for Ollama.
    pub model: Option<String>,
    /// Floats per vector the service must return.
    pub dimensions: usize,
    pub format: EmbeddingFormat,
    /// Per HTTP attempt, connect to last byte. Default 30 s.
    pub timeout: Duration,
    /// Retries after the first attempt of a chunk. Default 3.
    pub max_retries: u32,
    /// Texts per request. Default 32.
    pub batch_size: usize,
    /// Consecutive failed calls that open the breaker; 0 disables it. Default 5.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a trial call. Default 30 s.
    pub breaker_cooldown: Duration,
    /// First backoff delay (doubles each retry, plus up to as much again of jitter). Default 200 ms.
    pub retry_min_delay: Duration,
    /// Largest backoff delay. Default 10 s.
    pub retry_max_delay: Duration,
    /// Longest `Retry-After` honoured. Default 30 s.
    pub retry_after_cap: Duration,
}

impl HttpEmbedderConfig {
    /// Defaults for everything but the endpoint and its dimension.
    pub fn new(url: impl Into<String>, dimensions: usize) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            model: None,
            dimensions,
            format: EmbeddingFormat::Auto,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            batch_size: 32,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            retry_min_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for HttpEmbedderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = Url::parse(&self.url)
            .map(|u| redact_url(&u))
            .unwrap_or_else(|_| "<invalid url>".to_owned());
        f.debug_struct("HttpEmbedderConfig")
            .field("url", &url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("batch_size", &self.batch_size)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("retry_min_delay", &self.retry_min_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("retry_after_cap", &self.retry_after_cap)
            .finish()
    }
}

/// The settings cannot make a working embedder.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid HTTP embedder settings: {0}")]
pub struct HttpEmbedderConfigError(String);

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
        if request_format == EmbeddingFormat::Ollama && model.is_none() {
            return bad("Ollama's /api/embed needs a model name".to_owned());
        }
        // Proxy variables are ignored as for every outbound client (see `outbound_client`).
        let client = crate::tools::url_guard::outbound_client()
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
        use serde_json::json;
        match self.request_format {
            EmbeddingFormat::Tei => json!({ "inputs": texts, "truncate": true }),
            EmbeddingFormat::Generic => json!({ "texts": texts }),
            EmbeddingFormat::Ollama => json!({ "model": self.model, "input": texts }),
            EmbeddingFormat::OpenAi | EmbeddingFormat::Auto => match &self.model {
                Some(model) => json!({ "input": texts, "model": model }),
                None => json!({ "input": texts }),
            },
        }
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

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// Could not connect, timed out, or the connection broke.
    Transport(String),
    /// The service answered with a non-success status.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        body: String,
    },
    /// The service answered 2xx with something unusable.
    Bad(String),
}

impl AttemptError {
    fn transport(err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        // Without the URL: it may carry credentials in its query string.
        AttemptError::Transport(format!("{kind}: {}", err.without_url()))
    }

    fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Transport(_) => true,
            AttemptError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            AttemptError::Bad(_) => false,
        }
    }

    fn into_embed_error(self, url: &str) -> EmbedError {
        match self {
            AttemptError::Transport(msg) => EmbedError::Unavailable(format!("{url}: {msg}")),
            AttemptError::Status { status, body, .. } => {
                let msg = format!("{url}: HTTP {status}: {body}");
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    EmbedError::Unavailable(msg)
                } else if status.is_client_error() {
                    EmbedError::Rejected(msg)
                } else {
                    EmbedError::BadResponse(msg)
                }
            }
            AttemptError::Bad(msg) => EmbedError::BadResponse(format!("{url}: {msg}")),
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Transport(msg) | AttemptError::Bad(msg) => f.write_str(msg),
            AttemptError::Status { status, body, .. } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

/// `Retry-After` in delta-seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The URL without user, password, query or fragment.
fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut s = shown.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}

/// Names the endpoint in `model_id` when no model is configured: host, port and path.
fn model_less_id(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyResponse {
    OpenAi { data: Vec<OpenAiItem> },
    Embeddings { embeddings: Vec<Vec<f32>> },
    Bare(Vec<Vec<f32>>),
    Single { embedding: Vec<f32> },
}

#[derive(Deserialize)]
struct OpenAiItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

/// Vectors from any of the known response shapes, in input order.
fn parse_response(body: &[u8]) -> Result<Vec<Vec<f32>>, String> {
    let parsed: AnyResponse = serde_json::from_slice(body).map_err(|_| {
        format!(
            "unrecognised response: expected {{\"data\":[{{\"embedding\":[..]}}]}}, \
             {{\"embeddings\":[[..]]}} or [[..]], got {}",
            snippet(body)
        )
    })?;
    match parsed {
        AnyResponse::Embeddings { embeddings } | AnyResponse::Bare(embeddings) => Ok(embeddings),
        AnyResponse::Single { embedding } => Ok(vec![embedding]),
        AnyResponse::OpenAi { data } => {
            let n = data.len();
            let with_index = data.iter().filter(|d| d.index.is_some()).count();
            if with_index == 0 {
                return Ok(data.into_iter().map(|d| d.embedding).collect());
            }
            if with_index != n {
                return Err("some items of \"data\" have an \"index\" and some do not".to_owned());
            }
            let mut slots: Vec<Option<Vec<f32>>> = vec![None; n];
            for item in data {
                let i = item.index.unwrap_or(usize::MAX);
                match slots.get_mut(i) {
                    Some(slot @ None) => *slot = Some(item.embedding),
                    Some(Some(_)) => return Err(format!("index {i} appears twice in \"data\"")),
                    None => return Err(format!("index {i} is out of range for {n} items")),
                }
            }
            Ok(slots.into_iter().flatten().collect())
        }
    }
}

fn check_vectors(vectors: &[Vec<f32>], expected: usize, dimensions: usize) -> Result<(), String> {
    if vectors.len() != expected {
        return Err(format!(
            "expected {expected} vectors, got {}",
            vectors.len()
        ));
    }
    for (i, v) in vectors.iter().enumerate() {
        if v.len() != dimensions {
            return Err(format!(
                "vector {i} has {} dimensions, expected {dimensions}",
                v.len()
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("vector {i} has a value that is not a finite f32"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::test_server::{FakeEmbedServer, fake_vector};
    use super::*;

    const DIMS: usize = 8;

    /// Fast settings: short backoff, a breaker that stays out of the way.
    fn config(server: &FakeEmbedServer, path: &str) -> HttpEmbedderConfig {
        HttpEmbedderConfig {
            timeout: Duration::from_secs(5),
            max_retries: 3,
            batch_size: 16,
            breaker_failures: 100,
            breaker_cooldown: Duration::from_millis(100),
            retry_min_delay: Duration::from_millis(10),
            retry_max_delay: Duration::from_millis(40),
            ..HttpEmbedderConfig::new(server.url(path), DIMS)
        }
    }

    fn expected(texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| fake_vector(t, DIMS)).collect()
    }

    const TEXTS: [&str; 3] = ["get the weather", "send an email", "convert currency"];

    async fn round_trip(
        path: &str,
        format: EmbeddingFormat,
        model: Option<&str>,
    ) -> FakeEmbedServer {
        let server = FakeEmbedServer::start(DIMS).await;
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            format,
            model: model.map(str::to_owned),
            api_key: Some("sk-test-123".to_owned()),
            ..config(&server, path)
        })
        .unwrap();
        let out = embedder.embed(&TEXTS).await.unwrap();
        assert_eq!(out, expected(&TEXTS));
        assert_eq!(server.state.requests(), 1);
        let last = server.state.last().unwrap();
        assert_eq!(last.path, path);
        assert_eq!(last.texts, TEXTS);
        assert_eq!(last.authorization.as_deref(), Some("Bearer sk-test-123"));
        assert_eq!(embedder.health().status, "up");
        server
    }

    #[tokio::test]
    async fn openai_round_trip_sorted_by_index() {
        let server = round_trip(
            "/v1/embeddings",
            EmbeddingFormat::OpenAi,
            Some("text-embedding-3-small"),
        )
        .await;
        assert_eq!(
            server.state.last().unwrap().model.as_deref(),
            Some("text-embedding-3-small")
        );
    }

    #[tokio::test]
    async fn openai_without_model_leaves_it_out() {
        let server = round_trip("/v1/embeddings", EmbeddingFormat::OpenAi, None).await;
        assert_eq!(server.state.last().unwrap().model, None);
    }

    #[tokio::test]
    async fn tei_round_trip() {
        round_trip("/embed", EmbeddingFormat::Tei, None).await;
    }

    #[tokio::test]
    async fn ollama_round_trip() {
        let server = round_trip(
            "/api/embed",
            EmbeddingFormat::Ollama,
            Some("nomic-embed-text"),
        )
        .await;
        assert_eq!(
            server.state.last().unwrap().model.as_deref(),
            Some("nomic-embed-text")
        );
    }

    #[tokio::test]
    async fn generic_round_trip() {
        round_trip("/generic", EmbeddingFormat::Generic, None).await;
    }

    #[tokio::test]
    async fn auto_picks_the_request_shape_from_the_path() {
        for (path, shape) in [
            ("/v1/embeddings", EmbeddingFormat::OpenAi),
            ("/embed", EmbeddingFormat::Tei),
            ("/api/embed", EmbeddingFormat::Ollama),
        ] {
            let server = round_trip(path, EmbeddingFormat::Auto, Some("m")).await;
            let embedder = HttpEmbedder::new(HttpEmbedderConfig {
                model: Some("m".to_owned()),
                ..config(&server, path)
            })
            .unwrap();
            assert_eq!(embedder.request_format(), shape, "{path}");
        }
    }

    #[tokio::test]
    async fn auto_reads_the_answer_by_its_shape() {
        // An OpenAI-shaped request on an unknown path, answered with a bare array.
        let server = round_trip("/custom/vectors", EmbeddingFormat::Auto, None).await;
        assert_eq!(server.state.last().unwrap().path, "/custom/vectors");
        // An explicit format still understands another dialect's answer.
        round_trip("/custom/vectors", EmbeddingFormat::OpenAi, None).await;
    }

    #[test]
    fn path_detection() {
        use EmbeddingFormat::*;
        for (path, want) in [
            ("/v1/embeddings", OpenAi),
            ("/openai/deployments/x/embeddings", OpenAi),
            ("/embeddings/", OpenAi),
            ("/embed", Tei),
            ("/api/embed", Ollama),
            ("/api/embed/", Ollama),
            ("/", OpenAi),
            ("/vectors", OpenAi),
        ] {
            assert_eq!(EmbeddingFormat::detect_from_path(path), want, "{path}");
        }
        assert_eq!("OpenAI".parse::<EmbeddingFormat>(), Ok(OpenAi));
        assert_eq!(" tei ".parse::<EmbeddingFormat>(), Ok(Tei));
        assert!("grpc".parse::<EmbeddingFormat>().is_err());
        assert_eq!(serde_json::to_value(OpenAi).unwrap(), "openai");
        assert_eq!(
            serde_json::from_value::<EmbeddingFormat>(json!("ollama")).unwrap(),
            Ollama
        );
    }

    #[test]
    fn response_shapes() {
        let v = |s: &str| parse_response(s.as_bytes());
        assert_eq!(
            v(r#"[[1,2],[3,4]]"#).unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        assert_eq!(
            v(r#"{"embeddings":[[1,2]]}"#).unwrap(),
            vec![vec![1.0, 2.0]]
        );
        assert_eq!(v(r#"{"embedding":[1,2]}"#).unwrap(), vec![vec![1.0, 2.0]]);
        assert_eq!(
            v(r#"{"data":[{"embedding":[3],"index":1},{"embedding":[1],"index":0}]}"#).unwrap(),
            vec![vec![1.0], vec![3.0]]
        );
        assert_eq!(
            v(r#"{"data":[{"embedding":[3]},{"embedding":[1]}]}"#).unwrap(),
            vec![vec![3.0], vec![1.0]]
        );
        assert!(
            v(r#"{"data":[{"embedding":[3],"index":0},{"embedding":[1],"index":0}]}"#).is_err()
        );
        assert!(v(r#"{"data":[{"embedding":[3],"index":5}]}"#).is_err());
        assert!(v(r#"{"data":[{"embedding":[3],"index":0},{"embedding":[1]}]}"#).is_err());
        assert!(v(r#"{"vectors":[[1]]}"#).is_err());
        assert!(v(r#"[[1,"x"]]"#).is_err());
        assert!(v("not json").unwrap_err().contains("not json"));
        assert!(check_vectors(&[vec![1e38 * 10.0]], 1, 1).is_err());
    }

    #[tokio::test]
    async fn batches_in_chunks_and_keeps_order() {
        let server = FakeEmbedServer::start(DIMS).await;
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            batch_size: 2,
            ..config(&server, "/embed")
        })
        .unwrap();
        let texts = ["a", "b", "c", "d", "e"];
        assert_eq!(embedder.embed(&texts).await.unwrap(), expected(&texts));
        assert_eq!(
            server.state.received_texts(),
            vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        let stats = embedder.stats();
        assert_eq!(
            (stats.calls, stats.batches, stats.requests, stats.texts),
            (1, 3, 3, 5)
        );
    }

    #[tokio::test]
    async fn empty_input_sends_nothing() {
        let server = FakeEmbedServer::start(DIMS).await;
        let embedder = HttpEmbedder::new(config(&server, "/embed")).unwrap();
        assert_eq!(embedder.embed(&[]).await.unwrap(), Vec::<Vec<f32>>::new());
        assert_eq!(server.state.requests(), 0);
    }

    #[tokio::test]
    async fn retries_5xx_then_succeeds() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.fail_next.store(2, SeqCst);
        let embedder = HttpEmbedder::new(config(&server, "/v1/embeddings")).unwrap();
        assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
        assert_eq!(server.state.requests(), 3);
        let stats = embedder.stats();
        assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 0));
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_as_unavailable() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.fail_always.store(true, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            max_retries: 2,
            ..config(&server, "/v1/embeddings")
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::Unavailable(m) if m.contains("500")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 3);
        assert_eq!(embedder.stats().failures, 1);
        let health = embedder.health();
        assert!(
            health.detail["last_error"]
                .as_str()
                .unwrap()
                .contains("500")
        );
        assert_eq!(health.detail["breaker"]["consecutive_failures"], 1);
    }

    #[tokio::test]
    async fn never_retries_400() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.reject.store(true, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            breaker_failures: 1,
            ..config(&server, "/embed")
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::Rejected(m) if m.contains("400") && m.contains("input too long")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 1);
        // A refused request is not the endpoint failing: the breaker stays closed.
        assert_eq!(embedder.breaker().state().state, BreakerState::Closed);
        assert_eq!(embedder.stats().rejected, 1);
        assert!(embedder.embed(&TEXTS).await.is_err());
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn a_request_of_the_wrong_shape_is_rejected() {
        let server = FakeEmbedServer::start(DIMS).await;
        // The generic route refuses OpenAI's `input` field.
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            format: EmbeddingFormat::OpenAi,
            ..config(&server, "/generic")
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(matches!(err, EmbedError::Rejected(_)), "{err:?}");
        assert_eq!(server.state.requests(), 1);
    }

    #[tokio::test]
    async fn honours_retry_after_on_429() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.too_many_next.store(1, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            model: Some("all-minilm".to_owned()),
            ..config(&server, "/api/embed")
        })
        .unwrap();
        let start = Instant::now();
        assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
        assert!(
            start.elapsed() >= Duration::from_millis(950),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(server.state.requests(), 2);
        assert_eq!(embedder.stats().retries, 1);
    }

    #[tokio::test]
    async fn retry_after_is_capped() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.too_many_next.store(1, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            retry_after_cap: Duration::from_millis(20),
            format: EmbeddingFormat::Generic,
            ..config(&server, "/generic")
        })
        .unwrap();
        embedder.embed(&TEXTS).await.unwrap();
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn persistent_429_ends_unavailable() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.too_many_next.store(100, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            max_retries: 1,
            retry_after_cap: Duration::from_millis(10),
            format: EmbeddingFormat::Generic,
            ..config(&server, "/generic")
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::Unavailable(m) if m.contains("429")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn timeout_is_unavailable() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.stall.store(true, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            timeout: Duration::from_millis(200),
            max_retries: 1,
            ..config(&server, "/embed")
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::Unavailable(m) if m.contains("timed out")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 2, "timeouts are retried");
    }

    #[tokio::test]
    async fn connection_refused_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            max_retries: 1,
            retry_min_delay: Duration::from_millis(1),
            ..HttpEmbedderConfig::new(format!("http://{addr}/embed"), DIMS)
        })
        .unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(matches!(err, EmbedError::Unavailable(_)), "{err:?}");
        assert_eq!(embedder.stats().requests, 2);
    }

    #[tokio::test]
    async fn wrong_dimension_is_a_bad_response_not_retried() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.wrong_dimension.store(true, SeqCst);
        let embedder = HttpEmbedder::new(config(&server, "/v1/embeddings")).unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::BadResponse(m) if m.contains("dimensions")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 1);
        assert_eq!(embedder.breaker().state().consecutive_failures, 1);
    }

    #[tokio::test]
    async fn wrong_count_is_a_bad_response_not_retried() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.wrong_count.store(true, SeqCst);
        let embedder = HttpEmbedder::new(config(&server, "/embed")).unwrap();
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert!(
            matches!(&err, EmbedError::BadResponse(m) if m.contains("expected 3 vectors, got 2")),
            "{err:?}"
        );
        assert_eq!(server.state.requests(), 1);
    }

    #[tokio::test]
    async fn breaker_opens_fails_fast_then_half_opens_and_closes() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.fail_always.store(true, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            max_retries: 0,
            breaker_failures: 2,
            breaker_cooldown: Duration::from_millis(300),
            ..config(&server, "/embed")
        })
        .unwrap();
        for _ in 0..2 {
            assert!(matches!(
                embedder.embed(&TEXTS).await,
                Err(EmbedError::Unavailable(_))
            ));
        }
        assert_eq!(server.state.requests(), 2);
        assert_eq!(embedder.health().status, "down");
        assert_eq!(embedder.health().detail["breaker"]["state"], "open");

        // Open: fails fast, nothing reaches the server.
        let err = embedder.embed(&TEXTS).await.unwrap_err();
        assert_eq!(err, EmbedError::Unavailable("circuit open".to_owned()));
        assert_eq!(server.state.requests(), 2);
        assert_eq!(embedder.stats().short_circuited, 1);

        // After the cool-down one trial goes through; the endpoint is back, so it closes.
        server.state.fail_always.store(false, SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
        assert_eq!(server.state.requests(), 3);
        assert_eq!(embedder.breaker().state().state, BreakerState::Closed);
        assert_eq!(embedder.health().status, "up");
        assert_eq!(embedder.health().detail["last_error"], Value::Null);
    }

    #[tokio::test]
    async fn failed_trial_reopens_the_breaker() {
        let server = FakeEmbedServer::start(DIMS).await;
        server.state.wrong_count.store(true, SeqCst);
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            breaker_failures: 1,
            breaker_cooldown: Duration::from_millis(300),
            ..config(&server, "/embed")
        })
        .unwrap();
        assert!(matches!(
            embedder.embed(&TEXTS).await,
            Err(EmbedError::BadResponse(_))
        ));
        assert_eq!(embedder.breaker().state().state, BreakerState::Open);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(
            embedder.embed(&TEXTS).await,
            Err(EmbedError::BadResponse(_))
        ));
        assert_eq!(server.state.requests(), 2);
        let state = embedder.breaker().state();
        assert_eq!((state.state, state.times_opened), (BreakerState::Open, 2));
        assert_eq!(
            embedder.embed(&TEXTS).await.unwrap_err(),
            EmbedError::Unavailable("circuit open".to_owned())
        );
        assert_eq!(server.state.requests(), 2);
    }

    #[tokio::test]
    async fn health_and_debug_never_show_the_key() {
        let server = FakeEmbedServer::start(DIMS).await;
        let config = HttpEmbedderConfig {
            api_key: Some("sk-very-secret".to_owned()),
            url: format!(
                "http://user:pw@{}/v1/embeddings?api-version=2024&key=qs-secret",
                server.addr
            ),
            ..config(&server, "/")
        };
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("sk-very-secret")
                && !debug.contains("qs-secret")
                && !debug.contains("pw@"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"));
        let embedder = HttpEmbedder::new(config).unwrap();
        assert!(!format!("{embedder:?}").contains("sk-very-secret"));
        embedder.embed(&TEXTS).await.unwrap();
        let health = serde_json::to_string(&embedder.health()).unwrap();
        assert!(
            !health.contains("sk-very-secret")
                && !health.contains("qs-secret")
                && !health.contains("pw@"),
            "{health}"
        );
        assert!(
            health.contains(&format!("http://{}/v1/embeddings?…", server.addr)),
            "{health}"
        );
        let h = embedder.health();
        assert_eq!(
            (h.provider.as_str(), h.status, h.dimensions),
            ("http", "up", DIMS)
        );
        assert_eq!(h.detail["format"], "auto");
        assert_eq!(h.detail["request_format"], "openai");
        assert_eq!(h.detail["stats"]["requests"], 1);
    }

    #[test]
    fn model_id_names_the_model_or_the_endpoint() {
        let with_model = HttpEmbedder::new(HttpEmbedderConfig {
            model: Some("bge-small".to_owned()),
            ..HttpEmbedderConfig::new("http://tei:8080/embed", 384)
        })
        .unwrap();
        assert_eq!(with_model.model_id(), "http:bge-small:384");
        let without = HttpEmbedder::new(HttpEmbedderConfig::new(
            "https://me:pw@emb.example/v1/embeddings?k=1",
            768,
        ))
        .unwrap();
        assert_eq!(without.model_id(), "http:emb.example/v1/embeddings:768");
    }

    #[test]
    fn invalid_settings_are_refused() {
        let base = || HttpEmbedderConfig::new("http://localhost:8080/embed", 384);
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                url: "not a url".into(),
                ..base()
            })
            .is_err()
        );
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                url: "ftp://x/embed".into(),
                ..base()
            })
            .is_err()
        );
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                dimensions: 0,
                ..base()
            })
            .is_err()
        );
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                batch_size: 0,
                ..base()
            })
            .is_err()
        );
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                timeout: Duration::ZERO,
                ..base()
            })
            .is_err()
        );
        let ollama = HttpEmbedderConfig {
            url: "http://localhost:11434/api/embed".into(),
            ..base()
        };
        assert!(
            HttpEmbedder::new(ollama.clone()).is_err(),
            "Ollama needs a model"
        );
        assert!(
            HttpEmbedder::new(HttpEmbedderConfig {
                model: Some("all-minilm".into()),
                ..ollama
            })
            .is_ok()
        );
        assert!(HttpEmbedder::new(base()).is_ok());
    }

    #[test]
    fn retry_after_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
