//! Load benchmark: starts the service as a child process on each backend with N tools,
//! drives it over HTTP with concurrent keep-alive clients, and prints, per workload,
//! requests per second, latency percentiles, and the server's CPU time and resident memory.
//!
//! ```sh
//! cargo run --release --example bench -- --tools 10000 --seconds 10
//! BENCH_DATABASE_URL=postgres://… cargo run --release --example bench -- --backend postgres
//! ```
//!
//! `--backend postgres` runs PostgreSQL on the default settings (`DATABASE_VECTOR_SEARCH=auto`,
//! `DATABASE_HNSW_INDEX=auto`); `postgres-index` with `DATABASE_VECTOR_SEARCH=hnsw` (and
//! measures the index's recall);
//! `postgres-memory` with `DATABASE_VECTOR_SEARCH=memory` and `DATABASE_HNSW_INDEX=false`. `EXECUTION_RECORDING` (durable or deferred), when set, is
//! passed to the server.
//! Registration sends `--batch` tools per request (`POST /admin/tools/batch`; 1 sends each
//! alone). With `--embedder local` the model's own throughput on the same texts, in the same
//! batches, is measured first, without the server, as the bound registration can approach,
//! and a last workload times uncached searches while more tools are being registered.
//!
//! The catalogue is the Seal-Tools benchmark's 4,076 real tool definitions, repeated with
//! numbered variants up to N; queries are the benchmark's own. Numbers come from this
//! machine's clock: compare runs on the same machine only.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

/// The bench runs the service as its own child process, so it carries the service's
/// allocator and its options (see src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &[u8; 27] = tool_registry::allocator::JEMALLOC_OPTIONS;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// embedded, postgres (the default settings), postgres-index (vectors searched through
    /// the HNSW index), postgres-memory (in the server's memory, no HNSW index) or both
    /// (embedded and postgres); postgres needs BENCH_DATABASE_URL, an empty database.
    #[arg(long, default_value = "embedded")]
    backend: String,
    /// Tools in the catalogue.
    #[arg(long, default_value_t = 10_000)]
    tools: usize,
    /// Duration of each workload.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Embedder of the server: hash (fast, lexical) or local (the offline model).
    #[arg(long, default_value = "hash")]
    embedder: String,
    /// Tools per registration request: `POST /admin/tools/batch` with this many, or one
    /// `POST /admin/tools` per tool when 1.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    batch: u64,
    /// Only the workloads whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// On PostgreSQL, once every tool is embedded: start a second replica on the same
    /// database and time it until ready (its resident memory then is the catalogue's).
    #[arg(long)]
    replica: bool,
    /// After the workloads, keep the server (with its catalogue) up this many seconds and
    /// print its address, for another load generator such as wrk.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Internal: run as the server child.
    #[arg(long, hide = true)]
    serve: bool,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/seal_tools")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve {
        return runtime.block_on(serve());
    }
    runtime.block_on(run(args))
}

