//! Literal values in a request: quoted names, web and e-mail addresses, file paths. An
//! agent's request carries the values it will pass ("Rename 'Q3 plan' to …", "Open
//! https://…", "Read src/main.rs"); the model reads their characters as words, which pulls
//! the request's vector away from the task. The vector side embeds the request with each
//! literal replaced by what it is; full-text search keeps them, as a tool may hold the word.

use std::borrow::Cow;

/// A quoted literal longer than this is read as prose, not replaced.
const MAX_QUOTED_CHARS: usize = 80;

/// What a quoted literal becomes.
const QUOTED: &str = "something";
const WEB_ADDRESS: &str = "a web address";
const EMAIL_ADDRESS: &str = "an email address";
const FILE: &str = "a file";

/// Extensions that make a bare name (`package.json`, no slash) read as a file.
const FILE_EXTENSIONS: &[&str] = &[
    "c", "cfg", "conf", "cpp", "cs", "css", "csv", "doc", "docx", "env", "gif", "go", "gz", "h",
    "html", "ini", "ipynb", "java", "jpeg", "jpg", "js", "json", "jsx", "kt", "log", "lock", "md",
    "mp3", "mp4", "pdf", "php", "png", "ppt", "pptx", "py", "rb", "rs", "sh", "sql", "svg",
    "swift", "tar", "toml", "ts", "tsx", "txt", "wav", "xls", "xlsx", "xml", "yaml", "yml", "zip",
];

/// The request as the vector side reads it: each literal replaced by what it is. Borrowed
/// when there is none, and when the request is nothing but a literal ("'weather in Paris'"):
/// then the literal is what it asks.
pub fn generalised(text: &str) -> Cow<'_, str> {
    let read = literals_replaced(text);
    if let Cow::Owned(read) = &read {
        let own_words = [QUOTED, WEB_ADDRESS, EMAIL_ADDRESS, FILE]
            .iter()
            .fold(read.clone(), |rest, placeholder| {
                rest.replace(placeholder, " ")
            });
        if !own_words.chars().any(char::is_alphanumeric) {
            return Cow::Borrowed(text);
        }
    }
    read
}

fn literals_replaced(text: &str) -> Cow<'_, str> {
    let unquoted = without_quoted(text);
    if !unquoted
        .split_whitespace()
        .any(|token| replaced(core(token).1).is_some())
    {
        return unquoted;
    }
    let mut out = String::with_capacity(unquoted.len());
    let mut rest = unquoted.as_ref();
    while !rest.is_empty() {
        let space = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..space]);
        rest = &rest[space..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        let (lead, word, trail) = core(token);
        match replaced(word) {
            Some(read) => {
                out.push_str(lead);
                out.push_str(&read);
                out.push_str(trail);
            }
            None => out.push_str(token),
        }
        rest = &rest[end..];
    }
    Cow::Owned(out)
}

/// The closing mark of an opening quotation mark.
fn closing(open: char) -> Option<char> {
    match open {
        '\'' => Some('\''),
        '"' => Some('"'),
        '`' => Some('`'),
        '‘' => Some('’'),
        '“' => Some('”'),
        _ => None,
    }
}

