//! Requests of several steps: "find the weather in Paris, convert it to Fahrenheit and post
//! it to Slack" needs three tools, and one vector for the whole finds the tools of one step.
//! A request is cut into its steps at sentence ends and at the words that chain actions
//! ("then", "after that", "and" or a comma before a new action); each step is searched as
//! well as the whole, and the answers are merged so that every step is represented.

use std::{collections::HashSet, ops::Range};

use uuid::Uuid;

use super::literals;
use crate::index::fusion::Fused;

/// At most this many steps are searched (any further ones join the last): the cost grows
/// with each, and requests of more steps than a short answer can hold are rare.
pub const MAX_STEPS: usize = 6;

/// A step must have at least this many words: a shorter piece ("and so on", "thanks")
/// joins the step before it, or the step after it when it comes first ("Hi! Post the build
/// status to Slack" is one step).
const MIN_STEP_WORDS: usize = 2;

/// Words that open a new step wherever they stand after a comma or "and".
const CHAINING: &[&str] = &[
    "then",
    "afterwards",
    "after that",
    "next",
    "finally",
    "lastly",
    "also",
    "additionally",
    "subsequently",
    "once that is done",
];

/// Verbs that, first after a comma or "and", start a new action: "revenue of 3 and
/// expenses of 4" or "files and folders" stay one step, "get the forecast and send it"
/// becomes two. Common imperatives of requests made to tools.
const ACTIONS: &[&str] = &[
    "add",
    "analyse",
    "analyze",
    "append",
    "apply",
    "approve",
    "archive",
    "assign",
    "attach",
    "book",
    "build",
    "buy",
    "calculate",
    "cancel",
    "capture",
    "change",
    "check",
    "click",
    "clone",
    "close",
    "commit",
    "compare",
    "compile",
    "compress",
    "compute",
    "convert",
    "copy",
    "count",
    "create",
    "decode",
    "delete",
    "deploy",
    "describe",
    "design",
    "detect",
    "determine",
    "download",
    "draft",
    "draw",
    "edit",
    "email",
    "encode",
    "encrypt",
    "estimate",
    "evaluate",
    "execute",
    "explain",
    "export",
    "extract",
    "fetch",
    "fill",
    "filter",
    "find",
    "fix",
    "follow",
    "fork",
    "format",
    "generate",
    "get",
    "give",
    "go",
    "identify",
    "import",
    "insert",
    "install",
    "invite",
    "label",
    "launch",
    "list",
    "load",
    "locate",
    "log",
    "look",
    "make",
    "mark",
    "measure",
    "merge",
    "message",
    "monitor",
    "move",
    "navigate",
    "notify",
    "obtain",
    "open",
    "order",
    "parse",
    "pay",
    "plan",
    "play",
    "plot",
    "post",
    "predict",
    "prepare",
    "print",
    "provide",
    "publish",
    "pull",
    "push",
    "put",
    "query",
    "read",
    "recommend",
    "record",
    "register",
    "reject",
    "remind",
    "remove",
    "rename",
    "reply",
    "report",
    "request",
    "reserve",
    "resize",
    "restart",
    "retrieve",
    "return",
    "review",
    "run",
    "save",
    "scan",
    "schedule",
    "search",
    "select",
    "send",
    "set",
    "share",
    "show",
    "sort",
    "start",
    "stop",
    "store",
    "submit",
    "suggest",
    "summarise",
    "summarize",
    "switch",
    "take",
    "tell",
    "test",
    "track",
    "transfer",
    "transform",
    "translate",
    "turn",
    "type",
    "update",
    "upload",
    "validate",
    "verify",
    "visit",
    "write",
];

