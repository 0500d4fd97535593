//! `bedside-train distill`: ClinRaGen's sequential rationale distillation into the multimodal
//! model, from a `run.toml` (every field documented on [`RunConfig`], all with defaults).
//!
//! Stage 1 — notes → diagnoses + note rationale; the language model and the phenotype head train,
//! the time-series encoder and knowledge attention are frozen. Stage 2 — channel tokens alone →
//! diagnoses + lab rationale; the language model is frozen, the time-series encoder, knowledge
//! attention and head train (`E_K` is first re-copied from the stage-1 embeddings). Stage 3 —
//! notes + channel tokens → diagnoses + both rationales; the time-series encoder is frozen.
//!
//! Every epoch ends with validation (micro-F1 of the phenotype head), early stopping, and a
//! checkpoint (weights, optimizer state, parameter ids, progress) written atomically. `--resume`
//! continues from it; Ctrl-C checkpoints mid-epoch before exiting. Batches are shuffled and
//! dropout is seeded per (stage, epoch), so a resumed run ends with the numbers of an uninterrupted
//! one.

use crate::backend::{TrainingBackend, initialised};
use crate::usage::Meter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bedside::constrained::DiagnosisGrammar;
use bedside::findings::Findings;
use bedside::generate::{self, GenerateOptions};
use bedside::grounded::{RationaleVocab, picks_from_text};
use bedside::knowledge::{CHANNELS, PHENOTYPES};
use bedside::model::clinical::{length_mask, pad_ids};
use bedside::model::knowledge_attention::knowledge_token_ids;
use bedside::model::t5::hf::AddedTokens;
use bedside::model::t5::{FeedForwardKind, T5, T5Config};
use bedside::model::{
    ClinicalInput, ClinicalModel, ClinicalModelConfig, Part, SeriesEncoderConfig, WideHead,
    sequence_loss,
};
use bedside::prompt::{clinical_prompt, parse_target, target_text};
use bedside::record::{PatientRecord, SeriesGrid};
use bedside::tokenizer::TextTokenizer;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::io::{bar, write_atomic};
use crate::teach::{self, Rationale};

