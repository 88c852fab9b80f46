//! One HTTP attempt's failure, and what it means for retries and for the caller.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::embedding::EmbedError;

/// Why one attempt failed.
#[derive(Debug)]
pub(super) enum AttemptError {
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
    pub(super) fn transport(err: reqwest::Error) -> Self {
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

    pub(super) fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Transport(_) => true,
            AttemptError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            AttemptError::Bad(_) => false,
        }
    }

    pub(super) fn into_embed_error(self, url: &str) -> EmbedError {
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
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}