/// Replaces each quoted span: by what it holds when that is an address or a path, else by
/// "something".
fn without_quoted(text: &str) -> Cow<'_, str> {
    let spans = quoted_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in spans {
        out.push_str(&text[copied..span.start]);
        let quoted = &text[span.clone()];
        let open = quoted.chars().next().map_or(0, char::len_utf8);
        let close = quoted.chars().next_back().map_or(0, char::len_utf8);
        let inner = quoted[open..quoted.len() - close].trim();
        out.push_str(kind(inner).unwrap_or(QUOTED));
        copied = span.end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The byte ranges of a text's quoted spans, marks included. A mark opens a span only
/// after a non-word character and closes it only before one, so the apostrophes of "don't"
/// and "Maria's" never do; a span holds at most `MAX_QUOTED_CHARS` characters, and does
/// not start with white space.
pub fn quoted_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    // Most requests hold no quotation mark: they are not scanned character by character.
    if !text.contains(['\'', '"', '`', '‘', '“']) {
        return Vec::new();
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, mark) = chars[i];
        let after_word = i > 0 && chars[i - 1].1.is_alphanumeric();
        let Some(close) = closing(mark).filter(|_| !after_word) else {
            i += 1;
            continue;
        };
        let end = (i + 1..chars.len().min(i + 2 + MAX_QUOTED_CHARS)).find(|&j| {
            chars[j].1 == close && chars.get(j + 1).is_none_or(|(_, c)| !c.is_alphanumeric())
        });
        match end {
            Some(j) if j > i + 1 && !chars[i + 1].1.is_whitespace() => {
                spans.push(at..chars[j].0 + close.len_utf8());
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    spans
}

/// A token without the punctuation and markup around it: (leading, core, trailing).
fn core(token: &str) -> (&str, &str, &str) {
    let start = token.len()
        - token
            .trim_start_matches(['(', '[', '{', '<', '*', '`', '"', '\''])
            .len();
    let inner = &token[start..];
    let word = inner.trim_end_matches([
        '.', ',', ';', ':', '!', '?', ')', ']', '}', '>', '*', '`', '"', '\'',
    ]);
    (&token[..start], word, &inner[word.len()..])
}

/// A token's core as the model reads it, if it holds a literal: the whole of it, or a web
/// address inside it (`[docs](https://…)` keeps its `[docs](`).
fn replaced(word: &str) -> Option<Cow<'static, str>> {
    if let Some(name) = kind(word) {
        return Some(Cow::Borrowed(name));
    }
    let lower = word.to_ascii_lowercase();
    let at = lower.find("https://").or_else(|| lower.find("http://"))?;
    kind(&word[at..]).map(|name| Cow::Owned(format!("{}{name}", &word[..at])))
}

/// What a literal is, by its shape; `None` for a word.
fn kind(word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    let scheme = ["https://", "http://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme));
    if let Some(scheme) = scheme {
        return (word.len() > scheme.len()).then_some(WEB_ADDRESS);
    }
    if is_email_address(word) {
        return Some(EMAIL_ADDRESS);
    }
    is_file_path(word).then_some(FILE)
}

/// `jane@example.com`; not `lodash@4.17.21`, `@alice` or `git@github.com:org/repo.git`.
fn is_email_address(word: &str) -> bool {
    let Some((local, domain)) = word.split_once('@') else {
        return false;
    };
    let top_level = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.contains(['@', ':', '/'])
        && top_level.len() >= 2
        && top_level.chars().all(|c| c.is_ascii_alphabetic())
}

/// `src/main.rs`, `./build`, `~/notes`, `/etc/hosts`, `C:\logs\app.log`, `package.json`:
/// a path with a root and a second part or an extension, or a name with a file extension.
/// `Node.js` (a capitalised name ending in `.js`) is a product, not a file; `/deploy` is
/// a command.
fn is_file_path(word: &str) -> bool {
    if ["./", "../", "~/"]
        .iter()
        .any(|root| word.starts_with(root))
        && word.len() > 2
        || word.get(1..3) == Some(":\\")
    {
        return true;
    }
    let last = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let extension = last
        .rsplit_once('.')
        .filter(|(name, extension)| {
            !name.is_empty()
                && !extension.is_empty()
                && extension.len() <= 5
                && extension.chars().all(|c| c.is_ascii_alphanumeric())
                && extension.chars().any(|c| c.is_ascii_alphabetic())
        })
        .map(|(name, extension)| (name, extension.to_ascii_lowercase()));
    if let Some(rest) = word.strip_prefix('/') {
        return rest.contains('/') || extension.is_some();
    }
    if word.contains(['/', '\\']) {
        return extension.is_some();
    }
    let Some((name, extension)) = extension else {
        return false;
    };
    let mut letters = name.chars();
    let product = extension == "js"
        && letters.next().is_some_and(char::is_uppercase)
        && letters.next().is_some_and(char::is_lowercase);
    !product && FILE_EXTENSIONS.contains(&extension.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_addresses_and_paths_read_as_what_they_are() {
        for (request, read) in [
            (
                "Pick 'Express shipping' from the delivery options dropdown.",
                "Pick something from the delivery options dropdown.",
            ),
            (
                "Comment \"reviewed, LGTM\" on it",
                "Comment something on it",
            ),
            ("Rename “Q3 plan” now", "Rename something now"),
            (
                "Open https://example.com/a?b=1, then wait",
                "Open a web address, then wait",
            ),
            (
                "Enter jane@example.com into the email box.",
                "Enter an email address into the email box.",
            ),
            (
                "Grab src/main.rs from the repo",
                "Grab a file from the repo",
            ),
            (
                "Open package.json, tsconfig.json and ./build (twice)",
                "Open a file, a file and a file (twice)",
            ),
            ("Read C:\\logs\\app.log", "Read a file"),
            ("Read `src/main.rs` now", "Read a file now"),
            (
                "Fetch 'https://x.test/a' please",
                "Fetch a web address please",
            ),
            (
                "See [docs](https://x.test/d) first",
                "See [docs](a web address) first",
            ),
            ("Open **package.json** today", "Open **a file** today"),
            (
                "Attach Report.pdf and /etc/hosts",
                "Attach a file and a file",
            ),
        ] {
            assert_eq!(generalised(request), read, "{request}");
        }
    }

    #[test]
    fn words_apostrophes_and_names_stay() {
        for request in [
            "What's in Maria's thread? I don't know.",
            "the users' table and the admins' one",
            "How do I write middleware in the latest Next.js?",
            "What are the lat/long of the tower, in m/s^2 or 3.14?",
            "Compare main with feature/search in acme/webapp",
            "a lone ' quote and an empty '' pair",
            "e-mail me @ noon",
            "pin lodash@4.17.21, mention @alice, run /deploy",
        ] {
            assert!(
                matches!(generalised(request), Cow::Borrowed(_)),
                "{request} became {}",
                generalised(request)
            );
        }
    }

    #[test]
    fn long_quotes_stay_and_nothing_panics_on_odd_text() {
        let long = format!("say '{}' please", "word ".repeat(30));
        assert_eq!(generalised(&long), long);
        for odd in [
            "'", "\"", "“", "'a", "a'", "@", "http://", "/", "./", "é'ü'", "'\u{0}'",
        ] {
            let _ = generalised(odd);
        }
        let quoted = |chars: usize| format!("say '{}' now", "x".repeat(chars));
        assert_eq!(generalised(&quoted(MAX_QUOTED_CHARS)), "say something now");
        assert_eq!(
            generalised(&quoted(MAX_QUOTED_CHARS + 1)),
            quoted(MAX_QUOTED_CHARS + 1)
        );
    }

    #[test]
    fn a_request_that_is_only_a_literal_is_read_as_written() {
        for request in [
            "\"weather forecast for Paris\"",
            "'\u{0}'",
            " `src/main.rs` ",
        ] {
            assert!(
                matches!(generalised(request), Cow::Borrowed(_)),
                "{request}"
            );
        }
    }
}