/// A distillation run. Paths are relative to the directory of the `run.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Cohort JSONL with labels; unset: the built-in synthetic cohort of `synthetic` admissions.
    pub cohort: Option<PathBuf>,
    /// Size of the built-in synthetic cohort.
    pub synthetic: usize,
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
    /// Share of admissions held out for validation (split by admission, seeded).
    pub validation_fraction: f64,
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
            cohort: None,
            synthetic: 400,
            rationales: None,
            tokenizer: None,
            init_from: None,
            vocab_size: 4000,
            hours: 48,
            max_prompt_tokens: 256,
            max_target_tokens: 128,
            validation_fraction: 0.2,
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

    fn check(&self) -> Result<()> {
        ensure!(self.batch_size > 0, "batch_size must be at least 1");
        ensure!(
            self.init_from.is_none() || self.tokenizer.is_none(),
            "init_from brings its own tokenizer.json; unset tokenizer"
        );
        ensure!(
            (0.0..0.9).contains(&self.validation_fraction),
            "validation_fraction must be in [0, 0.9)"
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

/// One admission, tokenized for every stage.
pub(crate) struct Example {
    notes_prompt: Vec<u32>,
    pub(crate) both_prompt: Vec<u32>,
    pub(crate) grid: SeriesGrid,
    targets: [Vec<u32>; 3],
    pub(crate) phenotypes: Vec<bool>,
}

pub(crate) fn example(
    record: &PatientRecord,
    rationale: Option<&Rationale>,
    tok: &TextTokenizer,
    config: &RunConfig,
) -> Result<Example> {
    let labels: Vec<&str> = record
        .labels
        .as_ref()
        .map(|l| l.phenotypes.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let generated;
    let r = match rationale {
        Some(r) => r,
        None => {
            generated = teach::knowledge_teacher(record, config.hours);
            &generated
        }
    };
    let enc = |text: &str, max| tok.encode_at_most(text, max);
    let p = config.max_prompt_tokens;
    let t = config.max_target_tokens;
    let findings = Findings::of(record, config.hours);
    let notes_prompt = enc(&clinical_prompt(record, &findings, true, false), p)?;
    let both_prompt = enc(&clinical_prompt(record, &findings, true, true), p)?;
    // the teacher's statements as the record's findings, each only where the model can see it
    let vocab = RationaleVocab::new(tok)
        .context("the tokenizer lacks the grounded rationale's reserved tokens")?;
    let (notes, _) = picks_from_text(record, &findings, &r.note_rationale, "");
    let (labs, _) = picks_from_text(record, &findings, "", &r.lab_rationale);
    let note_choices = vocab.choices(
        &Findings {
            labs: Vec::new(),
            ..findings.clone()
        },
        &notes_prompt,
    );
    let lab_choices = vocab.choices(
        &Findings {
            sentences: Vec::new(),
            ..findings.clone()
        },
        &[],
    );
    let both: Vec<u32> = note_choices.iter().chain(&lab_choices).copied().collect();
    let all: Vec<_> = notes.iter().chain(&labs).copied().collect();
    Ok(Example {
        notes_prompt,
        both_prompt,
        grid: SeriesGrid::from_record(record, config.hours),
        targets: [
            enc(
                &target_text(&labels, &vocab.target(&notes, &note_choices)),
                t,
            )?,
            enc(&target_text(&labels, &vocab.target(&labs, &lab_choices)), t)?,
            enc(&target_text(&labels, &vocab.target(&all, &both)), t)?,
        ],
        phenotypes: PHENOTYPES
            .iter()
            .map(|p| labels.contains(&p.name))
            .collect(),
    })
}

pub(crate) struct Batch {
    pub input: ClinicalInput,
    pub targets: Tensor<2, Int>,
    pub target_mask: Tensor<2>,
    pub phenotypes: Tensor<2, Int>,
}

pub(crate) fn batch(examples: &[&Example], stage: usize, device: &Device) -> Batch {
    let prompts: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| match stage {
            0 => e.notes_prompt.clone(),
            _ => e.both_prompt.clone(),
        })
        .collect();
    let grids: Vec<&SeriesGrid> = examples.iter().map(|e| &e.grid).collect();
    let series = (stage > 0).then(|| SeriesGrid::tensors(&grids, device));
    // stage 2 reads the channel tokens alone, as in ClinRaGen
    let text = (stage != 1).then(|| pad_ids(&prompts, device));
    let targets: Vec<Vec<u32>> = examples.iter().map(|e| e.targets[stage].clone()).collect();
    let (targets, lengths) = pad_ids(&targets, device);
    let target_mask = length_mask(&lengths, lengths.len(), targets.dims()[1], device);
    let labels: Vec<i64> = examples
        .iter()
        .flat_map(|e| e.phenotypes.iter().map(|&b| i64::from(b)))
        .collect();
    let phenotypes = Tensor::<1, Int>::from_data(
        TensorData::new(labels, [examples.len() * PHENOTYPES.len()]),
        device,
    )
    .reshape([examples.len(), PHENOTYPES.len()]);
    Batch {
        input: ClinicalInput { text, series },
        targets,
        target_mask,
        phenotypes,
    }
}

/// Stage 0's wide half fitted on the training split alone, in a run directory: validation reads
/// it in place of the wide half refitted on both splits ([`crate::wide_fit`]).
const HELD_OUT_WIDE: &str = "wide-held-out.safetensors";

/// The head's temperature and calibration in a run directory ([`crate::calibration`]).
pub const CALIBRATION_FILE: &str = "calibration.json";

/// What one validation pass measured, with the head's logits for calibration.
struct Validation {
    generated_micro_f1: f64,
    head: crate::metrics::Metrics,
    /// Row-major `[rows, phenotypes]`, and the truth in the same order.
    logits: Vec<f32>,
    truth: Vec<bool>,
}

/// Progress kept in `checkpoint/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Stage (0, 1, 2) and epoch in it being worked on, and batches of that epoch already done.
    pub stage: usize,
    pub epoch: usize,
    pub batch: usize,
    /// Steps of the current stage so far (for the learning-rate schedule).
    pub step: usize,
    /// The stage's best validation score (see [`RunConfig::patience`]).
    pub best_f1: f64,
    pub epochs_without_improvement: usize,
    pub done: bool,
    /// Stage 0, once it ran (models with a wide head: [`crate::wide_fit`]).
    #[serde(default)]
    pub wide_fit: Option<crate::wide_fit::WideFit>,
    /// What every finished epoch measured on the validation split.
    pub history: Vec<EpochRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub stage: usize,
    pub epoch: usize,
    pub train_loss: f64,
    /// Micro-F1 of the diagnoses the decoder writes when only the grammar constrains it (not
    /// the head's selection, as `explain` does).
    pub generated_micro_f1: f64,
    /// The phenotype head at threshold 0.5 (what early stopping watches: `explain` writes
    /// exactly the head's selection), and its macro AUROC.
    pub head_micro_f1: f64,
    pub head_macro_auroc: f64,
}

/// Collects the id of every parameter by path, so that optimizer state (keyed by id) can be
/// re-attached to a rebuilt model.
#[derive(Default)]
struct IdCollector {
    path: Vec<String>,
    ids: BTreeMap<String, u64>,
}

impl ModuleVisitor for IdCollector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.path.join("."), param.id.val());
    }
}

