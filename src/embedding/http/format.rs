//! The wire formats an embedding service may speak: which one a request takes (named, or
//! guessed from the URL), and the answer read by its shape whatever was asked.
//!
//! Each format lives in its own file under `formats/` and is registered once in [`FORMATS`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::formats::{WireFormat, generic, ollama, openai, tei};
use super::snippet;

/// How requests are shaped (and, for `Auto`, guessed from the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum EmbeddingFormat {
    #[default]
    Auto,
    OpenAi,
    Tei,
    Ollama,
    Generic,
}

/// Every wire format: one line per format.
const FORMATS: [(EmbeddingFormat, &WireFormat); 4] = [
    (EmbeddingFormat::OpenAi, &openai::FORMAT),
    (EmbeddingFormat::Tei, &tei::FORMAT),
    (EmbeddingFormat::Ollama, &ollama::FORMAT),
    (EmbeddingFormat::Generic, &generic::FORMAT),
];

/// What `auto` sends when the path names no format.
const FALLBACK: EmbeddingFormat = EmbeddingFormat::OpenAi;

impl EmbeddingFormat {
    pub fn as_str(self) -> &'static str {
        self.wire().map_or("auto", |wire| wire.name)
    }

    /// The request of this format; `None` for `Auto`, which is resolved from the URL first.
    pub fn wire(self) -> Option<&'static WireFormat> {
        FORMATS
            .iter()
            .find(|(format, _)| *format == self)
            .map(|(_, wire)| *wire)
    }

    /// The request shape `Auto` uses for this URL path: the format of the longest suffix the
    /// path ends with (`/api/embed` is Ollama's, though it ends in TEI's `/embed`).
    pub fn detect_from_path(path: &str) -> EmbeddingFormat {
        let path = path.trim_end_matches('/');
        FORMATS
            .iter()
            .filter_map(|(format, wire)| Some((*format, wire.path_suffix?)))
            .filter(|(_, suffix)| path.ends_with(suffix))
            .max_by_key(|(_, suffix)| suffix.len())
            .map_or(FALLBACK, |(format, _)| format)
    }
}

impl fmt::Display for EmbeddingFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmbeddingFormat {
    type Err = String;

    /// Case-insensitive: `auto` or a format's name or alias (`openai` or `open_ai`, `tei`,
    /// `ollama`, `generic`). The settings loader reads `EMBEDDING_FORMAT` through this too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        if wanted == "auto" {
            return Ok(EmbeddingFormat::Auto);
        }
        FORMATS
            .iter()
            .find(|(_, wire)| wire.name == wanted || wire.aliases.contains(&wanted.as_str()))
            .map(|(format, _)| *format)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|(_, wire)| wire.name).collect();
                let (last, others) = names.split_last().expect("formats are registered");
                format!(
                    "unknown embedding format {wanted:?} (expected auto, {} or {last})",
                    others.join(", ")
                )
            })
    }
}

impl TryFrom<String> for EmbeddingFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyResponse {
    OpenAi { data: Vec<openai::Item> },
    Embeddings { embeddings: Vec<Vec<f32>> },
    Bare(Vec<Vec<f32>>),
    Single { embedding: Vec<f32> },
}

/// Vectors from any of the known response shapes, in input order.
pub fn parse_response(body: &[u8]) -> Result<Vec<Vec<f32>>, String> {
    let parsed: AnyResponse = serde_json::from_slice(body).map_err(|_| {
        format!(
            "unrecognised response: expected {{\"data\":[{{\"embedding\":[..]}}]}}, \
             {{\"embeddings\":[[..]]}} or [[..]], got {}",
            snippet(body)
        )
    })?;
    match parsed {
        AnyResponse::Embeddings { embeddings } | AnyResponse::Bare(embeddings) => Ok(embeddings),
        AnyResponse::Single { embedding } => Ok(vec![embedding]),
        AnyResponse::OpenAi { data } => openai::in_input_order(data),
    }
}

pub fn check_vectors(
    vectors: &[Vec<f32>],
    expected: usize,
    dimensions: usize,
) -> Result<(), String> {
    if vectors.len() != expected {
        return Err(format!(
            "expected {expected} vectors, got {}",
            vectors.len()
        ));
    }
    for (i, v) in vectors.iter().enumerate() {
        if v.len() != dimensions {
            return Err(format!(
                "vector {i} has {} dimensions, expected {dimensions}",
                v.len()
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("vector {i} has a value that is not a finite f32"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::EmbeddingFormat;

    /// The settings loader reads the format through serde; it once accepted only the
    /// lowercase names while `FromStr` also took `open_ai`.
    #[test]
    fn settings_and_from_str_accept_the_same_spellings() {
        for spelling in [
            "openai", "open_ai", "open-ai", "OpenAI", " tei ", "auto", "generic",
        ] {
            let parsed: Result<EmbeddingFormat, _> = spelling.parse();
            let loaded = config::Config::builder()
                .set_override("embedding_format", spelling)
                .and_then(|builder| builder.build())
                .and_then(|loaded| loaded.get::<EmbeddingFormat>("embedding_format"));
            assert_eq!(loaded.ok(), parsed.clone().ok(), "{spelling}");
            assert!(parsed.is_ok(), "{spelling}");
        }
        for refused in ["grpc", ""] {
            assert!(refused.parse::<EmbeddingFormat>().is_err(), "{refused}");
            let loaded = config::Config::builder()
                .set_override("embedding_format", refused)
                .and_then(|builder| builder.build())
                .and_then(|loaded| loaded.get::<EmbeddingFormat>("embedding_format"));
            assert!(loaded.is_err(), "{refused}");
        }
    }

    #[test]
    fn names_round_trip_and_serialise_as_before() {
        for format in [
            EmbeddingFormat::Auto,
            EmbeddingFormat::OpenAi,
            EmbeddingFormat::Tei,
            EmbeddingFormat::Ollama,
            EmbeddingFormat::Generic,
        ] {
            assert_eq!(format.as_str().parse::<EmbeddingFormat>(), Ok(format));
            assert_eq!(
                serde_json::to_value(format).unwrap(),
                serde_json::json!(format.as_str())
            );
        }
    }
}
