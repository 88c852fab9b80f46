//! Turning tools and free-text queries into the terms the full-text index matches.

use std::{
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use rust_stemmers::{Algorithm, Stemmer};

use crate::domain::{Tool, document};

/// Words that carry no meaning in a task description; dropped from queries.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "i", "in", "is", "it",
    "me", "my", "of", "on", "or", "please", "that", "the", "this", "to", "want", "what", "which",
    "with", "you",
];

/// At most this many distinct terms of a query reach the engine.
const MAX_QUERY_TERMS: usize = 256;

/// How much one occurrence of a word counts in each part of a tool's text: a word of the
/// name says most about what the tool does, a word of a parameter's description least.
const NAME_WEIGHT: f32 = 3.0;
const TAG_WEIGHT: f32 = 1.0;
const DESCRIPTION_WEIGHT: f32 = 1.0;
const PARAMETER_NAME_WEIGHT: f32 = 0.5;
const PARAMETER_DESCRIPTION_WEIGHT: f32 = 0.5;
/// Weight of an ordered pair of neighbouring name words (`csv_to_json` gives `csv>json`):
/// what tells `csv_to_json` from `json_to_csv`, whose words are the same. Low, so that it
/// decides between tools whose words match alike rather than outweighing the words (at 3,
/// as a name word, it cost Seal-Tools dev 2.5 points of hit@1).
const NAME_PAIR_WEIGHT: f32 = 1.0;

/// Joins the two words of an ordered pair; never part of a word, so a pair only meets a pair.
const PAIR_JOINER: char = '>';
/// A query word pairs with each of the next this many words: "parse CSV text into JSON"
/// gives `csv>json` (CSV is three words before JSON once stopwords are gone).
const QUERY_PAIR_REACH: usize = 3;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// The index terms of a text: each alphanumeric run lower-cased, plus the parts of a
/// camelCase run, without stopwords, stemmed (English Snowball). `getPowerOutput` gives
/// `getpoweroutput get power output`, so "power output" and "getPowerOutput" both match.
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for run in alphanumeric_runs(text) {
        let parts = camel_case_parts(run);
        let split = parts.len() > 1;
        for word in std::iter::once(run).filter(|_| split).chain(parts) {
            let word = word.to_lowercase();
            if STOPWORDS.contains(&word.as_str()) {
                continue;
            }
            terms.push(STEMMER.stem(&word).into_owned());
        }
    }
    terms
}

/// The words of a text in order, as `terms` makes them but without the unsplit camelCase
/// runs: what ordered pairs are made of.
fn words(text: &str) -> Vec<String> {
    alphanumeric_runs(text)
        .flat_map(camel_case_parts)
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .map(|word| STEMMER.stem(&word).into_owned())
        .collect()
}

/// Whether a query or tool term is an ordered pair of words (`csv>json`), not a word.
pub fn is_ordered_pair(term: &str) -> bool {
    term.contains(PAIR_JOINER)
}

/// Each word paired, in order, with each of the next `reach` words.
fn ordered_pairs(words: &[String], reach: usize) -> impl Iterator<Item = String> + '_ {
    words.iter().enumerate().flat_map(move |(i, first)| {
        words[i + 1..]
            .iter()
            .take(reach)
            .map(move |second| format!("{first}{PAIR_JOINER}{second}"))
    })
}

/// The weighted terms a tool is found by: its name (its words, and each pair of
/// neighbouring words in order), tags, description and its input parameters' names, titles,
/// descriptions and allowed values.
pub fn tool_terms(tool: &Tool) -> Vec<(String, f32)> {
    let mut weighted: Vec<(String, f32)> = ordered_pairs(&words(&tool.name), 1)
        .map(|pair| (pair, NAME_PAIR_WEIGHT))
        .collect();
    let mut add = |text: &str, weight: f32| {
        weighted.extend(terms(text).into_iter().map(|term| (term, weight)));
    };
    add(&tool.name, NAME_WEIGHT);
    for tag in &tool.tags {
        add(tag, TAG_WEIGHT);
    }
    add(&tool.description, DESCRIPTION_WEIGHT);
    for parameter in document::parameters(tool) {
        add(parameter.name, PARAMETER_NAME_WEIGHT);
        for text in parameter
            .title
            .into_iter()
            .chain(parameter.description)
            .chain(parameter.choices)
        {
            add(text, PARAMETER_DESCRIPTION_WEIGHT);
        }
    }
    weighted
}

