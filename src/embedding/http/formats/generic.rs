//! The simplest service one may write, at any path: `{"texts": [..]}` →
//! `{"embeddings": [[..], ..]}`.

use serde_json::{Value, json};

use super::WireFormat;

pub const FORMAT: WireFormat = WireFormat {
    name: "generic",
    aliases: &[],
    path_suffix: None,
    model_required: None,
    request,
};

fn request(texts: &[&str], _model: Option<&str>) -> Value {
    json!({ "texts": texts })
}
