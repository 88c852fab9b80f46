//! Bounds on MCP sessions: at most `MCP_MAX_SESSIONS` open at once, and an `initialize`
//! (whose client description each session keeps) of at most [`MAX_INITIALIZE_BYTES`].
//!
//! The transport creates a session for every `initialize` it accepts; this middleware in
//! front of it refuses one over the cap with 503 and a JSON-RPC error, before the session
//! exists. Sessions end (and are removed) when the client deletes them, when they stay idle
//! for `MCP_SESSION_IDLE_SECS`, or at shutdown.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::ErrorCode;

/// Largest `initialize` request accepted. Clients describe themselves in a few hundred
/// bytes; the session keeps what they send for its whole life.
pub const MAX_INITIALIZE_BYTES: usize = 16 * 1024;

/// JSON-RPC's code for a server-defined error.
const SERVER_ERROR: i64 = -32000;
const INVALID_REQUEST: i64 = -32600;

pub struct SessionLimit {
    manager: Arc<LocalSessionManager>,
    max_sessions: usize,
    max_body_bytes: usize,
    /// `initialize` requests admitted whose session may not be in the manager yet.
    opening: AtomicUsize,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    method: Option<String>,
}

/// Gives back an admitted `initialize`'s place once it is answered (or abandoned).
struct Opening<'a>(&'a AtomicUsize);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SessionLimit {
    pub fn new(
        manager: Arc<LocalSessionManager>,
        max_sessions: usize,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            manager,
            max_sessions,
            max_body_bytes,
            opening: AtomicUsize::new(0),
        }
    }

    pub fn manager(&self) -> Arc<LocalSessionManager> {
        self.manager.clone()
    }

    /// Sessions open now.
    pub async fn open_sessions(&self) -> usize {
        self.manager.sessions.read().await.len()
    }

    /// Admits an `initialize` if the cap leaves room, counting it until it is answered so
    /// that concurrent ones cannot overshoot the cap.
    async fn admit(&self) -> Option<Opening<'_>> {
        let opening = self.opening.fetch_add(1, Ordering::AcqRel);
        let guard = Opening(&self.opening);
        // A session already created but not yet answered is counted twice: the cap errs
        // on the side of refusing.
        (self.open_sessions().await + opening < self.max_sessions).then_some(guard)
    }
}

fn json_rpc_error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// Middleware before the MCP transport: checks every `POST` that opens no existing session.
pub async fn limit(
    State(limit): State<Arc<SessionLimit>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || request.headers().contains_key("mcp-session-id") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit.max_body_bytes).await else {
        return super::error_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server accepts (MAX_BODY_BYTES)".to_owned(),
        );
    };
    let probe = serde_json::from_slice::<Probe>(&bytes).ok();
    let request = Request::from_parts(parts, Body::from(bytes.clone()));
    let Some(Probe {
        id,
        method: Some(method),
    }) = probe
    else {
        return next.run(request).await;
    };
    if method != "initialize" {
        return next.run(request).await;
    }
    if bytes.len() > MAX_INITIALIZE_BYTES {
        return json_rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            id,
            INVALID_REQUEST,
            format!(
                "the initialize request is {} bytes; at most {MAX_INITIALIZE_BYTES} are accepted \
                 (describe the client in clientInfo briefly)",
                bytes.len()
            ),
        );
    }
    let Some(_opening) = limit.admit().await else {
        metrics::counter!("mcp_sessions_refused_total").increment(1);
        return json_rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            id,
            SERVER_ERROR,
            format!(
                "the server already has {} MCP sessions open (MCP_MAX_SESSIONS); close unused \
                 sessions or try again later",
                limit.max_sessions
            ),
        );
    };
    next.run(request).await
}
