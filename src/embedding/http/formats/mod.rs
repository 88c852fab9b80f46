//! One file per wire format; each is registered in `format::FORMATS`.

pub mod generic;
pub mod ollama;
pub mod openai;
pub mod tei;
