//! Runs a tool: built-ins in-process, HTTP tools over the network (behind the URL guard).
//! Argument validation against the tool's input schema happens here too, with compiled
//! schemas cached per tool version.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::Instrument;
use uuid::Uuid;

use super::{
    BuiltinLimits, BuiltinTool, builtin_tools,
    stdio::{StdioSettings, StdioUpstreams},
    upstream::Upstreams,
    url_guard::{GuardedResolver, UrlGuard, outbound_client},
};
use crate::{
    domain::{Implementation, Tool, secrets::scrub},
    error::ApiError,
};

/// The length of `value` as compact JSON, counted up to `limit` (then `limit` is returned).
fn json_size_up_to(value: &Value, limit: usize) -> usize {
    struct Counter {
        written: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len();
            if self.written >= self.limit {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { written: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.written,
        Err(_) => limit,
    }
}

/// `message` cut to `MAX_REPORT_CHARS` characters, saying so.
fn shortened(message: String) -> String {
    match message.char_indices().nth(MAX_REPORT_CHARS) {
        Some((cut, _)) => format!("{}… (shortened)", &message[..cut]),
        None => message,
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(Value),
    Error(String),
    Timeout(String),
    /// An upstream MCP tool answered (possibly with `isError`).
    Upstream(rmcp::model::CallToolResult),
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

/// Invalid arguments up to this size are validated again to say where they fail; larger
/// ones are only told that they fail. Finding every failing branch of `anyOf`/`oneOf`
/// schemas costs memory in proportion to the instance, many times over.
const DETAILED_REPORT_BYTES: usize = 16 * 1024;
/// Longest error message about arguments (messages quote the failing value).
const MAX_REPORT_CHARS: usize = 500;

const MAX_REDIRECTS: usize = 5;

type CompiledSchema = (DateTime<Utc>, Arc<jsonschema::Validator>);

pub struct Executor {
    builtins: HashMap<&'static str, Arc<dyn BuiltinTool>>,
    http: reqwest::Client,
    guard: UrlGuard,
    upstreams: Upstreams,
    stdio: StdioUpstreams,
    settings: ExecutorSettings,
    /// Compiled input schemas keyed by tool id, valid while `updated_at` matches.
    validators: RwLock<HashMap<Uuid, CompiledSchema>>,
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
            validators: RwLock::default(),
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
    pub fn validate_arguments(&self, tool: &Tool, arguments: &Value) -> Result<(), ApiError> {
        let max = self.settings.max_argument_bytes;
        let size = json_size_up_to(arguments, max + 1);
        if size > max {
            return Err(ApiError::validation(
                "arguments",
                format!("arguments are larger than {max} bytes (TOOL_MAX_ARGUMENT_BYTES)"),
            ));
        }
        let validator = self.validator_for(tool)?;
        if validator.is_valid(arguments) {
            return Ok(());
        }
        if size > DETAILED_REPORT_BYTES {
            return Err(ApiError::validation(
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
        Err(ApiError::validation(
            field,
            shortened(format!(
                "arguments do not match the tool's input_schema: {err}"
            )),
        ))
    }

    fn validator_for(&self, tool: &Tool) -> Result<Arc<jsonschema::Validator>, ApiError> {
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
                ApiError::Internal(format!(
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

    /// Runs the tool. Failures of the tool itself are an `Outcome`, not an `Err`. Messages
    /// about a failure never carry the implementation's secrets (URL credentials, secret
    /// query values, header values): they reach agents, execution records and logs.
    #[tracing::instrument(level = "debug", name = "tool.execute", skip_all, fields(
        gen_ai.tool.name = %tool.name,
        tool.kind = crate::telemetry::otel::tool_kind(&tool.implementation)))]
    pub async fn run(&self, tool: &Tool, arguments: Value) -> Result<Outcome, ApiError> {
        let clock = std::time::Instant::now();
        let outcome = match self.run_unscrubbed(tool, arguments).await? {
            Outcome::Error(message) => Outcome::Error(scrub(&message, &tool.implementation)),
            Outcome::Timeout(message) => Outcome::Timeout(scrub(&message, &tool.implementation)),
            other => other,
        };
        crate::telemetry::otel::executed(&outcome, clock.elapsed());
        Ok(outcome)
    }

    async fn run_unscrubbed(&self, tool: &Tool, arguments: Value) -> Result<Outcome, ApiError> {
        match &tool.implementation {
            Implementation::Builtin { handler } => {
                let Some(builtin) = self.builtins.get(handler.as_str()).cloned() else {
                    return Ok(Outcome::Error(format!(
                        "unknown built-in handler '{handler}'"
                    )));
                };
                // Built-ins are CPU work bounded by their input limits; keep them off the
                // async workers all the same.
                let result = tokio::task::spawn_blocking(move || builtin.execute(&arguments))
                    .await
                    .map_err(|e| ApiError::Internal(format!("built-in tool panicked: {e}")))?;
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
                let call = self.call_http(url, method, headers, arguments);
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

    async fn call_http(
        &self,
        url: &str,
        method: &str,
        headers: &std::collections::BTreeMap<String, String>,
        arguments: Value,
    ) -> Outcome {
        let mut url = match reqwest::Url::parse(url) {
            Ok(url) => url,
            Err(err) => return Outcome::Error(format!("invalid tool URL: {err}")),
        };
        if let Err(refused) = self.guard.check_url(&url) {
            return Outcome::Error(refused);
        }
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let sends_query = matches!(method, reqwest::Method::GET | reqwest::Method::DELETE);
        if sends_query {
            url.query_pairs_mut().extend_pairs(query_pairs(&arguments));
        }
        let span = crate::telemetry::otel::http_client_span(&method, &url);
        let mut request = self
            .http
            .request(method, url)
            .headers(crate::telemetry::otel::outgoing_headers_of(&span));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if !sends_query {
            request = request.json(&arguments);
        }
        let response = match request.send().instrument(span.clone()).await {
            Ok(response) => response,
            Err(err) => {
                crate::telemetry::otel::set_error(&span, "request failed");
                return Outcome::Error(describe_request_error(err));
            }
        };
        let status = response.status();
        crate::telemetry::otel::responded(&span, status);
        let body = match read_capped(response, self.settings.max_response_bytes).await {
            Ok(body) => body,
            Err(message) => return Outcome::Error(message),
        };
        if !status.is_success() {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Outcome::Error(format!("the tool answered HTTP {status}: {snippet}"));
        }
        match serde_json::from_slice(&body) {
            Ok(value) => Outcome::Success(value),
            Err(err) => Outcome::Error(format!("the tool's answer is not JSON: {err}")),
        }
    }
}

/// Top-level arguments as query parameters; non-string values are written as JSON.
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    arguments
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The full error chain (reqwest's top-level message hides the refusal reason), naming
/// only the host: a tool's path and query may carry its credentials (`/bot<token>/`,
/// `appid=`), which no list of secret names catches.
fn describe_request_error(err: reqwest::Error) -> String {
    let host = err.url().and_then(|url| {
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        })
    });
    let err = err.without_url();
    let mut message = match host {
        Some(host) => format!("the tool at {host} could not be reached: {err}"),
        None => format!("the tool could not be reached: {err}"),
    };
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len as usize > limit)
    {
        return Err(format!("the tool's answer is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("the tool's answer is larger than {limit} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) => return Err(describe_request_error(err)),
        }
    }
}
