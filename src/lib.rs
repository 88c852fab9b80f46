//! A tool registry that AI agents use over MCP: operators register tools, agents list,
//! find and call them.
//!
//! Layers, lowest first (nothing imports upward; `scripts/dev/import-graph.py` checks):
//! `domain` → `index`, `embedding`, `tools` (built-ins and the executor), `store` →
//! `registry` → the adapters `http`, `mcp` and the command line (`portable`,
//! `healthcheck`) → `app` (startup wiring) → `main`.

pub mod app;
pub mod builtins;
pub mod config;
pub mod domain;
pub mod embedding;
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

pub use app::{
    App, build_embedder, build_registry, open_store, shutdown_signal, vector_dimensions,
};
