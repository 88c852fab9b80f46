//! Importing the tools of an upstream MCP server (`POST /admin/import`).
//!
//! Each upstream tool becomes a registered `kind = "mcp"` tool named `<prefix>.<tool>`,
//! with the server's prefix as category and tag. Importing again brings the catalogue in
//! line with the upstream: changed tools are updated, vanished ones deactivated (never
//! deleted: their execution history stays), returning ones switched back on.
//!
//! An upstream is a Streamable HTTP endpoint (`url`) or a server the registry starts and
//! speaks to over stdio (`stdio`, see `registry::stdio`); a stdio import is known by its
//! server's name, so importing again with a changed command, arguments or environment
//! moves its tools to the new definition.
//!
//! An import owns the tools of its upstream *and* prefix only: importing the same server
//! under another prefix makes a second set and leaves the first alone. An upstream URL is
//! known without its credentials (user, password, secret query values), so importing again
//! after rotating them updates the same tools, which then reach it with the new URL.
//!
//! It is all or nothing: the URL passes the checks a registration applies before the
//! upstream is contacted, every definition is checked and every new name found free before
//! anything is written, and every write (new tools, updates, deactivations) is committed in
//! one store transaction.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ToolRegistry, batch::MAX_BATCH, requests::NewTool};
use crate::{
    domain::{
        ErrorCode, Implementation, Page, RegistryError, StdioServer, Tool, ToolFilter,
        document::embedded_text,
        now_micros,
        secrets::{REDACTED, redact_url, upstream_identity},
        validation,
    },
    store::{Replacement, StoreError, Updated},
};

/// How long listing the upstream's tools may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PREFIX_CHARS: usize = 64;
/// How often an import is planned again after another writer changed one of its tools
/// between the plan and the write.
const WRITE_ATTEMPTS: usize = 8;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The upstream server's Streamable HTTP endpoint; or give `stdio`.
    #[serde(default)]
    pub url: Option<String>,
    /// A server the registry starts and speaks to over stdio (`STDIO_ALLOWED_COMMANDS`
    /// must list its command); its `name` defaults to the prefix.
    #[serde(default)]
    pub stdio: Option<StdioServer>,
    /// Prepended to each tool's name (`<prefix>.<tool>`); also its tag and default category.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub prefix: String,
    pub category: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deactivated: Vec<String>,
}

