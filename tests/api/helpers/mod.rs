//! Test harness: a fresh store per test on either backend (`db`), the app served on
//! 127.0.0.1:0 (`app`), a real Redis server (`redis`), and the macros that run a test on
//! every backend.

mod app;
mod db;
mod redis_server;

pub use app::*;
pub use db::*;
pub use redis_server::*;

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
                    $crate::skip_without_postgres!();
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
        mod postgres_vectors_in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::skip_without_postgres!();
                    super::$name($crate::helpers::Backend::PostgresVectorsInMemory).await;
                }
            )*
        }
    };
}

/// Returns from the test at once when no PostgreSQL test server is given: `cargo test` on a
/// machine without one runs everything else.
#[macro_export]
macro_rules! skip_without_postgres {
    () => {
        if !$crate::helpers::postgres_available() {
            return;
        }
    };
}
