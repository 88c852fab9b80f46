//! A deterministic lexical embedder: feature hashing of words, word pairs and character
//! trigrams. It needs no files and no network, so it serves tests and is the fallback when the
//! local model folder is missing. It matches words, not meanings: "weather" and "forecast" are
//! unrelated to it.
//!
//! How a text becomes a vector:
//! 1. Split into words on anything that is not a letter or digit, then split `camelCase`,
//!    `PascalCase` and `HTTPServer`-style words (`snake_case` and `kebab-case` split in step 1).
//!    Lowercase. Drop a short list of English stop words unless nothing else is left.
//! 2. Features: each word, lightly stemmed (`files` → `file`, `queries` → `query`), weight 1;
//!    each pair of adjacent words, weight 0.5; the character trigrams of each word padded with
//!    `^`/`$`, together weighing 0.5 per word. A feature seen `n` times weighs `sqrt(n)` times
//!    its weight.
//! 3. Each feature is hashed with 64-bit FNV-1a (plus a final bit mixer) into one of
//!    `dimensions` buckets with a sign taken from another bit of the hash, and the vector is
//!    L2-normalised.
//!
//! The hash is written out here, not taken from `std`'s randomly seeded hasher, features are
//! summed in a fixed order, and the arithmetic uses only IEEE-exact operations (`+ * / sqrt`), so
//! vectors are bit-for-bit identical across runs and machines.
//!
//! A text with no letters or digits (`""`, `"?!"`) gets a fixed unit vector: every component
//! `1/sqrt(dimensions)`. It is never all zeros, so cosine similarity (here or in pgvector) never
//! divides by zero.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{EmbedError, Embedder, EmbedderHealth};

/// Dimensions used when the settings do not say (the same as all-MiniLM-L6-v2).
pub const DEFAULT_DIMENSIONS: usize = 384;

const WORD_WEIGHT: f64 = 1.0;
const BIGRAM_WEIGHT: f64 = 0.5;
/// Total weight of one word's trigrams, spread evenly over them (in L2 terms).
const TRIGRAMS_WEIGHT: f64 = 0.5;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "any", "are", "as", "at", "be", "by", "can", "could", "do", "does", "for",
    "from", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "please",
    "should", "some", "that", "the", "this", "to", "us", "we", "will", "with", "would", "you",
    "your",
];

/// Deterministic feature-hashing embedder. See the module documentation.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimensions: usize,
    model_id: String,
    fallback_reason: Option<String>,
}

impl HashEmbedder {
    /// A hashing embedder producing `dimensions` floats per text.
    ///
    /// # Panics
    /// If `dimensions` is 0.
    pub fn new(dimensions: usize) -> Self {
        assert!(
            dimensions > 0,
            "the hashing embedder needs at least one dimension"
        );
        Self {
            dimensions,
            model_id: format!("hash-v1-{dimensions}"),
            fallback_reason: None,
        }
    }

    /// Marks this embedder as standing in for another one (for example, the local model folder
    /// is missing): `/health` then reports it as `degraded`, with the reason.
    pub fn with_fallback_reason(mut self, reason: impl Into<String>) -> Self {
        self.fallback_reason = Some(reason.into());
        self
    }

    /// The vector of one text (what `embed` returns for it).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut features: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
        let mut add = |hash: u64, weight: f64| {
            let slot = features.entry(hash).or_insert((0.0, 0));
            slot.0 += weight;
            slot.1 += 1;
        };

