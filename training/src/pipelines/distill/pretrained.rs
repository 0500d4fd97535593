//! A HuggingFace T5 checkpoint to start the language model from (`init_from`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bedside::model::t5::hf::AddedTokens;
use bedside::model::t5::{T5, T5Config};
use bedside::tokenizer::TextTokenizer;
use burn::prelude::*;

/// A HuggingFace T5 checkpoint to start from (`init_from`), read once.
pub(super) struct Pretrained {
    pub(super) dir: PathBuf,
    pub(super) config_json: String,
    pub(super) weights: Vec<u8>,
    /// Its `tokenizer.json` with the reserved rationale tokens added after its own ids.
    pub(super) tokenizer: Vec<u8>,
    /// The ids its own tokenizer uses, and how many the reserved tokens added.
    pub(super) added: AddedTokens,
}

impl Pretrained {
    pub(super) fn read(dir: &Path) -> Result<Self> {
        use bedside::model::t5::hf::{CONFIG_FILE, WEIGHTS_FILE};
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .with_context(|| format!("init_from: cannot read {}", dir.join(name).display()))
        };
        let config_json = String::from_utf8(read(CONFIG_FILE)?)
            .with_context(|| format!("init_from: {CONFIG_FILE} is not UTF-8"))?;
        let config = bedside::model::t5::hf::config_from_json(&config_json)
            .with_context(|| format!("init_from {}", dir.display()))?;
        let path = dir.join(bedside::tokenizer::TOKENIZER_FILE);
        let own = read(bedside::tokenizer::TOKENIZER_FILE)?;
        let tokenizer =
            crate::pipelines::tokenizer::extend(&own, config.pad_token_id, config.eos_token_id)
                .with_context(|| path.display().to_string())?
                .into_bytes();
        let used = TextTokenizer::from_bytes(&own)?.vocab_size();
        let added = TextTokenizer::from_bytes(&tokenizer)?.vocab_size() - used;
        Ok(Self {
            dir: dir.to_path_buf(),
            config_json,
            weights: read(WEIGHTS_FILE)?,
            tokenizer,
            added: AddedTokens { used, added },
        })
    }

    /// The language model, its vocabulary grown by the added tokens.
    pub(super) fn language_model(&self, device: &Device) -> Result<(T5Config, T5)> {
        bedside::model::t5::hf::load_with_vocab(
            &self.config_json,
            &self.weights,
            Some(self.added),
            device,
        )
        .with_context(|| format!("init_from {}", self.dir.display()))
    }
}