/// Gives every parameter the id it had when the checkpoint was written.
struct IdSetter<'a> {
    path: Vec<String>,
    ids: &'a BTreeMap<String, u64>,
}

impl ModuleMapper for IdSetter<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if let Some(id) = self.ids.get(&self.path.join(".")) {
            param.id = ParamId::from(*id);
        }
        param
    }
}

/// A HuggingFace T5 checkpoint to start from (`init_from`), read once.
struct Pretrained {
    dir: PathBuf,
    config_json: String,
    weights: Vec<u8>,
    /// Its `tokenizer.json` with the reserved rationale tokens added after its own ids.
    tokenizer: Vec<u8>,
    /// The ids its own tokenizer uses, and how many the reserved tokens added.
    added: AddedTokens,
}

impl Pretrained {
    fn read(dir: &Path) -> Result<Self> {
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
        let tokenizer = crate::tokenizer::extend(&own, config.pad_token_id, config.eos_token_id)
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
    fn language_model(&self, device: &Device) -> Result<(T5Config, T5)> {
        bedside::model::t5::hf::load_with_vocab(
            &self.config_json,
            &self.weights,
            Some(self.added),
            device,
        )
        .with_context(|| format!("init_from {}", self.dir.display()))
    }
}

pub struct Run {
    pub dir: PathBuf,
    pub config: RunConfig,
    /// The directory of the run.toml, which relative paths in it are relative to.
    base: PathBuf,
}

const CHECKPOINT: &str = "checkpoint";

/// The trained-part setting of each stage (ClinRaGen's freezing), plus E_K always frozen.
pub(crate) fn prepare_stage(model: ClinicalModel, stage: usize) -> ClinicalModel {
    let model = model.set_require_grad(true);
    let model = match stage {
        0 => model
            .freeze_part(Part::SeriesEncoder)
            .freeze_part(Part::KnowledgeAttention),
        1 => model.freeze_part(Part::LanguageModel),
        _ => model.freeze_part(Part::SeriesEncoder),
    };
    // fitted alone in stage 0; the stages train the deep half on top of it
    model.freeze_part(Part::WideHead).freeze_knowledge_tokens()
}

pub(crate) fn save_weights<M: ModuleSnapshot>(model: &M, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow!("serialising weights: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow!("serialising weights: {e}"))?;
    write_atomic(path, &bytes)
}

fn load_weights<M: ModuleSnapshot>(model: &mut M, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    ensure!(
        result.errors.is_empty() && result.missing.is_empty(),
        "{}: {:?} {:?}",
        path.display(),
        result.errors,
        result.missing
    );
    Ok(())
}

/// Everything a run reads, prepared once.
struct Data {
    /// Tokens needed to write the longest validation diagnosis list and the rationale marker.
    diagnosis_tokens: usize,
    grammar: Option<DiagnosisGrammar>,
    tokenizer: TextTokenizer,
    knowledge_ids: Vec<u32>,
    examples: Vec<Example>,
    train: Vec<usize>,
    validation: Vec<usize>,
}

impl Run {
    pub fn new(config_path: Option<&Path>, dir: PathBuf) -> Result<Self> {
        let config = match config_path {
            Some(path) => RunConfig::read(path)?,
            None => RunConfig::default(),
        };
        let base = config_path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base = std::path::absolute(&base).unwrap_or(base);
        Ok(Self { dir, config, base })
    }

    /// Starts the language model from the checkpoint in `dir` (`--init-from`, relative to the
    /// working directory), in place of the config's `init_from`.
    pub fn init_from(&mut self, dir: &Path) -> Result<()> {
        self.config.init_from = Some(std::path::absolute(dir)?);
        self.config.check()
    }

    /// A path of the configuration, resolved against the run.toml's directory.
    pub fn resolve(&self, path: &Option<PathBuf>) -> Option<PathBuf> {
        path.as_ref().map(|p| self.base.join(p))
    }

    fn data(&self, records: &[PatientRecord], pretrained: Option<&Pretrained>) -> Result<Data> {
        let config = &self.config;
        let rationales: BTreeMap<String, Rationale> = match self.resolve(&config.rationales) {
            Some(path) => teach::read_jsonl(&path)?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            None => BTreeMap::new(),
        };
        let run_tokenizer = self.dir.join("tokenizer.json");
        let json = match self.resolve(&config.tokenizer) {
            _ if let Some(pretrained) = pretrained => pretrained.tokenizer.clone(),
            Some(path) => {
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
            }
            None if run_tokenizer.exists() => std::fs::read(&run_tokenizer)?,
            None => {
                let texts: Vec<String> = records
                    .iter()
                    .map(|r| teach::knowledge_teacher(r, config.hours))
                    .flat_map(|r| [r.note_rationale, r.lab_rationale])
                    .chain(
                        rationales
                            .values()
                            .flat_map(|r| [r.note_rationale.clone(), r.lab_rationale.clone()]),
                    )
                    .collect();
                crate::tokenizer::train(
                    crate::tokenizer::corpus(records, &texts),
                    config.vocab_size,
                )?
                .into_bytes()
            }
        };
        write_atomic(&run_tokenizer, &json)?;
        let tokenizer = TextTokenizer::from_bytes(&json)?;
        let knowledge_ids = knowledge_token_ids(&tokenizer)?;
        let examples = records
            .iter()
            .map(|r| {
                example(r, rationales.get(&r.id), &tokenizer, config)
                    .with_context(|| format!("admission {}", r.id))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(config.seed));
        let held_out = ((examples.len() as f64) * config.validation_fraction).round() as usize;
        let (validation, train) = order.split_at(held_out.min(examples.len().saturating_sub(1)));
        ensure!(!train.is_empty(), "no admissions to train on");
        let diagnosis_tokens = records
            .iter()
            .map(|r| {
                let labels: Vec<&str> = r
                    .labels
                    .as_ref()
                    .map(|l| l.phenotypes.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                tokenizer
                    .encode(&target_text(&labels, ""))
                    .map(|ids| ids.len())
            })
            .collect::<bedside::Result<Vec<_>>>()?
            .into_iter()
            .max()
            .unwrap_or(0)
            + 4;
        let labels: Vec<&str> = PHENOTYPES.iter().map(|p| p.name).collect();
        let grammar = DiagnosisGrammar::new(&tokenizer, &labels);
        Ok(Data {
            diagnosis_tokens,
            grammar,
            tokenizer,
            knowledge_ids,
            examples,
            train: train.to_vec(),
            validation: validation.to_vec(),
        })
    }

    fn learning_rate(&self, step: usize, total: usize) -> f64 {
        let c = &self.config;
        crate::schedule::warmup_cosine(c.learning_rate, step, c.warmup_steps, total)
    }

    /// Validation of `rows` with the stage's inputs: the diagnoses the decoder writes and the
    /// phenotype head. `held_out_wide` replaces the model's wide half: stage 0's fit on the
    /// training split alone, so that validation never scores a wide half fitted on it.
    fn validate(
        &self,
        model: &ClinicalModel,
        held_out_wide: Option<&WideHead>,
        data: &Data,
        stage: usize,
        rows: &[usize],
    ) -> Result<Validation> {
        let device = Device::flex();
        let mut model = model.valid().to_device(&device);
        if let Some(wide) = held_out_wide {
            model.wide = Some(wide.valid().to_device(&device));
        }
        let (mut logits, mut written, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        let options = GenerateOptions {
            max_new_tokens: data.diagnosis_tokens,
            ..Default::default()
        };
        let constraint = data
            .grammar
            .as_ref()
            .map(|g| move |prefix: &[u32]| g.allowed(prefix));
        let constraint: Option<generate::Constraint> = constraint.as_ref().map(|c| c as _);
        for chunk in rows.chunks(32) {
            let examples: Vec<&Example> = chunk.iter().map(|&i| &data.examples[i]).collect();
            let b = batch(&examples, stage, &device);
            let encoded = model.encode(&b.input);
            logits.extend(
                model
                    .phenotype_logits(&encoded)
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| anyhow!("{e:?}"))?,
            );
            truth.extend(examples.iter().flat_map(|e| e.phenotypes.iter().copied()));
            let eos = data.tokenizer.eos_id();
            let generated = pollster::block_on(generate::greedy(
                &model.lm,
                encoded.hidden,
                encoded.mask,
                model.lm.decoder_start(),
                eos,
                &options,
                constraint,
                &mut |_, _| true,
            ))?;
            for tokens in generated {
                let parsed = parse_target(&data.tokenizer.decode(&tokens)?);
                written.extend(PHENOTYPES.iter().map(|p| {
                    if parsed.diagnoses.iter().any(|d| d == p.name) {
                        1.0f32
                    } else {
                        0.0
                    }
                }));
            }
        }
        let probs: Vec<f32> = logits.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
        Ok(Validation {
            generated_micro_f1: crate::metrics::f1(&written, &truth, PHENOTYPES.len(), 0.5).0,
            head: crate::metrics::evaluate(&probs, &truth, PHENOTYPES.len(), 0.5),
            logits,
            truth,
        })
    }

    /// Writes a complete checkpoint next to the current one, then swaps it in: a kill at any
    /// moment leaves either the old or the new checkpoint whole.
    fn checkpoint(
        &self,
        model: &ClinicalModel,
        optimizer: &burn::optim::ModuleOptimizer,
        progress: &Progress,
    ) -> Result<()> {
        let fresh = self.dir.join("checkpoint-new");
        let old = self.dir.join("checkpoint-old");
        let current = self.dir.join(CHECKPOINT);
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh)?;
        }
        std::fs::create_dir_all(&fresh)?;
        save_weights(model, &fresh.join("model.safetensors"))?;
        optimizer
            .save(fresh.join("optimizer.bpk"))
            .map_err(|e| anyhow!("saving optimizer state: {e:?}"))?;
        let mut ids = IdCollector::default();
        model.visit(&mut ids);
        write_atomic(
            &fresh.join("param_ids.json"),
            serde_json::to_string(&ids.ids)?.as_bytes(),
        )?;
        write_atomic(
            &fresh.join("state.json"),
            serde_json::to_string_pretty(progress)?.as_bytes(),
        )?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        if current.exists() {
            std::fs::rename(&current, &old)?;
        }
        std::fs::rename(&fresh, &current)?;
        std::fs::remove_dir_all(&old).ok();
        Ok(())
    }

    /// The last complete checkpoint, if any (`checkpoint/`, or `checkpoint-old/` when a kill came
    /// between the two renames of [`Self::checkpoint`]).
    fn last_checkpoint(&self) -> Option<PathBuf> {
        [CHECKPOINT, "checkpoint-old"]
            .iter()
            .map(|name| self.dir.join(name))
            .find(|dir| dir.join("state.json").exists())
    }

    /// Runs (or, with `resume`, continues) every stage. `stop` is set by Ctrl-C.
    pub fn execute(
        &self,
        records: &[PatientRecord],
        resume: bool,
        stop: Arc<AtomicBool>,
        show: bool,
    ) -> Result<(ClinicalModel, Progress, TextTokenizer)> {
        let config = &self.config;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // the run's own copy, with paths resolved so that it reads the same from anywhere
        let mut saved = config.clone();
        (
            saved.cohort,
            saved.rationales,
            saved.tokenizer,
            saved.init_from,
        ) = (
            self.resolve(&config.cohort),
            self.resolve(&config.rationales),
            self.resolve(&config.tokenizer),
            self.resolve(&config.init_from),
        );
        write_atomic(
            &self.dir.join("run.toml"),
            toml::to_string(&saved)?.as_bytes(),
        )?;
        let pretrained = self
            .resolve(&config.init_from)
            .map(|dir| Pretrained::read(&dir))
            .transpose()?;
        let data = self.data(records, pretrained.as_ref())?;
        let device = config.backend.device()?.autodiff();
        let mut model_config =
            config.model_config(data.tokenizer.vocab_size(), data.knowledge_ids.len());
        // the language model a run starts from: the checkpoint's, or fresh from `model`
        let language_model = match &pretrained {
            Some(pretrained) => {
                let (t5, lm) = pretrained.language_model(&device)?;
                ensure!(
                    t5.d_model.is_multiple_of(model_config.knowledge_heads),
                    "init_from: the checkpoint's d_model {} is not divisible by \
                     model.knowledge_heads {}",
                    t5.d_model,
                    model_config.knowledge_heads
                );
                model_config.t5 = t5;
                Some(lm)
            }
            None => None,
        };
        write_atomic(
            &self.dir.join("model.json"),
            serde_json::to_string_pretty(&model_config)?.as_bytes(),
        )?;
        // the same initial weights on every backend (without dropout, wgpu follows the CPU's losses)
        let mut model = initialised(config.seed, &device, |d| match &language_model {
            Some(lm) => model_config.init_with_lm(lm.clone().to_device(d), &data.knowledge_ids, d),
            None => model_config.init(&data.knowledge_ids, d),
        })?;
        let mut progress = Progress {
            best_f1: -1.0,
            ..Progress::default()
        };
        let mut usage = Vec::new();
        let mut resumed_optimizer = None;
        if resume {
            if let Some(checkpoint) = self.last_checkpoint() {
                progress = serde_json::from_slice(&std::fs::read(checkpoint.join("state.json"))?)
                    .context("checkpoint state.json")?;
                load_weights(&mut model, &checkpoint.join("model.safetensors"))?;
                let ids: BTreeMap<String, u64> =
                    serde_json::from_slice(&std::fs::read(checkpoint.join("param_ids.json"))?)?;
                model = model.map(&mut IdSetter {
                    path: Vec::new(),
                    ids: &ids,
                });
                resumed_optimizer = Some(checkpoint.join("optimizer.bpk"));
                eprintln!(
                    "resuming at stage {} epoch {} batch {}",
                    progress.stage + 1,
                    progress.epoch + 1,
                    progress.batch
                );
            } else {
                eprintln!(
                    "no checkpoint in {}; starting from the beginning",
                    self.dir.display()
                );
            }
        }
        // stage 0: the wide head alone, to convergence, before anything else trains
        if progress
            == (Progress {
                best_f1: -1.0,
                ..Progress::default()
            })
            && let Some(wide) = model.wide.take()
        {
            let meter = Meter::start();
            let (wide, held_out, fit) =
                crate::wide_fit::fit(wide, &data.examples, &data.train, &data.validation, &device)?;
            model.wide = Some(wide);
            // (a previous run's file in the same directory must not stand in for this run's)
            match &held_out {
                Some(held_out) => save_weights(held_out, &self.dir.join(HELD_OUT_WIDE))?,
                None => std::fs::remove_file(self.dir.join(HELD_OUT_WIDE))
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })
                    .context(HELD_OUT_WIDE)?,
            }
            usage.push(meter.finish("stage 0 (wide head)".to_string(), fit.tried.len().max(1)));
            progress.wide_fit = Some(fit);
        }
        // the wide half fitted without the validation split, for validation (written by stage 0)
        let held_out_wide = match &model.wide {
            Some(wide) if self.dir.join(HELD_OUT_WIDE).exists() => {
                let mut held_out = wide.clone();
                load_weights(&mut held_out, &self.dir.join(HELD_OUT_WIDE))?;
                Some(held_out)
            }
            _ => None,
        };
        let bce = BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(&device);
        while progress.stage < 3 && !progress.done {
            let stage = progress.stage;
            let epochs = config.epochs[stage];
            let (meter, epochs_before) = (Meter::start(), progress.history.len());
            if progress.epoch == 0 && progress.batch == 0 && stage == 1 {
                model = model.refresh_knowledge(&data.knowledge_ids);
            }
            model = prepare_stage(model, stage);
            let mut optimizer = AdamWConfig::new()
                .with_weight_decay(config.weight_decay as f32)
                .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip as f32)))
                .init();
            if let Some(path) = resumed_optimizer.take() {
                // a checkpoint taken at a stage boundary holds the previous stage's optimizer
                if progress.epoch > 0 || progress.batch > 0 {
                    optimizer = optimizer
                        .load(&path)
                        .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
                }
            }
            let per_epoch = data.train.len().div_ceil(config.batch_size);
            let total = per_epoch * epochs;
            while progress.epoch < epochs {
                let epoch = progress.epoch;
                let mut order = data.train.clone();
                order.shuffle(&mut StdRng::seed_from_u64(
                    config.seed ^ ((stage as u64) << 32 | epoch as u64),
                ));
                device.seed(
                    config
                        .seed
                        .wrapping_add(1000 * stage as u64 + epoch as u64 + 1),
                );
                let progress_bar = bar(
                    per_epoch,
                    show,
                    format!("stage {} epoch {}/{}", stage + 1, epoch + 1, epochs),
                );
                progress_bar.set_position(progress.batch as u64);
                let (mut loss_sum, mut loss_count) = (0.0, 0usize);
                for chunk in order.chunks(config.batch_size).skip(progress.batch) {
                    let examples: Vec<&Example> =
                        chunk.iter().map(|&i| &data.examples[i]).collect();
                    let b = batch(&examples, stage, &device);
                    let encoded = model.encode(&b.input);
                    let logits = model.target_logits(&encoded, b.targets.clone());
                    let seq = sequence_loss(logits, b.targets, b.target_mask);
                    let head = bce.forward(model.phenotype_logits(&encoded), b.phenotypes);
                    let loss = seq + head * config.phenotype_weight;
                    let value = loss.clone().into_scalar::<f64>();
                    ensure!(
                        value.is_finite(),
                        "training diverged: loss {value} at stage {} epoch {}",
                        stage + 1,
                        epoch + 1
                    );
                    tracing::debug!(
                        stage = stage + 1,
                        epoch = epoch + 1,
                        batch = progress.batch,
                        loss = value,
                        "step"
                    );
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = optimizer.step(self.learning_rate(progress.step, total), model, grads);
                    progress.batch += 1;
                    progress.step += 1;
                    loss_sum += value;
                    loss_count += 1;
                    progress_bar.inc(1);
                    if stop.load(Ordering::SeqCst) {
                        self.checkpoint(&model, &optimizer, &progress)?;
                        progress_bar.abandon();
                        bail!(
                            "interrupted: checkpoint saved in {}; continue with --resume",
                            self.dir.join(CHECKPOINT).display()
                        );
                    }
                }
                progress_bar.finish_and_clear();
                let rows = if data.validation.is_empty() {
                    &data.train
                } else {
                    &data.validation
                };
                let Validation {
                    generated_micro_f1,
                    head,
                    ..
                } = self.validate(&model, held_out_wide.as_ref(), &data, stage, rows)?;
                let train_loss = loss_sum / loss_count.max(1) as f64;
                progress.history.push(EpochRecord {
                    stage,
                    epoch,
                    train_loss,
                    generated_micro_f1,
                    head_micro_f1: head.micro_f1,
                    head_macro_auroc: head.macro_auroc,
                });
                tracing::info!(
                    "stage {} epoch {}: train loss {train_loss:.4}; validation: generated diagnoses micro-F1 {generated_micro_f1:.3}, head micro-F1 {:.3}, macro AUROC {:.3}",
                    stage + 1,
                    epoch + 1,
                    head.micro_f1,
                    head.macro_auroc
                );
                let score = head.micro_f1 + generated_micro_f1;
                if score > progress.best_f1 {
                    progress.best_f1 = score;
                    progress.epochs_without_improvement = 0;
                    save_weights(&model, &self.dir.join("best.safetensors"))?;
                } else {
                    progress.epochs_without_improvement += 1;
                }
                progress.epoch += 1;
                progress.batch = 0;
                let stop_early = progress.epochs_without_improvement >= config.patience;
                if stop_early {
                    progress.epoch = epochs;
                }
                self.checkpoint(&model, &optimizer, &progress)?;
                if stop.load(Ordering::SeqCst) {
                    bail!(
                        "interrupted: checkpoint saved in {}; continue with --resume",
                        self.dir.join(CHECKPOINT).display()
                    );
                }
            }
            usage.push(meter.finish(
                format!("stage {}", stage + 1),
                progress.history.len() - epochs_before,
            ));
            // the stage hands its best epoch to the next
            if self.dir.join("best.safetensors").exists() && epochs > 0 {
                load_weights(&mut model, &self.dir.join("best.safetensors"))?;
            }
            progress.stage += 1;
            progress.epoch = 0;
            progress.batch = 0;
            progress.step = 0;
            progress.best_f1 = -1.0;
            progress.epochs_without_improvement = 0;
            progress.done = progress.stage == 3;
            self.checkpoint(&model, &optimizer, &progress)?;
            std::fs::remove_file(self.dir.join("best.safetensors")).ok();
        }
        let model = model.valid();
        save_weights(&model, &self.dir.join("model.safetensors"))?;
        // the head's temperature, fitted on the validation split with both inputs (as served)
        let rows = if data.validation.is_empty() {
            &data.train
        } else {
            &data.validation
        };
        let validation = self.validate(&model, held_out_wide.as_ref(), &data, 2, rows)?;
        let calibration = crate::calibration::calibrate(&validation.logits, &validation.truth);
        tracing::info!(
            "calibration: temperature {:.3}; validation ECE {:.4} → {:.4}, Brier {:.4} → {:.4}",
            calibration.temperature,
            calibration.ece_before,
            calibration.ece_after,
            calibration.brier_before,
            calibration.brier_after
        );
        write_atomic(
            &self.dir.join(CALIBRATION_FILE),
            serde_json::to_string_pretty(&calibration)?.as_bytes(),
        )?;
        plot_history(&progress.history, &self.dir.join("training.png"))?;
        // this process's share of the run (after --resume, the stages it ran)
        write_atomic(
            &self.dir.join("usage.json"),
            serde_json::to_string_pretty(&usage)?.as_bytes(),
        )?;
        Ok((model, progress, data.tokenizer))
    }
}