        let all = words(text);
        let kept: Vec<&str> = {
            let content: Vec<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|w| !STOP_WORDS.contains(w))
                .collect();
            if content.is_empty() {
                all.iter().map(String::as_str).collect()
            } else {
                content
            }
        };

        let stems: Vec<String> = kept.iter().map(|w| stem(w)).collect();
        for stemmed in &stems {
            add(feature_hash(b'w', &[stemmed.as_bytes()]), WORD_WEIGHT);
        }
        for pair in stems.windows(2) {
            add(
                feature_hash(b'b', &[pair[0].as_bytes(), b" ", pair[1].as_bytes()]),
                BIGRAM_WEIGHT,
            );
        }
        for word in &kept {
            let padded: Vec<char> = std::iter::once('^')
                .chain(word.chars())
                .chain(std::iter::once('$'))
                .collect();
            let grams = padded.len().saturating_sub(2);
            if grams == 0 {
                continue;
            }
            let weight = TRIGRAMS_WEIGHT / (grams as f64).sqrt();
            for gram in padded.windows(3) {
                let mut buf = [0u8; 12];
                let mut len = 0;
                for c in gram {
                    len += c.encode_utf8(&mut buf[len..]).len();
                }
                add(feature_hash(b't', &[&buf[..len]]), weight);
            }
        }

        let mut acc = vec![0f64; self.dimensions];
        for (hash, (weight_sum, count)) in features {
            let mean = weight_sum / f64::from(count);
            let value = mean * f64::from(count).sqrt();
            let bucket = (hash % self.dimensions as u64) as usize;
            let sign = if hash >> 63 == 1 { -1.0 } else { 1.0 };
            acc[bucket] += sign * value;
        }

        let norm = acc.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            acc.iter().map(|x| (x / norm) as f32).collect()
        } else {
            vec![(1.0 / (self.dimensions as f64).sqrt()) as f32; self.dimensions]
        }
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    #[tracing::instrument(level = "debug", name = "embedding.model", skip_all, fields(
        embedding.provider = "hash", embedding.model = %self.model_id(),
        embedding.batch_size = texts.len() as i64))]
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn health(&self) -> EmbedderHealth {
        let mut detail = serde_json::json!({
            "algorithm": "feature hashing (FNV-1a) of words, word pairs and character trigrams",
        });
        if let Some(reason) = &self.fallback_reason {
            detail["fallback_reason"] = serde_json::Value::from(reason.as_str());
        }
        EmbedderHealth {
            provider: "hash".to_owned(),
            model: self.model_id.clone(),
            dimensions: self.dimensions,
            status: if self.fallback_reason.is_some() {
                "degraded"
            } else {
                "up"
            },
            detail,
        }
    }
}

/// 64-bit FNV-1a.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// MurmurHash3's 64-bit finaliser: spreads FNV's weak low bits over the whole word.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Hash of one feature; `kind` keeps words, pairs and trigrams apart.
fn feature_hash(kind: u8, parts: &[&[u8]]) -> u64 {
    let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    let prefix = [kind, b':'];
    all.push(&prefix);
    all.extend_from_slice(parts);
    mix64(fnv1a64(&all))
}

/// Lowercased words: split on non-alphanumerics, then on case changes inside a word.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !c.is_alphanumeric()) {
        if raw.is_empty() {
            continue;
        }
        let chars: Vec<char> = raw.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let prev = chars[i - 1];
            let cur = chars[i];
            let lower_to_upper = (prev.is_lowercase() || prev.is_numeric()) && cur.is_uppercase();
            let acronym_end = prev.is_uppercase()
                && cur.is_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if lower_to_upper || acronym_end {
                out.push(
                    chars[start..i]
                        .iter()
                        .flat_map(|c| c.to_lowercase())
                        .collect(),
                );
                start = i;
            }
        }
        out.push(
            chars[start..]
                .iter()
                .flat_map(|c| c.to_lowercase())
                .collect(),
        );
    }
    out
}

