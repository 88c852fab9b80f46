//! What `explain` costs a `find_tool` answer: the time to name the matched words of each
//! part of 100 hits for one long query (2,000 characters of catalogue words), on the
//! catalogue's largest tool repeated and on its 100 largest tools; with the query prepared
//! for each hit (`lexical::matched_fields`) and once for all (`lexical::MatchQuery`).
//!
//! ```sh
//! cargo run --release --example explain_cost -- ../shared/data/mcp_servers/tools.jsonl
//! ```
#[path = "common/tool_lines.rs"]
mod tool_lines;

use std::time::{Duration, Instant};

use serde_json::Value;
use tool_registry::{
    domain::{Tool, document},
    index::lexical,
};

/// Hits explained per request: `find_tool`'s largest `limit`.
const HITS: usize = 100;
/// Longest query `find_tool` takes.
const QUERY_CHARS: usize = 2_000;
const ROUNDS: usize = 15;

fn text_size(tool: &Tool) -> usize {
    document::searchable_fields(tool)
        .iter()
        .map(|(_, text)| text.len())
        .sum()
}

/// The catalogue's description words in order, joined up to `QUERY_CHARS`.
fn long_query(tools: &[Tool]) -> String {
    let mut query = String::new();
    let words = tools
        .iter()
        .flat_map(|tool| tool.description.split_whitespace());
    for word in words {
        if query.chars().count() + word.chars().count() + 1 > QUERY_CHARS {
            break;
        }
        if !query.is_empty() {
            query.push(' ');
        }
        query.push_str(word);
    }
    query
}

/// The median time of `ROUNDS` runs of `explain`.
fn median(mut explain: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut matched = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        matched = explain();
        times.push(start.elapsed());
    }
    times.sort();
    (times[ROUNDS / 2], matched)
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/mcp_servers/tools.jsonl".to_owned());
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut tools: Vec<Tool> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| tool_lines::stored_tool(l, n))
        .collect();
    let query = long_query(&tools);
    tools.sort_by_key(|tool| std::cmp::Reverse(text_size(tool)));
    tools.truncate(HITS);
    let largest = vec![tools[0].clone(); HITS];
    println!(
        "query: {} characters, {} words; largest tool {} ({} characters of searched text)",
        query.chars().count(),
        query.split_whitespace().count(),
        tools[0].name,
        text_size(&tools[0])
    );
    for (label, hits) in [
        ("largest tool x100", &largest),
        ("100 largest tools", &tools),
    ] {
        let (took, matched) = median(|| {
            hits.iter()
                .map(|tool| lexical::matched_fields(tool, &query).len())
                .sum()
        });
        println!(
            "{label}: query prepared per hit     {:>9.3} ms per request ({matched} parts matched)",
            took.as_secs_f64() * 1e3
        );
        let (took, matched) = median(|| {
            let mut prepared = lexical::MatchQuery::new(&query);
            hits.iter()
                .map(|tool| prepared.matched_fields(tool).len())
                .sum()
        });
        println!(
            "{label}: query prepared per request {:>9.3} ms per request ({matched} parts matched)",
            took.as_secs_f64() * 1e3
        );
    }
}
