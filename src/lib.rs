//! A tool registry that AI agents use over MCP: operators register tools, agents list,
//! find and call them.

pub mod builtins;
pub mod config;
pub mod embedding;
pub mod error;
pub mod execution;
pub mod healthcheck;
pub mod http;
pub mod index;
pub mod mcp;
pub mod metrics;
pub mod portable;
pub mod registry;
pub mod store;
pub mod telemetry;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    builtins::BuiltinLimits,
    config::Settings,
    config::{AdminAuth, EmbeddingProvider},
    embedding::{
        Embedder,
        cache::{
            memory::{CacheConfig, CachedEmbedder},
            metered::MeteredEmbedder,
            redis::{RedisCacheConfig, RedisCachedEmbedder},
        },
        hash::HashEmbedder,
        http::{HttpEmbedder, HttpEmbedderConfig},
    },
    execution::{Executor, ExecutorSettings},
    http::AppState,
    registry::{
        ToolRegistry,
        indexer::Indexer,
        recorder::{ExecutionRecorder, RecorderOptions},
    },
    store::{EmbeddedStore, PostgresStore, ToolStore, postgres::PostgresOptions},
};

/// The embedder the settings ask for, behind the per-text cache. A missing local model
/// falls back to the hashing embedder, loudly: search still works, with lexical quality.
pub fn build_embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let inner: Arc<dyn Embedder> = match settings.embedding_provider {
        EmbeddingProvider::Local => {
            match embedding::local::LocalEmbedder::load(&settings.embedding_model_dir, None) {
                Ok(model) => Arc::new(model),
                Err(err) => {
                    let reason = format!(
                        "the local model could not be loaded from {} ({err}); run scripts/fetch-model.sh",
                        settings.embedding_model_dir.display()
                    );
                    tracing::error!(
                        "{reason}. Falling back to the hashing embedder: search quality is lexical only"
                    );
                    Arc::new(
                        HashEmbedder::new(embedding::LOCAL_MODEL_DIMENSIONS)
                            .with_fallback_reason(reason),
                    )
                }
            }
        }
        EmbeddingProvider::Hash => Arc::new(HashEmbedder::new(settings.embedding_dimensions)),
        EmbeddingProvider::Http => {
            let url = settings
                .embedding_url
                .as_ref()
                .context("EMBEDDING_URL is required when EMBEDDING_PROVIDER=http")?;
            let mut config = HttpEmbedderConfig::new(url.expose(), settings.embedding_dimensions);
            config.api_key = settings
                .embedding_api_key
                .as_ref()
                .map(|k| k.expose().to_owned());
            config.model = settings.embedding_model.clone();
            config.format = settings.embedding_format;
            config.timeout = std::time::Duration::from_millis(settings.embedding_timeout_ms);
            config.max_retries = settings.embedding_max_retries;
            config.batch_size = settings.embedding_batch_size;
            config.breaker_failures = settings.embedding_breaker_failures;
            config.breaker_cooldown =
                std::time::Duration::from_millis(settings.embedding_breaker_cooldown_ms);
            Arc::new(HttpEmbedder::new(config).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
    };
    let mut inner: Arc<dyn Embedder> = Arc::new(MeteredEmbedder::new(inner));
    if let Some(url) = &settings.redis_url {
        let mut config = RedisCacheConfig::new(url.expose());
        config.ttl = settings.redis_cache_ttl();
        config.timeout = std::time::Duration::from_millis(settings.redis_timeout_ms);
        inner = Arc::new(RedisCachedEmbedder::new(inner, config)?);
    }
    if settings.embedding_cache_size == 0 {
        return Ok(inner);
    }
    Ok(Arc::new(CachedEmbedder::new(
        inner,
        CacheConfig {
            capacity: settings.embedding_cache_size,
            ttl: settings.embedding_cache_ttl(),
            ..CacheConfig::default()
        },
    )))
}

/// The dimension of stored vectors under these settings.
pub fn vector_dimensions(settings: &Settings) -> usize {
    match settings.embedding_provider {
        EmbeddingProvider::Local => embedding::LOCAL_MODEL_DIMENSIONS,
        EmbeddingProvider::Hash | EmbeddingProvider::Http => settings.embedding_dimensions,
    }
}

/// Opens the configured store: PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file, holding vectors of `dims` dimensions. Either way its migrations are applied.
pub async fn open_store(settings: &Settings, dims: usize) -> anyhow::Result<Arc<dyn ToolStore>> {
    Ok(match &settings.database_url {
        Some(url) => {
            let options = PostgresOptions {
                max_connections: settings.database_max_connections,
                acquire_timeout: std::time::Duration::from_millis(
                    settings.database_acquire_timeout_ms,
                ),
                vector_search: settings.vector_placement(),
                hnsw_index: settings.database_hnsw_index,
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

/// The registry with its store, embedder, executor, background indexer and execution
/// recorder, and the built-in tools registered when the settings ask for it.
pub async fn build_registry(settings: &Settings) -> anyhow::Result<Arc<ToolRegistry>> {
    let embedder = build_embedder(settings)?;
    let store = open_store(settings, embedder.dimensions()).await?;
    let executor = Arc::new(Executor::new(ExecutorSettings {
        default_timeout: std::time::Duration::from_millis(settings.tool_timeout_ms),
        allow_private_urls: settings.allow_private_tool_urls,
        proxy_url: settings.tool_proxy_url.clone(),
        max_response_bytes: settings.tool_max_response_bytes,
        builtin_limits: BuiltinLimits {
            max_input_bytes: settings.tool_max_input_bytes,
            ..BuiltinLimits::default()
        },
        max_argument_bytes: settings.tool_max_argument_bytes,
        stdio: settings.stdio(),
    })?);
    let recorder = ExecutionRecorder::start(
        store.clone(),
        RecorderOptions {
            capacity: settings.execution_queue_size,
            mode: settings.execution_recording,
            retry_for: settings.execution_retry(),
        },
    );
    let indexer = Indexer::new(
        store.clone(),
        embedder.clone(),
        settings.embedding_batch_size,
    );
    indexer.spawn();
    let registry = ToolRegistry::new(store, executor, recorder, embedder, indexer);
    if settings.register_builtins {
        registry
            .sync_builtins()
            .await
            .map_err(|e| anyhow::anyhow!("cannot register the built-in tools: {e}"))?;
    }
    Ok(Arc::new(registry))
}

/// A service bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Opens the store and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let admin_keys = http::auth::ApiKeys::parse(settings.admin_api_keys.as_ref());
        let mcp_keys = http::auth::ApiKeys::parse(settings.mcp_api_keys.as_ref());
        let jwt = http::auth::JwtVerifier::from_settings(&settings)?;
        let admin_guard = http::auth::Guard::admin(&admin_keys, jwt.as_ref());
        let tools_guard = http::auth::Guard::tools(&mcp_keys, &admin_keys, jwt.as_ref());
        if admin_guard.is_open() && !settings.host.is_loopback() {
            if settings.admin_auth == AdminAuth::Disabled {
                tracing::warn!(
                    host = %settings.host,
                    "ADMIN_AUTH=disabled: the /admin routes are open to anyone who can reach this address"
                );
            } else {
                anyhow::bail!(
                    "refusing to listen on {} with open /admin routes: set ADMIN_API_KEYS or JWT_SECRET/JWT_PUBLIC_KEY, or \
                     ADMIN_AUTH=disabled to accept the risk",
                    settings.host
                );
            }
        }
        crate::metrics::handle();
        crate::metrics::describe();
        let registry = build_registry(&settings).await?;
        // Only a serving registry starts children ahead of use (not `export`/`import`).
        if settings.stdio_start == crate::config::StdioStart::Startup {
            let started = registry
                .start_stdio_servers()
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the stdio upstreams: {e}"))?;
            tracing::info!(started, "stdio upstreams starting");
        }
        let address = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let mcp_sessions = Arc::new(mcp::SessionLimit::new(
            mcp::session_manager(&settings),
            settings.mcp_max_sessions,
            settings.max_body_bytes,
        ));
        let state = AppState {
            mcp_sessions,
            registry: registry.clone(),
            settings: Arc::new(settings),
            admin_guard,
            tools_guard,
            mcp_changes: mcp::ChangeHub::start(registry.store()),
            shutdown: CancellationToken::new(),
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
    /// finish, writes queued execution records and closes the store, all within
    /// `SHUTDOWN_TIMEOUT_MS` of the signal: in-flight requests get it less a reserve for the
    /// records (a quarter, at most 5 s), the records what is left.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { listener, state } = self;
        let store = state.registry.store().clone();
        let recorder = state.registry.recorder().clone();
        let state_registry = state.registry.clone();
        let grace = state.settings.shutdown_timeout();
        let limits = http::conn::ConnectionLimits {
            max_connections: state.settings.http_max_connections,
            header_read_timeout: state.settings.http_header_read_timeout(),
            idle_timeout: state.settings.http_idle_timeout(),
        }
        .fitted_to_open_file_limit();
        let for_requests = grace - (grace / 4).min(std::time::Duration::from_secs(5));
        // Cancelling it stops accepting, closes connections with nothing in flight and ends
        // MCP sessions and their open streams.
        let stopping = state.shutdown.clone();
        let signalled = Arc::new(std::sync::OnceLock::<tokio::time::Instant>::new());
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        {
            let signal = stopping.clone();
            let signalled = signalled.clone();
            tokio::spawn(async move {
                shutdown.await;
                let _ = signalled.set(tokio::time::Instant::now());
                tracing::info!("shutdown requested; finishing in-flight requests");
                signal.cancel();
                let _ = signalled_tx.send(());
            });
        }
        let server = http::conn::serve(listener, http::router(state), limits, stopping);
        let outcome = tokio::select! {
            () = server => Ok(()),
            _ = async {
                let _ = signalled_rx.await;
                tokio::time::sleep(for_requests).await;
            } => {
                tracing::warn!(?for_requests, "in-flight requests did not finish in time");
                Ok(())
            }
        };
        let deadline = signalled
            .get()
            .copied()
            .unwrap_or_else(tokio::time::Instant::now)
            + grace;
        // No request needs the stdio upstreams' children any more.
        let stdio = state_registry.executor().stdio();
        if tokio::time::timeout_at(deadline, stdio.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("stdio upstreams did not stop before SHUTDOWN_TIMEOUT_MS");
        }
        if tokio::time::timeout_at(deadline, recorder.flush())
            .await
            .is_err()
        {
            let lost = recorder.abandon_backlog();
            tracing::error!(
                lost,
                "execution records not written before SHUTDOWN_TIMEOUT_MS; they are lost"
            );
        }
        if tokio::time::timeout_at(deadline, store.close())
            .await
            .is_err()
        {
            tracing::warn!("the store did not close before SHUTDOWN_TIMEOUT_MS");
        }
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
