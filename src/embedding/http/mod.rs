//! An embedder that calls the user's own HTTP embedding service.
//!
//! Wire formats (all `POST` with a JSON body; one file each under `formats/`):
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

mod attempt;
pub mod breaker;
mod client;
pub mod format;
pub mod formats;

use std::fmt;
use std::time::Duration;

use reqwest::Url;

pub use client::{HttpEmbedder, HttpEmbedderStats};
pub use format::EmbeddingFormat;

#[cfg(test)]
pub(crate) mod test_server;

#[cfg(test)]
mod tests;

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
pub struct HttpEmbedderConfigError(pub(crate) String);

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