/// For each part of a tool's text (`name`, `name_order`, `tags`, `description`,
/// `parameters`), the words of the query that match it, in query order: what `explain`
/// shows. `name_order` lists the ordered word pairs the query shares with the name. For
/// several tools, prepare the query once with [`MatchQuery`].
pub fn matched_fields(tool: &Tool, query: &str) -> Vec<(&'static str, Vec<String>)> {
    MatchQuery::new(query).matched_fields(tool)
}

/// A query made ready to be compared with the text of many tools, as `explain` does for
/// each hit of an answer: its words are split and stemmed once, and each word of the tools'
/// text is split and stemmed once however many hits it appears in (the hits of one answer
/// share most of their words). A hit then costs one look-up per word of its text.
pub struct MatchQuery {
    /// The query's distinct words that have terms, in order.
    words: Vec<QueryWord>,
    /// The index of each distinct term of those words.
    term_index: HashMap<String, usize>,
    /// The query's ordered word pairs in order, repeats kept, as `name_order` shows them.
    pairs: Vec<String>,
    /// Where each distinct pair (`csv>json`) stands in `pairs`.
    pair_positions: HashMap<String, Vec<usize>>,
    /// Each alphanumeric run met in a tool's text, as spelt: the indexes of those of its
    /// terms the query has.
    seen: HashMap<String, Vec<usize>>,
}

struct QueryWord {
    /// As the query spells it: what `explain` shows.
    text: String,
    /// ASCII lower-cased: a word is shown once per part whatever its case.
    folded: String,
    /// Indexes into `MatchQuery::term_index`.
    terms: Vec<usize>,
}

impl MatchQuery {
    pub fn new(query: &str) -> Self {
        let mut term_index = HashMap::new();
        let mut spelt = HashSet::new();
        let mut query_words = Vec::new();
        for word in alphanumeric_runs(query).filter(|word| spelt.insert(*word)) {
            let terms: Vec<usize> = terms(word)
                .into_iter()
                .map(|term| {
                    let next = term_index.len();
                    *term_index.entry(term).or_insert(next)
                })
                .collect();
            if !terms.is_empty() {
                query_words.push(QueryWord {
                    text: word.to_owned(),
                    folded: word.to_ascii_lowercase(),
                    terms,
                });
            }
        }
        let mut pairs = Vec::new();
        let mut pair_positions: HashMap<String, Vec<usize>> = HashMap::new();
        for pair in ordered_pairs(&words(query), QUERY_PAIR_REACH) {
            pairs.push(pair.replace(PAIR_JOINER, " → "));
            pair_positions
                .entry(pair)
                .or_default()
                .push(pairs.len() - 1);
        }
        MatchQuery {
            words: query_words,
            term_index,
            pairs,
            pair_positions,
            seen: HashMap::new(),
        }
    }

    /// What [`matched_fields`] gives for this query and `tool`.
    pub fn matched_fields(&mut self, tool: &Tool) -> Vec<(&'static str, Vec<String>)> {
        let mut matched = Vec::new();
        let mut present = Vec::new();
        for (field, text) in document::searchable_fields(tool) {
            self.mark_terms(&text, &mut present);
            let mut shown = HashSet::new();
            let field_words: Vec<String> = self
                .words
                .iter()
                .filter(|word| word.terms.iter().any(|&term| present[term]))
                .filter(|word| shown.insert(word.folded.as_str()))
                .map(|word| word.text.clone())
                .collect();
            if !field_words.is_empty() {
                matched.push((field, field_words));
            }
        }
        let name_pairs: HashSet<String> = ordered_pairs(&words(&tool.name), 1).collect();
        let mut positions: Vec<usize> = name_pairs
            .iter()
            .filter_map(|pair| self.pair_positions.get(pair))
            .flatten()
            .copied()
            .collect();
        if !positions.is_empty() {
            positions.sort_unstable();
            let shared = positions.iter().map(|&at| self.pairs[at].clone()).collect();
            matched.insert(1.min(matched.len()), ("name_order", shared));
        }
        matched
    }

