//! A tool registry that AI agents use over MCP: operators register tools, agents list,
//! find and call them.
//!
//! Layers, lowest first (nothing imports upward; `scripts/dev/import-graph.py` checks):
//! `domain` (with `telemetry`, `metrics`) → `index`, `embedding`, `builtins` →
//! `execution`, `store` → `registry` → `config` → the adapters `http`, `mcp` and the
//! command line (`cli`) → `app` (startup wiring) → `main`.

pub mod allocator;
pub mod app;
pub mod builtins;
pub mod cli;
pub mod config;
pub mod domain;
pub mod embedding;
pub mod execution;
pub mod http;
pub mod index;
pub mod mcp;
pub mod metrics;
pub mod registry;
pub mod store;
pub mod telemetry;

pub use app::{
    App, build_embedder, build_registry, open_store, shutdown_signal, vector_dimensions,
};
