//! One stdio server's child process and the task that keeps it running.
//!
//! The supervisor task starts the child, does the MCP handshake, publishes the client for
//! calls, and waits for the child to exit (or to close its stdout, or for shutdown). An
//! exit is followed by a restart after the back-off; shutdown stops the child and reaps
//! it. The child leads its own process group, so the signals reach what it started too
//! (`npx` runs the server as its own child), and `kill_on_drop` covers a supervisor that
//! is dropped without stopping it.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    ClientCacheConfig, ClientLifecycleMode, ClientServiceExt, Peer, RoleClient,
    model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion},
    service::{QuitReason, RunningServiceCancellationToken},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{MAX_RESTART_BACKOFF, MINIMAL_PATH, StdioSettings, StdioUpstreamHealth, resolve};
use crate::domain::StdioServer;

/// The longest a child may take from its start to the end of the MCP handshake (an `npx`
/// that downloads its package first needs a while).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// A child that ran this long before it exited starts again after the first back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// How long a child whose connection ended gets to exit by itself before it is stopped.
const EXIT_AFTER_CLOSE: Duration = Duration::from_millis(500);
/// Longest line of the child's stderr put in the log; the rest of the line is dropped.
const MAX_LOG_LINE: usize = 2000;

#[derive(Clone)]
enum Phase {
    Starting,
    Running(Peer<RoleClient>),
    Restarting,
    Failed(String),
    Stopped,
}

#[derive(Clone)]
struct State {
    phase: Phase,
    pid: Option<u32>,
    restarts: u64,
    last_error: Option<String>,
}

