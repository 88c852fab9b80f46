//! Ollama's `/api/embed`: `{"model": m, "input": [..]}` → `{"embeddings": [[..], ..]}`; the
//! model is required.

use serde_json::{Value, json};

use super::WireFormat;

pub const FORMAT: WireFormat = WireFormat {
    name: "ollama",
    aliases: &[],
    path_suffix: Some("/api/embed"),
    model_required: Some("Ollama's /api/embed needs a model name"),
    request,
};

fn request(texts: &[&str], model: Option<&str>) -> Value {
    json!({ "model": model, "input": texts })
}
