//! Retrieval quality of find_tool: loads a tools.jsonl into a registry, runs a
//! queries.jsonl through `/mcp/find_tool` in each mode and prints hit@1, recall@5,
//! any-hit@5 (at least one relevant tool in the top 5) and nDCG@10, for all queries and
//! for those with one relevant tool and with several, and for those the service cuts into
//! steps (`steps`; their `ms/query` is the multi-step find's latency).
//!
//! ```sh
//! cargo run --release --example eval_retrieval -- \
//!     --tools ../shared/data/seal_tools/tools.jsonl \
//!     --queries ../shared/data/seal_tools/queries.jsonl --split test_out_domain
//! ```
//! Options: `--provider local|hash` (default local; the model is read from
//! `EMBEDDING_MODEL_DIR`, else `./models/all-MiniLM-L6-v2`, and a model that does not load
//! is an error, not a silent fall-back), `--modes semantic,text,hybrid`, `--weights 0.5,0.7`
//! (hybrid vector weights; default: the service's own), `--max-queries N`, `--split NAME`,
//! `--data DIR` (keep the catalogue there: a second run over the same tools skips
//! registering and embedding them), `--dump FILE` (write each query's semantic, text and hybrid
//! candidates, 50 each, with their raw scores, as JSON lines).
//! Tool names are taken from `qualified_name` (with `/` as `.`) when present, else `name`.

#[path = "common/tool_lines.rs"]
mod tool_lines;

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tool_registry::{
    App,
    config::{EmbeddingProvider, Settings},
    registry::steps,
};

struct Options {
    tools: PathBuf,
    queries: PathBuf,
    split: Option<String>,
    provider: EmbeddingProvider,
    modes: Vec<String>,
    weights: Vec<Option<f64>>,
    max_queries: Option<usize>,
    data: Option<PathBuf>,
    dump: Option<PathBuf>,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        tools: PathBuf::new(),
        queries: PathBuf::new(),
        split: None,
        provider: EmbeddingProvider::Local,
        modes: vec!["semantic".into(), "text".into(), "hybrid".into()],
        weights: vec![None],
        max_queries: None,
        data: None,
        dump: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tools" => options.tools = value.into(),
            "--queries" => options.queries = value.into(),
            "--split" => options.split = Some(value),
            "--provider" => {
                options.provider = match value.as_str() {
                    "local" => EmbeddingProvider::Local,
                    "hash" => EmbeddingProvider::Hash,
                    other => bail!("unknown provider {other}"),
                }
            }
            "--modes" => options.modes = value.split(',').map(str::to_owned).collect(),
            "--weights" => {
                options.weights = value
                    .split(',')
                    .map(|w| w.parse::<f64>().map(Some).context("weights are numbers"))
                    .collect::<Result<_, _>>()?
            }
            "--max-queries" => options.max_queries = Some(value.parse()?),
            "--data" => options.data = Some(value.into()),
            "--dump" => options.dump = Some(value.into()),
            other => bail!("unknown option {other}"),
        }
    }
    if options.tools.as_os_str().is_empty() || options.queries.as_os_str().is_empty() {
        bail!("usage: eval_retrieval --tools tools.jsonl --queries queries.jsonl [options]");
    }
    Ok(options)
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a line is not JSON"))
        .collect()
}

/// Sums of the per-query measures of one run over one subset of the queries.
#[derive(Default)]
struct Scores {
    queries: usize,
    hit_1: f64,
    recall_5: f64,
    any_hit_5: f64,
    ndcg_10: f64,
    took_ms: f64,
}

impl Scores {
    fn add(&mut self, ranked: &[String], relevant: &HashSet<String>, took_ms: f64) {
        let found = |k: usize| {
            ranked
                .iter()
                .take(k)
                .filter(|n| relevant.contains(*n))
                .count() as f64
        };
        let total = relevant.len() as f64;
        self.queries += 1;
        self.hit_1 += found(1);
        self.recall_5 += found(5) / total;
        self.any_hit_5 += f64::from(found(5) > 0.0);
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, n)| relevant.contains(*n))
            .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(10))
            .map(|i| 1.0 / ((i + 2) as f64).log2())
            .sum();
        self.ndcg_10 += if ideal > 0.0 { dcg / ideal } else { 0.0 };
        self.took_ms += took_ms;
    }

    fn row(&self, label: &str, subset: &str) -> String {
        let n = self.queries.max(1) as f64;
        format!(
            "| {label:<16} | {subset:<6} | {:>5} | {:.3} | {:.3} | {:.3} | {:.3} | {:>7.2} |",
            self.queries,
            self.hit_1 / n,
            self.recall_5 / n,
            self.any_hit_5 / n,
            self.ndcg_10 / n,
            self.took_ms / n
        )
    }
}

