//! A tool's definition: what an operator writes, as one value. Versioning compares
//! definitions with `==` and restores an earlier one whole.
//!
//! `Tool` keeps its fields flat (its JSON, its OpenAPI schema and the decoding of the
//! served tool on every call stay as they are); this file is the one place that knows
//! which of them make the definition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Implementation, Tool};

/// What an operator writes about a tool: everything but its id, its state (active,
/// embedded) and its timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    pub version: String,
    pub implementation: Implementation,
    pub metadata: Value,
}

/// An earlier definition of a tool, kept when an update replaced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolVersion {
    #[serde(flatten)]
    pub definition: ToolDefinition,
    /// The model that had embedded this definition; `None` if it was never embedded.
    pub embedding_model: Option<String>,
    /// When this definition was replaced.
    pub changed_at: DateTime<Utc>,
}

impl Tool {
    /// The tool's definition, apart from its id, state and timestamps.
    pub fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            tags: self.tags.clone(),
            input_schema: self.input_schema.clone(),
            output_schema: self.output_schema.clone(),
            version: self.version.clone(),
            implementation: self.implementation.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// Takes `definition` whole; id, state and timestamps stay.
    pub fn set_definition(&mut self, definition: ToolDefinition) {
        let ToolDefinition {
            name,
            description,
            category,
            tags,
            input_schema,
            output_schema,
            version,
            implementation,
            metadata,
        } = definition;
        self.name = name;
        self.description = description;
        self.category = category;
        self.tags = tags;
        self.input_schema = input_schema;
        self.output_schema = output_schema;
        self.version = version;
        self.implementation = implementation;
        self.metadata = metadata;
    }
}

impl ToolVersion {
    /// The version a tool's row records when it is replaced: its definition, the model
    /// that had embedded it, and when it was replaced.
    pub fn replaced(tool: Tool, changed_at: DateTime<Utc>) -> Self {
        Self {
            definition: tool.definition(),
            embedding_model: tool.embedding_model,
            changed_at,
        }
    }

    pub fn version(&self) -> &str {
        &self.definition.version
    }
}