pub(super) struct Supervised {
    server: StdioServer,
    settings: Arc<StdioSettings>,
    state: watch::Sender<State>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Supervised {
    /// The server with its supervisor started.
    pub(super) fn start(
        server: StdioServer,
        settings: Arc<StdioSettings>,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let (state, _) = watch::channel(State {
            phase: Phase::Starting,
            pid: None,
            restarts: 0,
            last_error: None,
        });
        let supervised = Arc::new(Self {
            server,
            settings,
            state,
            stop,
            task: Mutex::new(None),
        });
        let task = tokio::spawn(supervised.clone().supervise());
        *supervised.task.lock().expect("supervisor lock poisoned") = Some(task);
        supervised
    }

    /// The client of the running child, waiting while it starts or restarts (the caller's
    /// timeout bounds the wait). A failed start is reported at once.
    pub(super) async fn peer(&self) -> Result<Peer<RoleClient>, String> {
        let mut state = self.state.subscribe();
        loop {
            match &state.borrow_and_update().phase {
                Phase::Running(peer) if !peer.is_transport_closed() => return Ok(peer.clone()),
                // The child is gone and the supervisor has not noticed yet: wait for the
                // new one.
                Phase::Running(_) => {}
                Phase::Failed(error) => {
                    return Err(format!(
                        "the stdio upstream '{}' could not be started: {error}",
                        self.server.name
                    ));
                }
                Phase::Stopped => {
                    return Err(format!(
                        "the stdio upstream '{}' is stopped: the registry is shutting down",
                        self.server.name
                    ));
                }
                Phase::Starting | Phase::Restarting => {}
            }
            if state.changed().await.is_err() {
                return Err(format!("the stdio upstream '{}' is gone", self.server.name));
            }
        }
    }

    pub(super) fn health(&self) -> StdioUpstreamHealth {
        let state = self.state.borrow();
        StdioUpstreamHealth {
            name: self.server.name.clone(),
            command: self.server.command.clone(),
            state: match state.phase {
                Phase::Starting => "starting",
                Phase::Running(_) => "running",
                Phase::Restarting => "restarting",
                Phase::Failed(_) => "failed",
                Phase::Stopped => "stopped",
            },
            pid: state.pid,
            restarts: state.restarts,
            last_error: state.last_error.clone(),
        }
    }

    /// Stops the child and waits for the supervisor to have reaped it.
    pub(super) async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().expect("supervisor lock poisoned").take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::error!(upstream = %self.server.name, %err, "the stdio supervisor failed");
        }
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        self.state.send_modify(change);
    }

    async fn supervise(self: Arc<Self>) {
        let name = self.server.name.clone();
        let running_gauge = metrics::gauge!("stdio_upstream_running", "upstream" => name.clone());
        let mut failures: u32 = 0;
        let mut first = true;
        loop {
            if !first {
                metrics::counter!("stdio_upstream_restarts_total", "upstream" => name.clone())
                    .increment(1);
                self.set(|state| {
                    state.restarts += 1;
                    state.phase = Phase::Starting;
                });
            }
            first = false;
            let launched = tokio::select! {
                launched = launch(&self.server) => launched,
                () = self.stop.cancelled() => break,
            };
            let mut child = match launched {
                Ok(child) => child,
                Err(error) => {
                    tracing::warn!(upstream = %name, "a stdio upstream did not start: {error}");
                    failures += 1;
                    self.set(|state| {
                        state.phase = Phase::Failed(error.clone());
                        state.pid = None;
                        state.last_error = Some(error);
                    });
                    if !self.wait_before_restart(failures).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(upstream = %name, pid = child.pid, "stdio upstream running");
            running_gauge.set(1.0);
            self.set(|state| {
                state.phase = Phase::Running(child.peer.clone());
                state.pid = Some(child.pid);
            });
            let since = Instant::now();
            let ended = tokio::select! {
                status = child.process.wait() => Ended::Exited(status),
                _ = child.service_done.as_mut().expect("set while the child runs") => {
                    child.service_done = None;
                    Ended::Closed
                }
                () = self.stop.cancelled() => Ended::Stopping,
            };
            running_gauge.set(0.0);
            let error = match ended {
                Ended::Stopping => {
                    child.stop(self.settings.stop_grace).await;
                    tracing::info!(upstream = %name, pid = child.pid, "stdio upstream stopped");
                    break;
                }
                Ended::Exited(status) => {
                    let status = match status {
                        Ok(status) => describe(status),
                        Err(err) => format!("could not be waited for: {err}"),
                    };
                    child.finish().await;
                    format!("{status}{}", child.last_words())
                }
                Ended::Closed => {
                    // Its stdout ends first when it dies: say how it ended, if it did.
                    let exited = tokio::time::timeout(EXIT_AFTER_CLOSE, child.process.wait()).await;
                    let error = match exited {
                        Ok(Ok(status)) => {
                            child.finish().await;
                            describe(status)
                        }
                        _ => {
                            child.stop(self.settings.stop_grace).await;
                            "closed its connection".to_owned()
                        }
                    };
                    format!("{error}{}", child.last_words())
                }
            };
            tracing::warn!(upstream = %name, pid = child.pid, "stdio upstream {error}; restarting");
            if since.elapsed() >= HEALTHY_RUN {
                failures = 0;
            }
            failures += 1;
            self.set(|state| {
                state.phase = Phase::Restarting;
                state.pid = None;
                state.last_error = Some(error);
            });
            if !self.wait_before_restart(failures).await {
                break;
            }
        }
        running_gauge.set(0.0);
        self.set(|state| {
            state.phase = Phase::Stopped;
            state.pid = None;
        });
    }

    /// Waits out the back-off; `false` when the registry stops meanwhile.
    async fn wait_before_restart(&self, failures: u32) -> bool {
        let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        let delay = self
            .settings
            .restart_backoff
            .saturating_mul(doubling)
            .min(MAX_RESTART_BACKOFF);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

enum Ended {
    Exited(std::io::Result<ExitStatus>),
    Closed,
    Stopping,
}

fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("exited ({status})"),
    }
}

type ServiceDone = Pin<Box<dyn Future<Output = Result<QuitReason, tokio::task::JoinError>> + Send>>;

/// A started child with its MCP client.
struct Running {
    process: Child,
    pid: u32,
    peer: Peer<RoleClient>,
    cancel: Option<RunningServiceCancellationToken>,
    /// The client's task; `None` once it ended.
    service_done: Option<ServiceDone>,
    /// The stderr reader; `None` once it ended.
    stderr: Option<JoinHandle<()>>,
    last_stderr: Arc<Mutex<Option<String>>>,
}

impl Running {
    /// The child's last stderr line, to say why it stopped.
    fn last_words(&self) -> String {
        match self
            .last_stderr
            .lock()
            .expect("stderr tail lock poisoned")
            .as_deref()
        {
            Some(line) => format!("; its last stderr line: {line}"),
            None => String::new(),
        }
    }

    /// Closes stdin and sends SIGTERM to the process group; SIGKILL after `grace`; reaps.
    async fn stop(&mut self, grace: Duration) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
        }
        // The service's end closes the child's stdin, which ends most servers by itself.
        self.service_ended(grace).await;
        signal_group(self.pid, Signal::Terminate);
        if tokio::time::timeout(grace, self.process.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pid = self.pid,
                ?grace,
                "a stdio upstream ignored SIGTERM; killing it"
            );
            signal_group(self.pid, Signal::Kill);
            let _ = self.process.wait().await;
        }
        self.finish().await;
    }

    /// After the child exited: whatever is left of its process group is killed, the
    /// client's task ends, and the stderr reader drains.
    async fn finish(&mut self) {
        // The group's id is not reused while a member lives, so this reaches only what
        // the child started.
        signal_group(self.pid, Signal::Kill);
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel();
        }
        self.service_ended(Duration::from_secs(1)).await;
        if let Some(stderr) = self.stderr.as_mut()
            && tokio::time::timeout(Duration::from_secs(1), stderr)
                .await
                .is_ok()
        {
            self.stderr = None;
        }
    }

    async fn service_ended(&mut self, limit: Duration) {
        if let Some(done) = self.service_done.as_mut()
            && tokio::time::timeout(limit, done).await.is_ok()
        {
            self.service_done = None;
        }
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Terminate,
    Kill,
}

