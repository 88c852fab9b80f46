//! Registers every tool of a `tools.jsonl` (one tool of a real MCP server per line) in a
//! running registry, over the admin REST API, as a searchable catalogue.
//!
//! ```sh
//! cargo run --example register_tools -- [--base-url URL] [--api-key KEY] [--concurrency N] [FILE]
//! ```
//!
//! `FILE` defaults to `../shared/data/mcp_servers/tools.jsonl` next to the repository. Each
//! line (`name`, `description`, `input_schema`, `tags`, `server`, `qualified_name`, `source`,
//! optional `title`, `annotations`, `outputSchema`) becomes a definition named
//! `<server>.<tool>`, in category `<server>`, with a placeholder HTTP implementation
//! (`https://<server>.example/tools/<tool>`): the entries are there to be found, not called.
//!
//! Each definition is sent with `POST /admin/tools`; a 409 (the name is taken) looks the tool
//! up with `GET /admin/tools?category=…` and updates it with `PUT /admin/tools/{id}`, so
//! reruns are idempotent. 429 and 503 answers are retried. A progress bar is drawn on
//! standard error; the summary gives created, updated and failed tools (with reasons), the
//! elapsed time and the rate. The exit status is 1 when any tool failed, 2 when the file
//! cannot be read, the server does not answer or it refuses the credentials (401/403).
//!
//! The base URL and the admin key may also come from `BASE_URL` and `ADMIN_API_KEY`.