impl ToolRegistry {
    /// Imports (or brings up to date) the upstream's tools under `request.prefix`. New
    /// tools' embeddings are waited for up to `embedding_wait`.
    pub(super) async fn import_now(
        self: &Arc<Self>,
        request: ImportRequest,
        embedding_wait: Duration,
    ) -> Result<ImportReport, RegistryError> {
        check_prefix(&request.prefix)?;
        let source = self.import_source(&request)?;
        let upstream = match &source {
            Source::Url(url) => {
                self.executor()
                    .upstreams()
                    .list_tools(url, LIST_TIMEOUT)
                    .await
            }
            Source::Stdio(server) => {
                self.executor()
                    .stdio()
                    .list_tools(server, LIST_TIMEOUT)
                    .await
            }
        }
        .map_err(RegistryError::upstream)?;
        let category = request
            .category
            .clone()
            .unwrap_or_else(|| request.prefix.clone());
        // The definitions wanted, checked as registrations are, before the first write.
        let mut wanted = Vec::with_capacity(upstream.len());
        let mut names = HashSet::new();
        for tool in &upstream {
            let definition = definition(&request, &source, &category, tool);
            if !names.insert(definition.name.clone()) {
                return Err(RegistryError::duplicate(
                    "prefix",
                    format!(
                        "two upstream tools become '{}' under this prefix; nothing was imported",
                        definition.name
                    ),
                ));
            }
            let checked = self
                .new_tool(definition)
                .map_err(|err| upstream_definition_error(&tool.name, err))?;
            wanted.push((tool.name.to_string(), checked));
        }

        // Every write of the import (new tools, changed ones, vanished ones switched off)
        // in one transaction, planned on the tools as read: if another writer changes one
        // of them first, nothing is written and the plan is made again.
        let mut attempts = 0;
        let (mut to_embed, report) = loop {
            attempts += 1;
            let known = self.imported_under(&source, &request.prefix).await?;
            let plan = plan(&wanted, known)?;
            let mut created_meanwhile = false;
            for tool in &plan.creates {
                match self.store.get_by_name(&tool.name).await? {
                    None => {}
                    // Created by an import of this upstream and prefix since the listing
                    // above: a plan made again finds it this import's own.
                    Some(other) if source.owns(&other) && attempts < WRITE_ATTEMPTS => {
                        created_meanwhile = true;
                        break;
                    }
                    Some(_) => return Err(taken(&tool.name)),
                }
            }
            if created_meanwhile {
                // The listing above reads the catalogue's in-memory mirror, which hears of
                // the other import's commit a moment after it: give it that moment.
                tokio::time::sleep(Duration::from_millis(10 << attempts)).await;
                continue;
            }
            match self
                .store
                .write_together(&plan.creates, &plan.replacements)
                .await
            {
                Ok(Updated::Written) => break (plan.to_embed(), plan.report),
                Ok(_) if attempts < WRITE_ATTEMPTS => {
                    // A tool of the import changed meanwhile (often its embedding, being
                    // made): the next plan waits a little longer each time for it to settle.
                    tokio::time::sleep(Duration::from_millis(10 << attempts)).await;
                    continue;
                }
                Ok(_) => {
                    return Err(RegistryError::unavailable(format!(
                        "the imported tools changed under each of {WRITE_ATTEMPTS} attempts \
                         to import; nothing was imported, try again"
                    )));
                }
                // Another writer took a name since the check: nothing was written. An import
                // of this upstream and prefix made that tool this import's own, and a plan
                // made again updates it; anyone else took the name.
                Err(StoreError::Duplicate(name)) => {
                    let taker = self.store.get_by_name(&name).await?;
                    if attempts < WRITE_ATTEMPTS && taker.is_some_and(|t| source.owns(&t)) {
                        tokio::time::sleep(Duration::from_millis(10 << attempts)).await;
                        continue;
                    }
                    return Err(taken(&name));
                }
                Err(err) => return Err(err.into()),
            }
        };
        if !to_embed.is_empty() {
            let embedded = self
                .clone()
                .embed_in_background(std::mem::take(&mut to_embed));
            let _ = tokio::time::timeout(embedding_wait, embedded).await;
        }
        if let Source::Stdio(server) = &source {
            // Tools that named an earlier definition of this server name this one now.
            self.executor().stdio().retire_others(server).await;
        }
        tracing::info!(
            upstream = %source.shown(),
            prefix = %request.prefix,
            created = report.created.len(),
            updated = report.updated.len(),
            unchanged = report.unchanged.len(),
            deactivated = report.deactivated.len(),
            "imported an upstream MCP server"
        );
        Ok(report)
    }

