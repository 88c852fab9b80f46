//! Where a test's data lives: a fresh store per test on either backend.

use std::{path::PathBuf, sync::Arc};

use sqlx::{Connection, Executor, PgConnection};
use tool_registry::{
    config::{EmbeddingProvider, Secret, Settings, VectorSearch},
    store::{
        EmbeddedStore, PostgresStore, ToolStore,
        postgres::{HnswIndex, PostgresOptions, VectorPlacement},
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
    std::env::var(DATABASE_URL_VARIABLE).expect(
        "TEST_DATABASE_URL is not set: run the tests through scripts/test.sh, which starts \
         PostgreSQL with pgvector, or point it at a server where the role can create databases",
    )
}

const DATABASE_URL_VARIABLE: &str = "TEST_DATABASE_URL";

/// Whether a PostgreSQL test server is given (`TEST_DATABASE_URL`). Without one, tests that
/// need it return at once (see `skip_without_postgres!`), and the first to do so in this
/// process says why, once.
pub fn postgres_available() -> bool {
    static SAID: std::sync::Once = std::sync::Once::new();
    let available = std::env::var_os(DATABASE_URL_VARIABLE).is_some_and(|url| !url.is_empty());
    if !available {
        // Written to the process's stderr, not through `eprintln!`, which the test harness
        // captures: the line shows in a plain `cargo test` run.
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipping the PostgreSQL tests: {DATABASE_URL_VARIABLE} is not set \
                 (scripts/test.sh sets it and runs them all)"
            );
        });
    }
    available
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
            hnsw_index: if self.vectors_in_memory {
                HnswIndex::Dropped
            } else {
                HnswIndex::Kept
            },
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
            settings.database.hnsw_index = HnswIndex::Dropped;
        } else {
            settings.database.vector_search = VectorSearch::Hnsw;
        }
        // Catalogue tests count tools; the call tests turn the built-ins back on.
        settings.tools.register_builtins = false;
        settings
    }
}
