//! The run configuration (`run.toml`): every field documented, all with defaults, checked
//! before anything runs.

use crate::shared::backend::TrainingBackend;
use crate::shared::split::PatientSplit;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use bedside::knowledge::{CHANNELS, PHENOTYPES};
use bedside::model::t5::{FeedForwardKind, T5Config};
use bedside::model::{ClinicalModelConfig, SeriesEncoderConfig};
use serde::{Deserialize, Serialize};

/// A distillation run. Paths are relative to the directory of the `run.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Cohort JSONL files with labels (real admissions, e.g. `cohort --source mimic4`), split
    /// by patient ([`PatientSplit`]): their test patients are never read.
    pub cohorts: Vec<PathBuf>,
    /// Admissions of the built-in synthetic cohort added to the cohorts (0: none). It has no
    /// test side: its test admissions are other seeds (`eval --split`).
    pub synthetic: usize,
    /// Share of the training admissions with notes whose notes are dropped (seeded, once per
    /// run), so that the model learns to answer from the labs alone, as it must for a record
    /// without notes.
    pub note_dropout: f64,
    /// Teacher rationale JSONL (`bedside-train teach`); unset: the built-in knowledge teacher.
    pub rationales: Option<PathBuf>,
    /// A `tokenizer.json`; unset: one is trained on the cohort with `vocab_size` tokens.
    pub tokenizer: Option<PathBuf>,
    /// A HuggingFace T5 / Flan-T5 checkpoint directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`) to start the language model from, as ClinRaGen starts from Flan-T5.
    /// Its config sets the language model's shape (the `model` table's T5 fields are then
    /// unused) and its tokenizer, with the reserved rationale tokens added, replaces `tokenizer`
    /// and `vocab_size`.
    pub init_from: Option<PathBuf>,
    pub vocab_size: usize,
    /// Hours of lab/vital data per admission.
    pub hours: usize,
    /// Longest prompt (notes) in tokens; longer notes are cut at the end.
    pub max_prompt_tokens: usize,
    /// Longest target in tokens.
    pub max_target_tokens: usize,
    pub seed: u64,
    pub batch_size: usize,
    /// Peak learning rate of AdamW, reached after `warmup_steps`, then cosine decay to 5 %.
    pub learning_rate: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Gradient clipping by global norm.
    pub grad_clip: f64,
    /// Weight of the phenotype head's BCE next to the sequence loss.
    pub phenotype_weight: f64,
    /// Epochs per stage (1, 2, 3); 0 skips a stage.
    pub epochs: [usize; 3],
    /// Early stopping: a stage ends after this many epochs without a better validation score, the
    /// sum of two micro-F1s: the phenotype head's (the diagnoses `explain` writes) and the
    /// decoder's own diagnoses (the language model learning to write, which the head's alone
    /// stopped while the rationales still improved). Each stage keeps its best-scoring epoch.
    pub patience: usize,
    /// Where training runs: "cpu", "wgpu" (Vulkan, Metal, DX12) on a GPU, or "cuda" (a build
    /// with `--features bedside-train/cuda`). Validation (generation, one token at a time) runs
    /// on the CPU either way.
    pub backend: TrainingBackend,
    /// The patient split (shares of validation and test patients), the one `medrec` uses.
    pub split: PatientSplit,
    pub model: ModelConfig,
}

/// The architecture of a model trained from scratch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub heads: usize,
    pub dropout: f64,
    /// Width and depth of the time-series encoder.
    pub series_d_model: usize,
    pub series_layers: usize,
    /// Knowledge prototypes S and the heads of the knowledge attention.
    pub prototypes: usize,
    pub knowledge_heads: usize,
    /// The phenotype head's wide half: a linear model over the prompt's tokens and the lab
    /// summaries beside the deep head (`bedside::model::wide`).
    pub wide: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            d_model: 256,
            d_kv: 32,
            d_ff: 768,
            encoder_layers: 4,
            decoder_layers: 4,
            heads: 8,
            dropout: 0.1,
            series_d_model: 64,
            series_layers: 2,
            prototypes: 24,
            knowledge_heads: 8,
            wide: true,
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            cohorts: Vec::new(),
            synthetic: 400,
            note_dropout: 0.0,
            rationales: None,
            tokenizer: None,
            init_from: None,
            vocab_size: 4000,
            hours: 48,
            max_prompt_tokens: 256,
            max_target_tokens: 128,
            seed: 7,
            batch_size: 16,
            learning_rate: 1e-3,
            warmup_steps: 50,
            weight_decay: 0.01,
            grad_clip: 1.0,
            phenotype_weight: 1.0,
            epochs: [4, 4, 4],
            patience: 3,
            backend: TrainingBackend::Cpu,
            split: PatientSplit::default(),
            model: ModelConfig::default(),
        }
    }
}

