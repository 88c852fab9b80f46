//! Offline lab: find_tool's ranking rebuilt from its parts (lexical index, exact cosine,
//! fusion, steps) so that tool-text variants can be compared without a registry.
#[path = "common/tool_lines.rs"]
mod tool_lines;

use std::{
    collections::{HashMap, HashSet},
    io::{Read, Write},
    path::Path,
};

use anyhow::Context;
use serde_json::{Value, json};
use tool_registry::{
    domain::{Facets, Tool},
    embedding::{Embedder, local::LocalEmbedder},
    index::{
        catalogue::{CatalogueIndex, TextHit},
        fusion, lexical,
    },
    registry::{literals, steps},
};
use uuid::Uuid;

fn read_jsonl(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Cache {
    path: String,
    map: HashMap<String, Vec<f32>>,
    dirty: bool,
}

impl Cache {
    fn open(path: &str) -> Self {
        let mut map = HashMap::new();
        if let Ok(mut f) = std::fs::File::open(path) {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            let mut at = 0;
            while at < buf.len() {
                let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                at += 4;
                let text = String::from_utf8(buf[at..at + len].to_vec()).unwrap();
                at += len;
                let v: Vec<f32> = buf[at..at + 384 * 4]
                    .chunks(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                at += 384 * 4;
                map.insert(text, v);
            }
        }
        Self {
            path: path.into(),
            map,
            dirty: false,
        }
    }
    async fn fill(&mut self, embedder: &LocalEmbedder, texts: &[String]) {
        let mut missing: Vec<&str> = texts
            .iter()
            .filter(|t| !self.map.contains_key(*t))
            .map(String::as_str)
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return;
        }
        eprintln!("embedding {} texts", missing.len());
        for chunk in missing.chunks(256) {
            let vectors = embedder.embed_documents(chunk).await.unwrap();
            for (t, v) in chunk.iter().zip(vectors) {
                self.map.insert((*t).to_owned(), v);
            }
        }
        self.dirty = true;
    }
    fn save(&self) {
        if !self.dirty {
            return;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(&self.path).unwrap());
        for (t, v) in &self.map {
            out.write_all(&(t.len() as u32).to_le_bytes()).unwrap();
            out.write_all(t.as_bytes()).unwrap();
            for x in v {
                out.write_all(&x.to_le_bytes()).unwrap();
            }
        }
    }
}

/// Common software abbreviations: `keep` writes the expansion after the word, else in its place.
fn expand_abbreviations(text: &str, keep: bool) -> String {
    const TABLE: &[(&str, &str)] = &[
        ("pr", "pull request"),
        ("prs", "pull requests"),
        ("repo", "repository"),
        ("repos", "repositories"),
        ("db", "database"),
        ("dir", "directory"),
        ("dirs", "directories"),
        ("msg", "message"),
        ("msgs", "messages"),
        ("config", "configuration"),
        ("env", "environment"),
        ("info", "information"),
        ("docs", "documentation"),
        ("auth", "authentication"),
        ("org", "organization"),
        ("img", "image"),
        ("pic", "picture"),
        ("pics", "pictures"),
        ("dm", "direct message"),
        ("url", "web address"),
        ("ui", "user interface"),
        ("app", "application"),
    ];
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        match TABLE.iter().find(|(a, _)| *a == lower) {
            Some((_, full)) if keep => {
                out.push_str(word);
                out.push_str(" (");
                out.push_str(full);
                out.push(')');
            }
            Some((_, full)) => out.push_str(full),
            None => out.push_str(word),
        }
        word.clear();
    };
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum()
}

