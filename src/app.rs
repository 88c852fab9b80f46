//! Startup: builds the embedder, the store, the registry and the adapters from the
//! settings, composes the HTTP router with the MCP endpoint beside it, and serves with a
//! graceful shutdown. Wiring only: no rule of the catalogue lives here.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{AdminAuth, EmbeddingProvider, Settings},
    embedding::{
        self, Embedder,
        cache::{memory::CachedEmbedder, metered::MeteredEmbedder, redis::RedisCachedEmbedder},
        hash::HashEmbedder,
        http::HttpEmbedder,
        local::LocalEmbedder,
    },
    execution::Executor,
    http::{self, AppState},
    mcp,
    registry::{ToolRegistry, indexer::Indexer, recorder::ExecutionRecorder},
    store::{EmbeddedStore, PostgresStore, ToolStore},
};

/// The embedder the settings ask for, behind the cache tiers. A missing local model falls
/// back to the hashing embedder, loudly: search still works, with lexical quality.
pub fn build_embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let section = &settings.embedding;
    let inner: Arc<dyn Embedder> = match section.provider {
        EmbeddingProvider::Local => match LocalEmbedder::load(&section.model_dir, None) {
            Ok(model) => Arc::new(model),
            Err(err) => {
                let reason = format!(
                    "the local model could not be loaded from {} ({err}); run scripts/fetch-model.sh",
                    section.model_dir.display()
                );
                tracing::error!(
                    "{reason}. Falling back to the hashing embedder: search quality is lexical only"
                );
                Arc::new(
                    HashEmbedder::new(embedding::LOCAL_MODEL_DIMENSIONS)
                        .with_fallback_reason(reason),
                )
            }
        },
        EmbeddingProvider::Hash => Arc::new(HashEmbedder::new(section.dimensions)),
        EmbeddingProvider::Http => {
            let url = section
                .url
                .as_ref()
                .context("EMBEDDING_URL is required when EMBEDDING_PROVIDER=http")?;
            Arc::new(
                HttpEmbedder::new(section.http_config(url)).map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
    };
    let mut inner: Arc<dyn Embedder> = Arc::new(MeteredEmbedder::new(inner));
    if let Some(config) = section.redis_config() {
        inner = Arc::new(RedisCachedEmbedder::new(inner, config)?);
    }
    Ok(match section.cache_config() {
        Some(config) => Arc::new(CachedEmbedder::new(inner, config)),
        None => inner,
    })
}

/// The dimension of stored vectors under these settings.
pub fn vector_dimensions(settings: &Settings) -> usize {
    match settings.embedding.provider {
        EmbeddingProvider::Local => embedding::LOCAL_MODEL_DIMENSIONS,
        EmbeddingProvider::Hash | EmbeddingProvider::Http => settings.embedding.dimensions,
    }
}

/// Opens the configured store: PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file, holding vectors of `dims` dimensions. Either way its migrations are applied.
pub async fn open_store(settings: &Settings, dims: usize) -> anyhow::Result<Arc<dyn ToolStore>> {
    Ok(match &settings.database.url {
        Some(url) => {
            let options = settings.database.postgres_options();
            Arc::new(
                PostgresStore::connect(url.expose(), dims, &options)
                    .await
                    .context("cannot open the PostgreSQL store")?,
            )
        }
        None => Arc::new(
            EmbeddedStore::open(&settings.database.data_dir, dims)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the embedded store in {}",
                        settings.database.data_dir.display()
                    )
                })?,
        ),
    })
}

/// The registry with its store, embedder, executor, background indexer and execution
/// recorder, and the built-in tools registered when the settings ask for it.
pub async fn build_registry(settings: &Settings) -> anyhow::Result<Arc<ToolRegistry>> {
    let registry = assemble_registry(settings).await?;
    registry.indexer().spawn();
    if settings.tools.register_builtins {
        registry
            .sync_builtins()
            .await
            .map_err(|e| anyhow::anyhow!("cannot register the built-in tools: {e}"))?;
    }
    Ok(Arc::new(registry))
}

/// The registry of [`build_registry`] with its indexer not started and no built-ins
/// registered: for a caller that runs the indexer's passes itself.
pub async fn assemble_registry(settings: &Settings) -> anyhow::Result<ToolRegistry> {
    let embedder = build_embedder(settings)?;
    let store = open_store(settings, embedder.dimensions()).await?;
    let executor = Arc::new(Executor::new(
        settings
            .tools
            .executor_settings(settings.stdio.executor_settings()),
    )?);
    let recorder = ExecutionRecorder::start(store.clone(), settings.executions.recorder_options());
    let indexer = Indexer::new(
        store.clone(),
        embedder.clone(),
        settings.embedding.batch_size,
    );
    Ok(ToolRegistry::new(
        store, executor, recorder, embedder, indexer,
    ))
}

/// A service bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
    mcp: http::McpMount,
}