/// The child: the service with settings from the environment, like the real binary.
async fn serve() -> anyhow::Result<()> {
    let settings = tool_registry::config::Settings::load(None)?;
    tool_registry::telemetry::init(settings.log_format, false);
    let app = tool_registry::App::build(settings).await?;
    println!("{}", app.local_addr());
    app.serve(tool_registry::shutdown_signal()).await
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(
        args: &Args,
        database_url: Option<&str>,
        vector_search: &str,
        hnsw_index: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("REGISTRY_DATA_DIR", dir.path())
            .env("EMBEDDING_PROVIDER", &args.embedder)
            .env(
                "EMBEDDING_MODEL_DIR",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"),
            )
            .env("REGISTER_BUILTINS", "true")
            .env("RUST_LOG", "warn")
            .env("DATABASE_MAX_CONNECTIONS", "16")
            .env("DATABASE_VECTOR_SEARCH", vector_search)
            .env("DATABASE_HNSW_INDEX", hnsw_index)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        // The write-before-answer trade-off is measured by running the bench in each mode.
        if let Ok(mode) = std::env::var("EXECUTION_RECORDING") {
            command.env("EXECUTION_RECORDING", mode);
        }
        // Other vector sizes (the hash embedder's) and memory budgets likewise.
        for name in ["EMBEDDING_DIMENSIONS", "DATABASE_VECTOR_MEMORY_MIB"] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        // Tracing (off unless an OTLP endpoint is given) is measured the same way, and the
        // allocator's settings (glibc's tunables, mimalloc's options, a preloaded allocator).
        command.envs(std::env::vars().filter(|(name, _)| {
            name.starts_with("OTEL_")
                || name.starts_with("MIMALLOC_")
                || name == "GLIBC_TUNABLES"
                || name == "MALLOC_CONF"
                || name == "_RJEM_MALLOC_CONF"
                || name == "LD_PRELOAD"
        }));
        let child = command.spawn().context("start the server child")?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// (CPU seconds used so far, resident MiB now), from /proc.
    fn usage(&self) -> (f64, f64) {
        process_usage(&self.child.id().to_string())
    }

    /// Waits until the server answers ready (a start that builds the HNSW index of a large
    /// catalogue takes minutes); polled often, as start-up is measured with it.
    async fn wait_ready(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(900);
        while Instant::now() < deadline {
            if let Ok(answer) = http.get(format!("{}/health/ready", self.base)).send().await
                && answer.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the server did not become ready")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn catalogue(n: usize) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(data_dir().join("tools.jsonl"))
        .context("read ../shared/data/seal_tools/tools.jsonl")?;
    let base: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    Ok((0..n)
        .map(|i| {
            let tool = &base[i % base.len()];
            let round = i / base.len();
            let name = if round == 0 {
                tool["name"].as_str().unwrap_or("tool").to_owned()
            } else {
                format!("{}_v{round}", tool["name"].as_str().unwrap_or("tool"))
            };
            json!({
                "name": name,
                "description": tool["description"],
                "category": tool["tags"][0].as_str().unwrap_or("general"),
                "tags": tool["tags"],
                "input_schema": tool["input_schema"],
                "implementation": {"kind": "http", "url": "https://tools.example/run"},
            })
        })
        .collect())
}

fn queries() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(data_dir().join("queries.jsonl"))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|q| q["query"].as_str().map(str::to_owned))
        .collect())
}

/// One request of a workload, given a sequence number.
type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, &str, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Outcome {
    requests: u64,
    errors: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
    cpu_seconds: f64,
    rss_mib: f64,
}

async fn drive(
    server: &Server,
    http: &reqwest::Client,
    clients: usize,
    duration: Duration,
    make: MakeRequest,
) -> Outcome {
    let (cpu_before, _) = server.usage();
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, make, stop, sequence) = (
                http.clone(),
                server.base.clone(),
                make.clone(),
                stop.clone(),
                sequence.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(8192);
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = sequence.fetch_add(1, Ordering::Relaxed);
                    let clock = Instant::now();
                    let ok = match make(&http, &base, n).send().await {
                        Ok(answer) => {
                            let ok = answer.status().is_success();
                            let _ = answer.bytes().await;
                            ok
                        }
                        Err(_) => false,
                    };
                    latencies.push(clock.elapsed().as_micros() as u64);
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await.expect("load task");
        latencies_us.append(&mut l);
        errors += e;
    }
    Outcome::since(server, started, cpu_before, latencies_us, errors)
}

impl Outcome {
    /// The outcome of requests made since `started`, when the server had used `cpu_before`.
    fn since(
        server: &Server,
        started: Instant,
        cpu_before: f64,
        mut latencies_us: Vec<u64>,
        errors: u64,
    ) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        let (cpu_after, rss_mib) = server.usage();
        latencies_us.sort_unstable();
        Self {
            requests: latencies_us.len() as u64,
            errors,
            seconds,
            latencies_us,
            cpu_seconds: cpu_after - cpu_before,
            rss_mib,
        }
    }
}

