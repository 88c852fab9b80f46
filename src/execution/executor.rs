//! Runs a tool, dispatched by its kind: built-ins in-process, HTTP tools over the network
//! (behind the URL guard), upstream MCP tools through their server. Arguments are checked
//! against the tool's input schema first (`schemas`).

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::Value;

use super::{
    http_tool,
    schemas::CompiledSchemas,
    stdio::{StdioSettings, StdioUpstreams},
    upstream::Upstreams,
    url_guard::{GuardedResolver, UrlGuard, outbound_client},
};
use crate::{
    builtins::{BuiltinLimits, BuiltinTool, builtin_tools, output::json_size_up_to},
    domain::{Implementation, RegistryError, Tool, secrets::scrub},
};

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(Value),
    Error(String),
    Timeout(String),
    /// An upstream MCP tool answered (possibly with `isError`).
    Upstream(rmcp::model::CallToolResult),
}

impl Outcome {
    /// How the call ended, as traces name it (`success`, `error`, `timeout`), and whether
    /// that is a failure. An upstream's answer fails when it says `isError`.
    pub fn status(&self) -> (&'static str, bool) {
        match self {
            Outcome::Success(_) => ("success", false),
            Outcome::Error(_) => ("error", true),
            Outcome::Timeout(_) => ("timeout", true),
            Outcome::Upstream(answer) => match answer.is_error {
                Some(true) => ("error", true),
                _ => ("success", false),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// For HTTP tools without their own `timeout_ms`.
    pub default_timeout: Duration,
    /// Lets HTTP tools reach loopback and private addresses (tests, trusted networks).
    pub allow_private_urls: bool,
    /// `TOOL_PROXY_URL`: HTTP tools and upstream MCP servers are reached through it.
    pub proxy_url: Option<String>,
    /// Larger HTTP tool answers are an error.
    pub max_response_bytes: usize,
    pub builtin_limits: BuiltinLimits,
    /// Larger `arguments` (as JSON) are refused before validation.
    pub max_argument_bytes: usize,
    /// Upstream MCP servers started as child processes.
    pub stdio: StdioSettings,
}

/// The explicit egress proxy: an `http` or `https` URL with a host, refused at start-up
/// otherwise.
fn checked_proxy(url: &str) -> anyhow::Result<reqwest::Proxy> {
    let parsed = url::Url::parse(url)
        .map_err(|err| anyhow::anyhow!("TOOL_PROXY_URL is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        anyhow::bail!("TOOL_PROXY_URL must be an http or https URL with a host");
    }
    Ok(reqwest::Proxy::all(url)?)
}

const MAX_REDIRECTS: usize = 5;

/// Built-in calls with arguments up to this size (as JSON) run on the request's task: the
/// calculator's checked evaluation grows with the square of an expression's operators, so
/// the size keeps its worst case to tens of microseconds.
const INLINE_BUILTIN_BYTES: usize = 128;

pub struct Executor {
    builtins: HashMap<&'static str, Arc<dyn BuiltinTool>>,
    http: reqwest::Client,
    guard: UrlGuard,
    upstreams: Upstreams,
    stdio: StdioUpstreams,
    settings: ExecutorSettings,
    schemas: CompiledSchemas,
}

impl Executor {
    pub fn new(settings: ExecutorSettings) -> anyhow::Result<Self> {
        let guard = UrlGuard {
            allow_private: settings.allow_private_urls,
        };
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let mut http = outbound_client()
            .redirect(redirects)
            .dns_resolver(Arc::new(GuardedResolver(guard)))
            .user_agent(concat!("tool-registry/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &settings.proxy_url {
            http = http.proxy(checked_proxy(proxy)?);
        }
        let http = http.build()?;
        let builtins = builtin_tools(settings.builtin_limits)
            .into_iter()
            .map(|tool| (tool.name(), tool))
            .collect();
        Ok(Self {
            builtins,
            upstreams: Upstreams::new(http.clone(), guard),
            stdio: StdioUpstreams::new(settings.stdio.clone()),
            http,
            guard,
            settings,
            schemas: CompiledSchemas::default(),
        })
    }

    /// The built-in tools, in a stable order.
    pub fn builtins(&self) -> Vec<Arc<dyn BuiltinTool>> {
        let mut tools: Vec<_> = self.builtins.values().cloned().collect();
        tools.sort_by_key(|t| t.name());
        tools
    }

    pub fn has_builtin(&self, handler: &str) -> bool {
        self.builtins.contains_key(handler)
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    pub fn stdio(&self) -> &StdioUpstreams {
        &self.stdio
    }

    pub fn url_guard(&self) -> UrlGuard {
        self.guard
    }

    /// Checks `arguments` against the tool's input schema: a 422 naming the failing path.
    /// The work is bounded: a size cap first, then the cheap yes/no check, and the costly
    /// search for where they fail only for small arguments.
    pub fn validate_arguments(&self, tool: &Tool, arguments: &Value) -> Result<(), RegistryError> {
        self.schemas
            .validate(tool, arguments, self.settings.max_argument_bytes)
    }

    /// Runs the tool. Failures of the tool itself are an `Outcome`, not an `Err`. Messages
    /// about a failure never carry the implementation's secrets (URL credentials, secret
    /// query values, header values): they reach agents, execution records and logs.
    #[tracing::instrument(level = "debug", name = "tool.execute", skip_all, fields(
        gen_ai.tool.name = %tool.name,
        tool.kind = tool.implementation.kind()))]
    pub async fn run(&self, tool: &Tool, arguments: Value) -> Result<Outcome, RegistryError> {
        let clock = std::time::Instant::now();
        let outcome = match self.run_unscrubbed(tool, arguments).await? {
            Outcome::Error(message) => Outcome::Error(scrub(&message, &tool.implementation)),
            Outcome::Timeout(message) => Outcome::Timeout(scrub(&message, &tool.implementation)),
            other => other,
        };
        let (name, failed) = outcome.status();
        crate::telemetry::otel::executed(name, failed, clock.elapsed());
        Ok(outcome)
    }

    async fn run_unscrubbed(
        &self,
        tool: &Tool,
        arguments: Value,
    ) -> Result<Outcome, RegistryError> {
        match &tool.implementation {
            Implementation::Builtin { handler } => {
                let Some(builtin) = self.builtins.get(handler.as_str()).cloned() else {
                    return Ok(Outcome::Error(format!(
                        "unknown built-in handler '{handler}'"
                    )));
                };
                // Built-ins are CPU work bounded by their input: a small input runs here, as
                // a handoff to the blocking pool and back costs more than the work; a large
                // one runs off the async workers.
                let result = if json_size_up_to(&arguments, INLINE_BUILTIN_BYTES + 1)
                    <= INLINE_BUILTIN_BYTES
                {
                    // A panic is an error answer, as on the blocking pool, and logged.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        builtin.execute(&arguments)
                    }))
                    .map_err(|panic| {
                        let message = crate::telemetry::panic_message(panic.as_ref());
                        tracing::error!(%handler, %message, "built-in tool panicked");
                        RegistryError::internal(format!("built-in tool panicked: {message}"))
                    })?
                } else {
                    tokio::task::spawn_blocking(move || builtin.execute(&arguments))
                        .await
                        .map_err(|e| {
                            RegistryError::internal(format!("built-in tool panicked: {e}"))
                        })?
                };
                Ok(match result {
                    Ok(value) => Outcome::Success(value),
                    Err(err) => Outcome::Error(err.message),
                })
            }
            Implementation::Http {
                url,
                method,
                headers,
                timeout_ms,
            } => {
                let timeout = timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(self.settings.default_timeout);
                let call = http_tool::call(
                    &self.http,
                    self.guard,
                    url,
                    method,
                    headers,
                    arguments,
                    self.settings.max_response_bytes,
                );
                Ok(match tokio::time::timeout(timeout, call).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Timeout(format!(
                        "the tool did not answer within {} ms",
                        timeout.as_millis()
                    )),
                })
            }
            Implementation::Mcp {
                url,
                tool: upstream_tool,
                timeout_ms,
                stdio,
            } => {
                let timeout = timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(self.settings.default_timeout);
                let Value::Object(arguments) = arguments else {
                    return Ok(Outcome::Error("arguments must be a JSON object".into()));
                };
                let call = async {
                    match stdio {
                        Some(server) => self.stdio.call(server, upstream_tool, arguments).await,
                        None => self.upstreams.call(url, upstream_tool, arguments).await,
                    }
                };
                Ok(match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(answer)) => Outcome::Upstream(answer.result),
                    Ok(Err(message)) => Outcome::Error(message),
                    Err(_) => Outcome::Timeout(format!(
                        "the upstream MCP server did not answer within {} ms",
                        timeout.as_millis()
                    )),
                })
            }
        }
    }
}
