use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tool_registry::{
    App, config::Settings, healthcheck, open_store, shutdown_signal, telemetry, vector_dimensions,
};

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
    /// Probe the running server's `/health/live`; exit 0 when it answers 200. For container
    /// health checks, where no HTTP client is installed.
    Healthcheck,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config).context("invalid settings")?;
    if !matches!(cli.command, Some(Command::Healthcheck)) {
        telemetry::init(settings.log_format);
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "listening");
            app.serve(shutdown_signal()).await
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