/// CPU seconds used so far and resident MiB of a process (`self` for this one).
fn process_usage(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    (ticks / 100.0, resident_mib(pid, &["VmRSS"]))
}

/// The sum of these resident memory fields of a process's status, in MiB: `VmRSS` is all of
/// it, `RssAnon` its own (heap, stacks), `RssFile` and `RssShmem` mapped files (the binary,
/// a mapped database), which the kernel can drop and read again.
fn resident_mib(pid: &str, fields: &[&str]) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| fields.contains(name))
        .filter_map(|(_, value)| value.split_whitespace().next()?.parse::<f64>().ok())
        .sum();
    kib / 1024.0
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn report(backend: &str, workload: &str, outcome: &Outcome) {
    println!(
        "| {backend} | {workload} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0}% | {:.0} |",
        outcome.requests as f64 / outcome.seconds,
        percentile(&outcome.latencies_us, 0.50),
        percentile(&outcome.latencies_us, 0.99),
        percentile(&outcome.latencies_us, 0.999),
        outcome.errors,
        100.0 * outcome.cpu_seconds / outcome.seconds,
        outcome.rss_mib,
    );
}

/// Registers `tools` from `clients` concurrent clients, `batch` tools per request; returns
/// tools per second and how many the server refused. A refused item of a batch (a 422
/// naming `tools[i]`) is dropped and the rest sent again, as a client would.
async fn register_all(
    server: &Server,
    http: &reqwest::Client,
    tools: Vec<Value>,
    clients: usize,
    batch: usize,
) -> anyhow::Result<(f64, u64)> {
    let count = tools.len();
    let chunks: Arc<Vec<Vec<Value>>> =
        Arc::new(tools.chunks(batch).map(<[Value]>::to_vec).collect());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, chunks, next) = (
                http.clone(),
                server.base.clone(),
                chunks.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut failed = 0u64;
                while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed) as usize) {
                    failed += if batch == 1 {
                        register_one(&http, &base, &chunk[0]).await
                    } else {
                        register_batch(&http, &base, chunk.clone()).await
                    };
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok((count as f64 / started.elapsed().as_secs_f64(), failed))
}

/// `POST /admin/tools`; 1 when refused.
async fn register_one(http: &reqwest::Client, base: &str, tool: &Value) -> u64 {
    let answer = http
        .post(format!("{base}/admin/tools"))
        .json(tool)
        .send()
        .await;
    u64::from(!answer.is_ok_and(|a| a.status().as_u16() == 201))
}

/// `POST /admin/tools/batch`; the number of tools refused.
async fn register_batch(http: &reqwest::Client, base: &str, mut tools: Vec<Value>) -> u64 {
    let mut failed = 0;
    while !tools.is_empty() {
        let Ok(answer) = http
            .post(format!("{base}/admin/tools/batch"))
            .json(&json!({ "tools": tools }))
            .send()
            .await
        else {
            return failed + tools.len() as u64;
        };
        let status = answer.status().as_u16();
        if status == 201 {
            return failed;
        }
        let body: Value = answer.json().await.unwrap_or_default();
        let refused = body["error"]["field"]
            .as_str()
            .and_then(|field| field.strip_prefix("tools["))
            .and_then(|rest| rest.split(']').next()?.parse::<usize>().ok())
            .filter(|at| *at < tools.len());
        let Some(at) = refused else {
            eprintln!("batch registration refused ({status}): {body}");
            return failed + tools.len() as u64;
        };
        eprintln!(
            "{} refused: {}",
            tools[at]["name"], body["error"]["message"]
        );
        tools.remove(at);
        failed += 1;
    }
    failed
}

/// Queries of the uncached workload, spread evenly over the benchmark's (whose length varies
/// along the file: single-tool queries of ~80 characters first, multi-tool ones of ~400 after).
const UNCACHED_SAMPLE: usize = 200;

