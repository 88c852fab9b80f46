//! Test harness: a fresh store per test on either backend, and the app served on 127.0.0.1:0.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio::{sync::oneshot, task::JoinHandle};
use tool_registry::{
    App,
    config::{EmbeddingProvider, Secret, Settings, VectorSearch},
    store::{
        EmbeddedStore, PostgresStore, ToolStore,
        postgres::{PostgresOptions, VectorPlacement},
    },
};
use uuid::Uuid;

/// Vector size of the store contract tests.
pub const DIMS: usize = 8;
/// Vector size of the app in HTTP tests (the hashing embedder).
pub const APP_DIMS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
    /// PostgreSQL with each replica's vectors in its memory (`DATABASE_VECTOR_SEARCH=memory`).
    PostgresVectorsInMemory,
}

/// Where one test's data lives: its own SQLite file or its own PostgreSQL database.
pub struct TestDb {
    dir: tempfile::TempDir,
    pg_url: Option<String>,
    vectors_in_memory: bool,
}

/// The admin URL of the test PostgreSQL server (scripts/test.sh provisions one).
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run the tests through scripts/test.sh, which starts \
         PostgreSQL with pgvector, or point it at a server where the role can create databases",
    )
}

/// `postgres://u@h:p/db` with the database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{database}")
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg_url = match backend {
            Backend::Embedded => None,
            Backend::Postgres | Backend::PostgresVectorsInMemory => {
                let admin = admin_url();
                let name = format!("test_{}", Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL server");
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create a test database");
                conn.close().await.ok();
                Some(with_database(&admin, &name))
            }
        };
        Self {
            dir,
            pg_url,
            vectors_in_memory: backend == Backend::PostgresVectorsInMemory,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn database_url(&self) -> Option<&str> {
        self.pg_url.as_deref()
    }

    pub async fn open(&self, dims: usize) -> Arc<dyn ToolStore> {
        match &self.pg_url {
            Some(url) => Arc::new(
                PostgresStore::connect(url, dims, &self.postgres_options())
                    .await
                    .expect("open PostgresStore"),
            ),
            None => Arc::new(
                EmbeddedStore::open(self.dir.path(), dims)
                    .await
                    .expect("open EmbeddedStore"),
            ),
        }
    }

    pub fn postgres_options(&self) -> PostgresOptions {
        // With vectors in memory nothing searches through the HNSW index: the suite runs
        // without it, as such a deployment would.
        PostgresOptions {
            vector_search: if self.vectors_in_memory {
                VectorPlacement::Memory
            } else {
                VectorPlacement::Index
            },
            hnsw_index: !self.vectors_in_memory,
            ..PostgresOptions::default()
        }
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::for_tests(self.data_dir());
        settings.database.url = self.pg_url.clone().map(Secret::new);
        settings.embedding.provider = EmbeddingProvider::Hash;
        settings.embedding.dimensions = APP_DIMS;
        // Each backend pins its place: the default (auto) would search the small catalogues
        // of tests in memory on both.
        if self.vectors_in_memory {
            settings.database.vector_search = VectorSearch::Memory;
            settings.database.hnsw_index = false;
        } else {
            settings.database.vector_search = VectorSearch::Hnsw;
        }
        // Catalogue tests count tools; the call tests turn the built-ins back on.
        settings.tools.register_builtins = false;
        settings
    }
}

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

/// Declares each listed async test function once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Embedded).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
        mod postgres_vectors_in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::PostgresVectorsInMemory).await;
                }
            )*
        }
    };
}

/// A real `redis-server` on a free loopback port (`REDIS_SERVER` names another binary),
/// stopped when dropped.
pub struct RedisServer {
    child: std::process::Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}); install redis-server"));
        let server = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("redis-server did not listen on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