    /// Where the request's tools come from, checked as registering a tool of it would be
    /// (the address guard and `localhost`; the allowed commands) before it is contacted.
    fn import_source(&self, request: &ImportRequest) -> Result<Source, RegistryError> {
        let (url, server) = match (&request.url, &request.stdio) {
            (Some(url), None) => {
                check_url(url)?;
                (url.clone(), None)
            }
            (None, Some(server)) => {
                let mut server = server.clone();
                if server.name.is_empty() {
                    server.name.clone_from(&request.prefix);
                }
                server.validate("stdio")?;
                if server.has_placeholder() {
                    return Err(RegistryError::invalid(
                        "stdio.env",
                        format!(
                            "'{REDACTED}' stands for a stored value; an import sends the values"
                        ),
                    ));
                }
                (String::new(), Some(server))
            }
            (Some(_), Some(_)) => {
                return Err(RegistryError::invalid(
                    "stdio",
                    "give the upstream's url or its stdio command, not both",
                ));
            }
            (None, None) => {
                return Err(RegistryError::invalid(
                    "url",
                    "url (a Streamable HTTP endpoint) or stdio (a command) is required",
                ));
            }
        };
        let probe = Implementation::Mcp {
            url: url.clone(),
            tool: "import".to_owned(),
            timeout_ms: None,
            stdio: server.clone(),
        };
        self.check_runnable(&probe).map_err(|err| match err {
            RegistryError {
                code: ErrorCode::ValidationFailed,
                field: Some(field),
                message,
            } => RegistryError::invalid(field.replacen("implementation.", "", 1), message),
            other => other,
        })?;
        Ok(match server {
            Some(server) => Source::Stdio(server),
            None => Source::Url(url),
        })
    }

    /// The registered tools an import of `source` under `prefix` made, keyed by their
    /// upstream tool name: tools proxying to `source` (its URL, or its stdio server's name)
    /// whose names carry the prefix.
    async fn imported_under(
        &self,
        source: &Source,
        prefix: &str,
    ) -> Result<HashMap<String, Tool>, RegistryError> {
        let mut found = HashMap::new();
        let name_start = format!("{prefix}.");
        let mut page = Page {
            limit: 500,
            offset: 0,
        };
        loop {
            let listed = self.list(&ToolFilter::default(), page).await?;
            let count = listed.items.len() as u32;
            for tool in listed.items {
                if let Implementation::Mcp {
                    tool: upstream_name,
                    ..
                } = &tool.implementation
                    && source.owns(&tool)
                    && tool.name.starts_with(&name_start)
                {
                    found.insert(upstream_name.clone(), tool);
                }
            }
            if count < page.limit {
                return Ok(found);
            }
            page.offset += count;
        }
    }
}

/// Where an import's tools come from.
enum Source {
    Url(String),
    /// With its name set.
    Stdio(StdioServer),
}

impl Source {
    /// Whether `tool` was imported from this source.
    fn owns(&self, tool: &Tool) -> bool {
        match &tool.implementation {
            Implementation::Mcp { url, stdio, .. } => self.holds(url, stdio.as_ref()),
            _ => false,
        }
    }

    /// Whether a tool reaching `tool_url` or `stdio` comes from this source. URLs are
    /// compared without their credentials, so a rotated key or password is the same
    /// upstream.
    fn holds(&self, tool_url: &str, stdio: Option<&StdioServer>) -> bool {
        match (self, stdio) {
            (Source::Url(url), None) => {
                let identity = upstream_identity(url);
                identity.is_some() && identity == upstream_identity(tool_url)
            }
            (Source::Stdio(server), Some(stdio)) => server.name == stdio.name,
            _ => false,
        }
    }

    /// How metadata and the log name it: the URL without its credentials, or
    /// `stdio:<name>` (arguments and environment stay with the operator).
    fn shown(&self) -> String {
        match self {
            Source::Url(url) => redact_url(url),
            Source::Stdio(server) => format!("stdio:{}", server.name),
        }
    }

    fn implementation(&self, tool: &str) -> Implementation {
        let (url, stdio) = match self {
            Source::Url(url) => (url.clone(), None),
            Source::Stdio(server) => (String::new(), Some(server.clone())),
        };
        Implementation::Mcp {
            url,
            tool: tool.to_owned(),
            timeout_ms: None,
            stdio,
        }
    }
}

fn taken(name: &str) -> RegistryError {
    RegistryError::duplicate(
        "prefix",
        format!(
            "a tool named '{name}' is registered and was not imported from this server under \
             this prefix; choose another prefix or remove that tool. Nothing was imported"
        ),
    )
}