fn uncached_sample(queries: &[String]) -> Vec<String> {
    let step = (queries.len() / UNCACHED_SAMPLE).max(1);
    queries
        .iter()
        .step_by(step)
        .take(UNCACHED_SAMPLE)
        .cloned()
        .collect()
}

/// The `n`th query of the uncached workload: numbered, so no cache tier has seen it.
fn uncached_query(sample: &[String], n: u64) -> String {
    format!("{} #{n}", sample[n as usize % sample.len()])
}

/// The local model alone, without the server: on the texts registration embeds, `batch` at
/// a time, one batch after another (texts per second), and on each query of the uncached
/// sample once, one at a time, as uncached searches embed them (each query's time, reported
/// as a workload's latencies).
async fn local_model_alone(
    tools: &[Value],
    sample: &[String],
    batch: usize,
) -> anyhow::Result<(f64, Outcome)> {
    use tool_registry::embedding::{Embedder, local::LocalEmbedder};
    let model_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    let model = LocalEmbedder::load(&model_dir, None)?;
    let now = chrono::Utc::now();
    let texts = tools
        .iter()
        .map(|definition| {
            let mut tool = definition.clone();
            tool["id"] = json!(uuid::Uuid::new_v4());
            tool["version"] = json!("1.0.0");
            tool["metadata"] = json!({});
            tool["is_active"] = json!(true);
            tool["created_at"] = json!(now);
            tool["updated_at"] = json!(now);
            let tool: tool_registry::domain::Tool = serde_json::from_value(tool)?;
            Ok(tool_registry::domain::document::embedded_text(&tool))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let started = Instant::now();
    for chunk in texts.chunks(batch) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        model.embed(&refs).await?;
    }
    let texts_per_second = texts.len() as f64 / started.elapsed().as_secs_f64();
    let (cpu_before, _) = process_usage("self");
    let started = Instant::now();
    let mut latencies_us = Vec::new();
    for n in 0..sample.len() as u64 {
        let query = uncached_query(sample, n);
        let sent = Instant::now();
        model.embed(&[query.as_str()]).await?;
        latencies_us.push(sent.elapsed().as_micros() as u64);
    }
    latencies_us.sort_unstable();
    let (cpu_after, rss_mib) = process_usage("self");
    let queries = Outcome {
        requests: sample.len() as u64,
        errors: 0,
        seconds: started.elapsed().as_secs_f64(),
        latencies_us,
        cpu_seconds: cpu_after - cpu_before,
        rss_mib,
    };
    Ok((texts_per_second, queries))
}

async fn bench_backend(
    args: &Args,
    backend: &str,
    database_url: Option<&str>,
) -> anyhow::Result<()> {
    let (vector_search, hnsw_index) = match backend {
        // Vectors in memory go with no HNSW index: nothing would search through it.
        "postgres-memory" => ("memory", "false"),
        "postgres-index" => ("hnsw", "true"),
        // What a new deployment runs with.
        _ => ("auto", "auto"),
    };
    let catalogue = catalogue(args.tools)?;
    let batch = args.batch as usize;
    let queries = Arc::new(queries()?);
    let uncached = Arc::new(uncached_sample(&queries));
    if args.embedder == "local" {
        let (per_second, single_queries) = local_model_alone(&catalogue, &uncached, batch).await?;
        println!(
            "| - | local model alone, the same texts ({} tools, batches of {batch}) | {per_second:.0} tools/s | | | | | | |",
            args.tools
        );
        report(
            "-",
            &format!("local model alone, each of the {UNCACHED_SAMPLE} uncached queries once"),
            &single_queries,
        );
    }
    let server = Server::start(args, database_url, vector_search, hnsw_index)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    server.wait_ready(&http).await?;
    let (_, idle_rss) = server.usage();

    let (cpu_before, _) = server.usage();
    let started = Instant::now();
    let (per_second, failed) = register_all(&server, &http, catalogue, 8, batch).await?;
    let (cpu_after, rss) = server.usage();
    println!(
        "| {backend} | bulk registration ({} tools, {batch} per request, 8 clients), answered | {per_second:.0} tools/s | | | | {failed} | {:.0}% | {rss:.0} |",
        args.tools,
        100.0 * (cpu_after - cpu_before) / started.elapsed().as_secs_f64(),
    );
    // Embeddings a batch did not wait for are made by the background indexer: searches are
    // measured once every tool has its vector.
    let mut pending = Value::Null;
    for _ in 0..18_000 {
        let health: Value = http
            .get(format!("{}/health", server.base))
            .send()
            .await?
            .json()
            .await?;
        pending = health["tools"]["pending_embedding"].clone();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::ensure!(pending == 0, "embeddings still pending: {pending}");
    let (cpu_after, rss) = server.usage();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "| {backend} | bulk registration, until every tool is embedded | {:.0} tools/s | | | | | {:.0}% | {rss:.0} |",
        args.tools as f64 / elapsed,
        100.0 * (cpu_after - cpu_before) / elapsed,
    );

    if args.replica
        && let Some(url) = database_url
    {
        replica_start(args, url, vector_search, hnsw_index, &http, backend).await?;
    }

    let hot: Arc<Vec<String>> = Arc::new(queries.iter().take(50).cloned().collect());
    let deep_offset = (args.tools.saturating_sub(50)) as u64;
    let find = |mode: &'static str, set: Arc<Vec<String>>, fresh: bool| -> MakeRequest {
        Arc::new(move |http, base, n| {
            let query = if fresh {
                uncached_query(&set, n)
            } else {
                set[n as usize % set.len()].clone()
            };
            http.post(format!("{base}/mcp/find_tool"))
                .json(&json!({"query": query, "mode": mode, "limit": 5}))
        })
    };
    let list = move |offset: u64| -> MakeRequest {
        Arc::new(move |http, base, _| {
            http.post(format!("{base}/mcp/list_tools"))
                .json(&json!({"limit": 50, "offset": offset}))
        })
    };
    let call: MakeRequest = Arc::new(|http, base, n| {
        http.post(format!("{base}/mcp/call_tool")).json(
            &json!({"name": "calculator", "arguments": {"expression": format!("{n} * 2 + 1")}}),
        )
    });
    let mix: MakeRequest = {
        let (find_hot, list_first, call) =
            (find("hybrid", hot.clone(), false), list(0), call.clone());
        Arc::new(move |http, base, n| match n % 20 {
            0 => call(http, base, n),
            1..=3 => list_first(http, base, n),
            _ => find_hot(http, base, n),
        })
    };
    let workloads: Vec<(&str, MakeRequest)> = vec![
        (
            "find hybrid, cached query",
            find("hybrid", hot.clone(), false),
        ),
        (
            "find semantic, cached query",
            find("semantic", hot.clone(), false),
        ),
        ("find text", find("text", hot.clone(), false)),
        (
            "find hybrid, uncached query",
            find("hybrid", uncached.clone(), true),
        ),
        ("list page 1", list(0)),
        ("list deep page", list(deep_offset)),
        ("call calculator (recorded)", call),
        ("mix 80% find / 15% list / 5% call", mix),
    ];
    let duration = Duration::from_secs(args.seconds);
    for (name, make) in workloads {
        if args
            .only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
        {
            continue;
        }
        let outcome = drive(&server, &http, args.clients, duration, make).await;
        report(backend, name, &outcome);
    }
    let during = format!(
        "find hybrid, uncached query, 1 client, while 2 clients register {EXTRA_TOOLS} more tools"
    );
    if args.embedder == "local"
        && args
            .only
            .as_deref()
            .is_none_or(|only| during.contains(only))
    {
        let (outcome, per_second) =
            find_while_registering(&server, &http, &uncached, batch).await?;
        report(backend, &during, &outcome);
        println!(
            "| {backend} | the registration meanwhile ({batch} per request, 2 clients), answered | {per_second:.0} tools/s | | | | | | |"
        );
    }
    if args.hold > 0 {
        println!(
            "| {backend} | held for {} s at {} (pid {}) | | | | | | | |",
            args.hold,
            server.base,
            server.child.id()
        );
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
    }
    let pid = server.child.id().to_string();
    let (anonymous, file) = (
        resident_mib(&pid, &["RssAnon"]),
        resident_mib(&pid, &["RssFile", "RssShmem"]),
    );
    println!(
        "| {backend} | resident memory: idle {idle_rss:.0} MiB, after the run {:.0} MiB ({anonymous:.0} anonymous, {file:.0} file-backed) | | | | | | | |",
        server.usage().1
    );
    if let Some(url) = database_url
        && args.only.is_none()
        && backend == "postgres-index"
    {
        hnsw_recall(url, &queries, &args.embedder).await?;
    }
    Ok(())
}

