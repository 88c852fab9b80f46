//! Settings: defaults < optional config file (`CONFIG_FILE` or `--config`) < environment.
//!
//! Environment names are the plain ones users expect (`PORT`, `DATABASE_URL`, …); every
//! setting is documented in `.env.example`.

use std::{fmt, net::IpAddr, path::PathBuf, time::Duration};

use config::{Config, Environment, File};
use serde::Deserialize;

pub use crate::embedding::http::EmbeddingFormat;

/// A value that must never reach a log line: `Debug` and `Display` print a placeholder.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    Local,
    Hash,
    Http,
}

/// Where a PostgreSQL replica searches vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorSearch {
    /// `memory` while the vectors fit `DATABASE_VECTOR_MEMORY_MIB` at start, else `hnsw`.
    Auto,
    /// pgvector's HNSW index, in the database: nothing held per replica.
    #[serde(alias = "index")]
    Hnsw,
    /// Every vector also in the replica's memory, searched exactly there.
    Memory,
}

/// When a call's execution record is written, relative to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionRecording {
    /// Before the answer: an answered `execution_id` survives a crash of the process.
    /// Concurrent calls share one commit.
    Durable,
    /// After the answer, by the background writer as soon as it is free: a crash loses
    /// the records still queued.
    Deferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminAuth {
    Enabled,
    Disabled,
}

/// What MCP's `tools/list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpTools {
    /// Three tools: find_tool, call_tool and list_tools.
    Meta,
    /// Every active registered tool as itself.
    Direct,
    /// The three meta tools, then every registered tool.
    Both,
}

