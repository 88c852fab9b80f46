//! Built-in tools that run in-process: a calculator, Unicode string utilities
//! and JSON/CSV data transforms.
//!
//! [`builtin_tools`] returns every tool, in a stable order, configured with the
//! shared [`BuiltinLimits`].

pub mod builtin;
pub mod calculator;
pub mod data_transform;
pub mod strings;

pub use builtin::{BuiltinLimits, BuiltinTool, ToolError, builtin_tools};
pub use calculator::Calculator;
pub use data_transform::{CsvToJson, FlattenJson, JsonToCsv, UnflattenJson};
pub use strings::{StringOperation, StringTool};
pub mod executor;
pub mod stdio;
pub mod upstream;
pub mod url_guard;

pub use executor::{Executor, ExecutorSettings, Outcome};