use std::{
    collections::HashMap,
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

const MAX_NAME_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 8_000;
const MAX_TAGS: usize = 32;
const MAX_TAG_CHARS: usize = 64;
const MAX_VERSION_CHARS: usize = 64;
const PAGE_LIMIT: usize = 500;
const ATTEMPTS: u32 = 4;

#[derive(Parser, Debug)]
#[command(about = "Register the tools of a tools.jsonl in a running tool registry")]
struct Args {
    /// The registry's base URL.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Admin key, sent as `Authorization: Bearer` (needed when the server sets ADMIN_API_KEYS).
    #[arg(long, env = "ADMIN_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// The tools.jsonl to register.
    file: Option<PathBuf>,
}

/// What happened to one line of the file.
enum Outcome {
    Created,
    Updated,
    Failed(String),
    /// 401 or 403: every other registration would fail the same way.
    Refused(String),
}

/// A line turned into a definition, or the reason it could not be.
struct Entry {
    line: usize,
    name: String,
    definition: Result<Value, String>,
}

struct Registrar {
    client: Client,
    base: String,
    api_key: Option<String>,
    /// name → id of the tools already listed, by category (filled on the first 409 of each).
    known: Mutex<HashMap<String, HashMap<String, String>>>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(err) = run(args).await {
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let file = args.file.clone().unwrap_or_else(|| {
        let default = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/mcp_servers/tools.jsonl");
        default.canonicalize().unwrap_or(default)
    });
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let entries: Vec<Entry> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| entry(i + 1, l))
        .collect();
    if entries.is_empty() {
        bail!("{} holds no tools", file.display());
    }

    let registrar = Arc::new(Registrar {
        client: Client::builder()
            .timeout(Duration::from_secs(args.timeout_secs))
            .build()?,
        base: args.base_url.trim_end_matches('/').to_owned(),
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        known: Mutex::new(HashMap::new()),
    });
    registrar.ready().await?;
    eprintln!(
        "registering {} tools from {} at {} ({} at once)",
        entries.len(),
        file.display(),
        registrar.base,
        args.concurrency
    );

    let total = entries.len();
    let started = Instant::now();
    let mut bar = Progress::new(total);
    let (mut created, mut updated) = (0usize, 0usize);
    let mut failures: Vec<(usize, String, String)> = Vec::new();

    let mut results = stream::iter(entries)
        .map(|entry| {
            let registrar = Arc::clone(&registrar);
            async move {
                let outcome = match &entry.definition {
                    Ok(definition) => registrar.register(&entry.name, definition).await,
                    Err(reason) => Outcome::Failed(reason.clone()),
                };
                (entry.line, entry.name, outcome)
            }
        })
        .buffer_unordered(usize::from(args.concurrency));
    while let Some((line, name, outcome)) = results.next().await {
        match outcome {
            Outcome::Created => created += 1,
            Outcome::Updated => updated += 1,
            Outcome::Failed(reason) => failures.push((line, name, reason)),
            Outcome::Refused(reason) => {
                bar.finish(
                    created + updated + failures.len() + 1,
                    created,
                    updated,
                    failures.len() + 1,
                );
                bail!("{reason} (pass an admin key with --api-key or ADMIN_API_KEY)");
            }
        }
        bar.draw(
            created + updated + failures.len(),
            created,
            updated,
            failures.len(),
        );
    }
    bar.finish(
        created + updated + failures.len(),
        created,
        updated,
        failures.len(),
    );

    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "created {created}, updated {updated}, failed {} of {total} tools in {elapsed:.2} s ({:.1} tools/s)",
        failures.len(),
        total as f64 / elapsed.max(f64::EPSILON),
    );
    if !failures.is_empty() {
        failures.sort();
        println!("failed:");
        for (line, name, reason) in &failures {
            println!("  line {line}: {name}: {reason}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// Parses one line and maps it to a tool definition.
fn entry(line: usize, text: &str) -> Entry {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => {
            let name = tool_name(&value);
            let definition = definition(&value, &name);
            Entry {
                line,
                name,
                definition,
            }
        }
        Err(err) => Entry {
            line,
            name: "?".into(),
            definition: Err(format!("not JSON: {err}")),
        },
    }
}

/// Keeps `[A-Za-z0-9_.-]`, turns anything else into `_`.
fn sanitise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<server>.<tool>`, sanitised to `^[A-Za-z0-9_.-]{1,128}$`.
fn tool_name(line: &Value) -> String {
    let tool = line["name"].as_str().unwrap_or_default();
    let raw = match line["server"].as_str().filter(|s| !s.is_empty()) {
        Some(server) => format!("{}.{}", sanitise(server), sanitise(tool)),
        None => sanitise(tool),
    };
    raw.chars().take(MAX_NAME_CHARS).collect()
}

/// A DNS label for the placeholder URL: lowercase letters, digits and inner hyphens.
fn host_label(text: &str) -> String {
    let label: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "tools".into()
    } else {
        label.into()
    }
}

fn definition(line: &Value, name: &str) -> Result<Value, String> {
    let tool = line["name"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("no \"name\"")?;
    let server = line["server"].as_str().filter(|s| !s.trim().is_empty());
    let category = server.unwrap_or("general");
    if name.is_empty() {
        return Err("the name is empty once sanitised".into());
    }
    let description = line["description"]
        .as_str()
        .filter(|d| !d.trim().is_empty())
        .or(line["title"].as_str().filter(|t| !t.trim().is_empty()))
        .unwrap_or(name);
    let mut tags: Vec<String> = Vec::new();
    let given = line["tags"].as_array().into_iter().flatten();
    for tag in given.filter_map(Value::as_str).chain(server) {
        let tag: String = tag.trim().chars().take(MAX_TAG_CHARS).collect();
        if !tag.is_empty() && !tags.contains(&tag) && tags.len() < MAX_TAGS {
            tags.push(tag);
        }
    }
    let mut definition = json!({
        "name": name,
        "description": description.chars().take(MAX_DESCRIPTION_CHARS).collect::<String>(),
        "category": category,
        "tags": tags,
        "input_schema": match &line["input_schema"] {
            Value::Object(_) => line["input_schema"].clone(),
            _ => json!({"type": "object"}),
        },
        "implementation": {
            "kind": "http",
            "url": format!(
                "https://{}.example/tools/{}",
                host_label(category),
                sanitise(tool)
            ),
        },
    });
    if line["outputSchema"].is_object() {
        definition["output_schema"] = line["outputSchema"].clone();
    }
    // "npm:package@1.2.3" → "1.2.3"
    if let Some(version) = line["source"]
        .as_str()
        .and_then(|s| s.rsplit_once('@'))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.chars().count() <= MAX_VERSION_CHARS)
    {
        definition["version"] = json!(version);
    }
    let mut metadata = Map::new();
    metadata.insert("upstream_tool".into(), json!(tool));
    for key in ["qualified_name", "source", "title", "annotations"] {
        if !line[key].is_null() {
            metadata.insert(key.into(), line[key].clone());
        }
    }
    definition["metadata"] = Value::Object(metadata);
    Ok(definition)
}

impl Registrar {
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends a request, retrying 429 and 503 (after `Retry-After`, at most 10 s) and
    /// transport errors.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, String> {
        let mut attempt = 1;
        loop {
            let mut request = self.request(method.clone(), path);
            if let Some(body) = body {
                request = request.json(body);
            }
            let retry_in = match request.send().await {
                Ok(response)
                    if attempt < ATTEMPTS
                        && matches!(
                            response.status(),
                            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                        ) =>
                {
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map_or(Duration::from_millis(500 * u64::from(attempt)), |s| {
                            Duration::from_secs(s.min(10))
                        })
                }
                Ok(response) => return Ok(response),
                Err(err) if attempt < ATTEMPTS && !err.is_builder() => {
                    Duration::from_millis(500 * u64::from(attempt))
                }
                Err(err) => return Err(format!("{method} {path}: {}", error_chain(&err))),
            };
            tokio::time::sleep(retry_in).await;
            attempt += 1;
        }
    }

    /// Fails fast, with one clear message, when the server does not answer at all.
    async fn ready(&self) -> anyhow::Result<()> {
        let url = format!("{}/health/ready", self.base);
        let response = self.client.get(&url).send().await.map_err(|err| {
            anyhow::anyhow!(
                "the registry at {} does not answer: {}",
                self.base,
                error_chain(&err)
            )
        })?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        Ok(())
    }

    async fn register(&self, name: &str, definition: &Value) -> Outcome {
        let response = match self
            .send(Method::POST, "/admin/tools", Some(definition))
            .await
        {
            Ok(response) => response,
            Err(reason) => return Outcome::Failed(reason),
        };
        match response.status() {
            StatusCode::CREATED => Outcome::Created,
            StatusCode::CONFLICT => match self.update(name, definition).await {
                Ok(()) => Outcome::Updated,
                Err(reason) => Outcome::Failed(reason),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Outcome::Refused(describe("POST /admin/tools", response).await)
            }
            _ => Outcome::Failed(describe("POST /admin/tools", response).await),
        }
    }

    async fn update(&self, name: &str, definition: &Value) -> Result<(), String> {
        let category = definition["category"].as_str().unwrap_or("general");
        let id = self.find_id(name, category).await?;
        let path = format!("/admin/tools/{id}");
        let response = self.send(Method::PUT, &path, Some(definition)).await?;
        if response.status() == StatusCode::OK {
            Ok(())
        } else {
            Err(describe(&format!("PUT {path}"), response).await)
        }
    }

    /// The id of the tool named `name`: looked up among the tools of `category` (listed
    /// once, then cached), else among every tool (the name may sit in another category).
    async fn find_id(&self, name: &str, category: &str) -> Result<String, String> {
        let mut known = self.known.lock().await;
        if !known.contains_key(category) {
            let listed = self.list(Some(category)).await?;
            known.insert(category.to_owned(), listed);
        }
        if let Some(id) = known[category].get(name) {
            return Ok(id.clone());
        }
        let everything = self.list(None).await?;
        everything.get(name).cloned().ok_or_else(|| {
            format!("POST answered 409 but no tool named {name} is listed by GET /admin/tools")
        })
    }

    /// name → id of every tool (inactive ones too), optionally of one category.
    async fn list(&self, category: Option<&str>) -> Result<HashMap<String, String>, String> {
        let mut found = HashMap::new();
        let mut offset = 0;
        loop {
            let mut query = vec![
                ("include_inactive".to_owned(), "true".to_owned()),
                ("limit".to_owned(), PAGE_LIMIT.to_string()),
                ("offset".to_owned(), offset.to_string()),
            ];
            if let Some(category) = category {
                query.push(("category".into(), category.into()));
            }
            let path = format!("/admin/tools?{}", encode_query(&query));
            let response = self.send(Method::GET, &path, None).await?;
            if response.status() != StatusCode::OK {
                return Err(describe(&format!("GET {path}"), response).await);
            }
            let page: Value = response
                .json()
                .await
                .map_err(|err| format!("GET {path}: {}", error_chain(&err)))?;
            let tools = page["tools"].as_array().cloned().unwrap_or_default();
            for tool in &tools {
                if let (Some(name), Some(id)) = (tool["name"].as_str(), tool["id"].as_str()) {
                    found.insert(name.to_owned(), id.to_owned());
                }
            }
            offset += tools.len();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            if tools.is_empty() || offset >= total {
                return Ok(found);
            }
        }
    }
}

/// `key=value&…`, percent-encoding everything but unreserved characters.
fn encode_query(pairs: &[(String, String)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// "`what`: 422 validation_failed (field input_schema): message", from the error body.
async fn describe(what: &str, response: Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&body) {
        Ok(value) if value["error"].is_object() => {
            let error = &value["error"];
            let field = error["field"]
                .as_str()
                .map(|f| format!(" (field {f})"))
                .unwrap_or_default();
            format!(
                "{what}: {} {}{field}: {}",
                status.as_u16(),
                error["code"].as_str().unwrap_or("?"),
                error["message"].as_str().unwrap_or("")
            )
        }
        _ => format!(
            "{what}: {status}: {}",
            body.chars().take(300).collect::<String>()
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A one-line progress bar on standard error, redrawn in place with `\r` on a terminal;
/// elsewhere (logs, pipes) only its final state is written.
struct Progress {
    total: usize,
    started: Instant,
    interactive: bool,
    last_draw: Option<Instant>,
}

impl Progress {
    const WIDTH: usize = 30;

    fn new(total: usize) -> Self {
        Self {
            total,
            started: Instant::now(),
            interactive: std::io::stderr().is_terminal(),
            last_draw: None,
        }
    }

    fn line(&self, done: usize, created: usize, updated: usize, failed: usize) -> String {
        let filled = (done * Self::WIDTH).checked_div(self.total).unwrap_or(0);
        let elapsed = self.started.elapsed().as_secs_f64();
        format!(
            "[{}{}] {done}/{} {:>3}%  created {created} updated {updated} failed {failed}  {:.1} tools/s",
            "#".repeat(filled),
            ".".repeat(Self::WIDTH - filled),
            self.total,
            (done * 100).checked_div(self.total).unwrap_or(100),
            done as f64 / elapsed.max(f64::EPSILON),
        )
    }

    fn draw(&mut self, done: usize, created: usize, updated: usize, failed: usize) {
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(50));
        if self.interactive && due {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}", self.line(done, created, updated, failed));
            let _ = err.flush();
            self.last_draw = Some(Instant::now());
        }
    }

    fn finish(&self, done: usize, created: usize, updated: usize, failed: usize) {
        let start = if self.interactive { "\r" } else { "" };
        eprintln!("{start}{}", self.line(done, created, updated, failed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_to_definitions() {
        let line = json!({
            "name": "create_issue", "description": "Create an issue", "server": "github",
            "tags": ["github"], "input_schema": {"type": "object"},
            "qualified_name": "github/create_issue", "source": "npm:@scope/server-github@2025.4.8",
            "outputSchema": {"type": "object"}
        });
        let name = tool_name(&line);
        assert_eq!(name, "github.create_issue");
        let def = definition(&line, &name).unwrap();
        assert_eq!(def["category"], "github");
        assert_eq!(def["tags"], json!(["github"]));
        assert_eq!(def["version"], "2025.4.8");
        assert_eq!(
            def["implementation"]["url"],
            "https://github.example/tools/create_issue"
        );
        assert_eq!(def["output_schema"], json!({"type": "object"}));
        assert_eq!(
            tool_name(&json!({"name": "a b/c", "server": "x y"})),
            "x_y.a_b_c"
        );
        assert_eq!(host_label("Google_Maps"), "google-maps");
    }
}