    /// Sets `present[i]` for each query term `i` among the terms of `text`, and no other.
    fn mark_terms(&mut self, text: &str, present: &mut Vec<bool>) {
        present.clear();
        present.resize(self.term_index.len(), false);
        for run in alphanumeric_runs(text) {
            if !self.seen.contains_key(run) {
                let held = terms(run)
                    .iter()
                    .filter_map(|term| self.term_index.get(term).copied())
                    .collect();
                self.seen.insert(run.to_owned(), held);
            }
            for &term in &self.seen[run] {
                present[term] = true;
            }
        }
    }
}

/// The distinct terms of a query, in order, at most `MAX_QUERY_TERMS`, then its distinct
/// ordered word pairs (each word with the next `QUERY_PAIR_REACH`), at most as many again.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut distinct: Vec<String> = Vec::new();
    for term in terms(query) {
        if !distinct.contains(&term) {
            distinct.push(term);
            if distinct.len() == MAX_QUERY_TERMS {
                break;
            }
        }
    }
    let singles = distinct.len();
    for pair in ordered_pairs(&words(query), QUERY_PAIR_REACH) {
        if !distinct[singles..].contains(&pair) {
            distinct.push(pair);
            if distinct.len() == singles + MAX_QUERY_TERMS {
                break;
            }
        }
    }
    distinct
}

