//! The app served on 127.0.0.1:0, and helpers for its JSON answers.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};
use tool_registry::{App, config::Settings};

/// The app serving on loopback until dropped or stopped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn spawn(settings: Settings) -> Self {
        let app = App::build(settings).await.expect("build app");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops gracefully and waits for the store to close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        response(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        response(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        response(
            self.client
                .put(self.url(path))
                .json(body)
                .send()
                .await
                .expect("PUT"),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        response(
            self.client
                .delete(self.url(path))
                .send()
                .await
                .expect("DELETE"),
        )
        .await
    }

    /// Registers a tool and returns it; panics unless the answer is 201.
    pub async fn register(&self, definition: &Value) -> Value {
        let (status, body) = self.post("/admin/tools", definition).await;
        assert_eq!(status, 201, "register failed: {body}");
        body
    }
}

pub async fn response(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text:?}"))
    };
    (status, body)
}

/// A minimal valid tool definition.
pub fn tool_definition(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("The {name} tool does useful work"),
        "category": "testing",
        "tags": ["test"],
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Input text"}},
            "required": ["text"]
        },
        "implementation": {"kind": "builtin", "handler": "string_uppercase"}
    })
}

/// Asserts the JSON error shape and returns the error object.
#[track_caller]
pub fn assert_error(body: &Value, code: &str) -> Value {
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no error object in {body}"));
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    error.clone()
}

/// `POST /mcp/find_tool`, asserting 200.
pub async fn find(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post("/mcp/find_tool", &body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The tool names of a find_tool answer, in order.
pub fn names(answer: &Value) -> Vec<String> {
    answer["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["tool"]["name"].as_str().unwrap().to_owned())
        .collect()
}