/// Starts another replica on the database the first one filled and times it until ready:
/// it reads the catalogue (and, searching in memory, every vector), and builds the HNSW
/// index when it searches through one that is missing. Its resident memory then is what the
/// catalogue takes, before any request.
async fn replica_start(
    args: &Args,
    url: &str,
    vector_search: &str,
    hnsw_index: &str,
    http: &reqwest::Client,
    backend: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let replica = Server::start(args, Some(url), vector_search, hnsw_index)?;
    replica.wait_ready(http).await?;
    let seconds = started.elapsed().as_secs_f64();
    let health: Value = http
        .get(format!("{}/health", replica.base))
        .send()
        .await?
        .json()
        .await?;
    let pid = replica.child.id().to_string();
    println!(
        "| {backend} | another replica's start-up with {} tools, until ready (searches: {}) | {seconds:.2} s | | | | | | {:.0} ({:.0} anonymous) |",
        args.tools,
        health["storage"]["vector_search"].as_str().unwrap_or("?"),
        resident_mib(&pid, &["VmRSS"]),
        resident_mib(&pid, &["RssAnon"]),
    );
    Ok(())
}

/// Tools registered during the last workload of a run with the local model.
const EXTRA_TOOLS: usize = 1_000;

/// Uncached searches from one client while two others register more tools: with the local
/// model both need it, and a search waits for the batch of tool texts running in it.
async fn find_while_registering(
    server: &Server,
    http: &reqwest::Client,
    uncached: &[String],
    batch: usize,
) -> anyhow::Result<(Outcome, f64)> {
    let extra: Vec<Value> = catalogue(EXTRA_TOOLS)?
        .into_iter()
        .map(|mut tool| {
            let name = format!("{}_meanwhile", tool["name"].as_str().unwrap_or("tool"));
            tool["name"] = json!(name);
            tool
        })
        .collect();
    let registered = AtomicBool::new(false);
    let (cpu_before, _) = server.usage();
    let started = Instant::now();
    let registration = async {
        let result = register_all(server, http, extra, 2, batch).await;
        registered.store(true, Ordering::Relaxed);
        result
    };
    let searches = async {
        let (mut latencies_us, mut errors) = (Vec::new(), 0u64);
        let mut n = 1_000_000;
        while !registered.load(Ordering::Relaxed) {
            n += 1;
            let clock = Instant::now();
            let answer = http
                .post(format!("{}/mcp/find_tool", server.base))
                .json(&json!({"query": uncached_query(uncached, n), "mode": "hybrid", "limit": 5}))
                .send()
                .await;
            let ok = match answer {
                Ok(answer) => answer.status().is_success() && answer.bytes().await.is_ok(),
                Err(_) => false,
            };
            latencies_us.push(clock.elapsed().as_micros() as u64);
            errors += u64::from(!ok);
        }
        (latencies_us, errors)
    };
    let ((per_second, _refused), (latencies_us, errors)) = {
        let (registration, searches) = tokio::join!(registration, searches);
        (registration?, searches)
    };
    let outcome = Outcome::since(server, started, cpu_before, latencies_us, errors);
    Ok((outcome, per_second))
}

