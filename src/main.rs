use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tool_registry::{App, config::Settings, open_store, shutdown_signal, telemetry};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config).context("invalid settings")?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(settings).await?;
            tracing::info!(address = %app.local_addr(), "listening");
            app.serve(shutdown_signal()).await
        }
        Command::Migrate => {
            let store = open_store(&settings).await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            store.close().await;
            Ok(())
        }
    }
}
