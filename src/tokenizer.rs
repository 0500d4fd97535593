//! The text tokenizer: a HuggingFace `tokenizer.json` (trained by `bedside-train tokenizer`, or
//! the one that comes with an imported T5 checkpoint), loaded from bytes with the pure-Rust build
//! of the `tokenizers` crate, so the ids are the same natively and in the browser.

use tokenizers::Tokenizer;

use crate::error::{BedsideError, Result};

pub const TOKENIZER_FILE: &str = "tokenizer.json";
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
        Ok(Self { inner, pad, eos })
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
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| error(format!("cannot decode: {e}")))
    }

    /// The text of one token as it reads inside a decoded sequence (a leading space when it
    /// starts a word), for streaming.
    pub fn piece(&self, id: u32) -> String {
        match self.inner.id_to_token(id) {
            Some(token) if id != self.pad && id != self.eos => token.replace('\u{2581}', " "),
            _ => String::new(),
        }
    }
}
