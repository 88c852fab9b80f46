//! The offline default embedder: sentence-transformers/all-MiniLM-L6-v2 run in-process on the
//! CPU with candle. No network and no Python: the model folder holds `model.safetensors`,
//! `tokenizer.json` and `config.json` (see `scripts/fetch-model.sh`).
//!
//! What it computes matches the sentence-transformers reference: BERT over at most 256 tokens,
//! mean pooling over the attention mask, then L2 normalisation; 384 dimensions.

pub mod model_gate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use self::model_gate::{ModelGate, Priority};
use super::{EmbedError, Embedder, EmbedderHealth, LOCAL_MODEL_DIMENSIONS as DIMENSIONS};

/// The model this embedder runs, and the settings that shape its vectors: the suffix is the
/// truncation length. Change it whenever pooling, truncation or the weights change, so stored
/// vectors are recomputed.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2@256";
/// What this model reads before a request of one step (see `request_frame`).
pub const REQUEST_FRAME: &str = "How to ";
/// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are cut, as the reference does.
pub const MAX_SEQ_LEN: usize = 256;
/// Texts run through the model at once, at most. Texts are sorted by length first, so a batch
/// pads little.
pub const BATCH_SIZE: usize = 32;
/// Padded tokens (texts × the longest of them) run through the model at once, at most. Past
/// about two thousand tokens a larger batch no longer lowers the cost per text on a CPU (at
/// 256 tokens a batch of 32 costs more per text than one of 8), while a query waiting for the
/// model waits for the whole batch that is running: 32 texts of 256 tokens take seconds.
pub const MAX_BATCH_TOKENS: usize = 2048;
/// Bytes of a text handed to the tokenizer. 256 tokens never need this much text in practice;
/// the cap only bounds the tokenizer's work on absurd inputs.
const MAX_INPUT_BYTES: usize = 64 * 1024;

const MODEL_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";
const CONFIG_FILE: &str = "config.json";

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path} is missing; run scripts/fetch-model.sh to fetch the embedding model")]
    MissingFile { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a BERT config: {source}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path} describes {layers} layers of width {width}, not all-MiniLM-L6-v2 (6 x {DIMENSIONS})"
    )]
    UnexpectedModel {
        path: PathBuf,
        layers: usize,
        width: usize,
    },
    #[error("cannot load the tokenizer from {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot load the model weights from {path}: {source}")]
    Model {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("cannot start the embedding thread pool: {0}")]
    ThreadPool(String),
}

/// all-MiniLM-L6-v2 in-process. Cheap to clone: clones share the model.
///
/// One batch runs at a time (a batch already uses every thread it is given). Calls queue per
/// batch, queries before tool texts ([`ModelGate`]), so a query waits for at most the batch
/// that is running, and a dropped call stops after its current batch.
#[derive(Clone)]
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    gate: Arc<ModelGate>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
    model_dir: PathBuf,
    /// Our own pool when the thread count is capped; else candle's default pool.
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &MODEL_ID)
            .field("model_dir", &self.inner.model_dir)
            .field("dimensions", &self.inner.dimensions)
            .field("threads", &self.inner.threads)
            .finish()
    }
}

impl LocalEmbedder {
    /// Loads the model from `model_dir` (memory-mapped, f32, CPU).
    ///
    /// `max_threads` caps the threads one forward pass uses (`None` or `Some(0)`: candle's
    /// default, one per physical core, or `RAYON_NUM_THREADS`).
    pub fn load(model_dir: &Path, max_threads: Option<usize>) -> Result<Self, LoadError> {
        let model_path = existing(model_dir, MODEL_FILE)?;
        let tokenizer_path = existing(model_dir, TOKENIZER_FILE)?;
        let config_path = existing(model_dir, CONFIG_FILE)?;

        let config_text =
            std::fs::read_to_string(&config_path).map_err(|source| LoadError::Read {
                path: config_path.clone(),
                source,
            })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|source| LoadError::Config {
                path: config_path.clone(),
                source,
            })?;

        // The id names this model: refuse another one rather than mislabel its vectors.
        if config.hidden_size != DIMENSIONS || config.num_hidden_layers != 6 {
            return Err(LoadError::UnexpectedModel {
                path: config_path,
                layers: config.num_hidden_layers,
                width: config.hidden_size,
            });
        }