fn upstream_definition_error(upstream_name: &str, err: RegistryError) -> RegistryError {
    match err {
        RegistryError {
            code: ErrorCode::ValidationFailed,
            field: Some(field),
            message,
        } => RegistryError::upstream(format!(
            "the upstream tool '{upstream_name}' cannot be registered ({field}: {message}); \
             nothing was imported"
        )),
        other => other,
    }
}

fn check_url(text: &str) -> Result<(), RegistryError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        _ => Err(RegistryError::invalid(
            "url",
            "url must be the http(s) address of an MCP server's endpoint",
        )),
    }
}

fn check_prefix(prefix: &str) -> Result<(), RegistryError> {
    let fits = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_CHARS
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if fits {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            "prefix",
            format!("prefix must be 1 to {MAX_PREFIX_CHARS} letters, digits, '_' or '-'"),
        ))
    }
}

/// Upstream names may hold characters our names do not (spaces, slashes): those become '_'.
fn registered_name(prefix: &str, upstream: &str) -> String {
    let tail: String = upstream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128 - prefix.len() - 1)
        .collect();
    format!("{prefix}.{tail}")
}

fn definition(
    request: &ImportRequest,
    source: &Source,
    category: &str,
    tool: &rmcp::model::Tool,
) -> NewTool {
    let description = tool
        .description
        .as_deref()
        .filter(|d| !validation::shows_nothing(d))
        .or(tool
            .title
            .as_deref()
            .filter(|t| !validation::shows_nothing(t)))
        .unwrap_or(tool.name.as_ref())
        .to_owned();
    NewTool {
        name: registered_name(&request.prefix, &tool.name),
        description,
        category: Some(category.to_owned()),
        tags: vec![request.prefix.clone(), "mcp".to_owned()],
        input_schema: Value::Object((*tool.input_schema).clone()),
        output_schema: tool
            .output_schema
            .as_ref()
            .map(|schema| Value::Object((**schema).clone())),
        version: None,
        implementation: source.implementation(&tool.name),
        metadata: Some(imported_metadata(source, tool)),
        is_active: true,
        upsert: false,
    }
}

/// Where the tool came from, and the upstream's title and annotations, which MCP's
/// `tools/list` publishes again.
fn imported_metadata(source: &Source, tool: &rmcp::model::Tool) -> Value {
    // Metadata is shown to agents: the address without its credentials.
    let mut metadata = json!({ "imported_from": source.shown() });
    if let Some(title) = &tool.title {
        metadata["title"] = json!(title);
    }
    if let Some(annotations) = &tool.annotations {
        metadata["annotations"] = json!(annotations);
    }
    metadata
}

/// What an import writes: the report it answers, new tools, and the tools of earlier
/// imports brought in line with the upstream (or switched off).
struct Plan {
    report: ImportReport,
    creates: Vec<Tool>,
    replacements: Vec<Replacement>,
}

impl Plan {
    /// The tools whose embedding the writes leave to make.
    fn to_embed(&self) -> Vec<Tool> {
        self.creates
            .iter()
            .chain(self.replacements.iter().map(|r| &r.tool))
            .filter(|tool| tool.embedding_model.is_none())
            .cloned()
            .collect()
    }
}

