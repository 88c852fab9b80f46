//! Upstream MCP servers that speak stdio (`implementation.stdio`): the registry starts each
//! as a child process and speaks MCP to it over its stdin and stdout with rmcp's client.
//!
//! - One child per distinct server definition, shared by every call, started on first use
//!   or at start-up (`STDIO_START`), restarted with a doubling back-off when it exits
//!   (`child.rs` supervises it), stopped at shutdown: stdin closed and SIGTERM to its
//!   process group, SIGKILL after `STDIO_STOP_GRACE_MS`, then reaped.
//! - Only commands `STDIO_ALLOWED_COMMANDS` lists may start, matched exactly as written
//!   (a bare name or an absolute path); a bare name is looked up in the registry's own
//!   `PATH`, never the child's. No shell is involved.
//! - The child's environment is what its definition gives, plus `PATH` when that is not
//!   given: nothing of the registry's own (database URL, keys) reaches it.

mod child;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ServiceError,
    model::{CallToolRequestParams, JsonObject, Tool},
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use self::child::Supervised;
use super::upstream::UpstreamAnswer;
use crate::domain::StdioServer;

/// The child's `PATH` when its definition gives none: enough for `#!/usr/bin/env node`
/// scripts (such as `npx`) to find an interpreter installed by the system's packages.
pub const MINIMAL_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, Clone)]
pub struct StdioSettings {
    /// `STDIO_ALLOWED_COMMANDS`: empty disables stdio upstreams.
    pub allowed_commands: Vec<String>,
    /// `STDIO_STOP_GRACE_MS`: how long a child has to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// `STDIO_RESTART_BACKOFF_MS`: the first wait before a restart; it doubles with each
    /// failure in a row, up to [`MAX_RESTART_BACKOFF`].
    pub restart_backoff: Duration,
}

impl Default for StdioSettings {
    fn default() -> Self {
        Self {
            allowed_commands: Vec::new(),
            stop_grace: Duration::from_secs(5),
            restart_backoff: Duration::from_millis(500),
        }
    }
}

impl StdioSettings {
    /// Parses `STDIO_ALLOWED_COMMANDS` (comma-separated).
    pub fn allowed_from_list(list: &str) -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|command| !command.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The longest wait between restarts.
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);

/// One stdio upstream as `/health` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StdioUpstreamHealth {
    pub name: String,
    pub command: String,
    /// `starting`, `running`, `restarting` (it exited; waiting to start again), `failed`
    /// (the last start failed; retried after the back-off) or `stopped`.
    pub state: &'static str,
    pub pid: Option<u32>,
    /// Starts after the first.
    pub restarts: u64,
    /// Why it last exited or failed to start.
    pub last_error: Option<String>,
}

pub struct StdioUpstreams {
    settings: Arc<StdioSettings>,
    servers: Mutex<HashMap<StdioServer, Arc<Supervised>>>,
    stopping: CancellationToken,
}

impl StdioUpstreams {
    pub fn new(settings: StdioSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            servers: Mutex::default(),
            stopping: CancellationToken::new(),
        }
    }

    /// Whether `command` may be started: it must be written exactly as an entry of
    /// `STDIO_ALLOWED_COMMANDS`.
    pub fn check_command(&self, command: &str) -> Result<(), String> {
        if self.settings.allowed_commands.is_empty() {
            return Err(
                "stdio upstreams are disabled: STDIO_ALLOWED_COMMANDS lists no command".into(),
            );
        }
        if self
            .settings
            .allowed_commands
            .iter()
            .any(|allowed| allowed == command)
        {
            Ok(())
        } else {
            Err(format!(
                "'{command}' is not in STDIO_ALLOWED_COMMANDS ({}); commands match as written, \
                 a bare name or an absolute path",
                self.settings.allowed_commands.join(", ")
            ))
        }
    }

    /// Starts the server's child unless it runs already.
    pub fn start(&self, server: &StdioServer) -> Result<(), String> {
        self.supervised(server).map(|_| ())
    }

    fn supervised(&self, server: &StdioServer) -> Result<Arc<Supervised>, String> {
        self.check_command(&server.command)?;
        let mut servers = self.servers.lock().expect("stdio servers lock poisoned");
        if self.stopping.is_cancelled() {
            return Err("the registry is shutting down".into());
        }
        if let Some(running) = servers.get(server) {
            return Ok(running.clone());
        }
        let supervised = Supervised::start(
            server.clone(),
            self.settings.clone(),
            self.stopping.child_token(),
        );
        servers.insert(server.clone(), supervised.clone());
        Ok(supervised)
    }

    /// Stops the children of servers named like `current` whose definition differs: an
    /// import that moved its tools to a new definition leaves nothing that uses them.
    pub async fn retire_others(&self, current: &StdioServer) {
        let retired: Vec<Arc<Supervised>> = {
            let mut servers = self.servers.lock().expect("stdio servers lock poisoned");
            let stale: Vec<StdioServer> = servers
                .keys()
                .filter(|server| server.name == current.name && *server != current)
                .cloned()
                .collect();
            stale
                .iter()
                .filter_map(|server| servers.remove(server))
                .collect()
        };
        for server in retired {
            server.stop().await;
        }
    }

    /// Every tool the server lists (all pages), starting it if needed.
    pub async fn list_tools(
        &self,
        server: &StdioServer,
        timeout: Duration,
    ) -> Result<Vec<Tool>, String> {
        let attempt = async {
            let peer = self.supervised(server)?.peer().await?;
            peer.list_all_tools()
                .await
                .map_err(|err| format!("the stdio upstream did not list its tools: {err}"))
        };
        let listed = tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the stdio upstream '{}' did not answer within {timeout:?}",
                    server.name
                ))
            });
        listed.map_err(|message| server.scrub(&message))
    }

    /// Calls `tool` on the server. `Err` carries a message for a failed call (not
    /// allowed, not started, exited during the call), with the environment's values cut
    /// out; a result with `isError` is an `Ok`. A call the child died in is not repeated:
    /// it may have had effects. The next call waits for the restarted child.
    pub async fn call(
        &self,
        server: &StdioServer,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<UpstreamAnswer, String> {
        let attempt = async {
            let peer = self.supervised(server)?.peer().await?;
            let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
            match peer.call_tool(params).await {
                Ok(result) => Ok(UpstreamAnswer { result }),
                Err(err)
                    if matches!(err, ServiceError::TransportClosed)
                        || peer.is_transport_closed() =>
                {
                    Err(format!(
                        "the stdio upstream '{}' exited during the call ({err}); it is restarted \
                     for the next one",
                        server.name
                    ))
                }
                Err(err) => Err(format!("the upstream call failed: {err}")),
            }
        };
        attempt.await.map_err(|message| server.scrub(&message))
    }

    /// Each server's state, by name.
    pub fn health(&self) -> Vec<StdioUpstreamHealth> {
        let mut all: Vec<StdioUpstreamHealth> = self
            .servers
            .lock()
            .expect("stdio servers lock poisoned")
            .values()
            .map(|server| server.health())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.command.cmp(&b.command)));
        all
    }

    /// Stops every child (SIGTERM, SIGKILL after the grace period) and waits until each
    /// is reaped. Nothing starts afterwards.
    pub async fn shutdown(&self) {
        let servers: Vec<Arc<Supervised>> = {
            let servers = self.servers.lock().expect("stdio servers lock poisoned");
            self.stopping.cancel();
            servers.values().cloned().collect()
        };
        futures_util::future::join_all(servers.iter().map(|server| server.stop())).await;
    }
}