/// Waits until the catalogue holds `expected` tools, all embedded, and checks that the
/// model asked for is the one answering.
async fn wait_until_embedded(
    client: &reqwest::Client,
    base: &str,
    expected: u64,
    provider: EmbeddingProvider,
) -> anyhow::Result<()> {
    let clock = Instant::now();
    loop {
        let health: Value = client
            .get(format!("{base}/health"))
            .send()
            .await?
            .json()
            .await?;
        let embedder = &health["embedder"];
        if provider == EmbeddingProvider::Local && embedder["provider"].as_str() != Some("local") {
            bail!(
                "the local model did not load ({}); set EMBEDDING_MODEL_DIR",
                embedder["detail"]
            );
        }
        let total = health["tools"]["total"].as_u64().unwrap_or_default();
        let pending = health["tools"]["pending_embedding"]
            .as_u64()
            .unwrap_or(u64::MAX);
        if total >= expected && pending == 0 {
            return Ok(());
        }
        if clock.elapsed() > Duration::from_secs(3600) {
            bail!("{pending} tools still wait for embedding after an hour");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn find(client: &reqwest::Client, base: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client
        .post(format!("{base}/mcp/find_tool"))
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if !status.is_success() {
        bail!("find_tool answered {status}: {answer}");
    }
    Ok(answer)
}

fn relevant_of(query: &Value) -> HashSet<String> {
    query["relevant"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|n| n.as_str())
                .map(|n| tool_lines::tool_name(&json!({"name": n})))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let scratch = tempfile::tempdir()?;
    let data = options.data.clone().unwrap_or(scratch.path().to_owned());
    std::fs::create_dir_all(&data)?;
    let mut settings = Settings::for_tests(&data);
    settings.embedding.provider = options.provider;
    if let Some(dir) = std::env::var_os("EMBEDDING_MODEL_DIR") {
        settings.embedding.model_dir = dir.into();
    }
    settings.tools.register_builtins = false;
    settings.embedding.cache_size = 0;
    let app = App::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let tools = read_jsonl(&options.tools)?;
    let clock = Instant::now();
    // A tool already in a kept catalogue answers 409 and is counted as there.
    let registered: Vec<bool> = futures_util::stream::iter(tools.iter().map(|line| {
        let client = client.clone();
        let url = format!("{base}/admin/tools");
        let body = tool_lines::definition(line);
        async move {
            client
                .post(&url)
                .json(&body)
                .send()
                .await
                .map(|r| matches!(r.status().as_u16(), 201 | 409))
                .unwrap_or(false)
        }
    }))
    .buffer_unordered(4)
    .collect()
    .await;
    let ok = registered.iter().filter(|r| **r).count();
    wait_until_embedded(&client, &base, ok as u64, options.provider).await?;
    eprintln!(
        "{ok}/{} tools registered and embedded in {:.1} s",
        tools.len(),
        clock.elapsed().as_secs_f64()
    );

    let mut queries = read_jsonl(&options.queries)?;
    if let Some(split) = &options.split {
        queries.retain(|q| q["split"].as_str() == Some(split));
    }
    queries.retain(|q| !relevant_of(q).is_empty());
    if let Some(max) = options.max_queries {
        queries.truncate(max);
    }
    if let Some(path) = &options.dump {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for query in &queries {
            let mut lists = json!({"query": query["query"], "relevant": query["relevant"]});
            for mode in ["semantic", "text", "hybrid"] {
                let answer = find(
                    &client,
                    &base,
                    &json!({"query": query["query"], "mode": mode, "limit": 50}),
                )
                .await?;
                lists[mode] = answer["tools"]
                    .as_array()
                    .map(|hits| {
                        hits.iter()
                            .map(|h| json!([h["tool"]["name"], h["vector_score"], h["text_score"]]))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            writeln!(out, "{lists}")?;
        }
    }
    let mut runs: Vec<(String, String, Option<f64>)> = Vec::new();
    for mode in &options.modes {
        if mode == "hybrid" {
            for weight in &options.weights {
                let label = weight.map_or("hybrid".into(), |w| format!("hybrid w={w}"));
                runs.push((label, mode.clone(), *weight));
            }
        } else {
            runs.push((mode.clone(), mode.clone(), None));
        }
    }
    println!(
        "\n{} queries{}, {} tools, provider {:?}\n",
        queries.len(),
        options
            .split
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        ok,
        options.provider
    );
    println!("| mode             | subset |     n | hit@1 | rec@5 | any@5 | nDCG10 | ms/query |");
    println!("|------------------|--------|-------|-------|-------|-------|--------|----------|");
    for (label, mode, weight) in runs {
        let (mut all, mut single, mut multi, mut stepped) = (
            Scores::default(),
            Scores::default(),
            Scores::default(),
            Scores::default(),
        );
        for query in &queries {
            let relevant = relevant_of(query);
            let mut body = json!({"query": query["query"], "mode": mode, "limit": 10});
            if let Some(w) = weight {
                body["vector_weight"] = json!(w);
            }
            let answer = find(&client, &base, &body).await?;
            let ranked: Vec<String> = answer["tools"]
                .as_array()
                .map(|hits| {
                    hits.iter()
                        .filter_map(|h| h["tool"]["name"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let took_ms = answer["took_ms"].as_f64().unwrap_or_default();
            all.add(&ranked, &relevant, took_ms);
            if relevant.len() == 1 {
                &mut single
            } else {
                &mut multi
            }
            .add(&ranked, &relevant, took_ms);
            if query["query"]
                .as_str()
                .is_some_and(|q| !steps::split(q).is_empty())
            {
                stepped.add(&ranked, &relevant, took_ms);
            }
        }
        println!("{}", all.row(&label, "all"));
        println!("{}", single.row(&label, "single"));
        println!("{}", multi.row(&label, "multi"));
        println!("{}", stepped.row(&label, "steps"));
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