        let tokenizer = load_tokenizer(&tokenizer_path)?;

        let device = Device::Cpu;
        // SAFETY: the weights are memory-mapped; the file must not be modified in place while
        // the model lives. scripts/fetch-model.sh replaces files by renaming a fresh copy over
        // them, which leaves an existing mapping intact.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&model_path], DType::F32, &device) }
                .map_err(|source| LoadError::Model {
                    path: model_path.clone(),
                    source,
                })?;
        let model = BertModel::load(vb, &config).map_err(|source| LoadError::Model {
            path: model_path.clone(),
            source,
        })?;

        let (pool, threads) = match max_threads {
            Some(n) if n > 0 => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("embed-{i}"))
                    .build()
                    .map_err(|e| LoadError::ThreadPool(e.to_string()))?;
                (Some(pool), n)
            }
            _ => (None, candle_core::utils::get_num_threads()),
        };

        Ok(Self {
            gate: ModelGate::new(),
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
                dimensions: config.hidden_size,
                model_dir: model_dir.to_path_buf(),
                pool,
                threads,
            }),
        })
    }
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf, LoadError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LoadError::MissingFile { path })
    }
}

/// The shipped `tokenizer.json` truncates at 128 and pads every input to 128: the reference
/// truncates at 256 and pads a batch to its longest text, so both are overridden here.
fn load_tokenizer(path: &Path) -> Result<Tokenizer, LoadError> {
    let err = |e: tokenizers::Error| LoadError::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(err)?;
    let (pad_id, pad_type_id, pad_token) = match tokenizer.get_padding() {
        Some(p) => (p.pad_id, p.pad_type_id, p.pad_token.clone()),
        None => (0, 0, "[PAD]".to_owned()),
    };
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_SEQ_LEN,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(err)?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        direction: PaddingDirection::Right,
        pad_to_multiple_of: None,
        pad_id,
        pad_type_id,
        pad_token,
    }));
    Ok(tokenizer)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Token ids of one text, ready to be batched.
struct Tokens {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    mask: Vec<u32>,
}

impl Inner {
    /// Tokenises each text on its own: truncated at 256 tokens, not padded.
    fn tokenize(&self, texts: &[String]) -> Result<Vec<Tokens>, EmbedError> {
        texts
            .iter()
            .map(|text| {
                let e = self
                    .tokenizer
                    .encode(clip(text, MAX_INPUT_BYTES), true)
                    .map_err(|e| EmbedError::Rejected(format!("tokenizer: {e}")))?;
                Ok(Tokens {
                    ids: e.get_ids().to_vec(),
                    type_ids: e.get_type_ids().to_vec(),
                    mask: e.get_attention_mask().to_vec(),
                })
            })
            .collect()
    }

    /// One forward pass over a batch: pad to the longest, BERT, masked mean, L2 normalise.
    /// Blocking and CPU-heavy.
    fn run(&self, batch: &[Tokens]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = batch.len();
        let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let (pad_id, pad_type_id) = self
            .tokenizer
            .get_padding()
            .map_or((0, 0), |p| (p.pad_id, p.pad_type_id));
        let mut ids = vec![pad_id; n * len];
        let mut type_ids = vec![pad_type_id; n * len];
        let mut mask = vec![0u32; n * len];
        for (row, t) in batch.iter().enumerate() {
            let at = row * len;
            ids[at..at + t.ids.len()].copy_from_slice(&t.ids);
            type_ids[at..at + t.type_ids.len()].copy_from_slice(&t.type_ids);
            mask[at..at + t.mask.len()].copy_from_slice(&t.mask);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;

        let forward = || -> candle_core::Result<Vec<Vec<f32>>> {
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (n, len, dims)
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, dims)
            let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        match &self.pool {
            Some(pool) => pool.install(forward),
            None => self.device.with_context(forward),
        }
    }
}

fn task_failed(e: tokio::task::JoinError) -> EmbedError {
    EmbedError::BadResponse(format!("local embedding task failed: {e}"))
}

/// Splits texts sorted by length (shortest first) into consecutive batches of at most
/// [`BATCH_SIZE`] texts and [`MAX_BATCH_TOKENS`] padded tokens, padded to at most half again
/// their own tokens; a text longer than the budget alone still makes a batch. Returns each
/// batch's size.
///
/// The padding cap matters for the steps of a request (a few texts of unlike lengths): one
/// batch pads each short step to the longest, and a pass over the padding costs as much as
/// over text, more than a second pass does.
fn batch_sizes(sorted_lengths: &[usize]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut count, mut tokens) = (0, 0);
    for &length in sorted_lengths {
        // Sorted, so this text is the longest of the batch it joins.
        let padded = (count + 1) * length;
        if count > 0
            && (count == BATCH_SIZE
                || padded > MAX_BATCH_TOKENS
                || 2 * padded > 3 * (tokens + length))
        {
            sizes.push(count);
            (count, tokens) = (0, 0);
        }
        count += 1;
        tokens += length;
    }
    if count > 0 {
        sizes.push(count);
    }
    sizes
}

