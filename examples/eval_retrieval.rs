//! Retrieval quality of find_tool: loads a tools.jsonl into a fresh registry, runs a
//! queries.jsonl through `/mcp/find_tool` in each mode and prints recall@1, recall@5,
//! hit@1 and nDCG@10.
//!
//! ```sh
//! cargo run --release --example eval_retrieval -- \
//!     --tools ../shared/data/seal_tools/tools.jsonl \
//!     --queries ../shared/data/seal_tools/queries.jsonl --split test_out_domain
//! ```
//! Options: `--provider local|hash` (default local), `--modes semantic,text,hybrid`,
//! `--weights 0.5,0.7` (hybrid vector weights), `--max-queries N`, `--split NAME`.
//! Tool names are taken from `qualified_name` (with `/` as `.`) when present, else `name`.

use std::{collections::HashSet, path::PathBuf, time::Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tool_registry::{
    App,
    config::{EmbeddingProvider, Settings},
};

struct Options {
    tools: PathBuf,
    queries: PathBuf,
    split: Option<String>,
    provider: EmbeddingProvider,
    modes: Vec<String>,
    weights: Vec<f64>,
    max_queries: Option<usize>,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        tools: PathBuf::new(),
        queries: PathBuf::new(),
        split: None,
        provider: EmbeddingProvider::Local,
        modes: vec!["semantic".into(), "text".into(), "hybrid".into()],
        weights: vec![0.7],
        max_queries: None,
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
                    .map(|w| w.parse::<f64>().context("weights are numbers"))
                    .collect::<Result<_, _>>()?
            }
            "--max-queries" => options.max_queries = Some(value.parse()?),
            other => bail!("unknown option {other}"),
        }
    }
    if options.tools.as_os_str().is_empty() || options.queries.as_os_str().is_empty() {
        bail!("usage: eval_retrieval --tools tools.jsonl --queries queries.jsonl [options]");
    }
    Ok(options)
}

fn read_jsonl(path: &PathBuf) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a line is not JSON"))
        .collect()
}

/// The registry name of a tool line: `qualified_name` with `/` as `.`, else `name`.
fn tool_name(line: &Value) -> String {
    let raw = line["qualified_name"]
        .as_str()
        .or(line["name"].as_str())
        .unwrap_or_default();
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else if c == '/' {
                '.'
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

fn definition(line: &Value) -> Value {
    let name = tool_name(line);
    let description = line["description"]
        .as_str()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(&name);
    let schema = match &line["input_schema"] {
        Value::Object(_) if jsonschema::meta::is_valid(&line["input_schema"]) => {
            line["input_schema"].clone()
        }
        _ => json!({"type": "object"}),
    };
    let tags: Vec<String> = line["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str())
                .map(|t| t.chars().take(64).collect())
                .take(32)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": name,
        "description": description.chars().take(8000).collect::<String>(),
        "tags": tags,
        "input_schema": schema,
        "implementation": {"kind": "http", "url": "https://tools.invalid/run"}
    })
}

#[derive(Default)]
struct Scores {
    queries: usize,
    recall_1: f64,
    recall_5: f64,
    hit_1: f64,
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
        self.recall_1 += found(1) / total;
        self.recall_5 += found(5) / total;
        self.hit_1 += f64::from(ranked.first().is_some_and(|n| relevant.contains(n)));
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

    fn row(&self, label: &str) -> String {
        let n = self.queries.max(1) as f64;
        format!(
            "| {label:<18} | {:>5} | {:.3} | {:.3} | {:.3} | {:.3} | {:>7.2} |",
            self.queries,
            self.recall_1 / n,
            self.recall_5 / n,
            self.hit_1 / n,
            self.ndcg_10 / n,
            self.took_ms / n
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let data = tempfile::tempdir()?;
    let mut settings = Settings::for_tests(data.path());
    settings.embedding_provider = options.provider;
    settings.register_builtins = false;
    settings.embedding_cache_size = 0;
    let app = App::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let tools = read_jsonl(&options.tools)?;
    let clock = Instant::now();
    let registered: Vec<bool> = futures_util::stream::iter(tools.iter().map(|line| {
        let client = client.clone();
        let url = format!("{base}/admin/tools");
        let body = definition(line);
        async move {
            client
                .post(&url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16() == 201)
                .unwrap_or(false)
        }
    }))
    .buffer_unordered(4)
    .collect()
    .await;
    let ok = registered.iter().filter(|r| **r).count();
    eprintln!(
        "registered {ok}/{} tools in {:.1} s",
        tools.len(),
        clock.elapsed().as_secs_f64()
    );

    let mut queries = read_jsonl(&options.queries)?;
    if let Some(split) = &options.split {
        queries.retain(|q| q["split"].as_str() == Some(split));
    }
    if let Some(max) = options.max_queries {
        queries.truncate(max);
    }
    let mut runs: Vec<(String, String, Option<f64>)> = Vec::new();
    for mode in &options.modes {
        if mode == "hybrid" {
            for weight in &options.weights {
                runs.push((format!("hybrid w={weight}"), mode.clone(), Some(*weight)));
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
    println!("| mode               |     n | rec@1 | rec@5 | hit@1 | nDCG10 | ms/query |");
    println!("|--------------------|-------|-------|-------|-------|--------|----------|");
    for (label, mode, weight) in runs {
        let mut scores = Scores::default();
        for query in &queries {
            let relevant: HashSet<String> = query["relevant"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|n| n.as_str())
                        .map(|n| tool_name(&json!({"name": n})))
                        .collect()
                })
                .unwrap_or_default();
            if relevant.is_empty() {
                continue;
            }
            let mut body = json!({"query": query["query"], "mode": mode, "limit": 10});
            if let Some(w) = weight {
                body["vector_weight"] = json!(w);
            }
            let answer: Value = client
                .post(format!("{base}/mcp/find_tool"))
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            let ranked: Vec<String> = answer["tools"]
                .as_array()
                .map(|hits| {
                    hits.iter()
                        .filter_map(|h| h["tool"]["name"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            scores.add(
                &ranked,
                &relevant,
                answer["took_ms"].as_f64().unwrap_or_default(),
            );
        }
        println!("{}", scores.row(&label));
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
