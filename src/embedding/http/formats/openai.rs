//! OpenAI's `/v1/embeddings`: `{"input": [..], "model": m}` → `{"data": [{"embedding", "index"}]}`.
//! Also Azure OpenAI, vLLM, LiteLLM and Ollama's `/v1/embeddings` route; `model` is sent only
//! when configured.

use serde::Deserialize;
use serde_json::{Value, json};

use super::WireFormat;

pub const FORMAT: WireFormat = WireFormat {
    name: "openai",
    aliases: &["open_ai", "open-ai"],
    path_suffix: Some("/embeddings"),
    model_required: None,
    request,
};

fn request(texts: &[&str], model: Option<&str>) -> Value {
    match model {
        Some(model) => json!({ "input": texts, "model": model }),
        None => json!({ "input": texts }),
    }
}

/// One item of `data`.
#[derive(Deserialize)]
pub struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

/// The vectors of `data`, put back in `index` order when the items carry one.
pub fn in_input_order(data: Vec<Item>) -> Result<Vec<Vec<f32>>, String> {
    let n = data.len();
    let with_index = data.iter().filter(|d| d.index.is_some()).count();
    if with_index == 0 {
        return Ok(data.into_iter().map(|d| d.embedding).collect());
    }
    if with_index != n {
        return Err("some items of \"data\" have an \"index\" and some do not".to_owned());
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; n];
    for item in data {
        let i = item.index.unwrap_or(usize::MAX);
        match slots.get_mut(i) {
            Some(slot @ None) => *slot = Some(item.embedding),
            Some(Some(_)) => return Err(format!("index {i} appears twice in \"data\"")),
            None => return Err(format!("index {i} is out of range for {n} items")),
        }
    }
    Ok(slots.into_iter().flatten().collect())
}
