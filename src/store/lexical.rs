//! Turning tool names and free-text queries into terms both full-text engines agree on.

/// Words that carry no meaning in a task description; dropped from queries.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "i", "in", "is", "it",
    "me", "my", "of", "on", "or", "please", "that", "the", "this", "to", "want", "what", "which",
    "with", "you",
];

/// At most this many distinct terms of a query reach the engine.
const MAX_QUERY_TERMS: usize = 32;

/// The words of an identifier for full-text search: each alphanumeric run as written, then
/// the parts of any camelCase run. `github.createIssue` gives `github createIssue create Issue`,
/// so both "create issue" and "createIssue" find it.
pub fn identifier_words(name: &str) -> String {
    let runs: Vec<&str> = alphanumeric_runs(name).collect();
    let mut words = runs.join(" ");
    for run in runs {
        let parts = camel_case_parts(run);
        if parts.len() > 1 {
            words.push(' ');
            words.push_str(&parts.join(" "));
        }
    }
    words
}

fn alphanumeric_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// `getPowerOutput2` → `get`, `Power`, `Output2`.
fn camel_case_parts(run: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut previous: Option<char> = None;
    for (at, ch) in run.char_indices() {
        if ch.is_uppercase() && previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
            parts.push(&run[start..at]);
            start = at;
        }
        previous = Some(ch);
    }
    parts.push(&run[start..]);
    parts
}

/// The input parameters of a schema as text: each name in words, then its description.
pub fn parameter_words(schema: &serde_json::Value) -> String {
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return String::new();
    };
    let mut words = String::new();
    for (name, spec) in properties {
        words.push_str(&identifier_words(name));
        words.push(' ');
        if let Some(description) = spec.get("description").and_then(|d| d.as_str()) {
            words.push_str(description);
            words.push(' ');
        }
    }
    words.trim_end().to_owned()
}

/// Lower-case alphanumeric terms of a query, without stopwords or repeats, in order.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in alphanumeric_runs(query) {
        let term = word.to_lowercase();
        if term.is_empty() || STOPWORDS.contains(&term.as_str()) || terms.contains(&term) {
            continue;
        }
        terms.push(term);
        if terms.len() == MAX_QUERY_TERMS {
            break;
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_on_case_and_punctuation() {
        assert_eq!(
            identifier_words("github.create_issue"),
            "github create issue"
        );
        assert_eq!(
            identifier_words("getPowerOutput"),
            "getPowerOutput get Power Output"
        );
        assert_eq!(
            identifier_words("read-file2Text"),
            "read file2Text file2 Text"
        );
        assert_eq!(identifier_words("__x__"), "x");
    }

    #[test]
    fn parameters_become_words() {
        let schema = serde_json::json!({"properties": {
            "repoName": {"type": "string", "description": "owner/name"},
            "page": {"type": "integer"}
        }});
        assert_eq!(
            parameter_words(&schema),
            "page repoName repo Name owner/name"
        );
        assert_eq!(parameter_words(&serde_json::json!({"type": "object"})), "");
    }

    #[test]
    fn query_terms_drop_stopwords_and_repeats() {
        assert_eq!(
            query_terms("How do I create an issue on GitHub? Create it!"),
            vec!["do", "create", "issue", "github"]
        );
        assert_eq!(
            query_terms("'; DROP TABLE tools; --"),
            vec!["drop", "table", "tools"]
        );
        assert!(query_terms("the of and").is_empty());
    }
}
