//! The text tokenizer: a HuggingFace `tokenizer.json` (trained by `bedside-train tokenizer`, or
//! the one that comes with an imported T5 checkpoint), loaded from bytes with the pure-Rust build
//! of the `tokenizers` crate, so the ids are the same natively and in the browser.

use tokenizers::Tokenizer;

use crate::error::{BedsideError, Result};

pub use crate::files::TOKENIZER_FILE;
/// T5's special tokens, which bedside's own tokenizers put at ids 0, 1, 2.
pub const PAD: &str = "<pad>";
pub const EOS: &str = "</s>";
pub const UNK: &str = "<unk>";

/// Largest input text accepted (bytes): a long discharge summary is ~50 kB.
pub const MAX_TEXT_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pad: u32,
    eos: u32,
    /// The vocabulary size of the model that reads the ids, once bound ([`Self::bound_to`]):
    /// every id `encode` gives must be below it.
    model_vocab: Option<usize>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

fn error(message: impl std::fmt::Display) -> BedsideError {
    BedsideError::bundle(TOKENIZER_FILE, message)
}

impl TextTokenizer {
    /// Reads `tokenizer.json` bytes; it must define `<pad>` and `</s>`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let inner =
            Tokenizer::from_bytes(bytes).map_err(|e| error(format!("not a tokenizer: {e}")))?;
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| error(format!("defines no {token} token")))
        };
        let (pad, eos) = (id(PAD)?, id(EOS)?);
        Ok(Self {
            inner,
            pad,
            eos,
            model_vocab: None,
        })
    }

    /// Binds the tokenizer to the model that reads its ids: the largest id of its vocabulary must
    /// be below the model's `vocab_size`, and its `<pad>` and `</s>` must be the model's pad and
    /// eos ids; from then on `encode` refuses any id past the model's vocabulary (a special token
    /// the post-processor adds included). An id past the embedding would reach a gather that
    /// panics natively and traps in wasm; a sparse or edited `tokenizer.json` is refused here,
    /// naming the file, before any tensor is built.
    pub fn bound_to(mut self, vocab_size: usize, pad_id: usize, eos_id: usize) -> Result<Self> {
        let vocab = self.inner.get_vocab(true);
        if let Some((token, &largest)) = vocab.iter().max_by_key(|(_, id)| **id)
            && largest as usize >= vocab_size
        {
            return Err(error(format!(
                "token {token:?} has id {largest}, outside the model's vocabulary \
                 (vocab_size {vocab_size})"
            )));
        }
        for (token, id, model_id, field) in [
            (PAD, self.pad, pad_id, "pad_token_id"),
            (EOS, self.eos, eos_id, "eos_token_id"),
        ] {
            if id as usize != model_id {
                return Err(error(format!(
                    "{token} has id {id}, but the model's {field} is {model_id}"
                )));
            }
        }
        self.model_vocab = Some(vocab_size);
        // the post-processor's special tokens carry ids of their own: an empty text gives them
        self.encode("")?;
        Ok(self)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of `text`, at most `max` (at least 1): a longer text is cut at the end and keeps
    /// its `</s>`. How prompts and targets are cut, in training and at inference alike.
    pub fn encode_at_most(&self, text: &str, max: usize) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if ids.len() > max.max(1) {
            ids.truncate(max.max(1) - 1);
            ids.push(self.eos);
        }
        Ok(ids)
    }

    /// Token ids of `text`, with the post-processor's special tokens (`</s>` at the end).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(BedsideError::InvalidRecord(vec![
                crate::error::FieldProblem {
                    path: "text".into(),
                    message: format!(
                        "{} bytes is more than the {MAX_TEXT_BYTES} accepted",
                        text.len()
                    ),
                },
            ]));
        }
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| error(format!("cannot encode: {e}")))?;
        let ids = encoding.get_ids();
        if let Some(vocab_size) = self.model_vocab
            && let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab_size)
        {
            return Err(error(format!(
                "gives id {id}, outside the model's vocabulary (vocab_size {vocab_size})"
            )));
        }
        Ok(ids.to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| error(format!("cannot decode: {e}")))
    }
}