/// The writes that bring `known` (an earlier import's tools, by upstream name) in line with
/// `wanted` (the upstream's tools, by upstream name, as checked new tools).
fn plan(
    wanted: &[(String, Tool)],
    mut known: HashMap<String, Tool>,
) -> Result<Plan, RegistryError> {
    let mut plan = Plan {
        report: ImportReport::default(),
        creates: Vec::new(),
        replacements: Vec::new(),
    };
    for (upstream_name, tool) in wanted {
        match known.remove(upstream_name) {
            None => {
                plan.report.created.push(tool.name.clone());
                plan.creates.push(tool.clone());
            }
            Some(existing) if same(&existing, tool) => plan.report.unchanged.push(existing.name),
            Some(existing) => {
                let tool = brought_in_line(&existing, tool);
                validation::storable(&tool)?;
                plan.report.updated.push(tool.name.clone());
                plan.replacements.push(Replacement {
                    tool,
                    replaces: existing,
                });
            }
        }
    }
    if plan.creates.len() > MAX_BATCH {
        return Err(RegistryError::invalid(
            "url",
            format!(
                "the upstream lists {} new tools; one import registers at most {MAX_BATCH}",
                plan.creates.len()
            ),
        ));
    }
    // Switched off last, in name order.
    let mut vanished: Vec<Tool> = known.into_values().filter(|t| t.is_active).collect();
    vanished.sort_by(|a, b| a.name.cmp(&b.name));
    for existing in vanished {
        let mut tool = existing.clone();
        tool.is_active = false;
        tool.updated_at = now_micros();
        plan.report.deactivated.push(tool.name.clone());
        plan.replacements.push(Replacement {
            tool,
            replaces: existing,
        });
    }
    Ok(plan)
}

fn same(existing: &Tool, wanted: &Tool) -> bool {
    existing.is_active
        && existing.name == wanted.name
        && existing.description == wanted.description
        && existing.category == wanted.category
        && existing.tags == wanted.tags
        && existing.input_schema == wanted.input_schema
        && existing.output_schema == wanted.output_schema
        && existing.metadata == wanted.metadata
        && reached_the_same_way(&existing.implementation, &wanted.implementation)
}

/// Whether two imported tools' implementations reach their upstream with the same URL
/// (credentials included) and stdio definition; a tool's own `timeout_ms` is its own.
fn reached_the_same_way(existing: &Implementation, wanted: &Implementation) -> bool {
    match (existing, wanted) {
        (
            Implementation::Mcp {
                url, tool, stdio, ..
            },
            Implementation::Mcp {
                url: wanted_url,
                tool: wanted_tool,
                stdio: wanted_stdio,
                ..
            },
        ) => url == wanted_url && tool == wanted_tool && stdio == wanted_stdio,
        _ => false,
    }
}

/// `existing` brought in line with the upstream: the upstream's definition, reached as the
/// import reaches it (a rotated credential or a new stdio definition replaces the old), the
/// tool's own `timeout_ms` and version kept, switched on. A changed embedded text drops the
/// embedding, to be made again.
fn brought_in_line(existing: &Tool, wanted: &Tool) -> Tool {
    let mut tool = existing.clone();
    tool.name.clone_from(&wanted.name);
    tool.description.clone_from(&wanted.description);
    tool.category.clone_from(&wanted.category);
    tool.tags.clone_from(&wanted.tags);
    tool.input_schema.clone_from(&wanted.input_schema);
    tool.output_schema.clone_from(&wanted.output_schema);
    tool.metadata.clone_from(&wanted.metadata);
    tool.implementation = match (&existing.implementation, &wanted.implementation) {
        (
            Implementation::Mcp { timeout_ms, .. },
            Implementation::Mcp {
                url, tool, stdio, ..
            },
        ) => Implementation::Mcp {
            url: url.clone(),
            tool: tool.clone(),
            timeout_ms: *timeout_ms,
            stdio: stdio.clone(),
        },
        (_, wanted) => wanted.clone(),
    };
    tool.is_active = true;
    if embedded_text(&tool) != embedded_text(existing) {
        tool.embedding_model = None;
    }
    tool.updated_at = now_micros();
    tool
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation;

    #[test]
    fn upstream_names_become_valid_prefixed_names() {
        assert_eq!(registered_name("gh", "create_issue"), "gh.create_issue");
        assert_eq!(registered_name("fs", "read file/v2"), "fs.read_file_v2");
        let long = registered_name("p", &"x".repeat(300));
        assert_eq!(long.len(), 128);
        assert!(validation::name(&long).is_ok());
        assert!(check_prefix("github").is_ok());
        assert!(check_prefix("").is_err() && check_prefix("a.b").is_err());
    }
}