/// The run's curves by epoch across the three stages: training loss, and on the validation split
/// the micro-F1 of the written diagnoses and the head's macro AUROC.
fn plot_history(history: &[EpochRecord], path: &Path) -> Result<()> {
    use crate::plots::{Axis, Line, line_chart, padded};
    let series = |value: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, value(e)))
            .collect()
    };
    let lines = [
        Line::new("training loss / 10", series(|e| e.train_loss / 10.0)),
        Line::new(
            "written diagnoses micro-F1",
            series(|e| e.generated_micro_f1),
        ),
        Line::new("head macro AUROC", series(|e| e.head_macro_auroc)),
    ];
    let x = Axis {
        label: "epoch (stages 1, 2, 3 in turn)",
        range: padded((1..=history.len().max(1)).map(|i| i as f64)),
    };
    let y = Axis {
        label: "",
        range: padded(
            lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .chain([0.0, 1.0]),
        ),
    };
    line_chart(
        path,
        "Distillation: training and validation",
        x,
        y,
        &lines,
        false,
    )
}

/// `bedside-train export`: the browser bundle of a finished run — `manifest.json`,
/// `model.safetensors` (f32 or f16) and `tokenizer.json`, each written atomically.
pub fn export(
    run: &Path,
    medrec: Option<&Path>,
    out: &Path,
    dtype: &str,
) -> Result<bedside::bundle::Manifest> {
    use bedside::bundle::{MANIFEST_FILE, Manifest, ModelSpec, WEIGHTS_FILE, convert_weights};
    use bedside::recommend::MEDREC_FILE;
    use bedside::tokenizer::TOKENIZER_FILE;
    let read = |name: &str| {
        std::fs::read(run.join(name))
            .with_context(|| format!("cannot read {}", run.join(name).display()))
    };
    let config: ClinicalModelConfig =
        serde_json::from_slice(&read("model.json")?).context("model.json")?;
    let weights = convert_weights(&read("model.safetensors")?, dtype)?;
    let tokenizer = read("tokenizer.json")?;
    TextTokenizer::from_bytes(&tokenizer)?;
    let progress: Option<Progress> = std::fs::read(run.join(CHECKPOINT).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let medications = match medrec {
        Some(dir) => {
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .with_context(|| format!("cannot read {}", dir.join(name).display()))
            };
            let spec: bedside::recommend::MedicationSpec =
                serde_json::from_slice(&read("medrec.json")?).context("medrec.json")?;
            Some((spec, convert_weights(&read(MEDREC_FILE)?, dtype)?))
        }
        None => None,
    };
    let mut files: Vec<(&str, &[u8])> =
        vec![(WEIGHTS_FILE, &weights), (TOKENIZER_FILE, &tokenizer)];
    if let Some((_, bytes)) = &medications {
        files.push((MEDREC_FILE, bytes));
    }
    let mut manifest = Manifest::new(ModelSpec::Clinical(config), &files, dtype, 0.5);
    manifest.medications = medications.as_ref().map(|(spec, _)| spec.clone());
    // the prompt length the model was trained with (runs from before it was recorded: the default)
    let run_config: RunConfig = match std::fs::read_to_string(run.join("run.toml")) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| run.join("run.toml").display().to_string())?
        }
        Err(_) => RunConfig::default(),
    };
    manifest.max_prompt_tokens = Some(run_config.max_prompt_tokens);
    // the head's temperature (runs from before it was fitted: none)
    if let Ok(bytes) = std::fs::read(run.join(CALIBRATION_FILE)) {
        let calibration: crate::calibration::Calibration =
            serde_json::from_slice(&bytes).context(CALIBRATION_FILE)?;
        manifest.temperature = Some(calibration.temperature as f32);
    }
    manifest.training = progress
        .map(|p| serde_json::json!({ "wide_fit": p.wide_fit, "validation_history": p.history }));
    crate::train::record_self_test(&mut manifest, &weights, Some(&tokenizer))?;
    let text = serde_json::to_string_pretty(&manifest)?;
    // check it as a loader would before anything is written
    Manifest::from_json(&text)?;
    files.push((MANIFEST_FILE, text.as_bytes()));
    crate::train::write_bundle(out, &files)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

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
