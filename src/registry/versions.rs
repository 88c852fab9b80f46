//! A tool's history: the versions its updates replaced, rolling back to one, and
//! registering over an existing tool (`upsert`).

use semver::Version;
use serde::Serialize;
use uuid::Uuid;

use super::ToolRegistry;
use crate::domain::{ErrorCode, RegistryError};
use crate::domain::{Tool, ToolVersion, secrets};

/// What a registration did.
#[derive(Debug)]
pub enum Registered {
    Created(Tool),
    /// `upsert` found a tool of that name and updated it (or found it already so).
    Updated(Tool),
}

impl Registered {
    pub fn tool(&self) -> &Tool {
        match self {
            Self::Created(tool) | Self::Updated(tool) => tool,
        }
    }

    pub fn into_tool(self) -> Tool {
        match self {
            Self::Created(tool) | Self::Updated(tool) => tool,
        }
    }
}

/// `GET /admin/tools/{id}/versions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionHistory {
    pub tool_id: Uuid,
    /// The version in force.
    pub current_version: String,
    /// The definitions replaced by updates, newest first.
    pub versions: Vec<ToolVersion>,
}

/// A given version may not go down, and must go up when anything else in the definition
/// changes. A stored version that is not semver (written before versions were checked)
/// accepts any valid one.
pub fn version_must_rise(before: &Tool, after: &Tool) -> Result<(), RegistryError> {
    let (Ok(old), Ok(new)) = (
        Version::parse(&before.version),
        Version::parse(&after.version),
    ) else {
        return Ok(());
    };
    if new < old {
        return Err(RegistryError::invalid(
            "version",
            format!(
                "version {new} is lower than the tool's version {old}; use rollback to go back"
            ),
        ));
    }
    if new == old && before.definition() != after.definition() {
        return Err(RegistryError::invalid(
            "version",
            format!(
                "the definition changes, so the version must rise above {old} (or be left out)"
            ),
        ));
    }
    Ok(())
}

impl ToolRegistry {
    pub async fn versions(&self, id: Uuid) -> Result<VersionHistory, RegistryError> {
        let tool = self.get(id).await?;
        Ok(VersionHistory {
            tool_id: id,
            current_version: tool.version,
            versions: self.store.versions(id).await?,
        })
    }

    /// Makes the newest earlier definition with `version` the current one; the definition
    /// it replaces joins the history. Active state is kept; the text is embedded again if
    /// it differs.
    pub(super) async fn rollback_now(
        &self,
        id: Uuid,
        version: &str,
    ) -> Result<Tool, RegistryError> {
        let current = self.get(id).await?;
        let history = self.store.versions(id).await?;
        let earlier = history
            .iter()
            .find(|v| v.version() == version)
            .ok_or_else(|| {
                RegistryError::new(
                    ErrorCode::VersionNotFound,
                    format!("tool {id} has no earlier version '{version}'"),
                )
            })?;
        let restored = self
            .change(current, |current| {
                let mut tool = current.clone();
                tool.set_definition(earlier.definition.clone());
                if tool.definition() == current.definition() {
                    return Ok(None);
                }
                // The rules may have tightened since (a built-in removed, private URLs refused).
                self.check_runnable(&tool.implementation)?;
                Ok(Some(tool))
            })
            .await?;
        tracing::info!(tool = %restored.name, %id, version, "tool rolled back");
        Ok(restored)
    }

    /// `upsert`: the registered definition `wanted` replaces that of the tool of the same
    /// name. The version is kept unless one was given; so is the active state, which is
    /// not part of a definition.
    pub(super) async fn replace_definition(
        &self,
        wanted: Tool,
        version_given: bool,
    ) -> Result<Tool, RegistryError> {
        let before = self.get_by_name(&wanted.name).await?;
        self.change(before, |current| {
            let mut tool = Tool {
                id: current.id,
                created_at: current.created_at,
                embedding_model: current.embedding_model.clone(),
                is_active: current.is_active,
                ..wanted.clone()
            };
            tool.implementation = secrets::restore(tool.implementation, &current.implementation)?;
            secrets::restore_metadata(&mut tool.metadata, &current.metadata);
            if version_given {
                version_must_rise(current, &tool)?;
            } else {
                tool.version.clone_from(&current.version);
            }
            Ok((tool.definition() != current.definition()).then_some(tool))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(version: &str, description: &str) -> Tool {
        Tool {
            id: Uuid::nil(),
            description: description.into(),
            category: "c".into(),
            version: version.into(),
            ..Tool::example("t")
        }
    }

    #[test]
    fn versions_rise_with_changes() {
        let before = tool("1.2.0", "old");
        assert!(version_must_rise(&before, &tool("1.3.0", "new")).is_ok());
        assert!(version_must_rise(&before, &tool("1.2.0", "old")).is_ok());
        assert!(version_must_rise(&before, &tool("1.2.0", "new")).is_err());
        assert!(version_must_rise(&before, &tool("1.1.9", "old")).is_err());
        // Pre-releases sort below their release.
        assert!(version_must_rise(&before, &tool("1.2.0-rc.1", "new")).is_err());
        assert!(version_must_rise(&tool("v1", "old"), &tool("0.1.0", "new")).is_ok());
    }
}