fn alphanumeric_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// `getPowerOutput2` → `get`, `Power`, `Output2`; an acronym stays whole: `getTVShow` →
/// `get`, `TV`, `Show`.
fn camel_case_parts(run: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = run.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, &(at, ch)) in chars.iter().enumerate().skip(1) {
        let previous = chars[i - 1].1;
        let next_is_lower = chars.get(i + 1).is_some_and(|(_, c)| c.is_lowercase());
        let starts_word = ch.is_uppercase()
            && (previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower));
        if starts_word {
            parts.push(&run[start..at]);
            start = at;
        }
    }
    parts.push(&run[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::MAX_QUERY_CHARS;

    #[test]
    fn identifiers_split_on_case_and_punctuation() {
        assert_eq!(
            terms("github.create_issue"),
            vec!["github", "creat", "issu"]
        );
        assert_eq!(
            terms("getPowerOutput"),
            vec!["getpoweroutput", "get", "power", "output"]
        );
        assert_eq!(
            terms("read-file2Text"),
            vec!["read", "file2text", "file2", "text"]
        );
        assert_eq!(terms("__x__"), vec!["x"]);
        assert_eq!(
            terms("getTVShowInfo"),
            vec!["gettvshowinfo", "get", "tv", "show", "info"]
        );
        assert_eq!(terms("HTTPServer"), vec!["httpserver", "http", "server"]);
        assert_eq!(terms("ABC"), vec!["abc"]);
    }

    #[test]
    fn words_are_stemmed_so_forms_meet() {
        assert_eq!(terms("Searching files"), terms("search file"));
        assert_eq!(terms("Überprüfung"), vec!["überprüfung"]);
    }

    #[test]
    fn tool_terms_weigh_each_part() {
        let tool = Tool {
            description: "Counts stars".into(),
            category: "c".into(),
            tags: vec!["git hub".into()],
            input_schema: serde_json::json!({"properties": {
                "ownerName": {"type": "string", "description": "the owner"},
                "page": {"type": "integer"}
            }}),
            ..Tool::example("repoStats")
        };
        let weight_of = |term: &str| -> f32 {
            tool_terms(&tool)
                .iter()
                .filter(|(t, _)| t == term)
                .map(|(_, w)| w)
                .sum()
        };
        assert_eq!(weight_of("repo"), NAME_WEIGHT);
        assert_eq!(weight_of("hub"), TAG_WEIGHT);
        assert_eq!(weight_of("star"), DESCRIPTION_WEIGHT);
        assert_eq!(
            weight_of("owner"),
            PARAMETER_NAME_WEIGHT + PARAMETER_DESCRIPTION_WEIGHT
        );
        assert_eq!(weight_of("page"), PARAMETER_NAME_WEIGHT);
        assert_eq!(weight_of("the"), 0.0);
    }

    #[test]
    fn query_terms_drop_stopwords_and_repeats() {
        let terms = query_terms("How do I create an issue on GitHub? Create it!");
        assert_eq!(terms[..6], ["do", "creat", "issu", "github", "git", "hub"]);
        assert!(
            terms[6..].iter().all(|t| t.contains(PAIR_JOINER)),
            "{terms:?}"
        );
        let mut pairs = terms[6..].to_vec();
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), terms.len() - 6, "pairs are distinct");
        assert_eq!(
            query_terms("'; DROP TABLE tools; --"),
            vec![
                "drop",
                "tabl",
                "tool",
                "drop>tabl",
                "drop>tool",
                "tabl>tool"
            ]
        );
        assert!(query_terms("the of and").is_empty());
    }

    #[test]
    fn matched_fields_name_the_query_words_of_each_part() {
        let tool = Tool {
            description: "Parse CSV text into JSON records".into(),
            tags: vec!["convert".into()],
            input_schema: serde_json::json!({"properties": {
                "csv": {"type": "string", "description": "the text"}
            }}),
            ..Tool::example("csv_to_json")
        };
        let matched = matched_fields(&tool, "Convert CSV files to JSON");
        assert_eq!(
            matched,
            vec![
                ("name", vec!["CSV".to_owned(), "JSON".to_owned()]),
                ("name_order", vec!["csv → json".to_owned()]),
                ("tags", vec!["Convert".to_owned()]),
                ("description", vec!["CSV".to_owned(), "JSON".to_owned()]),
                ("parameters", vec!["CSV".to_owned()]),
            ]
        );
        assert!(matched_fields(&tool, "bake bread").is_empty());
    }

    /// `matched_fields` as it was before `MatchQuery`: each word of the query split and
    /// stemmed again for each part of each tool. What the prepared query must agree with.
    fn matched_fields_stemming_per_part(
        tool: &Tool,
        query: &str,
    ) -> Vec<(&'static str, Vec<String>)> {
        let mut matched = Vec::new();
        for (field, text) in document::searchable_fields(tool) {
            let field_terms: HashSet<String> = terms(&text).into_iter().collect();
            let mut words: Vec<String> = Vec::new();
            for word in alphanumeric_runs(query) {
                let hit = terms(word).iter().any(|t| field_terms.contains(t));
                if hit && !words.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    words.push(word.to_owned());
                }
            }
            if !words.is_empty() {
                matched.push((field, words));
            }
        }
        let name_pairs: HashSet<String> = ordered_pairs(&words(&tool.name), 1).collect();
        let shared: Vec<String> = ordered_pairs(&words(query), QUERY_PAIR_REACH)
            .filter(|pair| name_pairs.contains(pair))
            .map(|pair| pair.replace(PAIR_JOINER, " → "))
            .collect();
        if !shared.is_empty() {
            matched.insert(1.min(matched.len()), ("name_order", shared));
        }
        matched
    }

    /// The example catalogue's tools, and a few with camelCase, repeated and non-ASCII words.
    fn sample_tools() -> Vec<Tool> {
        let mut tools: Vec<Tool> = include_str!("../../examples/data/tools.jsonl")
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                Tool {
                    description: line["description"].as_str().unwrap().into(),
                    tags: serde_json::from_value(line["tags"].clone()).unwrap(),
                    input_schema: line["input_schema"].clone(),
                    ..Tool::example(line["name"].as_str().unwrap())
                }
            })
            .collect();
        tools.push(Tool {
            description: "Get the files of a pull request; files and FILES again".into(),
            tags: vec!["gitHub".into(), "PR review".into()],
            input_schema: serde_json::json!({"properties": {
                "pullNumber": {"type": "integer", "title": "Pull request number"},
                "event": {"type": "string", "enum": ["APPROVE", "REQUEST_CHANGES"]}
            }}),
            ..Tool::example("getPullRequestFiles")
        });
        tools.push(Tool {
            description: "Überprüfung der Straße: ΣΊΣΥΦΟΣ and naïve café checks".into(),
            tags: vec![],
            ..Tool::example("strasse_check_to_report")
        });
        tools.push(Tool {
            description: "csv to json to csv".into(),
            ..Tool::example("csv_to_json_to_csv")
        });
        tools
    }

    /// A query of `MAX_QUERY_CHARS` characters (find_tool's longest) made of the sample
    /// tools' words, names and case variants, so that many of them match.
    fn long_query(tools: &[Tool]) -> String {
        let mut query = String::new();
        let words = tools
            .iter()
            .flat_map(|tool| {
                let text = format!("{} {}", tool.name, tool.description);
                let upper = text.to_uppercase();
                [text, upper]
            })
            .collect::<Vec<_>>()
            .join(" ");
        for word in words.split_whitespace().cycle() {
            if query.chars().count() + 1 + word.chars().count() > MAX_QUERY_CHARS {
                break;
            }
            query.push_str(word);
            query.push(' ');
        }
        query
    }

    #[test]
    fn a_prepared_query_names_the_words_stemming_each_word_per_part_did() {
        let tools = sample_tools();
        let queries = [
            "Convert CSV files to JSON",
            "create an ISSUE issue Issue createIssue in the repo",
            "getPullRequestFiles: files of pull requests to approve",
            "json to csv, csv to json, CSV→JSON",
            "Überprüfung der STRASSE Straße σίσυφος ΣΊΣΥΦΟΣ Naïve cafe",
            "post a message; what is the weather forecast?",
            "the of and",
            "",
        ];
        let mut named = 0;
        for query in queries {
            let mut prepared = MatchQuery::new(query);
            // Twice, in both orders: words stemmed for one tool serve the next.
            for tool in tools.iter().chain(tools.iter().rev()) {
                let matched = prepared.matched_fields(tool);
                assert_eq!(
                    matched,
                    matched_fields_stemming_per_part(tool, query),
                    "{query:?} on {}",
                    tool.name
                );
                assert_eq!(matched, matched_fields(tool, query));
                named += matched.len();
            }
        }
        assert!(named > 20, "the queries match: {named}");
    }

    #[test]
    fn a_query_of_the_longest_length_names_the_words_it_did() {
        let tools = sample_tools();
        let query = long_query(&tools);
        assert!(query.chars().count() > MAX_QUERY_CHARS - 30);
        let mut prepared = MatchQuery::new(&query);
        let mut orders = 0;
        for tool in &tools {
            let matched = prepared.matched_fields(tool);
            assert_eq!(
                matched,
                matched_fields_stemming_per_part(tool, &query),
                "{}",
                tool.name
            );
            assert!(matched.len() >= 2, "{}: {matched:?}", tool.name);
            orders += matched.iter().filter(|(f, _)| *f == "name_order").count();
        }
        assert!(orders >= 3, "name pairs are shared: {orders}");
    }

    #[test]
    fn names_give_ordered_pairs_and_queries_reach_further() {
        let tool = Tool::example("csv_to_json");
        let pairs: Vec<String> = tool_terms(&tool)
            .into_iter()
            .filter(|(t, _)| t.contains(PAIR_JOINER))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(pairs, vec!["csv>json"]);
        assert!(query_terms("parse CSV text into JSON records").contains(&"csv>json".into()));
        assert!(!query_terms("parse CSV text into JSON records").contains(&"json>csv".into()));
        assert_eq!(
            ordered_pairs(&words("getPullRequestFiles"), 1).collect::<Vec<_>>(),
            vec!["get>pull", "pull>request", "request>file"]
        );
    }
}