impl LocalEmbedder {
    async fn embed_with(
        &self,
        texts: &[&str],
        priority: Priority,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // All model work runs on blocking threads, never on the runtime's workers.
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        let inner = Arc::clone(&self.inner);
        let tokens = tokio::task::spawn_blocking(move || inner.tokenize(&owned))
            .await
            .map_err(task_failed)??;

        // Shortest first, so each batch pads to about its own length.
        let mut pending: Vec<(usize, Tokens)> = tokens.into_iter().enumerate().collect();
        pending.sort_by_key(|(_, t)| t.ids.len());
        let lengths: Vec<usize> = pending.iter().map(|(_, t)| t.ids.len()).collect();
        let mut pending = pending.into_iter();

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for size in batch_sizes(&lengths) {
            let (slots, batch): (Vec<usize>, Vec<Tokens>) = pending.by_ref().take(size).unzip();
            // The pass moves into the task, so a batch still running after its caller gave
            // up keeps the next one waiting.
            let pass = self.gate.enter(priority).await;
            let inner = Arc::clone(&self.inner);
            let vectors = tokio::task::spawn_blocking(move || {
                let result = inner.run(&batch);
                drop(pass);
                result
            })
            .await
            .map_err(task_failed)?
            .map_err(|e| EmbedError::BadResponse(format!("local model failed: {e}")))?;
            if vectors.len() != slots.len() {
                return Err(EmbedError::BadResponse(format!(
                    "local model returned {} vectors for {} texts",
                    vectors.len(),
                    slots.len()
                )));
            }
            for (slot, vector) in slots.into_iter().zip(vectors) {
                out[slot] = vector;
            }
        }

        let dims = self.inner.dimensions;
        if let Some(bad) = out
            .iter()
            .find(|v| v.len() != dims || v.iter().any(|x| !x.is_finite()))
        {
            return Err(EmbedError::BadResponse(format!(
                "local model produced a vector of {} values (expected {dims}) or a non-finite value",
                bad.len()
            )));
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    #[tracing::instrument(level = "debug", name = "embedding.model", skip_all, fields(
        embedding.provider = "local", embedding.model = %self.model_id(),
        embedding.batch_size = texts.len() as i64))]
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with(texts, Priority::Query).await
    }

    #[tracing::instrument(level = "debug", name = "embedding.model", skip_all, fields(
        embedding.provider = "local", embedding.model = %self.model_id(),
        embedding.batch_size = texts.len() as i64))]
    async fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with(texts, Priority::Document).await
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    fn model_id(&self) -> &str {
        MODEL_ID
    }

    /// all-MiniLM-L6-v2 was trained on many question and answer pairs: a request read as a
    /// "how to" question lands nearer the descriptions of the tools that do it (MCP set
    /// semantic recall@5 .797 → .870). The steps of a longer request are read as they are:
    /// framed too, they measured worse on Seal-Tools.
    fn request_frame(&self) -> Option<&'static str> {
        Some(REQUEST_FRAME)
    }

    fn health(&self) -> EmbedderHealth {
        EmbedderHealth {
            provider: "local".to_owned(),
            model: MODEL_ID.to_owned(),
            dimensions: self.inner.dimensions,
            status: "up",
            detail: serde_json::json!({
                "model_dir": self.inner.model_dir.display().to_string(),
                "max_seq_len": MAX_SEQ_LEN,
                "batch_size": BATCH_SIZE,
                "max_batch_tokens": MAX_BATCH_TOKENS,
                "threads": self.inner.threads,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
