//! The catalogue: registering, reading, updating, activating, deleting and listing tools,
//! and keeping the built-in tools' definitions in step with the code.

use uuid::Uuid;

use super::{
    Registered, ToolRegistry,
    requests::{NewTool, ToolPatch},
    versions,
};
use crate::{
    builtins::BuiltinTool,
    domain::{
        DEFAULT_CATEGORY, DEFAULT_VERSION, ErrorCode, Implementation, Page, Paged, RegistryError,
        ServedTool, Tool, ToolFilter, document::embedded_text, now_micros, secrets, validation,
    },
    store::{StoreError, Updated},
};

/// How often a change is decided again after other writers changed the tool first; each
/// lost attempt means another write succeeded, so this bounds only a request's wait.
const CHANGE_ATTEMPTS: usize = 64;

impl ToolRegistry {
    /// Checks what only the running service knows: built-in handlers exist, and HTTP tools
    /// do not point at private addresses unless that is allowed.
    pub(super) fn check_runnable(
        &self,
        implementation: &Implementation,
    ) -> Result<(), RegistryError> {
        validation::implementation(implementation)?;
        match implementation {
            Implementation::Builtin { handler } if !self.executor.has_builtin(handler) => {
                Err(RegistryError::invalid(
                    "implementation.handler",
                    format!("there is no built-in tool '{handler}'"),
                ))
            }
            Implementation::Mcp {
                stdio: Some(server),
                ..
            } => self
                .executor
                .stdio()
                .check_command(&server.command)
                .map_err(|refused| RegistryError::invalid("implementation.stdio.command", refused)),
            Implementation::Http { url, .. } | Implementation::Mcp { url, .. } => {
                let guard = self.executor.url_guard();
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| RegistryError::invalid("implementation.url", e.to_string()))?;
                let named_local = !guard.allow_private
                    && parsed.host_str().is_some_and(|h| {
                        h.eq_ignore_ascii_case("localhost") || h.ends_with(".localhost")
                    });
                if named_local {
                    return Err(RegistryError::invalid(
                        "implementation.url",
                        "localhost is not allowed (ALLOW_PRIVATE_TOOL_URLS)",
                    ));
                }
                guard
                    .check_url(&parsed)
                    .map_err(|refused| RegistryError::invalid("implementation.url", refused))
            }
            _ => Ok(()),
        }
    }

    /// Registers a new tool, or with `upsert` updates the tool of that name.
    pub(super) async fn register_now(&self, new: NewTool) -> Result<Registered, RegistryError> {
        let (upsert, version_given) = (new.upsert, new.version.is_some());
        let tool = self.new_tool(new)?;
        if upsert && secrets::has_placeholder(&tool.implementation) {
            // The placeholder stands for a stored secret, so it only ever updates: a tool
            // that is not there is refused rather than created holding the literal.
            if self.store.get_by_name(&tool.name).await?.is_none() {
                secrets::refuse_placeholder(&tool.implementation)?;
            }
            let updated = self.replace_definition(tool, version_given).await?;
            return Ok(Registered::Updated(updated));
        }
        match self.store.create(&tool).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(_)) if upsert => {
                let updated = self.replace_definition(tool, version_given).await?;
                return Ok(Registered::Updated(updated));
            }
            Err(err) => return Err(err.into()),
        }
        let mut tool = tool;
        self.embed_now(std::slice::from_mut(&mut tool)).await;
        tracing::info!(tool = %tool.name, id = %tool.id, "tool registered");
        Ok(Registered::Created(tool))
    }

    /// A new tool from a checked definition (`upsert` aside), not stored yet.
    pub(super) fn new_tool(&self, new: NewTool) -> Result<Tool, RegistryError> {
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
        self.check_runnable(&new.implementation)?;
        if !new.upsert {
            secrets::refuse_placeholder(&new.implementation)?;
        }
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
        validation::storable(&tool)?;
        Ok(tool)
    }

    pub async fn get(&self, id: Uuid) -> Result<Tool, RegistryError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| RegistryError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn get_by_name(&self, name: &str) -> Result<Tool, RegistryError> {
        self.store
            .get_by_name(name)
            .await?
            .ok_or_else(|| RegistryError::tool_not_found(format_args!("named '{name}'")))
    }

    /// Applies a partial update. A `version`, when given, must not go down, and must go up
    /// if the definition changes: both checked against the row the update replaces.
    pub(super) async fn update_now(
        &self,
        id: Uuid,
        patch: ToolPatch,
    ) -> Result<Tool, RegistryError> {
        let before = self.get(id).await?;
        let patch = self.checked_patch(patch)?;
        self.change(before, |current| {
            let mut tool = current.clone();
            apply_patch(&patch, &mut tool);
            secrets::restore_metadata(&mut tool.metadata, &current.metadata);
            if let Some(implementation) = &patch.implementation {
                // Secrets sent back as the redaction placeholder keep their stored values;
                // restored first, so the version check compares what would be stored.
                tool.implementation =
                    secrets::restore(implementation.clone(), &current.implementation)?;
                self.check_runnable(&tool.implementation)?;
            }
            if patch.version.is_some() {
                versions::version_must_rise(current, &tool)?;
            }
            Ok(Some(tool))
        })
        .await
    }

    /// The patch with each field it names checked (and tags normalised).
    fn checked_patch(&self, mut patch: ToolPatch) -> Result<ToolPatch, RegistryError> {
        if let Some(name) = &patch.name {
            validation::name(name)?;
        }
        if let Some(description) = &patch.description {
            validation::description(description)?;
        }
        if let Some(category) = &patch.category {
            validation::category(category)?;
        }
        if let Some(tags) = patch.tags.take() {
            patch.tags = Some(validation::tags(tags)?);
        }
        if let Some(schema) = &patch.input_schema {
            validation::schema("input_schema", schema)?;
        }
        if let Some(Some(schema)) = &patch.output_schema {
            validation::schema("output_schema", schema)?;
        }
        if let Some(version) = &patch.version {
            validation::version(version)?;
        }
        if let Some(metadata) = &patch.metadata {
            validation::metadata(metadata)?;
        }
        Ok(patch)
    }

    /// Stores what `decide` makes of the tool (`None`: leave it as it is). A decision made
    /// on a row that another writer changed before it was written is not stored: the tool
    /// is read again and the decision made again, so no concurrent change is overwritten
    /// and every rule `decide` checks holds for the row it replaces.
    pub(super) async fn change(
        &self,
        mut before: Tool,
        mut decide: impl FnMut(&Tool) -> Result<Option<Tool>, RegistryError> + Send,
    ) -> Result<Tool, RegistryError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let Some(tool) = decide(&before)? else {
                return Ok(before);
            };
            if let Some(saved) = self.save(&before, tool).await? {
                return Ok(saved);
            }
            before = self.get(before.id).await?;
        }
        Err(RegistryError::unavailable(format!(
            "the tool {} changed under each of {CHANGE_ATTEMPTS} attempts to update it; try again",
            before.id
        )))
    }

    /// Stores `tool` in place of `before` (same id) if the stored row is still `before`;
    /// `None` if it changed since. A change to the text that is embedded drops the stored
    /// embedding and makes it again.
    async fn save(&self, before: &Tool, mut tool: Tool) -> Result<Option<Tool>, RegistryError> {
        let text_changed = embedded_text(&tool) != embedded_text(before);
        if text_changed {
            tool.embedding_model = None;
        }
        tool.updated_at = now_micros();
        validation::storable(&tool)?;
        match self.store.update_if(&tool, Some(before)).await? {
            Updated::Written => {}
            Updated::Changed => return Ok(None),
            Updated::NotFound => {
                return Err(RegistryError::tool_not_found(format_args!(
                    "with id {}",
                    tool.id
                )));
            }
        }
        if text_changed {
            self.embed_now(std::slice::from_mut(&mut tool)).await;
        }
        tracing::info!(tool = %tool.name, id = %tool.id, "tool updated");
        Ok(Some(tool))
    }

    pub(super) async fn delete_now(&self, id: Uuid) -> Result<(), RegistryError> {
        if self.store.delete(id).await? {
            tracing::info!(%id, "tool deleted");
            Ok(())
        } else {
            Err(RegistryError::tool_not_found(format_args!("with id {id}")))
        }
    }

    pub(super) async fn set_active_now(
        &self,
        id: Uuid,
        active: bool,
    ) -> Result<Tool, RegistryError> {
        self.store
            .set_active(id, active)
            .await?
            .ok_or_else(|| RegistryError::tool_not_found(format_args!("with id {id}")))
    }

    pub async fn list(
        &self,
        filter: &ToolFilter,
        page: Page,
    ) -> Result<Paged<Tool>, RegistryError> {
        Ok(self.store.list(filter, page).await?)
    }

    /// The categories of active tools, sorted: from the store's catalogue index, without
    /// a database read. It walks every indexed tool, so it serves answers that found nothing
    /// (to name the categories there are), not every request.
    pub async fn active_categories(&self) -> Result<Vec<String>, RegistryError> {
        let mut categories = std::collections::BTreeSet::new();
        self.store.visit_indexed_active(&mut |_, facets| {
            if !categories.contains(&facets.category) {
                categories.insert(facets.category.clone());
            }
        });
        Ok(categories.into_iter().collect())
    }

    /// The names of active tools, in no order: from the store's catalogue index, without a
    /// database read.
    pub fn active_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.store
            .visit_indexed_active(&mut |name, _| names.push(name.to_owned()));
        names
    }

    /// `list_served` as agents ask it: when a category filter lists nothing, the category
    /// is matched in any case and the listing made again; when no category matches, the
    /// note names the categories there are.
    pub async fn list_for_agent(
        &self,
        mut filter: ToolFilter,
        page: Page,
    ) -> Result<(Paged<ServedTool>, Option<String>), RegistryError> {
        let mut paged = self.list_served(&filter, page).await?;
        let mut note = None;
        if paged.total == 0
            && let Some(requested) = filter.category.clone()
        {
            match self.stored_category(&requested).await? {
                Ok(stored) if stored != requested => {
                    filter.category = Some(stored);
                    paged = self.list_served(&filter, page).await?;
                }
                Ok(_) => {}
                Err(categories) => note = Some(no_such_category(&requested, &categories)),
            }
        }
        Ok((paged, note))
    }

    /// A requested category as stored: categories match in any case. `Err` with the
    /// categories there are when none matches. Asked only when a filtered answer is empty.
    pub(super) async fn stored_category(
        &self,
        requested: &str,
    ) -> Result<Result<String, Vec<String>>, RegistryError> {
        let categories = self.active_categories().await?;
        let wanted = requested.to_lowercase();
        Ok(categories
            .iter()
            .find(|c| c.to_lowercase() == wanted)
            .cloned()
            .ok_or(categories))
    }

    /// Hands every active tool to `visit`, reading the catalogue a page at a time, for the
    /// few answers that need all of it.
    pub async fn visit_active(
        &self,
        mut visit: impl FnMut(Tool) + Send,
    ) -> Result<(), RegistryError> {
        const PAGE: u32 = 500;
        let filter = ToolFilter {
            active_only: true,
            ..ToolFilter::default()
        };
        let mut offset = 0;
        loop {
            let paged = self
                .store
                .list(
                    &filter,
                    Page {
                        limit: PAGE,
                        offset,
                    },
                )
                .await?;
            let count = paged.items.len() as u32;
            paged.items.into_iter().for_each(&mut visit);
            offset += count;
            if count < PAGE || u64::from(offset) >= paged.total {
                return Ok(());
            }
        }
    }

    /// `list` as the read routes serve it: tools encoded once and shared between responses.
    pub async fn list_served(
        &self,
        filter: &ToolFilter,
        page: Page,
    ) -> Result<Paged<ServedTool>, RegistryError> {
        Ok(self.store.list_served(filter, page).await?)
    }

    /// Registers every built-in tool, or brings its stored definition up to date; tools
    /// that already match are left alone, so this is safe at every start of every replica.
    pub async fn sync_builtins(&self) -> Result<(), RegistryError> {
        for builtin in self.executor.builtins() {
            let wanted = builtin_definition(builtin.as_ref());
            match self.store.get_by_name(&wanted.name).await? {
                None => match self.register_now(wanted).await {
                    Ok(_) => {}
                    Err(err) if err.code == ErrorCode::DuplicateTool => {}
                    Err(err) => return Err(err),
                },
                Some(stored) => {
                    let patch = ToolPatch {
                        description: Some(wanted.description),
                        category: wanted.category,
                        tags: Some(wanted.tags),
                        input_schema: Some(wanted.input_schema),
                        output_schema: Some(wanted.output_schema),
                        implementation: Some(wanted.implementation),
                        ..ToolPatch::default()
                    };
                    let mut synced = stored.clone();
                    apply_patch(&patch, &mut synced);
                    if synced.definition() != stored.definition() {
                        self.update_now(stored.id, patch).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What an answer filtered by a category that matched nothing says.
pub(super) fn no_such_category(requested: &str, categories: &[String]) -> String {
    format!(
        "no active tool has the category '{requested}'; the categories are: {}",
        categories.join(", ")
    )
}

fn builtin_definition(builtin: &dyn BuiltinTool) -> NewTool {
    NewTool {
        name: builtin.name().to_owned(),
        description: builtin.description().to_owned(),
        category: Some(builtin.category().to_owned()),
        tags: builtin.tags().iter().map(|t| t.to_string()).collect(),
        input_schema: builtin.input_schema(),
        output_schema: builtin.output_schema(),
        version: None,
        implementation: Implementation::Builtin {
            handler: builtin.name().to_owned(),
        },
        metadata: Some(serde_json::json!({"builtin": true})),
        is_active: true,
        upsert: false,
    }
}

/// Sets the fields `patch` names; the others stay as stored.
fn apply_patch(patch: &ToolPatch, tool: &mut Tool) {
    if let Some(name) = &patch.name {
        tool.name.clone_from(name);
    }
    if let Some(description) = &patch.description {
        tool.description.clone_from(description);
    }
    if let Some(category) = &patch.category {
        tool.category.clone_from(category);
    }
    if let Some(tags) = &patch.tags {
        tool.tags.clone_from(tags);
    }
    if let Some(schema) = &patch.input_schema {
        tool.input_schema.clone_from(schema);
    }
    if let Some(output) = &patch.output_schema {
        tool.output_schema.clone_from(output);
    }
    if let Some(version) = &patch.version {
        tool.version.clone_from(version);
    }
    if let Some(implementation) = &patch.implementation {
        tool.implementation = implementation.clone();
    }
    if let Some(metadata) = &patch.metadata {
        tool.metadata.clone_from(metadata);
    }
    if let Some(active) = patch.is_active {
        tool.is_active = active;
    }
}
