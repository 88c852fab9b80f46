//! Upstream MCP servers that speak stdio, as a tool's implementation names them: the
//! command the registry starts, its arguments, its environment and its working directory.
//!
//! The environment's values are secrets, treated as HTTP headers are (see `secrets`):
//! read back as [`REDACTED`], kept when an update sends the placeholder back for the same
//! command, and cut out of every message about a call. Arguments are shown: secrets go in
//! the environment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    RegistryError,
    secrets::{REDACTED, query_name_is_secret},
};

const MAX_NAME_CHARS: usize = 64;
const MAX_COMMAND_BYTES: usize = 4096;
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 16 * 1024;
const MAX_ENV: usize = 128;
/// Environment values shorter than this, under names that do not look secret, stay in
/// messages (`LOG_LEVEL=2` would otherwise cut every `2` out of them).
const MIN_SCRUBBED_VALUE_LEN: usize = 6;

/// A server the registry starts as a child process and speaks MCP to over its stdin and
/// stdout. One child runs per distinct definition, shared by every call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "everything",
    "command": "npx",
    "args": ["-y", "@modelcontextprotocol/server-everything"],
    "env": {"HOME": "/home/registry"}
}))]
pub struct StdioServer {
    /// Names the server in the log, `/health` and `/metrics`. An import takes its prefix
    /// when this is empty.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// A bare name or an absolute path, exactly as listed in `STDIO_ALLOWED_COMMANDS`. It
    /// is started directly, never through a shell.
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The child's whole environment (with `PATH=/usr/local/bin:/usr/bin:/bin` unless given).
    /// Values are write-only: reads show `REDACTED`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// An absolute path; by default the registry's own working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

impl StdioServer {
    /// Checks the definition's form; `field` is where it sits in the request
    /// (`implementation.stdio`, `stdio`). Whether the command may run is the executor's
    /// question (`STDIO_ALLOWED_COMMANDS`).
    pub fn validate(&self, field: &str) -> Result<(), RegistryError> {
        let name_fits = !self.name.is_empty()
            && self.name.chars().count() <= MAX_NAME_CHARS
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !name_fits {
            return Err(RegistryError::invalid(
                format!("{field}.name"),
                format!("name must be 1 to {MAX_NAME_CHARS} letters, digits, '_', '.' or '-'"),
            ));
        }
        check_command_form(&self.command).map_err(|message| {
            RegistryError::invalid(format!("{field}.command"), message.to_owned())
        })?;
        if self.args.len() > MAX_ARGS {
            return Err(RegistryError::invalid(
                format!("{field}.args"),
                format!("at most {MAX_ARGS} arguments"),
            ));
        }
        for (at, arg) in self.args.iter().enumerate() {
            if arg.len() > MAX_ARG_BYTES || arg.contains('\0') {
                return Err(RegistryError::invalid(
                    format!("{field}.args[{at}]"),
                    format!("an argument holds at most {MAX_ARG_BYTES} bytes and no NUL"),
                ));
            }
        }
        if self.env.len() > MAX_ENV {
            return Err(RegistryError::invalid(
                format!("{field}.env"),
                format!("at most {MAX_ENV} variables"),
            ));
        }
        for (name, value) in &self.env {
            let name_fits = !name.is_empty()
                && name.len() <= 256
                && !name.contains(['=', '\0'])
                && value.len() <= MAX_ARG_BYTES
                && !value.contains('\0');
            if !name_fits {
                return Err(RegistryError::invalid(
                    format!("{field}.env.{name}"),
                    format!(
                        "a variable needs a name without '=' or NUL and a value of at most \
                         {MAX_ARG_BYTES} bytes without NUL"
                    ),
                ));
            }
        }
        if let Some(cwd) = &self.cwd
            && (!cwd.starts_with('/') || cwd.contains('\0'))
        {
            return Err(RegistryError::invalid(
                format!("{field}.cwd"),
                "cwd must be an absolute path",
            ));
        }
        Ok(())
    }

    /// The definition as operators read it: every environment value replaced.
    pub fn redacted(&self) -> StdioServer {
        StdioServer {
            env: self
                .env
                .keys()
                .map(|name| (name.clone(), REDACTED.to_owned()))
                .collect(),
            ..self.clone()
        }
    }

    pub fn has_placeholder(&self) -> bool {
        self.env.values().any(|value| value == REDACTED)
    }