impl RunConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: Self = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        config.check().with_context(|| path.display().to_string())?;
        Ok(config)
    }

    pub(super) fn check(&self) -> Result<()> {
        ensure!(self.batch_size > 0, "batch_size must be at least 1");
        ensure!(
            self.init_from.is_none() || self.tokenizer.is_none(),
            "init_from brings its own tokenizer.json; unset tokenizer"
        );
        self.split.check()?;
        ensure!(
            (0.0..=1.0).contains(&self.note_dropout),
            "note_dropout must be in [0, 1]"
        );
        ensure!(
            self.synthetic > 0 || !self.cohorts.is_empty(),
            "no admissions: set cohorts or synthetic"
        );
        ensure!(
            self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            "learning_rate must be positive"
        );
        ensure!(
            self.max_prompt_tokens >= 8 && self.max_target_tokens >= 8,
            "max_*_tokens must be at least 8"
        );
        ensure!(
            self.model.heads > 0 && self.model.knowledge_heads > 0,
            "heads must be at least 1"
        );
        ensure!(
            self.model
                .d_model
                .is_multiple_of(self.model.knowledge_heads),
            "model.d_model must be divisible by model.knowledge_heads"
        );
        ensure!(
            self.model.series_d_model.is_multiple_of(4),
            "model.series_d_model must be divisible by 4 (its heads)"
        );
        // the library's bounds, so that no value here reaches an assert inside burn
        let config = self.model_config(self.vocab_size.max(4), 1);
        config.t5.check().map_err(|e| anyhow!("model: {e}"))?;
        config
            .series
            .check()
            .map_err(|e| anyhow!("model (series): {e}"))?;
        Ok(())
    }

    pub fn model_config(&self, vocab_size: usize, knowledge_tokens: usize) -> ClinicalModelConfig {
        let m = &self.model;
        let t5 = T5Config::new(vocab_size)
            .with_d_model(m.d_model)
            .with_d_kv(m.d_kv)
            .with_d_ff(m.d_ff)
            .with_num_layers(m.encoder_layers)
            .with_num_decoder_layers(m.decoder_layers)
            .with_num_heads(m.heads)
            .with_feed_forward(FeedForwardKind::GatedGelu)
            .with_dropout_rate(m.dropout);
        let series = SeriesEncoderConfig::new(CHANNELS.len())
            .with_hours(self.hours)
            .with_d_model(m.series_d_model)
            .with_n_layers(m.series_layers)
            .with_d_ff(2 * m.series_d_model)
            .with_dropout(m.dropout);
        ClinicalModelConfig::new(t5, series, knowledge_tokens)
            .with_prototypes(m.prototypes)
            .with_knowledge_heads(m.knowledge_heads)
            .with_phenotypes(PHENOTYPES.len())
            .with_wide(Some(m.wide))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    /// bedside-small, the default architecture: 10–20 M parameters, small enough for a browser.
    #[test]
    fn the_default_model_is_bedside_small() {
        let config = RunConfig::default().model_config(RunConfig::default().vocab_size, 600);
        let model = config.init(&(3..603).collect::<Vec<u32>>(), &Device::flex());
        let params = burn::module::Module::num_params(&model);
        eprintln!("bedside-small: {params} parameters");
        assert!(
            (10_000_000..=20_000_000).contains(&params),
            "{params} parameters"
        );
        assert!(RunConfig::default().check().is_ok());
        // and the documented defaults survive a TOML round trip
        let text = toml::to_string(&RunConfig::default()).unwrap();
        let back: RunConfig = toml::from_str(&text).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
    }
}