/// The steps of a request, in order; empty when it reads as one step. A sentence starts a
/// new step only when it opens with a chaining word or an action verb ("Then retrieve…",
/// "Please send…"); others ("I don't want to merge a red build.") explain the step before.
/// Each step is text of the request: a step of several pieces runs from the first to the
/// last. A step said twice is searched once; the steps beyond [`MAX_STEPS`] join the last
/// one searched, so that none of their words is lost.
pub fn split(query: &str) -> Vec<String> {
    let mut steps: Vec<Range<usize>> = Vec::new();
    // Where a first piece too short to stand alone starts: the step after it begins there.
    let mut lead: Option<usize> = None;
    for (i, sentence) in sentences(query).into_iter().enumerate() {
        for (j, piece) in actions(sentence).into_iter().enumerate() {
            let opens = j > 0 || i == 0 || opens_action(strip_please(&piece.to_lowercase()));
            let piece = strip_chaining(piece);
            if piece.is_empty() {
                continue;
            }
            let Some(start) = offset_in(query, piece) else {
                continue;
            };
            let end = start + piece.len();
            let short = words(piece) < MIN_STEP_WORDS;
            match steps.last_mut() {
                // Too short to stand alone, or no new action: it belongs to the step before.
                Some(last) if !opens || short => last.end = end,
                Some(_) => steps.push(start..end),
                None if short => {
                    lead.get_or_insert(start);
                }
                None => steps.push(lead.take().unwrap_or(start)..end),
            }
        }
    }
    let mut seen = HashSet::new();
    steps.retain(|step| seen.insert(query[step.clone()].trim().to_lowercase()));
    if steps.len() < 2 {
        return Vec::new();
    }
    if steps.len() > MAX_STEPS {
        let end = steps[steps.len() - 1].end;
        steps.truncate(MAX_STEPS);
        steps[MAX_STEPS - 1].end = end;
    }
    steps
        .into_iter()
        .map(|step| query[step].to_owned())
        .collect()
}

/// Where `part`, a slice of `whole`, starts in it; `None` when it is not one.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let within = whole.as_bytes().as_ptr_range();
    let (start, end) = (part.as_ptr() as usize, part.as_ptr() as usize + part.len());
    (within.start as usize <= start && end <= within.end as usize)
        .then(|| start - within.start as usize)
}

/// The words of a text: what stands between spaces and holds a letter or a digit ("-" and
/// "..." are no words).
pub fn words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .count()
}

/// The vectors of a request's steps, with the whole request's first: the steps' mean,
/// each weighted by its words (a request with no steps has its own vector, which is kept).
pub fn with_whole(steps: &[String], mut vectors: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    if steps.is_empty() || steps.len() != vectors.len() {
        return vectors;
    }
    let dims = vectors[0].len();
    let mut whole = vec![0f32; dims];
    for (step, vector) in steps.iter().zip(&vectors) {
        let weight = words(step) as f32;
        for (sum, x) in whole.iter_mut().zip(vector) {
            *sum += weight * x;
        }
    }
    let norm = whole.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        whole.iter_mut().for_each(|x| *x /= norm);
    }
    vectors.insert(0, whole);
    vectors
}

fn strip_please(text: &str) -> &str {
    text.strip_prefix("please ").unwrap_or(text).trim_start()
}

/// Sentences: cut after `.`, `!`, `?` or `;` followed by white space, and at line breaks,
/// never inside a quoted span ("Post 'Done. Shipping now.' to the channel").
fn sentences(text: &str) -> Vec<&str> {
    let quoted = literals::quoted_spans(text);
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, ch)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, c)| c.is_whitespace());
        if quoted.iter().any(|span| span.contains(&at)) {
            continue;
        }
        if ch == '\n' || (matches!(ch, '.' | '!' | '?' | ';') && next_is_space) {
            out.push(&text[start..at]);
            start = at + ch.len_utf8();
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Cuts a sentence before each comma or "and" that starts a new action: the piece after it
/// opens with a chaining word or an action verb. A quoted span is never cut.
fn actions(sentence: &str) -> Vec<&str> {
    let quoted = literals::quoted_spans(sentence);
    // ASCII lower-casing keeps every byte offset (Unicode's can change byte lengths, and
    // a cut found in `lower` would then fall inside a character of `sentence`).
    let lower = sentence.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for (at, separator) in lower
        .match_indices(", and ")
        .chain(lower.match_indices(", "))
        .chain(lower.match_indices(" and "))
        .chain(lower.match_indices(" then "))
    {
        let end = at + separator.len();
        if cuts.iter().any(|&(s, e)| at < e && s < end)
            || quoted.iter().any(|span| at < span.end && span.start < end)
        {
            continue;
        }
        let rest = &lower[end..];
        if separator == " then " || opens_action(rest) {
            cuts.push((at, end));
        }
    }
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for (at, end) in cuts {
        pieces.push(sentence[start..at].trim());
        start = end;
    }
    pieces.push(sentence[start..].trim());
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn opens_action(rest: &str) -> bool {
    if CHAINING.iter().any(|c| starts_with_words(rest, c)) {
        return true;
    }
    let first = rest.split_whitespace().next().unwrap_or_default();
    ACTIONS.binary_search(&first).is_ok() && words(rest) >= MIN_STEP_WORDS
}

fn starts_with_words(text: &str, words: &str) -> bool {
    text.strip_prefix(words)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',']))
}