    /// Replaces each placeholder with the stored value of the same variable. The stored
    /// values are only handed on while the command stays the same: a secret never reaches
    /// another program without the operator writing it again.
    pub fn restore(
        &mut self,
        stored: Option<&StdioServer>,
        field: &str,
    ) -> Result<(), RegistryError> {
        if !self.has_placeholder() {
            return Ok(());
        }
        let Some(stored) = stored.filter(|stored| stored.command == self.command) else {
            return Err(RegistryError::invalid(
                format!("{field}.env"),
                format!(
                    "'{REDACTED}' keeps a stored value only while the command stays the same; \
                     send the values themselves"
                ),
            ));
        };
        for (name, value) in self.env.iter_mut().filter(|(_, v)| *v == REDACTED) {
            let kept = stored.env.get(name).ok_or_else(|| {
                RegistryError::invalid(
                    format!("{field}.env.{name}"),
                    format!("'{REDACTED}' stands for a stored value, and there is none"),
                )
            })?;
            value.clone_from(kept);
        }
        Ok(())
    }

    /// The environment's values as messages may carry them, for `secrets::scrub`.
    pub fn secret_texts(&self) -> impl Iterator<Item = &str> {
        self.env
            .iter()
            .filter(|(name, value)| {
                query_name_is_secret(name) || value.len() >= MIN_SCRUBBED_VALUE_LEN
            })
            .map(|(_, value)| value.as_str())
    }

    /// `message` with the environment's values cut out.
    pub fn scrub(&self, message: &str) -> String {
        let mut secrets: Vec<&str> = self
            .secret_texts()
            .filter(|secret| !secret.is_empty() && *secret != REDACTED)
            .collect();
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        let mut scrubbed = message.to_owned();
        for secret in secrets {
            scrubbed = scrubbed.replace(secret, REDACTED);
        }
        scrubbed
    }
}

/// A command is a bare name (looked up in the registry's own `PATH`) or an absolute path;
/// a relative path would depend on the working directory.
fn check_command_form(command: &str) -> Result<(), &'static str> {
    if command.trim().is_empty() || command.len() > MAX_COMMAND_BYTES || command.contains('\0') {
        return Err("command must name a program");
    }
    if command.contains('/') && !command.starts_with('/') {
        return Err("command must be a bare name or an absolute path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> StdioServer {
        StdioServer {
            name: "fs".into(),
            command: "npx".into(),
            args: vec!["-y".into(), "server".into()],
            env: [
                ("API_TOKEN".to_owned(), "t0ken".to_owned()),
                ("LOG_LEVEL".to_owned(), "2".to_owned()),
                ("HOME".to_owned(), "/home/registry".to_owned()),
            ]
            .into(),
            cwd: None,
        }
    }

    #[test]
    fn definitions_are_checked_field_by_field() {
        assert!(server().validate("stdio").is_ok());
        let field = |server: StdioServer| match server.validate("stdio") {
            Err(RegistryError {
                field: Some(field), ..
            }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(StdioServer {
                command: "./run.sh".into(),
                ..server()
            }),
            "stdio.command"
        );
        assert_eq!(
            field(StdioServer {
                name: "a b".into(),
                ..server()
            }),
            "stdio.name"
        );
        assert_eq!(
            field(StdioServer {
                cwd: Some("tmp".into()),
                ..server()
            }),
            "stdio.cwd"
        );
        let mut bad_env = server();
        bad_env.env.insert("A=B".into(), "x".into());
        assert_eq!(field(bad_env), "stdio.env.A=B");
        let mut nul_arg = server();
        nul_arg.args.push("a\0b".into());
        assert_eq!(field(nul_arg), "stdio.args[2]");
    }

    #[test]
    fn values_are_write_only_and_kept_for_the_same_command_only() {
        let stored = server();
        let shown = stored.redacted();
        assert!(shown.env.values().all(|v| v == REDACTED));
        assert_eq!(shown.args, stored.args);

        let mut back = shown.clone();
        back.restore(Some(&stored), "implementation.stdio").unwrap();
        assert_eq!(back, stored);

        let mut moved = StdioServer {
            command: "/tmp/other".into(),
            ..shown.clone()
        };
        assert!(moved.restore(Some(&stored), "stdio").is_err());
        let mut unknown = shown;
        unknown.env.insert("NEW".into(), REDACTED.into());
        match unknown.restore(Some(&stored), "stdio") {
            Err(RegistryError {
                field: Some(field), ..
            }) => assert_eq!(field, "stdio.env.NEW"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_lose_secret_values_but_keep_short_settings() {
        let scrubbed = server().scrub("token t0ken at /home/registry, level 2");
        assert_eq!(scrubbed, "token REDACTED at REDACTED, level 2");
    }
}
