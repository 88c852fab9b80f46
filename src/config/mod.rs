//! Settings: defaults < optional config file (`CONFIG_FILE` or `--config`) < environment.
//!
//! Environment names are the plain ones users expect (`PORT`, `DATABASE_URL`, …); every
//! setting is documented in `.env.example` and `docs/configuration.md`. The settings are
//! grouped in sections, one per component (`server`, `database`, `embedding`, `tools`,
//! `executions`, `auth`, `mcp`), flattened so the names stay flat; each section builds its
//! component's options (`DatabaseSettings::postgres_options`, …).

mod auth;
mod database;
mod embedding;
mod executions;
mod mcp;
mod server;
mod stdio;
mod tools;

use std::{fmt, path::PathBuf};

use config::{Config, Environment, File};
use serde::Deserialize;

pub use crate::store::postgres::HnswIndex;
pub use auth::{
    ADMIN_SCOPE, AdminAuth, AuthSettings, MIN_JWT_SECRET_BYTES, TOOLS_SCOPE, check_jwt_secret,
};
pub use database::{DEFAULT_VECTOR_MEMORY_MIB, DatabaseSettings, VectorSearch};
pub use embedding::{EmbeddingFormat, EmbeddingProvider, EmbeddingSettings};
pub use executions::{ExecutionRecording, ExecutionSettings};
pub use mcp::{McpSettings, McpTools};
pub use server::ServerSettings;
pub use stdio::{StdioStart, StdioUpstreamSettings};
pub use tools::ToolSettings;

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

pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub server: ServerSettings,
    #[serde(flatten)]
    pub database: DatabaseSettings,
    #[serde(flatten)]
    pub embedding: EmbeddingSettings,
    #[serde(flatten)]
    pub tools: ToolSettings,
    #[serde(flatten)]
    pub executions: ExecutionSettings,
    #[serde(flatten)]
    pub auth: AuthSettings,
    #[serde(flatten)]
    pub mcp: McpSettings,
    #[serde(flatten)]
    pub stdio: StdioUpstreamSettings,
    pub log_format: LogFormat,
}

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
            .set_default("database_hnsw_index", "auto")?
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
            .set_default("tool_max_output_bytes", 16 * 1024 * 1024)?
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
        for url in [
            &mut settings.database.url,
            &mut settings.embedding.redis_url,
        ] {
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
                self.database.max_connections as u64,
            ),
            ("EMBEDDING_DIMENSIONS", self.embedding.dimensions as u64),
            ("EMBEDDING_TIMEOUT_MS", self.embedding.timeout_ms),
            ("EMBEDDING_BATCH_SIZE", self.embedding.batch_size as u64),
            ("REQUEST_TIMEOUT_MS", self.server.request_timeout_ms),
            ("MAX_BODY_BYTES", self.server.max_body_bytes as u64),
            ("TOOL_TIMEOUT_MS", self.tools.timeout_ms),
            (
                "TOOL_MAX_RESPONSE_BYTES",
                self.tools.max_response_bytes as u64,
            ),
            ("TOOL_MAX_INPUT_BYTES", self.tools.max_input_bytes as u64),
            ("TOOL_MAX_OUTPUT_BYTES", self.tools.max_output_bytes as u64),
            ("EXECUTION_QUEUE_SIZE", self.executions.queue_size as u64),
            ("HTTP_MAX_CONNECTIONS", self.server.max_connections as u64),
            (
                "HTTP_HEADER_READ_TIMEOUT_MS",
                self.server.header_read_timeout_ms,
            ),
            ("HTTP_IDLE_TIMEOUT_MS", self.server.idle_timeout_ms),
            (
                "TOOL_MAX_ARGUMENT_BYTES",
                self.tools.max_argument_bytes as u64,
            ),
            ("MCP_MAX_SESSIONS", self.mcp.max_sessions as u64),
            ("STDIO_RESTART_BACKOFF_MS", self.stdio.restart_backoff_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(config::ConfigError::Message(format!(
                    "{name} must be positive"
                )));
            }
        }
        if self.embedding.provider == EmbeddingProvider::Http && self.embedding.url.is_none() {
            return Err(config::ConfigError::Message(
                "EMBEDDING_URL is required when EMBEDDING_PROVIDER=http".into(),
            ));
        }
        if self.database.hnsw_index == HnswIndex::Dropped
            && self.database.vector_search != VectorSearch::Memory
        {
            return Err(config::ConfigError::Message(
                "DATABASE_HNSW_INDEX=false needs DATABASE_VECTOR_SEARCH=memory: searches \
                 through the database (hnsw, or auto beyond its memory budget) would scan \
                 every vector without the index"
                    .into(),
            ));
        }
        if let Some(secret) = &self.auth.jwt_secret {
            check_jwt_secret(secret).map_err(config::ConfigError::Message)?;
        }
        if self.embedding.dimensions > 16_000 {
            return Err(config::ConfigError::Message(
                "EMBEDDING_DIMENSIONS must be at most 16000 (pgvector's limit)".into(),
            ));
        }
        Ok(())
    }

    /// Settings for tests and embedding: the defaults with the given data directory,
    /// an ephemeral port and no environment.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut settings = Self::from_sources(None, Environment::with_prefix("UNUSED_PREFIX_"))
            .expect("defaults are valid");
        settings.database.data_dir = data_dir.into();
        settings.server.port = 0;
        settings
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use std::time::Duration;

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
        assert_eq!(settings.server.port, 9100);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.server.host.to_string(), "0.0.0.0");
        assert_eq!(settings.embedding.dimensions, 384);
        assert!(settings.database.url.is_none());
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
            settings.database.url.unwrap().expose(),
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
        assert_eq!(settings.database.hnsw_index, HnswIndex::Dropped);
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.database.hnsw_index, HnswIndex::Auto);
        for (given, read) in [("auto", HnswIndex::Auto), ("true", HnswIndex::Kept)] {
            let settings = Settings::from_sources(None, env(&[("DATABASE_HNSW_INDEX", given)]));
            assert_eq!(settings.unwrap().database.hnsw_index, read, "{given}");
        }
        let err =
            Settings::from_sources(None, env(&[("DATABASE_HNSW_INDEX", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
        let auto = ("DATABASE_VECTOR_SEARCH", "auto");
        let err = Settings::from_sources(None, env(&[no_index, auto])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_HNSW_INDEX"), "{err}");
        assert!(Settings::from_sources(None, env(&[("DATABASE_VECTOR_SEARCH", "gpu")])).is_err());
        let empty =
            Settings::from_sources(None, env(&[("DATABASE_URL", ""), ("REDIS_URL", " ")])).unwrap();
        assert!(empty.database.url.is_none());
        assert!(empty.embedding.redis_url.is_none());
    }

    #[test]
    fn vectors_are_searched_in_memory_within_a_budget_by_default() {
        use crate::store::postgres::VectorPlacement;
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.database.vector_search, VectorSearch::Auto);
        assert_eq!(
            defaults.database.vector_placement(),
            VectorPlacement::Auto {
                budget_bytes: DEFAULT_VECTOR_MEMORY_MIB * 1024 * 1024
            }
        );
        let budget = env(&[("DATABASE_VECTOR_MEMORY_MIB", "2")]);
        assert_eq!(
            Settings::from_sources(None, budget)
                .unwrap()
                .database
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
            assert_eq!(settings.database.vector_placement(), placement, "{value}");
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
        assert_eq!(settings.auth.jwt_secret.unwrap().expose(), long);
    }

    #[test]
    fn execution_records_are_durable_unless_deferred() {
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.executions.recording, ExecutionRecording::Durable);
        assert_eq!(defaults.executions.retry(), Duration::from_secs(10));
        let deferred = env(&[
            ("EXECUTION_RECORDING", "deferred"),
            ("EXECUTION_RETRY_MS", "500"),
        ]);
        let settings = Settings::from_sources(None, deferred).unwrap();
        assert_eq!(settings.executions.recording, ExecutionRecording::Deferred);
        assert_eq!(settings.executions.retry_ms, 500);
        assert!(Settings::from_sources(None, env(&[("EXECUTION_RECORDING", "later")])).is_err());
    }

    #[test]
    fn stdio_upstreams_are_off_until_commands_are_listed() {
        let defaults = Settings::from_sources(None, env(&[])).unwrap();
        assert!(
            defaults
                .stdio
                .executor_settings()
                .allowed_commands
                .is_empty()
        );
        assert_eq!(defaults.stdio.start, StdioStart::FirstUse);
        let listed = env(&[
            ("STDIO_ALLOWED_COMMANDS", "npx, uvx,/usr/bin/python3"),
            ("STDIO_START", "startup"),
        ]);
        let settings = Settings::from_sources(None, listed).unwrap();
        assert_eq!(
            settings.stdio.executor_settings().allowed_commands,
            ["npx", "uvx", "/usr/bin/python3"]
        );
        assert_eq!(settings.stdio.start, StdioStart::Startup);
        assert!(Settings::from_sources(None, env(&[("STDIO_START", "later")])).is_err());
    }
}
