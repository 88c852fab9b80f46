//! Arguments checked against a tool's input schema, with the compiled schemas cached per
//! tool version, and the work bounded whatever the arguments.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    builtins::output::json_size_up_to,
    domain::{RegistryError, Tool},
};

/// Invalid arguments up to this size are validated again to say where they fail; larger
/// ones are only told that they fail. Finding every failing branch of `anyOf`/`oneOf`
/// schemas costs memory in proportion to the instance, many times over.
const DETAILED_REPORT_BYTES: usize = 16 * 1024;
/// Longest error message about arguments (messages quote the failing value).
const MAX_REPORT_CHARS: usize = 500;

type CompiledSchema = (DateTime<Utc>, Arc<jsonschema::Validator>);

/// Compiled input schemas keyed by tool id, valid while `updated_at` matches.
#[derive(Default)]
pub struct CompiledSchemas {
    validators: RwLock<HashMap<Uuid, CompiledSchema>>,
}

impl CompiledSchemas {
    /// Checks `arguments` against the tool's input schema: a 422 naming the failing path.
    /// The work is bounded: a size cap first, then the cheap yes/no check, and the costly
    /// search for where they fail only for small arguments.
    pub fn validate(
        &self,
        tool: &Tool,
        arguments: &Value,
        max: usize,
    ) -> Result<(), RegistryError> {
        let size = json_size_up_to(arguments, max + 1);
        if size > max {
            return Err(RegistryError::invalid(
                "arguments",
                format!("arguments are larger than {max} bytes (TOOL_MAX_ARGUMENT_BYTES)"),
            ));
        }
        let validator = self.validator_for(tool)?;
        if validator.is_valid(arguments) {
            return Ok(());
        }
        if size > DETAILED_REPORT_BYTES {
            return Err(RegistryError::invalid(
                "arguments",
                format!(
                    "arguments do not match the tool's input_schema (arguments over \
                     {DETAILED_REPORT_BYTES} bytes are not searched for the failing part)"
                ),
            ));
        }
        let Err(err) = validator.validate(arguments) else {
            return Ok(());
        };
        let pointer = err.instance_path().to_string();
        let field = pointer.split('/').filter(|s| !s.is_empty()).fold(
            String::from("arguments"),
            |mut path, segment| {
                path.push('.');
                path.push_str(segment);
                path
            },
        );
        Err(RegistryError::invalid(
            field,
            shortened(format!(
                "arguments do not match the tool's input_schema: {err}"
            )),
        ))
    }

    fn validator_for(&self, tool: &Tool) -> Result<Arc<jsonschema::Validator>, RegistryError> {
        if let Some((version, validator)) = self
            .validators
            .read()
            .expect("validator cache lock poisoned")
            .get(&tool.id)
            && *version == tool.updated_at
        {
            return Ok(validator.clone());
        }
        let validator = jsonschema::validator_for(&tool.input_schema)
            .map(Arc::new)
            .map_err(|e| {
                RegistryError::internal(format!(
                    "stored schema of {} does not compile: {e}",
                    tool.name
                ))
            })?;
        self.validators
            .write()
            .expect("validator cache lock poisoned")
            .insert(tool.id, (tool.updated_at, validator.clone()));
        Ok(validator)
    }
}

/// `message` cut to `MAX_REPORT_CHARS` characters, saying so.
fn shortened(message: String) -> String {
    match message.char_indices().nth(MAX_REPORT_CHARS) {
        Some((cut, _)) => format!("{}… (shortened)", &message[..cut]),
        None => message,
    }
}
