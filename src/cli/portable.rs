//! `tool-registry export` and `import`: the catalogue as JSON Lines, one tool definition per
//! line, for backups of the embedded store and moves between backends. Embeddings are not
//! exported: the importing registry makes its own with its own model.

use std::{
    io::{BufRead, Write},
    sync::Arc,
};

use serde_json::Value;

use crate::{
    domain::{Page, RegistryError, Tool, ToolFilter, input::parse_json},
    registry::{
        ToolRegistry,
        requests::{NewTool, ToolPatch},
    },
};

const PAGE: u32 = 500;

/// The definition of a tool as `POST /admin/tools` takes it: its definition and whether it
/// is active.
pub fn definition_of(tool: &Tool) -> Value {
    let mut definition = serde_json::to_value(tool.definition())
        .expect("a tool definition is plain data and always encodes to JSON");
    definition["is_active"] = Value::Bool(tool.is_active);
    definition
}

/// Writes every tool, active or not, ordered by name. Returns how many.
pub async fn export(registry: &ToolRegistry, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut written = 0;
    let mut offset = 0;
    loop {
        let page = registry
            .list(
                &ToolFilter::default(),
                Page {
                    limit: PAGE,
                    offset,
                },
            )
            .await?;
        for tool in &page.items {
            serde_json::to_writer(&mut *out, &definition_of(tool))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        if page.items.len() < PAGE as usize {
            break;
        }
        offset += PAGE;
    }
    out.flush()?;
    Ok(written)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
}

/// Registers each line's tool, or updates the tool of that name. A bad line is reported
/// (with its number) and skipped; the others still land.
pub async fn import(
    registry: &Arc<ToolRegistry>,
    input: impl BufRead,
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match import_line(registry, &line).await {
            Ok(true) => summary.created += 1,
            Ok(false) => summary.updated += 1,
            Err(err) => {
                summary.failed += 1;
                eprintln!("line {}: {err}", index + 1);
            }
        }
    }
    Ok(summary)
}

/// True when the tool was created, false when an existing one was updated.
async fn import_line(registry: &Arc<ToolRegistry>, line: &str) -> Result<bool, RegistryError> {
    let new: NewTool = parse_json(line.as_bytes())?;
    match registry.get_by_name(&new.name).await {
        Ok(existing) => {
            let patch = ToolPatch {
                name: None,
                description: Some(new.description),
                category: new.category,
                tags: Some(new.tags),
                input_schema: Some(new.input_schema),
                output_schema: Some(new.output_schema),
                version: new.version,
                implementation: Some(new.implementation),
                metadata: new.metadata,
                is_active: Some(new.is_active),
            };
            registry.update(existing.id, patch).await?;
            Ok(false)
        }
        Err(err) if err.code.is_not_found() => {
            registry.register(new).await?;
            Ok(true)
        }
        Err(err) => Err(err),
    }
}
