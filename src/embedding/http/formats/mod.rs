//! One file per wire format, each a [`WireFormat`] registered in `format::FORMATS`.

pub mod generic;
pub mod ollama;
pub mod openai;
pub mod tei;

use serde_json::Value;

/// One wire format's request.
pub struct WireFormat {
    /// The name in settings and `/health`.
    pub name: &'static str,
    /// Other spellings accepted in settings.
    pub aliases: &'static [&'static str],
    /// The end of the URL path that makes `auto` pick this format.
    pub path_suffix: Option<&'static str>,
    /// When the service needs a model name: the error of settings without one.
    pub model_required: Option<&'static str>,
    /// The JSON body for these texts.
    pub request: fn(texts: &[&str], model: Option<&str>) -> Value,
}