/// Recall@10 of PostgreSQL's HNSW index against an exact scan, for the benchmark's queries
/// embedded as the server embeds them, at several `hnsw.ef_search` values (the service's
/// default is 100), with the service's filter and iterative scan.
async fn hnsw_recall(url: &str, queries: &[String], embedder: &str) -> anyhow::Result<()> {
    use tool_registry::embedding::{Embedder, hash::HashEmbedder, local::LocalEmbedder};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let (model, dimensions): (String, i32) = sqlx::query_as(
        "SELECT embedding_model, vector_dims(embedding) FROM tools \
         WHERE embedding IS NOT NULL LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    let embedder: Box<dyn Embedder> = match embedder {
        "local" => Box::new(LocalEmbedder::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"),
            None,
        )?),
        _ => Box::new(HashEmbedder::new(dimensions as usize)),
    };
    anyhow::ensure!(
        tool_registry::domain::document::vector_model(embedder.model_id()) == model,
        "the stored vectors are not made by the bench's embedder"
    );
    let sample: Vec<&str> = queries.iter().take(200).map(String::as_str).collect();
    let vectors = embedder.embed(&sample).await?;
    const NEAREST: &str = "SELECT id, embedding <=> $1 AS distance FROM tools \
        WHERE embedding IS NOT NULL AND embedding_model = $2 AND is_active \
        ORDER BY embedding <=> $1, id LIMIT 10";
    let mut exact: Vec<Vec<(uuid::Uuid, f64)>> = Vec::new();
    let mut connection = pool.acquire().await?;
    sqlx::query("SET enable_indexscan = off")
        .execute(&mut *connection)
        .await?;
    for vector in &vectors {
        let hits: Vec<(uuid::Uuid, f64)> = sqlx::query_as(NEAREST)
            .bind(pgvector::Vector::from(vector.clone()))
            .bind(&model)
            .fetch_all(&mut *connection)
            .await?;
        exact.push(hits);
    }
    for setting in [
        "SET enable_indexscan = on",
        "SET hnsw.iterative_scan = strict_order",
    ] {
        sqlx::query(setting).execute(&mut *connection).await?;
    }
    let mut cells = Vec::new();
    for ef_search in [40, 100, 200] {
        sqlx::query(&format!("SET hnsw.ef_search = {ef_search}"))
            .execute(&mut *connection)
            .await?;
        let (mut found, mut wanted) = (0usize, 0usize);
        for (vector, truth) in vectors.iter().zip(&exact) {
            let hits: Vec<(uuid::Uuid, f64)> = sqlx::query_as(NEAREST)
                .bind(pgvector::Vector::from(vector.clone()))
                .bind(&model)
                .fetch_all(&mut *connection)
                .await?;
            // The catalogue repeats tools, so many vectors tie: a hit counts when it is
            // one of the exact ten or as near as the tenth.
            let tenth = truth.last().map_or(f64::INFINITY, |hit| hit.1);
            found += hits
                .iter()
                .filter(|hit| truth.iter().any(|t| t.0 == hit.0) || hit.1 <= tenth + 1e-9)
                .count();
            wanted += truth.len();
        }
        cells.push(format!(
            "{ef_search}: {:.3}",
            found as f64 / wanted.max(1) as f64
        ));
    }
    println!(
        "| postgres | HNSW recall@10 against an exact scan, {} queries, by ef_search | {} | | | | | | |",
        vectors.len(),
        cells.join(" · ")
    );
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "tools={} clients={} seconds={} embedder={} cores={}",
        args.tools,
        args.clients,
        args.seconds,
        args.embedder,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| backend | workload | req/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU | RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["embedded", "postgres"],
        other => vec![other],
    };
    for backend in backends {
        let url = match backend {
            "postgres" | "postgres-index" | "postgres-memory" => Some(
                std::env::var("BENCH_DATABASE_URL")
                    .context("the postgres backend needs BENCH_DATABASE_URL (an empty database)")?,
            ),
            "embedded" => None,
            other => bail!("unknown backend {other}"),
        };
        bench_backend(&args, backend, url.as_deref()).await?;
    }
    Ok(())
}