/// When the children of stdio upstream MCP servers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioStart {
    /// On the first call (or import) that needs one.
    FirstUse,
    /// At start-up, for every server an active tool names; later ones on first use.
    Startup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Address to listen on.
    pub host: IpAddr,
    pub port: u16,
    /// PostgreSQL URL; unset or empty selects the embedded single-file store.
    pub database_url: Option<Secret>,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_acquire_timeout_ms: u64,
    /// With PostgreSQL: `auto` (the default), `hnsw` (the database's index) or `memory`
    /// (each replica's own).
    pub database_vector_search: VectorSearch,
    /// With `auto`: the memory a replica may give its copy of the vectors; beyond it at
    /// start, searches go through the HNSW index.
    pub database_vector_memory_mib: u64,
    /// With PostgreSQL: whether the database keeps the HNSW index; only searches through
    /// it need it, and inserting into it is most of what a registration costs there.
    pub database_hnsw_index: bool,
    /// Where the embedded store keeps `registry.db`.
    pub registry_data_dir: PathBuf,
    /// `local` (the offline model, the default), `hash` or `http`.
    pub embedding_provider: EmbeddingProvider,
    /// Folder of the local model (model.safetensors, tokenizer.json, config.json).
    pub embedding_model_dir: PathBuf,
    /// The user's embedding endpoint, for `http`.
    pub embedding_url: Option<Secret>,
    pub embedding_api_key: Option<Secret>,
    /// Model name sent to the endpoint (required by Ollama, optional elsewhere).
    pub embedding_model: Option<String>,
    /// Dimension of the vectors of the `hash` and `http` providers (the local model has 384).
    pub embedding_dimensions: usize,
    /// Wire format of the endpoint: auto, openai, tei, ollama or generic.
    pub embedding_format: EmbeddingFormat,
    pub embedding_timeout_ms: u64,
    pub embedding_max_retries: u32,
    /// Texts per request to the embedder.
    pub embedding_batch_size: usize,
    /// Entries of the per-text embedding cache (0 disables it).
    pub embedding_cache_size: u64,
    pub embedding_cache_ttl_secs: u64,
    /// A Redis server shared by the replicas as a second embedding cache tier; unset or
    /// empty: none.
    pub redis_url: Option<Secret>,
    /// How long vectors stay in Redis (0: until Redis evicts them).
    pub redis_cache_ttl_secs: u64,
    /// Longest wait for a Redis round trip before embedding without it.
    pub redis_timeout_ms: u64,
    /// Consecutive failures that open the endpoint's circuit breaker.
    pub embedding_breaker_failures: u32,
    /// How long the breaker stays open before letting a trial request through.
    pub embedding_breaker_cooldown_ms: u64,
    pub log_format: LogFormat,
    /// Requests running longer are answered 504.
    pub request_timeout_ms: u64,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// After a shutdown signal, in-flight requests get this long to finish.
    pub shutdown_timeout_ms: u64,
    /// Open client connections at most; beyond them a few more are kept for health probes
    /// and the rest are closed at once.
    pub http_max_connections: usize,
    /// A connection that has started a request but not finished sending its headers
    /// within this long is closed.
    pub http_header_read_timeout_ms: u64,
    /// A connection with no request in flight and nothing sent for this long is closed.
    pub http_idle_timeout_ms: u64,
    /// Timeout of HTTP tools that do not set their own `timeout_ms`.
    pub tool_timeout_ms: u64,
    /// Lets HTTP tools call loopback, private and link-local addresses.
    pub allow_private_tool_urls: bool,
    /// An egress proxy for HTTP tools and upstream MCP servers, set explicitly (the
    /// proxy environment variables are ignored). The proxy resolves hostnames, so it must
    /// enforce the egress policy itself; IP literals and redirects are still checked here.
    pub tool_proxy_url: Option<String>,
    /// Larger answers of HTTP tools are an error.
    pub tool_max_response_bytes: usize,
    /// Largest input a built-in tool accepts.
    pub tool_max_input_bytes: usize,
    /// Largest `arguments` of a call (as JSON); larger ones are refused before validation.
    pub tool_max_argument_bytes: usize,
    /// Execution records waiting to be written; callers wait when it is full.
    pub execution_queue_size: usize,
    /// `durable` writes a call's record before answering, `deferred` after.
    pub execution_recording: ExecutionRecording,
    /// How long a write of execution records the database cannot take (it is down) is
    /// retried before those records are given up and counted lost.
    pub execution_retry_ms: u64,
    /// Comma-separated keys the `/admin` routes require.
    pub admin_api_keys: Option<Secret>,
    /// `disabled` lets the server listen beyond loopback with open `/admin` routes.
    pub admin_auth: AdminAuth,
    /// Comma-separated keys the `/mcp` routes require (admin keys are accepted there too).
    pub mcp_api_keys: Option<Secret>,
    /// HS256 secret of signed tokens (JWT) accepted beside the API keys.
    pub jwt_secret: Option<Secret>,
    /// RSA or EC public key (PEM text or a file path) of RS256/ES256 tokens.
    pub jwt_public_key: Option<Secret>,
    /// Required `aud` of tokens, when set.
    pub jwt_audience: Option<String>,
    /// Required `iss` of tokens, when set.
    pub jwt_issuer: Option<String>,
    /// Requests per minute per API key, or per client address without one; unset or 0 is off.
    pub rate_limit_per_minute: Option<u32>,
    /// Takes the client address from `X-Forwarded-For`/`Forwarded` (behind a proxy only).
    pub trust_proxy: bool,
    /// Comma-separated origins browsers may call from (`*` for any); none by default.
    pub cors_allowed_origins: Option<String>,
    /// Comma-separated OAuth authorization servers (issuer URLs) whose tokens `/mcp` takes,
    /// published as OAuth Protected Resource Metadata (RFC 9728); empty: static keys only.
    pub mcp_authorization_servers: String,
    /// The public URL of `/mcp` (the resource tokens are for); by default taken from the
    /// request's `Host`.
    pub mcp_resource_url: Option<String>,
    /// In `direct`/`both` mode, shows registered tools' names with `.` as `_` (collision-free,
    /// mapped back on `tools/call`), for model APIs that refuse dotted function names.
    pub mcp_portable_names: bool,
    /// What MCP's `tools/list` shows: `meta`, `direct` or `both`.
    pub mcp_tools: McpTools,
    /// Comma-separated `Host` names the MCP endpoint answers to (`*` for any). Guards
    /// against DNS rebinding; add the names clients use (Service, ingress host).
    pub mcp_allowed_hosts: String,
    /// Comma-separated browser origins allowed on the MCP endpoint (`*` for any); requests
    /// without an `Origin` header (non-browser clients) always pass.
    pub mcp_allowed_origins: String,
    /// An MCP session with no traffic for this long is closed.
    pub mcp_session_idle_secs: u64,
    /// Open MCP sessions at most; an `initialize` beyond them is answered 503.
    pub mcp_max_sessions: usize,
    /// Registers the built-in tools (calculator, strings, data transforms) at start-up.
    pub register_builtins: bool,
    /// Comma-separated commands stdio upstream MCP servers may be started with, matched
    /// exactly as written (a bare name or an absolute path); empty disables them.
    pub stdio_allowed_commands: String,
    /// `first_use` or `startup`.
    pub stdio_start: StdioStart,
    /// After SIGTERM, a stdio server's child gets this long before SIGKILL.
    pub stdio_stop_grace_ms: u64,
    /// First wait before a stdio server's child is restarted; doubles with each failure
    /// in a row, up to a minute.
    pub stdio_restart_backoff_ms: u64,
}

