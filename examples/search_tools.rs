//! Asks a running registry to find tools for tasks described in words, through
//! `POST /mcp/find_tool`, and prints the ranking of each search mode.
//!
//! ```sh
//! cargo run --example search_tools -- [--base-url URL] [--limit N] \
//!     [--mode hybrid|semantic|text|all] [QUERY ...]
//! ```
//!
//! Each QUERY is searched in the chosen mode, or in all three one after another (`all`, the
//! default). Without queries they are read from standard input, one per line, with a prompt
//! when it is a terminal. For each mode a table gives rank, name, score, vector_score,
//! text_score (`—` when the mode did not compute it) and category, under the mode that
//! actually answered (`text_fallback` when the embedder is down) and the server's took_ms.
//! The exit status is 1 when any request failed (HTTP error or no answer).
//!
//! Other options: `--category C`, `--threshold T`, `--vector-weight W` (hybrid),
//! `--api-key KEY` (or `MCP_API_KEY`; needed once the server sets `MCP_API_KEYS` or JWT).
//! The base URL may also come from `BASE_URL`.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use clap::{Parser, ValueEnum};
use reqwest::Client;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Hybrid,
    Semantic,
    Text,
    All,
}

impl Mode {
    fn modes(self) -> &'static [&'static str] {
        match self {
            Mode::Hybrid => &["hybrid"],
            Mode::Semantic => &["semantic"],
            Mode::Text => &["text"],
            Mode::All => &["hybrid", "semantic", "text"],
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Find tools in a running tool registry and compare the search modes")]
struct Args {
    /// The registry's base URL.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Tools per ranking (1–100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=100))]
    limit: u8,
    /// Search mode; `all` runs the three modes one after another.
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// Only tools of this category.
    #[arg(long)]
    category: Option<String>,
    /// Minimum score of a hit.
    #[arg(long)]
    threshold: Option<f64>,
    /// Weight of the vector score in hybrid mode (0–1).
    #[arg(long)]
    vector_weight: Option<f64>,
    /// MCP or admin key, sent as `Authorization: Bearer`.
    #[arg(long, env = "MCP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Tasks to find tools for; read from standard input when none are given.
    queries: Vec<String>,
}

struct Searcher {
    client: Client,
    url: String,
    args: Args,
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
    let searcher = Searcher {
        client: Client::builder()
            .timeout(Duration::from_secs(args.timeout_secs))
            .build()?,
        url: format!("{}/mcp/find_tool", args.base_url.trim_end_matches('/')),
        args,
    };
    let mut failed = 0usize;

    if !searcher.args.queries.is_empty() {
        for query in &searcher.args.queries {
            failed += searcher.search_all(query).await;
        }
    } else {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        if interactive {
            eprintln!("Describe a task per line (an empty line or Ctrl-D ends).");
        }
        let mut lines = stdin.lock().lines();
        loop {
            if interactive {
                eprint!("query> ");
                std::io::stderr().flush()?;
            }
            let Some(line) = lines.next() else { break };
            let line = line.context("reading standard input")?;
            let query = line.trim();
            if query.is_empty() {
                if interactive {
                    break;
                }
                continue;
            }
            failed += searcher.search_all(query).await;
        }
    }
    if failed > 0 {
        eprintln!("{failed} request(s) failed");
        std::process::exit(1);
    }
    Ok(())
}

impl Searcher {
    /// Searches `query` in each requested mode and prints the tables; returns the number
    /// of failed requests.
    async fn search_all(&self, query: &str) -> usize {
        println!("\n=== {query}");
        let mut failed = 0;
        for mode in self.args.mode.modes() {
            match self.search(query, mode).await {
                Ok((answer, round_trip)) => print_table(mode, &answer, round_trip),
                Err(err) => {
                    failed += 1;
                    println!("--- {mode}: FAILED: {err:#}");
                }
            }
        }
        failed
    }

    async fn search(&self, query: &str, mode: &str) -> anyhow::Result<(Value, Duration)> {
        let mut body = json!({"query": query, "limit": self.args.limit, "mode": mode});
        if let Some(category) = &self.args.category {
            body["category"] = json!(category);
        }
        if let Some(threshold) = self.args.threshold {
            body["threshold"] = json!(threshold);
        }
        if let Some(weight) = self.args.vector_weight {
            body["vector_weight"] = json!(weight);
        }
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = self.args.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.bearer_auth(key);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {}", self.url))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let round_trip = started.elapsed();
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| v["error"].is_object())
                .map(|v| {
                    let e = &v["error"];
                    let field = e["field"]
                        .as_str()
                        .map(|f| format!(" (field {f})"))
                        .unwrap_or_default();
                    format!(
                        "{}{field}: {}",
                        e["code"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(anyhow!("HTTP {}: {detail}", status.as_u16()));
        }
        let answer: Value = serde_json::from_str(&text).context("the answer is not JSON")?;
        if !answer["tools"].is_array() {
            return Err(anyhow!("the answer has no \"tools\" array: {text}"));
        }
        Ok((answer, round_trip))
    }
}

fn score(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "—".to_owned(), |s| format!("{s:.3}"))
}

fn print_table(requested: &str, answer: &Value, round_trip: Duration) {
    let hits = answer["tools"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let answered = answer["mode"].as_str().unwrap_or("?");
    let note = if answered == requested {
        String::new()
    } else {
        format!(" (asked for {requested})")
    };
    println!(
        "--- mode {answered}{note}, took_ms {:.2} (round trip {:.1} ms), {} hit(s)",
        answer["took_ms"].as_f64().unwrap_or(f64::NAN),
        round_trip.as_secs_f64() * 1000.0,
        hits.len()
    );
    if hits.is_empty() {
        println!("    (no tool matched)");
        return;
    }
    let names: Vec<&str> = hits
        .iter()
        .map(|h| h["tool"]["name"].as_str().unwrap_or("?"))
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    println!(
        "{:>4}  {:<width$}  {:>6}  {:>12}  {:>10}  category",
        "rank", "name", "score", "vector_score", "text_score"
    );
    for (rank, (hit, name)) in hits.iter().zip(&names).enumerate() {
        println!(
            "{:>4}  {:<width$}  {:>6}  {:>12}  {:>10}  {}",
            rank + 1,
            name,
            score(&hit["score"]),
            score(&hit["vector_score"]),
            score(&hit["text_score"]),
            hit["tool"]["category"].as_str().unwrap_or("")
        );
    }
}
