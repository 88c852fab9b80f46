use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tool_registry::{
    App, build_registry,
    cli::{healthcheck, portable},
    config::Settings,
    open_store, shutdown_signal, telemetry, vector_dimensions,
};

/// jemalloc in place of glibc's malloc: under calls and searches glibc's took up to a fifth
/// of the server's time, and its arenas kept memory; jemalloc with two arenas that return
/// freed pages at once measured 25–40% more recorded calls a second with less resident
/// memory (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol before `main` (the crate's build prefixes
/// its symbols with `_rjem_`).
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &[u8; 27] = tool_registry::allocator::JEMALLOC_OPTIONS;

/// A tool registry that AI agents use over MCP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A settings file (TOML or JSON); the environment overrides it. Also `CONFIG_FILE`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply the storage migrations and exit.
    Migrate,
    /// Write every tool definition as JSON Lines to FILE (or standard output).
    Export {
        /// Where to write; `-` or nothing for standard output.
        file: Option<PathBuf>,
    },
    /// Register (or update, by name) the tool definitions of a JSON Lines FILE.
    Import { file: PathBuf },
    /// Probe the running server's `/health/live`; exit 0 when it answers 200. For container
    /// health checks, where no HTTP client is installed.
    Healthcheck,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config).context("invalid settings")?;
    match cli.command {
        Some(Command::Healthcheck) => {}
        // The export may go to standard output: logs go to standard error.
        Some(Command::Export { .. }) => telemetry::init(settings.log_format, true),
        _ => telemetry::init(settings.log_format, false),
    }
    let result = run(cli.command.unwrap_or(Command::Serve), settings).await;
    // The spans still queued are exported before the process ends.
    telemetry::otel::shutdown();
    result
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = App::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "listening");
            app.serve(shutdown_signal()).await
        }
        Command::Export { file } => {
            // Reading must not write: no built-in tools are registered by an export.
            settings.tools.register_builtins = false;
            let registry = build_registry(&settings).await?;
            let count = match file.filter(|f| f.as_os_str() != "-") {
                Some(path) => {
                    let mut out = std::io::BufWriter::new(
                        std::fs::File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    );
                    portable::export(&registry, &mut out).await?
                }
                None => portable::export(&registry, &mut std::io::stdout().lock()).await?,
            };
            tracing::info!(tools = count, "exported");
            registry.store().close().await;
            Ok(())
        }
        Command::Import { file } => {
            let registry = build_registry(&settings).await?;
            let input = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            );
            let summary = portable::import(&registry, input).await?;
            tracing::info!(
                created = summary.created,
                updated = summary.updated,
                failed = summary.failed,
                "imported"
            );
            registry.store().close().await;
            if summary.failed > 0 {
                anyhow::bail!("{} lines could not be imported", summary.failed);
            }
            Ok(())
        }
        Command::Healthcheck => {
            let address = healthcheck::probe_address(&settings);
            match healthcheck::probe(address).await {
                Ok(()) => Ok(()),
                Err(err) => {
                    eprintln!("unhealthy: {err}");
                    std::process::exit(1);
                }
            }
        }
        Command::Migrate => {
            let store = open_store(&settings, vector_dimensions(&settings)).await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            store.close().await;
            Ok(())
        }
    }
}
