//! The HTTP edges of `/mcp` that MCP clients read differently from REST clients.
//!
//! SDKs show the `message` of a JSON-RPC error and nothing of other bodies, so every error
//! answer on `/mcp` (refused credentials, rate limits, oversized bodies, rmcp's plain-text
//! transport errors) becomes a JSON-RPC error object carrying the request's id, with the
//! status and headers (`WWW-Authenticate`, `Retry-After`) kept; so does a request that
//! outlives `REQUEST_TIMEOUT_MS` (504). `DELETE /mcp` answers 204
//! (the Python SDK warns on rmcp's 202) and 404 for a session that does not exist.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use rmcp::transport::streamable_http_server::session::{
    SessionId, SessionManager, local::LocalSessionManager,
};
use serde_json::{Value, json};

use super::{McpService, authorization};
use crate::{
    config::Settings,
    http::{RequestDeadline, error::ApiError},
};

/// The path this module's adapters apply to.
pub const MCP_PATH: &str = "/mcp";

/// The error code MCP SDKs use for a transport-level fault of the request.
pub const TRANSPORT_ERROR: i64 = -32000;
/// The error code MCP SDKs use for an unknown or ended session.
pub const SESSION_NOT_FOUND: i64 = -32001;

/// Error bodies are short; anything longer is cut at this many bytes before reading.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// rmcp's service with the session-aware `DELETE` answers described above.
#[derive(Clone)]
pub struct McpEndpoint {
    inner: McpService,
    sessions: Arc<LocalSessionManager>,
}

impl McpEndpoint {
    pub fn new(inner: McpService, sessions: Arc<LocalSessionManager>) -> Self {
        Self { inner, sessions }
    }
}

impl tower::Service<Request> for McpEndpoint {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut inner = self.inner.clone();
        let sessions = self.sessions.clone();
        Box::pin(async move {
            let deleting = request.method() == Method::DELETE;
            if deleting && let Some(id) = session_id(&request) {
                let known = sessions.has_session(&id).await.unwrap_or(false);
                if !known {
                    return Ok(
                        (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
                    );
                }
            }
            let response = tower::Service::call(&mut inner, request)
                .await?
                .map(Body::new);
            if deleting && response.status() == StatusCode::ACCEPTED {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Ok(response)
        })
    }
}

/// How much of a POST body is read ahead of the inner layers to find the request's id.
const ID_PREFIX_BYTES: usize = 64 * 1024;

fn session_id(request: &Request) -> Option<SessionId> {
    request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(|id| SessionId::from(id.to_owned()))
}

/// Middleware over the whole router: error answers on `/mcp` as JSON-RPC error objects.
/// Up to `ID_PREFIX_BYTES` of a POST body are read first to learn the request's id; the
/// rest streams on untouched, so a client the inner layers refuse (no key, rate-limited)
/// cannot make this layer hold a whole body. A request still unanswered at its deadline
/// (`RequestDeadline`, set by the router's deadline outside this layer) is answered here,
/// at that instant, with a 504 JSON-RPC error.
pub async fn jsonrpc_errors(
    State(settings): State<Arc<Settings>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != MCP_PATH {
        return next.run(request).await;
    }
    let Some(RequestDeadline(deadline)) = request.extensions().get::<RequestDeadline>().copied()
    else {
        return answer(&settings, request, next, &mut Value::Null).await;
    };
    let mut id = Value::Null;
    match tokio::time::timeout_at(deadline, answer(&settings, request, next, &mut id)).await {
        Ok(response) => response,
        Err(_) => as_jsonrpc_error(ApiError::Timeout.into_response(), id, false).await,
    }
}

/// The answer to a request on `/mcp`, its error as a JSON-RPC error; `id` is set to the
/// request's once it is known.
async fn answer(settings: &Settings, request: Request, next: Next, id: &mut Value) -> Response {
    let (challenge, static_keys) = authorization::challenge(settings, request.headers());
    let request = if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let mut rest = body.into_data_stream();
        let mut prefix = Vec::new();
        let mut whole = false;
        while prefix.len() < ID_PREFIX_BYTES {
            match rest.next().await {
                Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
                Some(Err(_)) => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        Value::Null,
                        "the request body could not be read",
                        Some("bad_request"),
                    );
                }
                None => {
                    whole = true;
                    break;
                }
            }
        }
        // A body longer than the prefix is not parsed here; its errors carry a null id.
        if whole {
            *id = request_id(&prefix);
        }
        let head = futures_util::stream::once(async move { Ok(Bytes::from(prefix)) });
        let body = Body::from_stream(head.chain(rest));
        Request::from_parts(parts, body)
    } else {
        request
    };
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status().is_redirection() {
        return response;
    }
    let unauthorized = response.status() == StatusCode::UNAUTHORIZED;
    if unauthorized {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    as_jsonrpc_error(response, id.clone(), unauthorized && static_keys).await
}

/// The `id` of a single JSON-RPC request; `null` for notifications, batches and garbage.
fn request_id(body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(message)) => match message.get("id") {
            Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

async fn as_jsonrpc_error(response: Response, id: Value, static_key_hint: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    let parsed = serde_json::from_slice::<Value>(&bytes).ok();
    if parsed
        .as_ref()
        .is_some_and(|body| body.get("jsonrpc").is_some())
    {
        // Already JSON-RPC (rmcp's own protocol errors).
        return Response::from_parts(parts, Body::from(bytes));
    }
    // The REST error body `{"error": {"code", "message"}}`, or rmcp's plain text.
    let rest_error = parsed.as_ref().and_then(|body| body.get("error"));
    let message = rest_error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| text_message(&bytes, parts.status));
    let message = if static_key_hint {
        format!("{message}; {}", authorization::STATIC_KEY_HINT)
    } else {
        message
    };
    let code = rest_error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = error_body(parts.status, id, &message, code.as_deref());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

fn text_message(bytes: &Bytes, status: StatusCode) -> String {
    let text = String::from_utf8_lossy(bytes).trim().to_owned();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    }
}

fn error_body(status: StatusCode, id: Value, message: &str, code: Option<&str>) -> Vec<u8> {
    let rpc_code = if status == StatusCode::NOT_FOUND {
        SESSION_NOT_FOUND
    } else {
        TRANSPORT_ERROR
    };
    let mut data = json!({ "status": status.as_u16() });
    if let Some(code) = code {
        data["code"] = json!(code);
    }
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": rpc_code, "message": message, "data": data },
    }))
    .expect("a JSON value serialises")
}

fn error_response(status: StatusCode, id: Value, message: &str, code: Option<&str>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_body(status, id, message, code),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::{Router, middleware, routing::post};
    use tower::ServiceExt;

    use super::*;
    use std::time::Duration;

    /// A refusal by an inner layer is answered while the client still owes most of a large
    /// body: only a bounded prefix is read ahead for the id.
    #[tokio::test]
    async fn a_refusal_does_not_wait_for_the_rest_of_a_large_body() {
        let settings = Arc::new(Settings::for_tests(std::env::temp_dir()));
        let app = Router::new()
            .route(MCP_PATH, post(|| async { StatusCode::UNAUTHORIZED }))
            .layer(middleware::from_fn_with_state(settings, jsonrpc_errors));
        // 128 KiB arrive, then the client stalls for ever.
        let sent = futures_util::stream::iter(
            (0..32).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 4096]))),
        );
        let body = Body::from_stream(sent.chain(futures_util::stream::pending()));
        let request = Request::post(MCP_PATH)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), app.oneshot(request))
            .await
            .expect("answered without the rest of the body")
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
}