/// Text variants of a tool's document. Each returns the texts of its vectors.
fn variant_texts(variant: &str, tool: &Tool) -> Vec<String> {
    let full = tool_registry::domain::document::embedded_text(tool);
    let params: Vec<(String, Option<String>)> = tool_registry::domain::document::parameters(tool)
        .map(|p| (p.name.to_owned(), p.description.map(str::to_owned)))
        .collect();
    let name_words = {
        let mut s = String::new();
        for w in tool.name.split(|c: char| !c.is_alphanumeric()) {
            if !w.is_empty() {
                s.push_str(w);
                s.push(' ');
            }
        }
        s.trim().to_owned()
    };
    let desc = || format!("{}: {}", tool.name, tool.description);
    let name_params = || {
        let mut t = tool.name.clone();
        for (n, _) in &params {
            t.push_str("\n- ");
            t.push_str(n);
        }
        t
    };
    match variant {
        "full" => vec![full],
        "desc" => vec![desc()],
        "namewords_desc" => vec![format!("{name_words}: {}", tool.description)],
        "full+desc" => vec![full, desc()],
        "full+nwdesc" => vec![full, format!("{name_words}: {}", tool.description)],
        "full+desconly" => vec![full, tool.description.clone()],
        // The description and, when it has several, each of its sentences.
        "full+descsent" => {
            let mut texts = vec![full, tool.description.clone()];
            let sentences: Vec<&str> = tool
                .description
                .split_inclusive(['.', '\n'])
                .map(str::trim)
                .filter(|s| s.split_whitespace().count() >= 3)
                .collect();
            if sentences.len() > 1 {
                texts.extend(sentences.iter().take(8).map(|s| s.to_string()));
            }
            texts
        }
        "full+desctags" => {
            let mut t = desc();
            if !tool.tags.is_empty() {
                t.push_str("\nTags: ");
                t.push_str(&tool.tags.join(", "));
            }
            vec![full, t]
        }
        "full+np" => vec![full, name_params()],
        "desc+np" => vec![desc(), name_params()],
        "full+desc+np" => vec![full, desc(), name_params()],
        "first_sentence+full" => {
            let first = tool.description.split(". ").next().unwrap_or("").to_owned();
            vec![full, format!("{}: {first}", tool.name)]
        }
        "namewords_full" => vec![full.replacen(&tool.name, &name_words, 1)],
        "namewords2_full" => {
            let mut words = Vec::new();
            for run in tool
                .name
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                let chars: Vec<(usize, char)> = run.char_indices().collect();
                let mut start = 0;
                for (i, &(at, ch)) in chars.iter().enumerate().skip(1) {
                    let prev = chars[i - 1].1;
                    let next_lower = chars.get(i + 1).is_some_and(|(_, c)| c.is_lowercase());
                    if ch.is_uppercase()
                        && (prev.is_lowercase()
                            || prev.is_ascii_digit()
                            || (prev.is_uppercase() && next_lower))
                    {
                        words.push(&run[start..at]);
                        start = at;
                    }
                }
                words.push(&run[start..]);
            }
            let words: Vec<String> = words
                .iter()
                .map(|w| {
                    if w.chars().skip(1).any(char::is_uppercase) {
                        (*w).to_owned()
                    } else {
                        w.to_lowercase()
                    }
                })
                .collect();
            vec![full.replacen(&tool.name, &words.join(" "), 1)]
        }
        other => panic!("unknown variant {other}"),
    }
}

#[derive(Default, Clone)]
struct Scores {
    n: usize,
    hit1: f64,
    rec5: f64,
    any5: f64,
    ndcg: f64,
}
impl Scores {
    fn add(&mut self, ranked: &[Uuid], relevant: &HashSet<Uuid>) {
        let found = |k: usize| {
            ranked
                .iter()
                .take(k)
                .filter(|n| relevant.contains(n))
                .count() as f64
        };
        self.n += 1;
        self.hit1 += found(1);
        self.rec5 += found(5) / relevant.len() as f64;
        self.any5 += f64::from(found(5) > 0.0);
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, n)| relevant.contains(n))
            .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(10))
            .map(|i| 1.0 / ((i + 2) as f64).log2())
            .sum();
        self.ndcg += dcg / ideal;
    }
    fn show(&self) -> String {
        let n = self.n.max(1) as f64;
        format!(
            "{:.3}/{:.3}/{:.3}/{:.3} (n={})",
            self.hit1 / n,
            self.rec5 / n,
            self.any5 / n,
            self.ndcg / n,
            self.n
        )
    }
}