/// The default memory budget of a replica's copy of the vectors, sized for a 512 MiB
/// container: the local model, caches and requests keep the rest. About 50,000 tools at 384
/// dimensions, 14,000 at 1,536 (see `store::estimated_bytes_per_vector`); a reload briefly
/// holds a second copy.
pub const DEFAULT_VECTOR_MEMORY_MIB: u64 = 128;

impl Settings {
    /// Loads settings from the defaults, then the optional file, then the environment.
    pub fn load(config_file: Option<PathBuf>) -> Result<Self, config::ConfigError> {
        let file = config_file.or_else(|| std::env::var_os("CONFIG_FILE").map(PathBuf::from));
        Self::from_sources(file, Environment::default().try_parsing(true))
    }

    fn from_sources(
        file: Option<PathBuf>,
        environment: Environment,
    ) -> Result<Self, config::ConfigError> {
        let mut builder = Config::builder()
            .set_default("host", "127.0.0.1")?
            .set_default("port", 8080)?
            .set_default("database_max_connections", 10)?
            .set_default("database_acquire_timeout_ms", 3000)?
            .set_default("database_vector_search", "auto")?
            .set_default("database_vector_memory_mib", DEFAULT_VECTOR_MEMORY_MIB)?
            .set_default("database_hnsw_index", true)?
            .set_default("registry_data_dir", "./data")?
            .set_default("embedding_provider", "local")?
            .set_default("embedding_model_dir", "./models/all-MiniLM-L6-v2")?
            .set_default("embedding_dimensions", 384)?
            .set_default("embedding_format", "auto")?
            .set_default("embedding_timeout_ms", 10_000)?
            .set_default("embedding_max_retries", 3)?
            .set_default("embedding_batch_size", 32)?
            .set_default("embedding_cache_size", 10_000)?
            .set_default("embedding_cache_ttl_secs", 3600)?
            .set_default("redis_cache_ttl_secs", 86_400)?
            .set_default("redis_timeout_ms", 200)?
            .set_default("embedding_breaker_failures", 5)?
            .set_default("embedding_breaker_cooldown_ms", 30_000)?
            .set_default("log_format", "pretty")?
            .set_default("request_timeout_ms", 30_000)?
            .set_default("max_body_bytes", 2 * 1024 * 1024)?
            .set_default("shutdown_timeout_ms", 30_000)?
            .set_default("http_max_connections", 1024)?
            .set_default("http_header_read_timeout_ms", 10_000)?
            .set_default("http_idle_timeout_ms", 60_000)?
            .set_default("tool_timeout_ms", 30_000)?
            .set_default("allow_private_tool_urls", false)?
            .set_default("tool_max_response_bytes", 1024 * 1024)?
            .set_default("tool_max_input_bytes", 1024 * 1024)?
            .set_default("tool_max_argument_bytes", 1024 * 1024)?
            .set_default("execution_queue_size", 10_000)?
            .set_default("execution_recording", "durable")?
            .set_default("execution_retry_ms", 10_000)?
            .set_default("register_builtins", true)?
            .set_default("trust_proxy", false)?
            .set_default("mcp_authorization_servers", "")?
            .set_default("mcp_portable_names", false)?
            .set_default("mcp_tools", "meta")?
            .set_default("mcp_allowed_hosts", "localhost,127.0.0.1,::1")?
            .set_default(
                "mcp_allowed_origins",
                "http://localhost:*,http://127.0.0.1:*,http://[::1]:*",
            )?
            .set_default("mcp_session_idle_secs", 1800)?
            .set_default("mcp_max_sessions", 1000)?
            .set_default("admin_auth", "enabled")?
            .set_default("stdio_allowed_commands", "")?
            .set_default("stdio_start", "first_use")?
            .set_default("stdio_stop_grace_ms", 5000)?
            .set_default("stdio_restart_backoff_ms", 500)?;
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).required(true));
        }
        let mut settings: Settings = builder.add_source(environment).build()?.try_deserialize()?;
        // An empty URL (a template's placeholder, `KEY=` in a file) means "not set".
        for url in [&mut settings.database_url, &mut settings.redis_url] {
            if url.as_ref().is_some_and(|u| u.expose().trim().is_empty()) {
                *url = None;
            }
        }
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), config::ConfigError> {
        let positive = [
            (
                "DATABASE_MAX_CONNECTIONS",
                self.database_max_connections as u64,
            ),
            ("EMBEDDING_DIMENSIONS", self.embedding_dimensions as u64),
            ("EMBEDDING_TIMEOUT_MS", self.embedding_timeout_ms),
            ("EMBEDDING_BATCH_SIZE", self.embedding_batch_size as u64),
            ("REQUEST_TIMEOUT_MS", self.request_timeout_ms),
            ("MAX_BODY_BYTES", self.max_body_bytes as u64),
            ("TOOL_TIMEOUT_MS", self.tool_timeout_ms),
            (
                "TOOL_MAX_RESPONSE_BYTES",
                self.tool_max_response_bytes as u64,
            ),
            ("TOOL_MAX_INPUT_BYTES", self.tool_max_input_bytes as u64),
            ("EXECUTION_QUEUE_SIZE", self.execution_queue_size as u64),
            ("HTTP_MAX_CONNECTIONS", self.http_max_connections as u64),
            (
                "HTTP_HEADER_READ_TIMEOUT_MS",
                self.http_header_read_timeout_ms,
            ),
            ("HTTP_IDLE_TIMEOUT_MS", self.http_idle_timeout_ms),
            (
                "TOOL_MAX_ARGUMENT_BYTES",
                self.tool_max_argument_bytes as u64,
            ),
            ("MCP_MAX_SESSIONS", self.mcp_max_sessions as u64),
            ("STDIO_RESTART_BACKOFF_MS", self.stdio_restart_backoff_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(config::ConfigError::Message(format!(
                    "{name} must be positive"
                )));
            }
        }
        if self.embedding_provider == EmbeddingProvider::Http && self.embedding_url.is_none() {
            return Err(config::ConfigError::Message(
                "EMBEDDING_URL is required when EMBEDDING_PROVIDER=http".into(),
            ));
        }
        if !self.database_hnsw_index && self.database_vector_search != VectorSearch::Memory {
            return Err(config::ConfigError::Message(
                "DATABASE_HNSW_INDEX=false needs DATABASE_VECTOR_SEARCH=memory: searches \
                 through the database (hnsw, or auto beyond its memory budget) would scan \
                 every vector without the index"
                    .into(),
            ));
        }
        if let Some(secret) = &self.jwt_secret {
            check_jwt_secret(secret).map_err(config::ConfigError::Message)?;
        }
        if self.embedding_dimensions > 16_000 {
            return Err(config::ConfigError::Message(
                "EMBEDDING_DIMENSIONS must be at most 16000 (pgvector's limit)".into(),
            ));
        }
        Ok(())
    }

    /// Where a PostgreSQL replica searches vectors.
    pub fn vector_placement(&self) -> crate::store::postgres::VectorPlacement {
        use crate::store::postgres::VectorPlacement;
        match self.database_vector_search {
            VectorSearch::Hnsw => VectorPlacement::Index,
            VectorSearch::Memory => VectorPlacement::Memory,
            VectorSearch::Auto => VectorPlacement::Auto {
                budget_bytes: self.database_vector_memory_mib.saturating_mul(1024 * 1024),
            },
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn embedding_cache_ttl(&self) -> Option<Duration> {
        (self.embedding_cache_ttl_secs > 0)
            .then(|| Duration::from_secs(self.embedding_cache_ttl_secs))
    }

    pub fn redis_cache_ttl(&self) -> Option<Duration> {
        (self.redis_cache_ttl_secs > 0).then(|| Duration::from_secs(self.redis_cache_ttl_secs))
    }

    pub fn execution_retry(&self) -> Duration {
        Duration::from_millis(self.execution_retry_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn http_header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_read_timeout_ms)
    }

    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.http_idle_timeout_ms)
    }

    /// The executor's settings for stdio upstream MCP servers.
    pub fn stdio(&self) -> crate::execution::stdio::StdioSettings {
        crate::execution::stdio::StdioSettings {
            allowed_commands: crate::execution::stdio::StdioSettings::allowed_from_list(
                &self.stdio_allowed_commands,
            ),
            stop_grace: Duration::from_millis(self.stdio_stop_grace_ms),
            restart_backoff: Duration::from_millis(self.stdio_restart_backoff_ms),
        }
    }

    /// Settings for tests and embedding: the defaults with the given data directory,
    /// an ephemeral port and no environment.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut settings = Self::from_sources(None, Environment::with_prefix("UNUSED_PREFIX_"))
            .expect("defaults are valid");
        settings.registry_data_dir = data_dir.into();
        settings.port = 0;
        settings
    }
}