impl App {
    /// Opens the store and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let admin_keys = http::auth::ApiKeys::parse(settings.auth.admin_api_keys.as_ref());
        let mcp_keys = http::auth::ApiKeys::parse(settings.auth.mcp_api_keys.as_ref());
        let jwt = http::auth::JwtVerifier::from_settings(&settings)?;
        let admin_guard = http::auth::Guard::admin(&admin_keys, jwt.as_ref());
        let tools_guard = http::auth::Guard::tools(&mcp_keys, &admin_keys, jwt.as_ref());
        if admin_guard.is_open() && !settings.server.host.is_loopback() {
            if settings.auth.admin_auth == AdminAuth::Disabled {
                tracing::warn!(
                    host = %settings.server.host,
                    "ADMIN_AUTH=disabled: the /admin routes are open to anyone who can reach this address"
                );
            } else {
                anyhow::bail!(
                    "refusing to listen on {} with open /admin routes: set ADMIN_API_KEYS or JWT_SECRET/JWT_PUBLIC_KEY, or \
                     ADMIN_AUTH=disabled to accept the risk",
                    settings.server.host
                );
            }
        }
        crate::metrics::handle();
        crate::metrics::describe();
        let registry = build_registry(&settings).await?;
        // Only a serving registry starts children ahead of use (not `export`/`import`).
        if settings.stdio.start == crate::config::StdioStart::Startup {
            let started = registry
                .start_stdio_servers()
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the stdio upstreams: {e}"))?;
            tracing::info!(started, "stdio upstreams starting");
        }
        let address = SocketAddr::new(settings.server.host, settings.server.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let settings = Arc::new(settings);
        let shutdown = CancellationToken::new();
        let sessions = Arc::new(mcp::SessionLimit::new(
            mcp::session_manager(&settings),
            settings.mcp.max_sessions,
            settings.server.max_body_bytes,
        ));
        let changes = mcp::ChangeHub::start(registry.store());
        let mcp = mcp_mount(&registry, &changes, &sessions, &settings, &shutdown);
        let on_scrape: http::observe::OnScrape = Arc::new(move || {
            let (sessions, changes) = (sessions.clone(), changes.clone());
            Box::pin(async move { mcp::record_gauges(&sessions, &changes).await })
        });
        let state = AppState {
            registry,
            settings,
            admin_guard,
            tools_guard,
            on_scrape,
            shutdown,
            started: Instant::now(),
        };
        Ok(Self {
            listener,
            state,
            mcp,
        })
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
        let Self {
            listener,
            state,
            mcp,
        } = self;
        let store = state.registry.store().clone();
        let recorder = state.registry.recorder().clone();
        let state_registry = state.registry.clone();
        let grace = state.settings.server.shutdown_timeout();
        let limits =
            http::conn::ConnectionLimits::of(&state.settings.server).fitted_to_open_file_limit();
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
        let server = http::conn::serve(listener, http::router(state, mcp), limits, stopping);
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

/// The MCP endpoint as the HTTP router serves it: `/mcp` (behind the agents' credentials),
/// its OAuth metadata routes, and the JSON-RPC shape of its error answers.
fn mcp_mount(
    registry: &Arc<ToolRegistry>,
    changes: &Arc<mcp::ChangeHub>,
    sessions: &Arc<mcp::SessionLimit>,
    settings: &Arc<Settings>,
    shutdown: &CancellationToken,
) -> http::McpMount {
    let errors_settings = settings.clone();
    http::McpMount {
        endpoint: mcp::router(
            registry.clone(),
            changes.clone(),
            sessions.clone(),
            settings,
            shutdown.child_token(),
        ),
        open_routes: mcp::authorization::routes(settings.clone()),
        error_answers: jsonrpc_error_answers(errors_settings),
    }
}

/// The JSON-RPC shape of error answers on `/mcp`, as the router's middleware.
fn jsonrpc_error_answers(settings: Arc<Settings>) -> http::Middleware {
    Arc::new(move |request, next| {
        Box::pin(mcp::transport::jsonrpc_errors(
            axum::extract::State(settings.clone()),
            request,
            next,
        ))
    })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::{Router, routing::get, routing::post};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use serde_json::{Value, json};

    use super::*;

    async fn boom() -> &'static str {
        panic!("a handler's bug")
    }

    /// A panicking handler behind the router's middleware answers 500 in the JSON shape (a
    /// JSON-RPC error with the request's id on `/mcp`), counted, and the server goes on.
    #[test]
    fn a_panicking_handler_answers_500_and_the_server_goes_on() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let scrape = recorder.handle();
        // One thread, so the recorder local to it sees every task of the server.
        metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(panics_are_answered())
        });
        let scraped = scrape.render();
        assert!(
            scraped.contains("http_panics_total 2"),
            "panics not counted: {scraped}"
        );
    }

    async fn panics_are_answered() {
        let settings = Arc::new(Settings::for_tests(std::env::temp_dir()));
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .route(mcp::transport::MCP_PATH, post(boom));
        let app = http::with_middleware(routes, &settings, jsonrpc_error_answers(settings.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let limits = http::conn::ConnectionLimits::of(&settings.server);
        let server = tokio::spawn(http::conn::serve(listener, app, limits, shutdown.clone()));
        // One connection for every request: it outlives the panics.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let url = |path: &str| format!("http://{addr}{path}");

        let answer = client.get(url("/boom")).send().await.expect("an answer");
        assert_eq!(answer.status(), 500);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
        assert!(
            !body.to_string().contains("a handler's bug"),
            "the panic's message is for the log only: {body}"
        );

        let answer = client
            .post(url(mcp::transport::MCP_PATH))
            .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 500);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["jsonrpc"], "2.0", "{body}");
        assert_eq!(body["id"], 3, "{body}");
        assert_eq!(body["error"]["data"]["code"], "internal_error", "{body}");

        let answer = client.get(url("/fine")).send().await.expect("an answer");
        assert_eq!(answer.status(), 200);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
