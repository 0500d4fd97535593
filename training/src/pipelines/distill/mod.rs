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
//!
//! The stage loop is here; `config` (the run.toml), `data` (examples, batches, the split),
//! `checkpoint` (progress, the atomic swap), `report` (validation, the training curve) and
//! `pretrained` (`init_from`) hold the rest. [`crate::pipelines::export`] turns a finished run into a bundle.

mod checkpoint;
mod config;
mod data;
mod pretrained;
mod report;
mod run;
pub(crate) mod wide_fit;

pub(crate) use checkpoint::CHECKPOINT;
use checkpoint::IdSetter;
pub use checkpoint::{EpochRecord, Progress};
pub use config::RunConfig;
pub use data::Admissions;
pub(crate) use data::{Example, batch, example};
use pretrained::Pretrained;
use report::{Validation, plot_history};
pub use run::Run;

use crate::measure::usage::Meter;
use crate::shared::backend::initialised;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bedside::model::{ClinicalModel, Part, sequence_loss};
use bedside::tokenizer::TextTokenizer;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::shared::fit::{self, load_weights, save_weights};
use crate::shared::io::{bar, write_atomic};

/// Stage 0's wide half fitted on the training split alone, in a run directory: validation reads
/// it in place of the wide half refitted on both splits ([`crate::pipelines::distill::wide_fit`]).
const HELD_OUT_WIDE: &str = "wide-held-out.safetensors";

/// The head's temperature and calibration in a run directory ([`crate::measure::calibration`]).
pub const CALIBRATION_FILE: &str = "calibration.json";
/// The validation logits the calibration was fitted on, with the truth and each row's notes.
pub const VALIDATION_LOGITS_FILE: &str = "validation-logits.json";

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

impl Run {
    /// Reads the run's admissions: its cohort files and the built-in synthetic cohort.
    pub fn admissions(&self) -> Result<Admissions> {
        let c = &self.config;
        let mut cohorts = Vec::new();
        for path in &c.cohorts {
            cohorts.extend(crate::shared::io::read_cohort(&self.base.join(path))?);
        }
        Ok(Admissions {
            cohorts,
            synthetic: crate::shared::synthetic::cohort(c.synthetic, c.hours, c.seed),
        })
    }

    fn learning_rate(&self, step: usize, total: usize) -> f64 {
        let c = &self.config;
        fit::warmup_cosine(c.learning_rate, step, c.warmup_steps, total)
    }

    /// Runs (or, with `resume`, continues) every stage. `stop` is set by Ctrl-C.
    pub fn execute(
        &self,
        admissions: &Admissions,
        resume: bool,
        stop: Arc<AtomicBool>,
        show: bool,
    ) -> Result<(ClinicalModel, Progress, TextTokenizer)> {
        let config = &self.config;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // the run's own copy, with paths resolved so that it reads the same from anywhere
        let mut saved = config.clone();
        saved.cohorts = config.cohorts.iter().map(|p| self.base.join(p)).collect();
        (saved.rationales, saved.tokenizer, saved.init_from) = (
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
        let data = self.data(admissions, pretrained.as_ref())?;
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
            let (wide, held_out, fit) = crate::pipelines::distill::wide_fit::fit(
                wide,
                &data.examples,
                &data.train,
                &data.validation,
                &device,
            )?;
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
            let mut optimizer = fit::adamw(config.weight_decay, config.grad_clip);
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
                    let rate = self.learning_rate(progress.step, total);
                    model = fit::descend(&mut optimizer, model, loss, rate);
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
                if fit::improved(
                    score,
                    &mut progress.best_f1,
                    &mut progress.epochs_without_improvement,
                ) {
                    save_weights(&model, &self.dir.join("best.safetensors"))?;
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
        // the head's calibration, fitted on the validation split with both inputs (as served):
        // one for admissions with notes, one for those without (labs alone) where there are any
        let rows = if data.validation.is_empty() {
            &data.train
        } else {
            &data.validation
        };
        let validation = self.validate(&model, held_out_wide.as_ref(), &data, 2, rows)?;
        let has_notes: Vec<bool> = rows.iter().map(|&i| data.examples[i].has_notes).collect();
        // what the calibration was fitted on, for those who would compare other calibrations
        // (bench/calibration_cv.py)
        let fitted_on = serde_json::json!({
            "labels": bedside::knowledge::PHENOTYPES.len(),
            "logits": validation.logits,
            "truth": validation.truth,
            "has_notes": has_notes,
        });
        write_atomic(
            &self.dir.join(VALIDATION_LOGITS_FILE),
            serde_json::to_string(&fitted_on)?.as_bytes(),
        )?;
        let calibration = crate::measure::calibration::calibrate_by_notes(
            &validation.logits,
            &validation.truth,
            &has_notes,
        );
        if let Some(without) = &calibration.without_notes {
            tracing::info!(
                "calibration without notes ({} pairs): scale {:.3}, shift {:.3}; ECE {:.4} → {:.4}",
                without.pairs,
                without.map.scale,
                without.map.shift,
                without.ece_before,
                without.ece_after
            );
        }
        tracing::info!(
            "calibration: scale {:.3}, shift {:.3}; validation ECE {:.4} → {:.4}, Brier {:.4} → {:.4}",
            calibration.map.scale,
            calibration.map.shift,
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