/// Shortest HS256 secret accepted: the key must be as long as the hash (RFC 7518, 3.2);
/// a short or empty one lets anyone forge admin tokens.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Refuses an empty or short `JWT_SECRET`, with the reason.
pub fn check_jwt_secret(secret: &Secret) -> Result<(), String> {
    let length = secret.expose().len();
    if length < MIN_JWT_SECRET_BYTES {
        return Err(format!(
            "JWT_SECRET is {} ({length} bytes): it must be at least {MIN_JWT_SECRET_BYTES} \
             random bytes, or unset to accept no signed tokens",
            if length == 0 { "empty" } else { "too short" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::default().try_parsing(true).source(Some(map))
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registry.toml");
        std::fs::write(&file, "port = 9000\nlog_format = \"json\"\n").unwrap();
        let settings =
            Settings::from_sources(Some(file), env(&[("PORT", "9100"), ("HOST", "0.0.0.0")]))
                .unwrap();
        assert_eq!(settings.port, 9100);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.host.to_string(), "0.0.0.0");
        assert_eq!(settings.embedding_dimensions, 384);
        assert!(settings.database_url.is_none());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = Settings::from_sources(
            None,
            env(&[
                ("DATABASE_URL", "postgres://app:hunter2@db/registry"),
                ("EMBEDDING_API_KEY", "sk-hunter2"),
                ("ADMIN_API_KEYS", "admin-hunter2"),
            ]),
        )
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert_eq!(
            settings.database_url.unwrap().expose(),
            "postgres://app:hunter2@db/registry"
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let err = Settings::from_sources(None, env(&[("EMBEDDING_DIMENSIONS", "0")])).unwrap_err();
        assert!(err.to_string().contains("EMBEDDING_DIMENSIONS"), "{err}");
        assert!(Settings::from_sources(None, env(&[("PORT", "http")])).is_err());
        let err = Settings::from_sources(None, env(&[("EMBEDDING_PROVIDER", "http")])).unwrap_err();
        assert!(err.to_string().contains("EMBEDDING_URL"), "{err}");
        assert!(Settings::from_sources(None, env(&[("EMBEDDING_FORMAT", "grpc")])).is_err());
        let no_index = ("DATABASE_HNSW_INDEX", "false");
        let err = Settings::from_sources(None, env(&[no_index])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_HNSW_INDEX"), "{err}");
        let memory = ("DATABASE_VECTOR_SEARCH", "memory");
        let settings = Settings::from_sources(None, env(&[no_index, memory])).unwrap();
        assert!(!settings.database_hnsw_index);
        let auto = ("DATABASE_VECTOR_SEARCH", "auto");
        let err = Settings::from_sources(None, env(&[no_index, auto])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_HNSW_INDEX"), "{err}");
        assert!(Settings::from_sources(None, env(&[("DATABASE_VECTOR_SEARCH", "gpu")])).is_err());
        let empty =
            Settings::from_sources(None, env(&[("DATABASE_URL", ""), ("REDIS_URL", " ")])).unwrap();
        assert!(empty.database_url.is_none());
        assert!(empty.redis_url.is_none());
    }

    #[test]
    fn vectors_are_searched_in_memory_within_a_budget_by_default() {
        use crate::store::postgres::VectorPlacement;
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.database_vector_search, VectorSearch::Auto);
        assert_eq!(
            defaults.vector_placement(),
            VectorPlacement::Auto {
                budget_bytes: DEFAULT_VECTOR_MEMORY_MIB * 1024 * 1024
            }
        );
        let budget = env(&[("DATABASE_VECTOR_MEMORY_MIB", "2")]);
        assert_eq!(
            Settings::from_sources(None, budget)
                .unwrap()
                .vector_placement(),
            VectorPlacement::Auto {
                budget_bytes: 2 * 1024 * 1024
            }
        );
        for (value, placement) in [
            ("hnsw", VectorPlacement::Index),
            ("index", VectorPlacement::Index),
            ("memory", VectorPlacement::Memory),
        ] {
            let settings =
                Settings::from_sources(None, env(&[("DATABASE_VECTOR_SEARCH", value)])).unwrap();
            assert_eq!(settings.vector_placement(), placement, "{value}");
        }
    }

    #[test]
    fn empty_or_short_jwt_secrets_are_refused() {
        for short in ["", "secret", "s3cret-s3cret-s3cret-s3cret-012"] {
            let err = Settings::from_sources(None, env(&[("JWT_SECRET", short)])).unwrap_err();
            assert!(err.to_string().contains("JWT_SECRET"), "{err}");
            assert!(err.to_string().contains("at least 32"), "{err}");
        }
        let long = "s3cret-s3cret-s3cret-s3cret-0123";
        let settings = Settings::from_sources(None, env(&[("JWT_SECRET", long)])).unwrap();
        assert_eq!(settings.jwt_secret.unwrap().expose(), long);
    }

    #[test]
    fn execution_records_are_durable_unless_deferred() {
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.execution_recording, ExecutionRecording::Durable);
        assert_eq!(defaults.execution_retry(), Duration::from_secs(10));
        let deferred = env(&[
            ("EXECUTION_RECORDING", "deferred"),
            ("EXECUTION_RETRY_MS", "500"),
        ]);
        let settings = Settings::from_sources(None, deferred).unwrap();
        assert_eq!(settings.execution_recording, ExecutionRecording::Deferred);
        assert_eq!(settings.execution_retry_ms, 500);
        assert!(Settings::from_sources(None, env(&[("EXECUTION_RECORDING", "later")])).is_err());
    }

    #[test]
    fn stdio_upstreams_are_off_until_commands_are_listed() {
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert!(defaults.stdio().allowed_commands.is_empty());
        assert_eq!(defaults.stdio_start, StdioStart::FirstUse);
        let listed = env(&[
            ("STDIO_ALLOWED_COMMANDS", "npx, uvx,/usr/bin/python3"),
            ("STDIO_START", "startup"),
        ]);
        let settings = Settings::from_sources(None, listed).unwrap();
        assert_eq!(
            settings.stdio().allowed_commands,
            ["npx", "uvx", "/usr/bin/python3"]
        );
        assert_eq!(settings.stdio_start, StdioStart::Startup);
        assert!(Settings::from_sources(None, env(&[("STDIO_START", "later")])).is_err());
    }
}