/// Where a command runs from: an absolute path as it is, a bare name found in the
/// registry's own `PATH` (or [`MINIMAL_PATH`] without one).
fn resolve(command: &str) -> Result<PathBuf, String> {
    if command.starts_with('/') {
        return Ok(PathBuf::from(command));
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| MINIMAL_PATH.into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("'{command}' is not found in the registry's PATH"))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams(list: &str) -> StdioUpstreams {
        StdioUpstreams::new(StdioSettings {
            allowed_commands: StdioSettings::allowed_from_list(list),
            ..StdioSettings::default()
        })
    }

    #[test]
    fn commands_must_be_listed_exactly_as_written() {
        let disabled = upstreams("");
        assert!(
            disabled
                .check_command("node")
                .unwrap_err()
                .contains("disabled")
        );
        let allowed = upstreams(" node , /usr/bin/python3,");
        assert!(allowed.check_command("node").is_ok());
        assert!(allowed.check_command("/usr/bin/python3").is_ok());
        // Another program of the same basename, or the listed one by another spelling.
        assert!(allowed.check_command("/tmp/node").is_err());
        assert!(allowed.check_command("python3").is_err());
        assert!(allowed.check_command("/usr/bin/../bin/python3").is_err());
    }

    #[tokio::test]
    async fn a_server_that_cannot_start_fails_calls_at_once_and_is_retried() {
        let upstreams = StdioUpstreams::new(StdioSettings {
            allowed_commands: vec!["sh".into()],
            restart_backoff: Duration::from_millis(20),
            ..StdioSettings::default()
        });
        let server = StdioServer {
            name: "broken".into(),
            command: "sh".into(),
            args: vec![
                "-c".into(),
                "echo no such module: $TOKEN >&2; exit 3".into(),
            ],
            env: [("TOKEN".to_owned(), "s3cret-value".to_owned())].into(),
            cwd: None,
        };
        let err = upstreams
            .call(&server, "anything", JsonObject::new())
            .await
            .err()
            .expect("a server that exits at once cannot answer");
        assert!(err.contains("could not be started"), "{err}");
        assert!(err.contains("no such module: REDACTED"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let mut restarted = false;
        for _ in 0..100 {
            let health = &upstreams.health()[0];
            assert_eq!(health.name, "broken");
            if health.restarts >= 2 {
                restarted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(restarted, "{:?}", upstreams.health());
        upstreams.shutdown().await;
        assert_eq!(upstreams.health()[0].state, "stopped");
        let refused = upstreams.call(&server, "anything", JsonObject::new()).await;
        assert!(refused.err().unwrap().contains("shutting down"));
    }

    #[test]
    fn bare_names_are_found_in_the_registry_path() {
        let sh = resolve("sh").unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        assert!(resolve("surely-no-such-command-here").is_err());
        assert_eq!(resolve("/bin/sh").unwrap(), PathBuf::from("/bin/sh"));
    }
}
