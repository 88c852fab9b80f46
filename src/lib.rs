//! A tool registry that AI agents use over MCP: operators register tools, agents list,
//! find and call them.

pub mod config;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod registry;
pub mod store;
pub mod telemetry;
pub mod tools;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    config::Settings,
    http::AppState,
    registry::{ToolRegistry, recorder::ExecutionRecorder},
    store::{EmbeddedStore, PostgresStore, ToolStore, postgres::PostgresOptions},
    tools::{BuiltinLimits, Executor, ExecutorSettings},
};

/// Opens the configured store: PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file. Either way its migrations are applied.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn ToolStore>> {
    let dims = settings.embedding_dimensions;
    Ok(match &settings.database_url {
        Some(url) => {
            let options = PostgresOptions {
                max_connections: settings.database_max_connections,
                acquire_timeout: std::time::Duration::from_millis(
                    settings.database_acquire_timeout_ms,
                ),
                ..PostgresOptions::default()
            };
            Arc::new(
                PostgresStore::connect(url.expose(), dims, &options)
                    .await
                    .context("cannot open the PostgreSQL store")?,
            )
        }
        None => Arc::new(
            EmbeddedStore::open(&settings.registry_data_dir, dims)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the embedded store in {}",
                        settings.registry_data_dir.display()
                    )
                })?,
        ),
    })
}

/// A service bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Opens the store and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let address = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let executor = Arc::new(Executor::new(ExecutorSettings {
            default_timeout: std::time::Duration::from_millis(settings.tool_timeout_ms),
            allow_private_urls: settings.allow_private_tool_urls,
            max_response_bytes: settings.tool_max_response_bytes,
            builtin_limits: BuiltinLimits {
                max_input_bytes: settings.tool_max_input_bytes,
                ..BuiltinLimits::default()
            },
        })?);
        let recorder = ExecutionRecorder::start(store.clone(), settings.execution_queue_size);
        let registry = ToolRegistry::new(store, executor, recorder);
        if settings.register_builtins {
            registry
                .sync_builtins()
                .await
                .map_err(|e| anyhow::anyhow!("cannot register the built-in tools: {e}"))?;
        }
        let state = AppState {
            registry: Arc::new(registry),
            settings: Arc::new(settings),
            started: Instant::now(),
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish (up to `SHUTDOWN_TIMEOUT_MS`), writes queued execution records and closes
    /// the store.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { listener, state } = self;
        let store = state.registry.store().clone();
        let recorder = state.registry.recorder().clone();
        let grace = state.settings.shutdown_timeout();
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            let _ = signalled_tx.send(());
        };
        let server = axum::serve(
            listener,
            http::router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown);
        let outcome = tokio::select! {
            result = server => result.context("server failed"),
            _ = async {
                let _ = signalled_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "in-flight requests did not finish in time");
                Ok(())
            }
        };
        recorder.flush().await;
        store.close().await;
        tracing::info!("stopped");
        outcome
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
