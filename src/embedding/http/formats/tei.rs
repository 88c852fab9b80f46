//! Hugging Face Text Embeddings Inference's `/embed`: `{"inputs": [..], "truncate": true}` →
//! `[[..], ..]`.

use serde_json::{Value, json};

use super::WireFormat;

pub const FORMAT: WireFormat = WireFormat {
    name: "tei",
    aliases: &[],
    path_suffix: Some("/embed"),
    model_required: None,
    request,
};

fn request(texts: &[&str], _model: Option<&str>) -> Value {
    json!({ "inputs": texts, "truncate": true })
}
