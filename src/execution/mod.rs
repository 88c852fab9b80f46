//! Running tools: the executor dispatches a call by the tool's kind, after checking its
//! arguments against the compiled input schema; HTTP tools and upstream MCP servers are
//! reached only through the URL guard.

pub mod executor;
pub mod http_tool;
pub mod schemas;
pub mod stdio;
pub mod upstream;
pub mod url_guard;

pub use executor::{Executor, ExecutorSettings, Outcome};