fn lab_fuse(
    kind: &str,
    vector: &[(Uuid, f64)],
    text_hits: &[TextHit],
    w: f64,
    by_coverage: bool,
) -> Vec<fusion::Fused> {
    if kind == "cur" {
        let w = fusion::coverage_weight(w, text_hits, by_coverage);
        let mut fused = fusion::fuse(vector, text_hits, w, by_coverage);
        fusion::keep_vector_places(&mut fused, vector, w);
        return fused;
    }
    // `adapt:A`: the vector weight raised toward 1 by A times the share of the query the
    // best-covering text candidate misses.
    if let Some(a) = kind.strip_prefix("adapt:") {
        let a: f64 = a.parse().unwrap();
        let best = text_hits.iter().map(|h| h.coverage).fold(0.0, f64::max);
        let w = if by_coverage {
            w + (1.0 - w) * a * (1.0 - best)
        } else {
            w
        };
        let mut fused = fusion::fuse(vector, text_hits, w, by_coverage);
        fusion::keep_vector_places(&mut fused, vector, w);
        return fused;
    }
    // `covp:P`: text ranks scaled by coverage^P (the service: 0.5), via pre-scaled coverage.
    if let Some(p) = kind.strip_prefix("covp:") {
        let p: f64 = p.parse().unwrap();
        let scaled: Vec<TextHit> = text_hits
            .iter()
            .map(|h| TextHit {
                coverage: h.coverage.clamp(0.0, 1.0).powf(2.0 * p),
                ..*h
            })
            .collect();
        return fusion::fuse(vector, &scaled, w, by_coverage);
    }
    let text: Vec<(Uuid, f64)> = text_hits.iter().map(|h| (h.id, h.score)).collect();
    let cal = |c: f64| ((c - 0.1) / 0.5).clamp(0.0, 1.0);
    let vfloor = vector.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let vfloor = if vfloor.is_finite() { vfloor } else { 0.1 };
    let tmax = text.iter().map(|h| h.1).fold(0.0, f64::max);
    let tmin = text.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let mut m: HashMap<Uuid, (Option<f64>, Option<f64>)> = HashMap::new();
    for &(id, c) in vector {
        m.entry(id).or_default().0 = Some(c);
    }
    for &(id, t) in &text {
        m.entry(id).or_default().1 = Some(t);
    }
    let norm_t = |t: f64| -> f64 {
        match kind {
            "max" => {
                if tmax > 0.0 {
                    t / tmax
                } else {
                    0.0
                }
            }
            "abs" => t,
            // min-max, but the floor is zero match rather than the worst candidate
            "mm0" => {
                if tmax > tmin {
                    (t - tmin) / (tmax - tmin)
                } else {
                    1.0
                }
            }
            _ => panic!("fusion {kind}"),
        }
    };
    let mut out: Vec<fusion::Fused> = m
        .into_iter()
        .map(|(id, (c, t))| {
            let s = w * cal(c.unwrap_or(vfloor)) + (1.0 - w) * t.map(norm_t).unwrap_or(0.0);
            fusion::Fused {
                id,
                score: s,
                relevance: c.unwrap_or(vfloor),
                vector_score: c,
                text_score: t,
                text_coverage: None,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
    };
    let tools_path = get("--tools").context("--tools")?;
    let queries_path = get("--queries").context("--queries")?;
    let split = get("--split");
    let variants = get("--variants").unwrap_or("full".into());
    let weights: Vec<f64> = get("--weights")
        .unwrap_or("0.4".into())
        .split(',')
        .map(|w| w.parse().unwrap())
        .collect();
    let combine = get("--combine").unwrap_or("max".into());
    let cache_path = get("--cache").unwrap_or("/tmp/lab_cache.bin".into());
    let failures = get("--failures").is_some();
    let fusion_kind = get("--fusion").unwrap_or("cur".into());
    let model_dir = std::env::var("EMBEDDING_MODEL_DIR").context("EMBEDDING_MODEL_DIR")?;
    let embedder = LocalEmbedder::load(Path::new(&model_dir), None)?;
    let mut cache = Cache::open(&cache_path);

    let tools: Vec<Tool> = read_jsonl(&tools_path)
        .iter()
        .enumerate()
        .map(|(n, l)| tool_lines::stored_tool(l, n))
        .collect();
    let by_name: HashMap<String, Uuid> = tools.iter().map(|t| (t.name.clone(), t.id)).collect();
    let name_of: HashMap<Uuid, String> = tools.iter().map(|t| (t.id, t.name.clone())).collect();
    let mut queries = read_jsonl(&queries_path);
    if let Some(split) = &split {
        queries.retain(|q| q["split"].as_str() == Some(split));
    }
    if get("--latency").is_some() {
        let multi: Vec<&str> = queries
            .iter()
            .map(|q| q["query"].as_str().unwrap())
            .filter(|q| !steps::split(q).is_empty())
            .take(40)
            .collect();
        let time = |label: &str, ms: &mut Vec<f64>| {
            ms.sort_by(f64::total_cmp);
            println!(
                "{label:<28} p50 {:6.1} p90 {:6.1} ms (n={})",
                ms[ms.len() / 2],
                ms[ms.len() * 9 / 10],
                ms.len()
            );
        };
        for round in 0..2 {
            let (mut one, mut batched, mut split_ms) = (vec![], vec![], vec![]);
            let mut each_ms = vec![];
            let mut grouped_ms = vec![];
            for q in &multi {
                let steps = steps::split(q);
                let texts: Vec<&str> = std::iter::once(*q)
                    .chain(steps.iter().map(String::as_str))
                    .collect();
                let c = std::time::Instant::now();
                embedder.embed(&[q]).await.unwrap();
                one.push(c.elapsed().as_secs_f64() * 1e3);
                let c = std::time::Instant::now();
                embedder.embed(&texts).await.unwrap();
                batched.push(c.elapsed().as_secs_f64() * 1e3);
                let c = std::time::Instant::now();
                embedder.embed(&texts[1..]).await.unwrap();
                split_ms.push(c.elapsed().as_secs_f64() * 1e3);
                let c = std::time::Instant::now();
                for t in &texts[1..] {
                    embedder.embed(&[t]).await.unwrap();
                }
                each_ms.push(c.elapsed().as_secs_f64() * 1e3);
                // Steps sorted by length, a new batch where padding would waste over half.
                let mut sorted: Vec<&str> = texts[1..].to_vec();
                sorted.sort_by_key(|t| t.split_whitespace().count());
                let mut groups: Vec<Vec<&str>> = Vec::new();
                for t in sorted {
                    let len = t.split_whitespace().count() + 2;
                    match groups.last_mut() {
                        Some(g)
                            if {
                                let real: usize = g
                                    .iter()
                                    .map(|x| x.split_whitespace().count() + 2)
                                    .sum::<usize>()
                                    + len;
                                (g.len() + 1) * len * 2 <= real * 3
                            } =>
                        {
                            g.push(t)
                        }
                        _ => groups.push(vec![t]),
                    }
                }
                let c = std::time::Instant::now();
                for g in &groups {
                    embedder.embed(g).await.unwrap();
                }
                grouped_ms.push(c.elapsed().as_secs_f64() * 1e3);
            }
            if round == 1 {
                time("whole only", &mut one);
                time("whole + steps, one batch", &mut batched);
                time("steps only, one batch", &mut split_ms);
                time("steps only, one by one", &mut each_ms);
                time("steps, grouped by length", &mut grouped_ms);
            }
        }
        return Ok(());
    }
    if let Some(count) = get("--embedtime") {
        // Model time of registration: each tool's document alone, then with its description
        // in the same calls, in batches of 64 tools, alternated twice.
        let count: usize = count.parse()?;
        let tools = &tools[..count.min(tools.len())];
        for round in 0..2 {
            for with_description in [false, true] {
                let clock = std::time::Instant::now();
                for batch in tools.chunks(64) {
                    let documents: Vec<String> = batch
                        .iter()
                        .map(tool_registry::domain::document::embedded_text)
                        .collect();
                    let mut texts: Vec<&str> = Vec::new();
                    for (tool, document) in batch.iter().zip(&documents) {
                        texts.push(document);
                        if with_description {
                            texts.push(&tool.description);
                        }
                    }
                    embedder.embed_documents(&texts).await.unwrap();
                }
                println!(
                    "round {round} {} tools, description vector {with_description}: {:.1} s",
                    tools.len(),
                    clock.elapsed().as_secs_f64()
                );
            }
        }
        return Ok(());
    }
    let mut index = CatalogueIndex::default();
    for tool in &tools {
        index.upsert(
            tool.id,
            0,
            &tool.name,
            &lexical::tool_terms(tool),
            Facets::of(tool),
        );
    }
    // Query texts: whole + steps.
    let mut query_texts: Vec<Vec<String>> = Vec::new();
    // As the service embeds them: literal values generalised (`--keep-literals`: as written).
    let keep_literals = args.iter().any(|a| a == "--keep-literals");
    let abbrev = get("--abbrev");
    for q in queries.iter_mut() {
        if let Some(a) = &abbrev {
            let raw = q["query"].as_str().unwrap().to_owned();
            // 1: both sides replaced; 2: model replaced, text kept with expansion; 3: kept both.
            let model = expand_abbreviations(&raw, a == "3");
            let text = expand_abbreviations(&raw, a != "1");
            q["model_query"] = json!(model);
            q["query"] = json!(text);
        }
    }
    let no_frame = get("--no-frame").is_some() || get("--qtemplate").is_some();
    for q in &queries {
        let text = q["model_query"]
            .as_str()
            .or(q["query"].as_str())
            .unwrap()
            .to_owned();
        let mut texts = vec![text.clone()];
        texts.extend(steps::split(&text));
        let one_step = texts.len() == 1;
        query_texts.push(
            texts
                .iter()
                .map(|t| {
                    if keep_literals {
                        t.clone()
                    } else {
                        literals::generalised(t).into_owned()
                    }
                })
                // A request of one step framed as the service frames it for this model,
                // unless `--qtemplate` or `--no-frame` say otherwise.
                .map(|t| match embedder.request_frame() {
                    Some(frame) if one_step && !no_frame => format!("{frame}{t}"),
                    _ => t,
                })
                .collect(),
        );
    }
    // `--qtemplate T` (with `--qmix A`, default 1): each query text's vector moved by A toward
    // that of the text read inside T, at its `{}`.
    let qtemplate = get("--qtemplate");
    let qmix: f32 = get("--qmix").map_or(1.0, |a| a.parse().unwrap());
    // `--qtemplate-on steps|whole`: only the steps of multi-step requests, or only requests
    // of one step, read inside the template.
    let step_keys: HashSet<String> = query_texts
        .iter()
        .flat_map(|texts| texts.iter().skip(1).cloned())
        .collect();
    let template_on = get("--qtemplate-on");
    let templated = |t: &str| {
        let on = match template_on.as_deref() {
            Some("steps") => step_keys.contains(t),
            Some("whole") => !step_keys.contains(t),
            _ => true,
        };
        // `--qtemplate-skipq`: a text that already opens with a question word is read as is.
        let question = [
            "how", "what", "which", "where", "who", "when", "why", "can", "could", "is", "are",
            "do", "does", "should", "would",
        ];
        let first = t.split_whitespace().next().unwrap_or("").to_lowercase();
        let first = first.split('\'').next().unwrap_or("");
        let on = on && !(get("--qtemplate-skipq").is_some() && question.contains(&first));
        qtemplate
            .as_ref()
            .filter(|_| on)
            .map(|tpl| tpl.replace("{}", t))
    };
    let mut all_q: Vec<String> = query_texts.iter().flatten().cloned().collect();
    let extra: Vec<String> = all_q.iter().filter_map(|t| templated(t)).collect();
    all_q.extend(extra);
    all_q.extend(get("--qshift-text"));
    cache.fill(&embedder, &all_q).await;
    let stepsonly = get("--stepsonly").is_some();
    // `--pool N`: candidates each side gives a hybrid search (the service: 50 at limit 10).
    let pool: usize = get("--pool").map_or(50, |p| p.parse().unwrap());

    for variant in variants.split(';') {
        let doc_texts: Vec<Vec<String>> = tools.iter().map(|t| variant_texts(variant, t)).collect();
        let flat: Vec<String> = doc_texts.iter().flatten().cloned().collect();
        cache.fill(&embedder, &flat).await;
        cache.save();
        // `--q8`: every vector after the first held as i8 with one scale per vector.
        let q8 = get("--q8").is_some();
        let quantised: HashMap<&str, Vec<f32>> = if q8 {
            doc_texts
                .iter()
                .flat_map(|d| d.iter().skip(1))
                .map(|t| {
                    let v = &cache.map[t];
                    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                    let q: Vec<f32> = v
                        .iter()
                        .map(|x| ((x / scale).round().clamp(-127.0, 127.0) as i8) as f32 * scale)
                        .collect();
                    (t.as_str(), q)
                })
                .collect()
        } else {
            HashMap::new()
        };
        // `--center A`: every vector minus A times the catalogue's mean document vector,
        // renormalised (queries by the same mean).
        let center: f32 = get("--center").map(|v| v.parse().unwrap()).unwrap_or(0.0);
        let mut vmap: HashMap<String, Vec<f32>> = HashMap::new();
        let mut mean = vec![0f32; 384];
        if center > 0.0 {
            let mut n = 0f32;
            for d in &doc_texts {
                for (x, v) in mean.iter_mut().zip(&cache.map[&d[0]]) {
                    *x += v;
                }
                n += 1.0;
            }
            mean.iter_mut().for_each(|x| *x /= n);
            for (t, v) in &cache.map {
                let mut c: Vec<f32> = v.iter().zip(&mean).map(|(a, m)| a - center * m).collect();
                let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
                c.iter_mut().for_each(|x| *x /= norm);
                vmap.insert(t.clone(), c);
            }
        }
        let lookup = |t: &str| -> &Vec<f32> {
            if center > 0.0 {
                &vmap[t]
            } else {
                &cache.map[t]
            }
        };
        // `--hub B,K`: each tool's cosine lowered by B times its mean cosine with its K
        // nearest other tools (their document vectors): a local hubness correction.
        let hub: Option<(f64, usize)> = get("--hub").map(|v| {
            let (b, k) = v.split_once(',').unwrap();
            (b.parse().unwrap(), k.parse().unwrap())
        });
        let density: Vec<f64> = match hub {
            Some((_, k)) => (0..doc_texts.len())
                .map(|i| {
                    let mut near: Vec<f64> = (0..doc_texts.len())
                        .filter(|&j| j != i)
                        .map(|j| dot(lookup(&doc_texts[i][0]), lookup(&doc_texts[j][0])))
                        .collect();
                    near.sort_by(|a, b| b.total_cmp(a));
                    near.iter().take(k).sum::<f64>() / k as f64
                })
                .collect(),
            None => vec![0.0; doc_texts.len()],
        };
        let hub_beta = hub.map_or(0.0, |h| h.0);
        let raw_cosine = |q: &[f32], i: usize| -> f64 {
            let s: Vec<f64> = doc_texts[i]
                .iter()
                .enumerate()
                .map(|(j, t)| match quantised.get(t.as_str()) {
                    Some(v) if j > 0 => dot(q, v),
                    _ => dot(q, lookup(t)),
                })
                .collect();
            if let Some(k) = combine.strip_prefix("excess") {
                let k: f64 = k.parse().unwrap();
                let m = s[1..].iter().cloned().fold(f64::MIN, f64::max);
                return s[0] + k * (m - s[0]).max(0.0);
            }
            match combine.as_str() {
                "max" => s.iter().cloned().fold(f64::MIN, f64::max),
                "mean" => s.iter().sum::<f64>() / s.len() as f64,
                "first" => s[0],
                // The first vector, raised by the others' excess over it, half-weighted.
                "soft" => {
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    0.5 * (s[0] + m)
                }
                other => panic!("combine {other}"),
            }
        };
        let cosine = |q: &[f32], i: usize| -> f64 { raw_cosine(q, i) - hub_beta * density[i] };
        // `--qshift L`: each query vector moved by L toward the catalogue's mean document
        // vector (`--qshift-text T`: toward the vector of the text T instead).
        let qshift: f32 = get("--qshift").map_or(0.0, |l| l.parse().unwrap());
        let shift_to: Vec<f32> = match get("--qshift-text") {
            Some(t) => cache.map[&t].clone(),
            None => {
                let mut m = vec![0f32; 384];
                for d in &doc_texts {
                    for (x, v) in m.iter_mut().zip(&cache.map[&d[0]]) {
                        *x += v / doc_texts.len() as f32;
                    }
                }
                m
            }
        };
        let query_vector = |key: &str| -> Vec<f32> {
            let plain = lookup(key);
            if qshift != 0.0 {
                let mut v: Vec<f32> = plain
                    .iter()
                    .zip(&shift_to)
                    .map(|(p, m)| p + qshift * m)
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= n);
                return v;
            }
            let Some(t) = templated(key) else {
                return plain.clone();
            };
            let mut v: Vec<f32> = plain
                .iter()
                .zip(lookup(&t))
                .map(|(p, q)| (1.0 - qmix) * p + qmix * q)
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            v
        };
        // `--prf B,K`: the query moved toward the mean of its K nearest documents by B.
        let prf: Option<(f32, usize)> = get("--prf").map(|v| {
            let (b, k) = v.split_once(',').unwrap();
            (b.parse().unwrap(), k.parse().unwrap())
        });
        let siblings: Option<(f64, f64)> = get("--siblings").map(|v| {
            let (t, l) = v.split_once(',').unwrap();
            (t.parse().unwrap(), l.parse().unwrap())
        });
        let index_of: HashMap<Uuid, usize> =
            tools.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let server_of = |i: usize| -> &str { tools[i].name.split_once('.').map_or("", |(s, _)| s) };
        let rank_all = |q: &[f32]| -> Vec<(usize, f64)> {
            let mut all: Vec<(usize, f64)> = (0..tools.len()).map(|i| (i, cosine(q, i))).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all
        };
        let nearest = |q: &[f32], k: usize| -> Vec<(Uuid, f64)> {
            let mut ranked = rank_all(q);
            if let Some((beta, top)) = prf {
                let mut moved = q.to_vec();
                for &(i, _) in ranked.iter().take(top) {
                    for (x, v) in moved.iter_mut().zip(lookup(&doc_texts[i][0])) {
                        *x += beta / top as f32 * v;
                    }
                }
                let n = moved.iter().map(|x| x * x).sum::<f32>().sqrt();
                moved.iter_mut().for_each(|x| *x /= n);
                ranked = rank_all(&moved);
            }
            let mut all: Vec<(Uuid, f64)> = ranked
                .into_iter()
                .map(|(i, c)| (tools[i].id, fusion::unit_score(c)))
                .collect();
            all.truncate(k);
            all
        };
        let text_search = |q: &str, k: usize| -> Vec<TextHit> {
            let terms = lexical::query_terms(q);
            index
                .search(&terms, k, |_| true)
                .into_iter()
                .map(|hit| TextHit {
                    score: fusion::text_score(hit.score),
                    ..hit
                })
                .collect()
        };
        let mut modes: Vec<(String, Option<f64>)> =
            vec![("semantic".into(), None), ("text".into(), None)];
        for w in &weights {
            modes.push((format!("hybrid{w}"), Some(*w)));
        }
        for (mode, weight) in &modes {
            let (mut all, mut single, mut multi) =
                (Scores::default(), Scores::default(), Scores::default());
            let mut fails = Vec::new();
            for (qi, q) in queries.iter().enumerate() {
                let relevant: HashSet<Uuid> = q["relevant"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|n| {
                        by_name
                            .get(&tool_lines::tool_name(&json!({"name": n})))
                            .copied()
                    })
                    .collect();
                if relevant.is_empty() {
                    continue;
                }
                let mut rankings: Vec<Vec<fusion::Fused>> = Vec::new();
                let plain: Vec<String> = std::iter::once(q["query"].as_str().unwrap().to_owned())
                    .chain(steps::split(q["query"].as_str().unwrap()))
                    .collect();
                for (i, (text, key)) in plain.iter().zip(&query_texts[qi]).enumerate() {
                    let mut qv = query_vector(key);
                    if i == 0 && stepsonly && query_texts[qi].len() > 1 {
                        qv = vec![0.0; qv.len()];
                        for (st, key) in plain[1..].iter().zip(&query_texts[qi][1..]) {
                            let words = if get("--uniform").is_some() {
                                1.0
                            } else if get("--sqrtw").is_some() {
                                (st.split_whitespace().count() as f32).sqrt()
                            } else {
                                steps::words(st) as f32
                            };
                            for (x, v) in qv.iter_mut().zip(&query_vector(key)) {
                                *x += words * v;
                            }
                        }
                        let n = qv.iter().map(|x| x * x).sum::<f32>().sqrt();
                        qv.iter_mut().for_each(|x| *x /= n);
                    }
                    let qv = &qv;
                    let ranked = match (mode.as_str(), weight) {
                        ("semantic", _) => fusion::vector_list(&nearest(qv, 10)),
                        ("text", _) => fusion::text_list(&text_search(text, 10)),
                        (_, Some(w)) => {
                            let near = nearest(qv, pool);
                            // Each step's own search fuses at the service's step weight, or
                            // at `--stepweight W`.
                            let w = match get("--stepweight") {
                                // `--oneweight W`: the vector weight of a request of one step.
                                _ if i == 0 && plain.len() == 1 => {
                                    get("--oneweight").map_or(*w, |o| o.parse().unwrap())
                                }
                                _ if i == 0 => *w,
                                Some(sw) => sw.parse().unwrap(),
                                None => fusion::step_vector_weight(*w),
                            };
                            let mut fused = lab_fuse(
                                &fusion_kind,
                                &near,
                                &text_search(text, pool),
                                w,
                                !(i == 0 && plain.len() > 1),
                            );
                            // `--siblings T,L`: a tool of another server whose document's cosine
                            // with a top-10 hit's is at least T scores at least L times that hit.
                            if let Some((t, l)) = siblings {
                                let top: Vec<(Uuid, f64)> =
                                    fused.iter().take(10).map(|f| (f.id, f.score)).collect();
                                for (id, score) in top {
                                    let i = index_of[&id];
                                    for j in 0..tools.len() {
                                        if j == i
                                            || server_of(j) == server_of(i)
                                            || server_of(j).is_empty()
                                        {
                                            continue;
                                        }
                                        if dot(
                                            &cache.map[&doc_texts[i][0]],
                                            &cache.map[&doc_texts[j][0]],
                                        ) < t
                                        {
                                            continue;
                                        }
                                        let lifted = l * score;
                                        match fused.iter_mut().find(|f| f.id == tools[j].id) {
                                            Some(f) => f.score = f.score.max(lifted),
                                            None => fused.push(fusion::Fused {
                                                id: tools[j].id,
                                                score: lifted,
                                                relevance: 0.0,
                                                vector_score: None,
                                                text_score: None,
                                                text_coverage: None,
                                            }),
                                        }
                                    }
                                }
                                fused.sort_by(|a, b| {
                                    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
                                });
                            }
                            fused
                        }
                        _ => unreachable!(),
                    };
                    rankings.push(ranked);
                }
                if get("--debug").as_deref() == q["id"].as_str() {
                    for (i, r) in rankings.iter().enumerate() {
                        println!(
                            "  [{mode}] {:?} -> {:?}",
                            query_texts[qi].get(i),
                            r.iter()
                                .take(5)
                                .map(|h| format!(
                                    "{} {:.3} v{:.3} t{:.3}",
                                    name_of[&h.id],
                                    h.score,
                                    h.vector_score.unwrap_or(-1.0),
                                    h.text_score.unwrap_or(-1.0)
                                ))
                                .collect::<Vec<_>>()
                        );
                    }
                }
                let whole = rankings.remove(0);
                let ranked: Vec<Uuid> = if rankings.is_empty() {
                    whole.into_iter().take(10).map(|h| h.id).collect()
                } else {
                    match get("--merge") {
                        // `--merge R`: the whole request's turn only after R rounds of steps.
                        Some(rounds) => {
                            let rounds: usize = rounds.parse().unwrap();
                            let mut lists: Vec<std::vec::IntoIter<fusion::Fused>> =
                                vec![whole.into_iter()];
                            lists.extend(rankings.into_iter().map(|r| r.into_iter()));
                            let steps_n = lists.len() - 1;
                            let mut order = vec![0];
                            while order.len() < 200 {
                                for _ in 0..rounds {
                                    order.extend(1..=steps_n);
                                }
                                order.push(0);
                            }
                            let mut taken = HashSet::new();
                            let mut out = Vec::new();
                            for l in order {
                                if out.len() == 10 {
                                    break;
                                }
                                if let Some(h) = lists[l].find(|h| !taken.contains(&h.id)) {
                                    taken.insert(h.id);
                                    out.push(h.id);
                                }
                            }
                            out
                        }
                        None => steps::merge(whole, rankings, 10)
                            .into_iter()
                            .map(|(h, _)| h.id)
                            .collect(),
                    }
                };
                all.add(&ranked, &relevant);
                if relevant.len() == 1 {
                    &mut single
                } else {
                    &mut multi
                }
                .add(&ranked, &relevant);
                if get("--ranks").is_some() {
                    let ranks: Vec<String> = relevant
                        .iter()
                        .map(|r| {
                            let at = ranked
                                .iter()
                                .position(|x| x == r)
                                .map_or("-".into(), |p| (p + 1).to_string());
                            format!("{}@{at}", name_of[r])
                        })
                        .collect();
                    let lost = relevant.len().min(5)
                        - ranked
                            .iter()
                            .take(5)
                            .filter(|x| relevant.contains(x))
                            .count();
                    if lost > 0 {
                        fails.push(format!(
                            "lost {lost} | {} | {} | {}",
                            q["id"].as_str().unwrap_or(""),
                            q["query"].as_str().unwrap(),
                            ranks.join(" ")
                        ));
                    }
                }
                if failures && ranked.first().is_none_or(|r| !relevant.contains(r)) {
                    fails.push(format!(
                        "{} | {} | rel={:?} | top3={:?}",
                        q["id"].as_str().unwrap_or(""),
                        q["query"].as_str().unwrap(),
                        relevant.iter().map(|i| &name_of[i]).collect::<Vec<_>>(),
                        ranked
                            .iter()
                            .take(3)
                            .map(|i| &name_of[i])
                            .collect::<Vec<_>>()
                    ));
                }
            }
            println!(
                "{variant:<20} {combine:<5} {mode:<12} all {}  single {}  multi {}",
                all.show(),
                single.show(),
                multi.show()
            );
            for f in fails {
                println!("  MISS {f}");
            }
        }
    }
    cache.save();
    Ok(())
}
