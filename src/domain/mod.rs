//! The ground floor: the catalogue's data model and its rules, with no HTTP, database or
//! network client in sight. Every other layer imports from here; this module imports
//! nothing of the crate.
//!
//! - `tool`: a tool, how it runs (`Implementation`) and its state;
//! - `definition`: its definition as one value, and the versions updates replaced;
//! - `execution`: call records, statistics and answers;
//! - `listing`: filters and pages of listings;
//! - `document`: the text a tool is searched by (embedding and full text);
//! - `validation`: the rules a definition meets before it is stored;
//! - `input`: JSON into typed values, naming the field that does not fit;
//! - `secrets`: write-only secrets in implementations;
//! - `served`: a tool encoded once, as the read routes serve it;
//! - `portability`: which definitions work with every common model API;
//! - `stdio`: upstream MCP servers the registry starts and speaks to over stdio;
//! - `error`: the registry's error and the table of error codes.

pub mod definition;
pub mod document;
pub mod error;
pub mod execution;
pub mod input;
pub mod listing;
pub mod portability;
pub mod secrets;
pub mod served;
pub mod stdio;
pub mod tool;
pub mod validation;

pub use definition::{ToolDefinition, ToolVersion};
pub use error::{ErrorCode, RegistryError};
pub use execution::{
    CallBucket, CallResult, Execution, ExecutionFilter, ExecutionStatus, ToolStats,
};
pub use listing::{Facets, Page, Paged, ToolFilter};
pub use served::{AdminTool, AgentTool, ServedTool};
pub use stdio::StdioServer;
pub use tool::{DEFAULT_CATEGORY, DEFAULT_VERSION, Implementation, Tool, now_micros};
