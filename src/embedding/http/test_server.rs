//! A real embedding service on loopback for tests. It speaks each wire format on its usual path,
//! records what it receives, and can be switched to misbehave.
//!
//! | path             | request                           | response                           |
//! |------------------|-----------------------------------|------------------------------------|
//! | `/v1/embeddings` | OpenAI `{"input", "model"?}`      | `{"data": [..]}`, in reverse index order |
//! | `/embed`         | TEI `{"inputs", "truncate"?}`     | `[[..]]`                           |
//! | `/api/embed`     | Ollama `{"model", "input"}`       | `{"embeddings": [[..]]}`           |
//! | `/generic`       | `{"texts"}`                       | `{"embeddings": [[..]]}`           |
//! | `/custom/vectors`| OpenAI `{"input", "model"?}`      | `[[..]]` (TEI's answer)            |
//!
//! Requests are parsed strictly (unknown fields refused with 422), so a client sending the wrong
//! shape is caught.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a stalled request waits before answering.
pub(crate) const STALL: Duration = Duration::from_secs(3);

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Received {
    pub path: &'static str,
    pub texts: Vec<String>,
    pub model: Option<String>,
    pub authorization: Option<String>,
}

/// Shared switches and records. Flip the switches from the test while the server runs.
#[derive(Default)]
pub(crate) struct FakeState {
    pub dims: usize,
    /// Every request received, well-formed or not.
    pub requests: AtomicU32,
    /// Answer 500 to the next N requests.
    pub fail_next: AtomicU32,
    /// Answer 500 to every request.
    pub fail_always: AtomicBool,
    /// Wait [`STALL`] before answering.
    pub stall: AtomicBool,
    /// Answer 429 with `Retry-After: 1` to the next N requests.
    pub too_many_next: AtomicU32,
    /// Answer vectors one float too long.
    pub wrong_dimension: AtomicBool,
    /// Answer one vector fewer than asked (or one more for an empty request).
    pub wrong_count: AtomicBool,
    /// Answer 400.
    pub reject: AtomicBool,
    pub received: Mutex<Vec<Received>>,
}

impl FakeState {
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Texts of every well-formed request, one list per request.
    pub fn received_texts(&self) -> Vec<Vec<String>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.texts.clone())
            .collect()
    }

    pub fn last(&self) -> Option<Received> {
        self.received.lock().unwrap().last().cloned()
    }
}

/// The vector the server gives `text`: deterministic, and exactly representable in JSON.
pub(crate) fn fake_vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..dims as u64)
        .map(|j| {
            let x = (h ^ (h >> 29)).wrapping_add(j.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 53;
            x as f32 / 1024.0 - 1.0
        })
        .collect()
}

/// A running server; stopped when dropped.
pub(crate) struct FakeEmbedServer {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEmbedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEmbedServer {
    /// Starts on `127.0.0.1:0`, answering vectors of `dims` floats.
    pub async fn start(dims: usize) -> Self {
        let state = Arc::new(FakeState {
            dims,
            ..FakeState::default()
        });
        let app = Router::new()
            .route("/v1/embeddings", post(openai))
            .route("/embed", post(tei))
            .route("/api/embed", post(ollama))
            .route("/generic", post(generic))
            .route("/custom/vectors", post(custom))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

type Shared = State<Arc<FakeState>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenAiRequest {
    input: Vec<String>,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeiRequest {
    inputs: Vec<String>,
    #[allow(dead_code)]
    truncate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OllamaRequest {
    model: String,
    input: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericRequest {
    texts: Vec<String>,
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Records the request, applies the switches, and computes the vectors.
async fn answer(
    state: &FakeState,
    path: &'static str,
    texts: Vec<String>,
    model: Option<String>,
    headers: &HeaderMap,
) -> Result<Vec<Vec<f32>>, Response> {
    state.received.lock().unwrap().push(Received {
        path,
        texts: texts.clone(),
        model,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    if state.stall.load(Ordering::SeqCst) {
        tokio::time::sleep(STALL).await;
    }
    if state.reject.load(Ordering::SeqCst) {
        return Err((StatusCode::BAD_REQUEST, "input too long").into_response());
    }
    if take_one(&state.too_many_next) {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response());
    }
    if state.fail_always.load(Ordering::SeqCst) || take_one(&state.fail_next) {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "model crashed").into_response());
    }
    let dims = if state.wrong_dimension.load(Ordering::SeqCst) {
        state.dims + 1
    } else {
        state.dims
    };
    let mut vectors: Vec<Vec<f32>> = texts.iter().map(|t| fake_vector(t, dims)).collect();
    if state.wrong_count.load(Ordering::SeqCst) && vectors.pop().is_none() {
        vectors.push(fake_vector("", dims));
    }
    Ok(vectors)
}

/// Counts every request, including ones whose body the extractor refuses.
fn count(state: &FakeState) {
    state.requests.fetch_add(1, Ordering::SeqCst);
}

async fn openai(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<OpenAiRequest>, JsonRejection>,
) -> Response {
    count(&state);
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let model = req.model.clone();
    match answer(&state, "/v1/embeddings", req.input, req.model, &headers).await {
        Ok(vectors) => {
            // Reverse order: the client must sort by `index`.
            let data: Vec<Value> = vectors
                .into_iter()
                .enumerate()
                .rev()
                .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
                .collect();
            Json(json!({"object": "list", "data": data, "model": model})).into_response()
        }
        Err(resp) => resp,
    }
}

async fn tei(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<TeiRequest>, JsonRejection>,
) -> Response {
    count(&state);
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match answer(&state, "/embed", req.inputs, None, &headers).await {
        Ok(vectors) => Json(vectors).into_response(),
        Err(resp) => resp,
    }
}

async fn ollama(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<OllamaRequest>, JsonRejection>,
) -> Response {
    count(&state);
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let model = req.model.clone();
    match answer(&state, "/api/embed", req.input, Some(req.model), &headers).await {
        Ok(vectors) => Json(json!({"model": model, "embeddings": vectors})).into_response(),
        Err(resp) => resp,
    }
}

async fn generic(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<GenericRequest>, JsonRejection>,
) -> Response {
    count(&state);
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match answer(&state, "/generic", req.texts, None, &headers).await {
        Ok(vectors) => Json(json!({"embeddings": vectors})).into_response(),
        Err(resp) => resp,
    }
}

async fn custom(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<OpenAiRequest>, JsonRejection>,
) -> Response {
    count(&state);
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match answer(&state, "/custom/vectors", req.input, req.model, &headers).await {
        Ok(vectors) => Json(vectors).into_response(),
        Err(resp) => resp,
    }
}