/// A step without the words that chained it to the one before.
fn strip_chaining(piece: &str) -> &str {
    let mut piece = piece.trim();
    loop {
        let lower = piece.to_ascii_lowercase();
        let Some(word) = CHAINING
            .iter()
            .chain(&["and", "please"])
            .find(|c| starts_with_words(&lower, c))
        else {
            return piece;
        };
        piece = piece[word.len()..].trim_start_matches([' ', ',']).trim();
    }
}

/// Merges the answer for the whole request with those for its steps: the whole request's
/// best first, then one from each step in turn and one more of the whole, each the best not
/// yet taken, until `limit`. Each hit keeps its score within the list it came from.
pub fn merge(
    whole: Vec<Fused>,
    steps: Vec<Vec<Fused>>,
    limit: usize,
) -> Vec<(Fused, Option<usize>)> {
    let mut lists: Vec<(Option<usize>, std::vec::IntoIter<Fused>)> = Vec::new();
    lists.push((None, whole.into_iter()));
    for (step, ranked) in steps.into_iter().enumerate() {
        lists.push((Some(step), ranked.into_iter()));
    }
    let mut taken: HashSet<Uuid> = HashSet::new();
    let mut merged = Vec::with_capacity(limit);
    // The whole request's best leads; after it each step, then the whole again.
    let mut order: Vec<usize> = (1..lists.len()).collect();
    order.push(0);
    let mut turn = std::iter::once(0).chain(order.iter().copied().cycle());
    let mut exhausted = 0;
    while merged.len() < limit && exhausted < lists.len() {
        let Some(list) = turn.next() else { break };
        let (step, ranked) = &mut lists[list];
        match ranked.find(|hit| !taken.contains(&hit.id)) {
            Some(hit) => {
                exhausted = 0;
                taken.insert(hit.id);
                merged.push((hit, *step));
            }
            None => exhausted += 1,
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_whose_case_changes_byte_length_do_not_break_the_cuts() {
        // KELVIN SIGN (3 bytes) lower-cases to 1 byte and İ (2 bytes) to 3: with Unicode
        // lower-casing the lengths balance out and a cut would fall inside '日'.
        // (The first piece, one word, is no step of its own: it opens the next.)
        assert_eq!(
            split("\u{212A}日 then send the mail İİ, then convert ÉTÉ to json"),
            vec!["\u{212A}日 then send the mail İİ", "convert ÉTÉ to json"]
        );
        for query in [
            "\u{212A}日 then send the mail İİ",
            "İ and send ß, then Σ fetch the weather",
            "ǅ, then ﬀ and then \u{212A}\u{212A}\u{212A}",
        ] {
            for step in split(query) {
                assert!(query.contains(step.as_str()), "{query}: {step}");
            }
        }
    }

    #[test]
    fn action_verbs_are_sorted_for_lookup() {
        assert!(ACTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn one_step_requests_stay_whole() {
        for query in [
            "open an issue on github",
            "Tell me the net income after calculating the revenue of 0.29 and expenses of 40.7.",
            "Show me all open bugs labelled 'regression' in our GitHub repo.",
            "convert csv to json",
            "List the files and folders in my home directory",
            "Are the CI checks green on pull request 57? I don't want to merge a red build.",
        ] {
            assert!(split(query).is_empty(), "{query}: {:?}", split(query));
        }
    }

    #[test]
    fn quoted_text_is_never_cut() {
        assert!(split("Comment 'build passed then deployed, and send it' on the PR").is_empty());
        assert!(split("Post \"Done. Send the invoice now.\" to the channel").is_empty());
        assert_eq!(
            split("Post 'Done. Shipping' to the channel, then close the issue"),
            vec!["Post 'Done. Shipping' to the channel", "close the issue"]
        );
    }

    #[test]
    fn chained_actions_become_steps() {
        assert_eq!(
            split("find the weather in Paris, convert it to Fahrenheit and post it to Slack"),
            vec![
                "find the weather in Paris",
                "convert it to Fahrenheit",
                "post it to Slack"
            ]
        );
        assert_eq!(
            split(
                "I need the IUPAC name for ethanol. After that, analyze the word \
                 Antidisestablishmentarianism. Then calculate the mass transfer rate for water. \
                 Finally, retrieve the diffusion coefficient of CO2 at 298 K."
            ),
            vec![
                "I need the IUPAC name for ethanol",
                "analyze the word Antidisestablishmentarianism",
                "calculate the mass transfer rate for water",
                "retrieve the diffusion coefficient of CO2 at 298 K"
            ]
        );
        assert_eq!(
            split("clone the repo then run the tests"),
            vec!["clone the repo", "run the tests"]
        );
    }

    #[test]
    fn steps_beyond_the_cap_join_the_last_one_searched() {
        let query = "read the file notes.txt, then search the web for rust, then create a github \
                     issue, then post it to slack, then take a screenshot of the page, then store \
                     a memory about Carol, then get driving directions from Boston to New York";
        let steps = split(query);
        assert_eq!(steps.len(), MAX_STEPS, "{steps:?}");
        assert_eq!(
            steps[MAX_STEPS - 1],
            "store a memory about Carol, then get driving directions from Boston to New York"
        );
        // Two beyond the cap: the last step runs to the end of the request.
        let query = "get the weather. Then convert it. Then post it to slack. Then open an issue. \
                     Then send an email. Then book a flight. Then reserve a hotel. Then call a taxi.";
        let steps = split(query);
        assert_eq!(steps.len(), MAX_STEPS, "{steps:?}");
        assert_eq!(
            steps[MAX_STEPS - 1],
            "book a flight. Then reserve a hotel. Then call a taxi"
        );
    }

    #[test]
    fn a_short_first_piece_is_no_step_of_its_own() {
        assert!(split("Hi! Post the build status to Slack.").is_empty());
        assert!(split("Thanks, then send it to slack").is_empty());
        assert_eq!(
            split("Hi! Post the build status to Slack, then close the issue"),
            vec!["Hi! Post the build status to Slack", "close the issue"]
        );
    }

    #[test]
    fn words_hold_a_letter_or_a_digit() {
        assert_eq!(words("- - - ... 3 a-b"), 2);
        assert!(split("read the file notes.txt, then - - -").is_empty());
        assert_eq!(
            split("read the file, then - - -, then send it to slack"),
            vec!["read the file, then - - -", "send it to slack"]
        );
        // Joined pieces are the request's own text, not pieces glued with ". ".
        for query in [
            "read the file, then - - -. ... ... ..., then send it to slack",
            "get the forecast. It rains? Then post it to slack; thanks",
        ] {
            for step in split(query) {
                assert!(query.contains(step.as_str()), "{query}: {step}");
            }
        }
    }

    #[test]
    fn a_step_said_twice_is_searched_once() {
        assert_eq!(
            split("send it to slack, then read the file, then send it to slack"),
            vec!["send it to slack", "read the file"]
        );
        assert_eq!(
            split("Send it to Slack. Then read the file. Then send it to slack"),
            vec!["Send it to Slack", "read the file"]
        );
        assert_eq!(
            split("send it to slack, then read it, then Send it to Slack "),
            vec!["send it to slack", "read it"]
        );
    }

    fn hit(n: u128) -> Fused {
        Fused {
            id: Uuid::from_u128(n),
            score: 1.0 / n as f64,
            relevance: 0.5,
            vector_score: None,
            text_score: None,
            text_coverage: None,
        }
    }

    #[test]
    fn the_whole_request_is_the_word_weighted_mean_of_its_steps() {
        let steps = vec!["get the weather".to_owned(), "post it to slack".to_owned()];
        let vectors = with_whole(&steps, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(vectors.len(), 3);
        // 3 words and 4: the whole leans to the longer step, at unit length.
        assert!((vectors[0][0] - 0.6).abs() < 1e-6 && (vectors[0][1] - 0.8).abs() < 1e-6);
        assert_eq!(vectors[1..], [vec![1.0, 0.0], vec![0.0, 1.0]]);
        // A request of one step keeps its own vector.
        assert_eq!(with_whole(&[], vec![vec![0.5, 0.5]]), [vec![0.5, 0.5]]);
    }

    #[test]
    fn merge_puts_each_step_in_the_top() {
        let whole = vec![hit(1), hit(2), hit(3), hit(4)];
        let steps = vec![vec![hit(1), hit(5)], vec![hit(6), hit(2)]];
        let merged: Vec<(u128, Option<usize>)> = merge(whole, steps, 5)
            .into_iter()
            .map(|(h, step)| (h.id.as_u128(), step))
            .collect();
        assert_eq!(
            merged,
            vec![(1, None), (5, Some(0)), (6, Some(1)), (2, None), (3, None)]
        );
        // Lists that run dry end the merge without looping.
        assert_eq!(merge(vec![hit(1)], vec![vec![hit(1)]], 10).len(), 1);
        assert!(merge(Vec::new(), vec![Vec::new()], 3).is_empty());
    }
}