#[cfg(unix)]
fn signal_group(pid: u32, signal: Signal) {
    // 0 (and 1) would name the registry's own group (and init): never signalled.
    let Ok(group) = i32::try_from(pid) else {
        return;
    };
    if group <= 1 {
        return;
    }
    let signal = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group the
    // child leads (it was started with `process_group(0)`).
    unsafe {
        libc::kill(-group, signal);
    }
}

#[cfg(not(unix))]
fn signal_group(_pid: u32, _signal: Signal) {}

/// Starts the child and does the MCP handshake.
async fn launch(server: &StdioServer) -> Result<Running, String> {
    let program = resolve(&server.command)?;
    let mut process = spawn(server, &program)
        .map_err(|err| format!("cannot start '{}': {err}", server.command))?;
    let Some(pid) = process.id() else {
        return Err("the child exited before it could be used".into());
    };
    let (Some(stdin), Some(stdout), Some(stderr)) = (
        process.stdin.take(),
        process.stdout.take(),
        process.stderr.take(),
    ) else {
        return Err("the child's stdio could not be taken".into());
    };
    let last_stderr = Arc::new(Mutex::new(None));
    let stderr = tokio::spawn(log_stderr(stderr, server.clone(), pid, last_stderr.clone()));
    let handshake = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("tool-registry", env!("CARGO_PKG_VERSION")),
    )
    .serve_with_lifecycle(
        (stdout, stdin),
        ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    );
    let service = match tokio::time::timeout(START_TIMEOUT, handshake).await {
        Ok(Ok(service)) => service,
        failed => {
            let reason = match failed {
                Ok(Err(err)) => format!("the MCP handshake failed: {err}"),
                _ => format!("no MCP handshake within {START_TIMEOUT:?}"),
            };
            signal_group(pid, Signal::Kill);
            let _ = process.wait().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr).await;
            let last = last_stderr
                .lock()
                .expect("stderr tail lock poisoned")
                .take()
                .map(|line| format!("; its last stderr line: {line}"))
                .unwrap_or_default();
            return Err(server.scrub(&format!("{reason}{last}")));
        }
    };
    // Imports must see the server's current list, never a cached one.
    service
        .set_response_cache_config(ClientCacheConfig::disabled())
        .await;
    let peer = service.peer().clone();
    let cancel = service.cancellation_token();
    Ok(Running {
        process,
        pid,
        peer,
        cancel: Some(cancel),
        service_done: Some(Box::pin(service.waiting())),
        stderr: Some(stderr),
        last_stderr,
    })
}

/// The command with only the given environment (and `PATH`), no shell, in its own
/// process group, killed if dropped.
fn spawn(server: &StdioServer, program: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command
        .args(&server.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !server.env.contains_key("PATH") {
        command.env("PATH", MINIMAL_PATH);
    }
    command.envs(&server.env);
    if let Some(cwd) = &server.cwd {
        command.current_dir(cwd);
    }
    #[cfg(unix)]
    command.process_group(0);
    command.spawn()
}

/// Copies the child's stderr into the log, a line at a time, under the server's name,
/// with the environment's values cut out. The last line is kept to explain an exit.
async fn log_stderr(
    stderr: impl AsyncRead + Unpin,
    server: StdioServer,
    pid: u32,
    last: Arc<Mutex<Option<String>>>,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line without an end is read in pieces of at most this size.
        let mut piece = (&mut reader).take(4 * MAX_LOG_LINE as u64);
        let read = match piece.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let text = String::from_utf8_lossy(&line[..read]);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let mut text = server.scrub(text);
        if let Some((cut, _)) = text.char_indices().nth(MAX_LOG_LINE) {
            text.truncate(cut);
            text.push('…');
        }
        tracing::info!(upstream = %server.name, pid, "stderr: {text}");
        *last.lock().expect("stderr tail lock poisoned") = Some(text);
    }
}