/// A very light plural stemmer: `queries` → `query`, `files` → `file`; leaves `status`,
/// `analysis`, `address` alone.
fn stem(word: &str) -> String {
    let n = word.chars().count();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if n > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
    {
        return word[..word.len() - 1].to_owned();
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn deterministic_across_instances_and_calls() {
        let a = HashEmbedder::new(64).embed_one("Get the current weather for a city");
        let b = HashEmbedder::new(64).embed_one("Get the current weather for a city");
        assert_eq!(a, b);
        // Pinned so a change to the algorithm is noticed (and `hash-v1` bumped).
        let pinned = HashEmbedder::new(8).embed_one("hello world");
        let again = HashEmbedder::new(8).embed_one("hello world");
        assert_eq!(pinned, again);
        let bits: Vec<u32> = pinned.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, PINNED_HELLO_WORLD_8);
    }

    const PINNED_HELLO_WORLD_8: [u32; 8] = [
        1039679801, 3195552057, 3187163449, 1062218495, 3195552057, 0, 1054309979, 3187163449,
    ];

    #[test]
    fn vectors_have_the_right_length_and_unit_norm() {
        let e = HashEmbedder::new(384);
        for text in [
            "a",
            "send_email",
            "Convert 10 USD to EUR",
            "ünïcödé wörds, 東京",
        ] {
            let v = e.embed_one(text);
            assert_eq!(v.len(), 384);
            assert!((norm(&v) - 1.0).abs() < 1e-5, "{text}: {}", norm(&v));
        }
    }

    #[test]
    fn empty_and_punctuation_give_a_fixed_unit_vector_without_nan() {
        let e = HashEmbedder::new(16);
        let empty = e.embed_one("");
        assert_eq!(empty.len(), 16);
        assert!(empty.iter().all(|x| x.is_finite()));
        assert!((norm(&empty) - 1.0).abs() < 1e-6);
        assert_eq!(empty, e.embed_one(" ?!,.  "));
        let other = e.embed_one("weather");
        assert!(cosine(&empty, &other).is_finite());
        assert!(cosine(&empty, &empty).is_finite());
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let e = HashEmbedder::new(384);
        let query = e.embed_one("what is the weather forecast in Paris");
        let weather = e.embed_one("get_weather_forecast: returns the weather forecast for a city");
        let email = e.embed_one("send_email: sends an email message to a recipient");
        assert!(cosine(&query, &weather) > cosine(&query, &email) + 0.1);

        let files = e.embed_one("list files in a directory");
        let file = e.embed_one("listFile directory");
        assert!(cosine(&files, &file) > cosine(&files, &email));
    }

    #[test]
    fn identifier_styles_split_into_the_same_words() {
        assert_eq!(words("getWeatherForecast"), ["get", "weather", "forecast"]);
        assert_eq!(
            words("get_weather-forecast"),
            ["get", "weather", "forecast"]
        );
        assert_eq!(
            words("HTTPServer parseJSON v2Api"),
            ["http", "server", "parse", "json", "v2", "api"]
        );
        assert_eq!(words("  "), Vec::<String>::new());
        let e = HashEmbedder::new(128);
        assert_eq!(e.embed_one("getWeather"), e.embed_one("get weather"));
        assert_eq!(e.embed_one("GET_WEATHER"), e.embed_one("get weather"));
    }

    #[test]
    fn stop_words_only_still_embed_their_words() {
        let e = HashEmbedder::new(64);
        assert_ne!(e.embed_one("the"), e.embed_one(""));
        assert_eq!(e.embed_one("the weather"), e.embed_one("weather"));
    }

    #[test]
    fn stemming_is_light() {
        assert_eq!(stem("files"), "file");
        assert_eq!(stem("queries"), "query");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("address"), "address");
        assert_eq!(stem("analysis"), "analysis");
        assert_eq!(stem("bus"), "bus");
    }

    #[tokio::test]
    async fn implements_the_embedder_trait() {
        let e = HashEmbedder::new(32);
        assert_eq!(e.model_id(), "hash-v1-32");
        assert_eq!(e.dimensions(), 32);
        let out = e.embed(&["one", "two", "one"]).await.unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], out[2]);
        assert_ne!(out[0], out[1]);
        let h = e.health();
        assert_eq!((h.provider.as_str(), h.status), ("hash", "up"));
        let h = e.with_fallback_reason("model folder missing").health();
        assert_eq!(h.status, "degraded");
        assert_eq!(h.detail["fallback_reason"], "model folder missing");
    }
}
