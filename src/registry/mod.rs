//! The one orchestrator: every rule of the catalogue lives here, between the HTTP layer and
//! the store.

pub mod model;
pub mod validation;

use std::sync::Arc;

use uuid::Uuid;

use crate::{error::ApiError, store::ToolStore};
use model::{
    DEFAULT_CATEGORY, DEFAULT_VERSION, NewTool, Page, Paged, Tool, ToolFilter, ToolPatch,
    now_micros,
};

pub struct ToolRegistry {
    store: Arc<dyn ToolStore>,
}

impl ToolRegistry {
    pub fn new(store: Arc<dyn ToolStore>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<dyn ToolStore> {
        &self.store
    }

    pub async fn register(&self, new: NewTool) -> Result<Tool, ApiError> {
        validation::name(&new.name)?;
        validation::description(&new.description)?;
        let category = new.category.unwrap_or_else(|| DEFAULT_CATEGORY.to_owned());
        validation::category(&category)?;
        let tags = validation::tags(new.tags)?;
        validation::schema("input_schema", &new.input_schema)?;
        if let Some(output) = &new.output_schema {
            validation::schema("output_schema", output)?;
        }
        let version = new.version.unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        validation::version(&version)?;
        validation::implementation(&new.implementation)?;
        let metadata = new.metadata.unwrap_or_else(|| serde_json::json!({}));
        validation::metadata(&metadata)?;

        let now = now_micros();
        let tool = Tool {
            id: Uuid::new_v4(),
            name: new.name,
            description: new.description,
            category,
            tags,
            input_schema: new.input_schema,
            output_schema: new.output_schema,
            version,
            implementation: new.implementation,
            metadata,
            is_active: new.is_active,
            embedding_model: None,
            created_at: now,
            updated_at: now,
        };
        self.store.create(&tool).await?;
        tracing::info!(tool = %tool.name, id = %tool.id, "tool registered");
        Ok(tool)
    }

    pub async fn get(&self, id: Uuid) -> Result<Tool, ApiError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn get_by_name(&self, name: &str) -> Result<Tool, ApiError> {
        self.store
            .get_by_name(name)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("named '{name}'")))
    }

    /// Applies a partial update. A change to the text that is embedded drops the stored
    /// embedding so that it is made again.
    pub async fn update(&self, id: Uuid, patch: ToolPatch) -> Result<Tool, ApiError> {
        let mut tool = self.get(id).await?;
        let text_before = embedded_text(&tool);
        if let Some(name) = patch.name {
            validation::name(&name)?;
            tool.name = name;
        }
        if let Some(description) = patch.description {
            validation::description(&description)?;
            tool.description = description;
        }
        if let Some(category) = patch.category {
            validation::category(&category)?;
            tool.category = category;
        }
        if let Some(tags) = patch.tags {
            tool.tags = validation::tags(tags)?;
        }
        if let Some(schema) = patch.input_schema {
            validation::schema("input_schema", &schema)?;
            tool.input_schema = schema;
        }
        if let Some(output) = patch.output_schema {
            if let Some(schema) = &output {
                validation::schema("output_schema", schema)?;
            }
            tool.output_schema = output;
        }
        if let Some(version) = patch.version {
            validation::version(&version)?;
            tool.version = version;
        }
        if let Some(implementation) = patch.implementation {
            validation::implementation(&implementation)?;
            tool.implementation = implementation;
        }
        if let Some(metadata) = patch.metadata {
            validation::metadata(&metadata)?;
            tool.metadata = metadata;
        }
        if let Some(active) = patch.is_active {
            tool.is_active = active;
        }
        if embedded_text(&tool) != text_before {
            tool.embedding_model = None;
        }
        tool.updated_at = now_micros();
        if !self.store.update(&tool).await? {
            return Err(ApiError::tool_not_found(format_args!("with id {id}")));
        }
        tracing::info!(tool = %tool.name, %id, "tool updated");
        Ok(tool)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), ApiError> {
        if self.store.delete(id).await? {
            tracing::info!(%id, "tool deleted");
            Ok(())
        } else {
            Err(ApiError::tool_not_found(format_args!("with id {id}")))
        }
    }

    pub async fn set_active(&self, id: Uuid, active: bool) -> Result<Tool, ApiError> {
        self.store
            .set_active(id, active)
            .await?
            .ok_or_else(|| ApiError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn list(&self, filter: &ToolFilter, page: Page) -> Result<Paged<Tool>, ApiError> {
        Ok(self.store.list(filter, page).await?)
    }
}

/// The text an embedding is made from: name, description, tags, and the names and
/// descriptions of the input parameters.
pub fn embedded_text(tool: &Tool) -> String {
    let mut text = format!("{}: {}", tool.name, tool.description);
    if !tool.tags.is_empty() {
        text.push_str("\nTags: ");
        text.push_str(&tool.tags.join(", "));
    }
    if let Some(properties) = tool
        .input_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (param, spec) in properties {
            text.push_str("\n- ");
            text.push_str(param);
            if let Some(description) = spec.get("description").and_then(|d| d.as_str()) {
                text.push_str(": ");
                text.push_str(description);
            }
        }
    }
    text
}
