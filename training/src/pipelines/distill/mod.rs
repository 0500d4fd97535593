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
use data::Data;
pub(crate) use data::{Example, batch, example};
use pretrained::Pretrained;
use report::{Validation, plot_history};
pub use run::Run;

use crate::measure::usage::{Meter, Usage};
use crate::shared::backend::initialised;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bedside::model::{ClinicalModel, Part, WideHead, sequence_loss};
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
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        self.save_config()?;
        let pretrained = self
            .resolve(&self.config.init_from)
            .map(|dir| Pretrained::read(&dir))
            .transpose()?;
        let data = self.data(admissions, pretrained.as_ref())?;
        let device = self.config.backend.device()?.autodiff();
        let model = self.initial_model(&data, pretrained.as_ref(), &device)?;
        let (mut model, mut progress, mut resumed_optimizer) = if resume {
            self.resume(model)?
        } else {
            (model, Progress::fresh(), None)
        };
        let mut usage = Vec::new();
        if progress == Progress::fresh()
            && let Some(wide) = model.wide.take()
        {
            model.wide = Some(self.fit_wide(wide, &data, &device, &mut progress, &mut usage)?);
        }
        let held_out_wide = self.held_out_wide(&model)?;
        let training = Training {
            data: &data,
            held_out_wide: held_out_wide.as_ref(),
            device: &device,
            stop: &stop,
            show,
        };
        while progress.stage < 3 && !progress.done {
            let (meter, epochs_before) = (Meter::start(), progress.history.len());
            model = self.train_stage(&training, model, &mut progress, resumed_optimizer.take())?;
            usage.push(meter.finish(
                format!("stage {}", progress.stage),
                progress.history.len() - epochs_before,
            ));
        }
        let model = model.valid();
        save_weights(&model, &self.dir.join("model.safetensors"))?;
        self.calibrate(&model, held_out_wide.as_ref(), &data)?;
        plot_history(&progress.history, &self.dir.join("training.png"))?;
        // this process's share of the run (after --resume, the stages it ran)
        write_atomic(
            &self.dir.join("usage.json"),
            serde_json::to_string_pretty(&usage)?.as_bytes(),
        )?;
        Ok((model, progress, data.tokenizer))
    }

    /// The run's own copy of its config, with paths resolved so that it reads the same from
    /// anywhere.
    fn save_config(&self) -> Result<()> {
        let config = &self.config;
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
        )
    }

    /// The model a run starts from, its config written to `model.json`: the checkpoint's
    /// language model (`init_from`) or fresh from `model`, with the same initial weights on every
    /// backend (without dropout, wgpu follows the CPU's losses).
    fn initial_model(
        &self,
        data: &Data,
        pretrained: Option<&Pretrained>,
        device: &Device,
    ) -> Result<ClinicalModel> {
        let mut model_config = self
            .config
            .model_config(data.tokenizer.vocab_size(), data.knowledge_ids.len());
        let language_model = match pretrained {
            Some(pretrained) => {
                let (t5, lm) = pretrained.language_model(device)?;
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
        initialised(self.config.seed, device, |d| match &language_model {
            Some(lm) => model_config.init_with_lm(lm.clone().to_device(d), &data.knowledge_ids, d),
            None => model_config.init(&data.knowledge_ids, d),
        })
    }

    /// The last checkpoint's weights, progress and optimizer file; where there is none, `model`
    /// from the beginning.
    fn resume(
        &self,
        mut model: ClinicalModel,
    ) -> Result<(ClinicalModel, Progress, Option<PathBuf>)> {
        let Some(checkpoint) = self.last_checkpoint() else {
            eprintln!(
                "no checkpoint in {}; starting from the beginning",
                self.dir.display()
            );
            return Ok((model, Progress::fresh(), None));
        };
        let progress: Progress =
            serde_json::from_slice(&std::fs::read(checkpoint.join("state.json"))?)
                .context("checkpoint state.json")?;
        load_weights(&mut model, &checkpoint.join("model.safetensors"))?;
        let ids: BTreeMap<String, u64> =
            serde_json::from_slice(&std::fs::read(checkpoint.join("param_ids.json"))?)?;
        let model = model.map(&mut IdSetter {
            path: Vec::new(),
            ids: &ids,
        });
        eprintln!(
            "resuming at stage {} epoch {} batch {}",
            progress.stage + 1,
            progress.epoch + 1,
            progress.batch
        );
        Ok((model, progress, Some(checkpoint.join("optimizer.bpk"))))
    }

    /// Stage 0: the wide head alone, to convergence, before anything else trains; its fit on
    /// the training split alone is written for validation.
    fn fit_wide(
        &self,
        wide: WideHead,
        data: &Data,
        device: &Device,
        progress: &mut Progress,
        usage: &mut Vec<Usage>,
    ) -> Result<WideHead> {
        let meter = Meter::start();
        let (wide, held_out, fit) =
            wide_fit::fit(wide, &data.examples, &data.train, &data.validation, device)?;
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
        Ok(wide)
    }

    /// The wide half fitted without the validation split, for validation (written by stage 0).
    fn held_out_wide(&self, model: &ClinicalModel) -> Result<Option<WideHead>> {
        match &model.wide {
            Some(wide) if self.dir.join(HELD_OUT_WIDE).exists() => {
                let mut held_out = wide.clone();
                load_weights(&mut held_out, &self.dir.join(HELD_OUT_WIDE))?;
                Ok(Some(held_out))
            }
            _ => Ok(None),
        }
    }

    /// Trains the current stage to its last epoch (or early stop), checkpointing each epoch,
    /// and hands its best epoch's weights on.
    fn train_stage(
        &self,
        training: &Training,
        mut model: ClinicalModel,
        progress: &mut Progress,
        resumed_optimizer: Option<PathBuf>,
    ) -> Result<ClinicalModel> {
        let (config, data) = (&self.config, training.data);
        let stage = progress.stage;
        let epochs = config.epochs[stage];
        if progress.epoch == 0 && progress.batch == 0 && stage == 1 {
            model = model.refresh_knowledge(&data.knowledge_ids);
        }
        model = prepare_stage(model, stage);
        let mut optimizer = fit::adamw(config.weight_decay, config.grad_clip);
        // a checkpoint taken at a stage boundary holds the previous stage's optimizer
        if let Some(path) = resumed_optimizer
            && (progress.epoch > 0 || progress.batch > 0)
        {
            optimizer = optimizer
                .load(&path)
                .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
        }
        while progress.epoch < epochs {
            let train_loss;
            (model, train_loss) = self.train_epoch(training, model, &mut optimizer, progress)?;
            let rows = data.validation_rows();
            let Validation {
                generated_micro_f1,
                head,
                ..
            } = self.validate(&model, training.held_out_wide, data, stage, rows)?;
            let epoch = progress.epoch;
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
            if progress.epochs_without_improvement >= config.patience {
                progress.epoch = epochs;
            }
            self.checkpoint(&model, &optimizer, progress)?;
            if training.stop.load(Ordering::SeqCst) {
                bail!(
                    "interrupted: checkpoint saved in {}; continue with --resume",
                    self.dir.join(CHECKPOINT).display()
                );
            }
        }
        // the stage hands its best epoch to the next
        if self.dir.join("best.safetensors").exists() && epochs > 0 {
            load_weights(&mut model, &self.dir.join("best.safetensors"))?;
        }
        *progress = Progress {
            stage: stage + 1,
            done: stage + 1 == 3,
            history: std::mem::take(&mut progress.history),
            wide_fit: progress.wide_fit.take(),
            ..Progress::fresh()
        };
        self.checkpoint(&model, &optimizer, progress)?;
        std::fs::remove_file(self.dir.join("best.safetensors")).ok();
        Ok(model)
    }

    /// One epoch's batches (from `progress.batch` on, after a resume), shuffled and with dropout
    /// seeded per (stage, epoch); Ctrl-C checkpoints mid-epoch. Returns the mean training loss.
    fn train_epoch(
        &self,
        training: &Training,
        mut model: ClinicalModel,
        optimizer: &mut burn::optim::ModuleOptimizer,
        progress: &mut Progress,
    ) -> Result<(ClinicalModel, f64)> {
        let (config, data, device) = (&self.config, training.data, training.device);
        let (stage, epoch) = (progress.stage, progress.epoch);
        let epochs = config.epochs[stage];
        let per_epoch = data.train.len().div_ceil(config.batch_size);
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
            training.show,
            format!("stage {} epoch {}/{}", stage + 1, epoch + 1, epochs),
        );
        progress_bar.set_position(progress.batch as u64);
        let bce = BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(device);
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size).skip(progress.batch) {
            let examples: Vec<&Example> = chunk.iter().map(|&i| &data.examples[i]).collect();
            let b = batch(&examples, stage, device);
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
            let rate = self.learning_rate(progress.step, per_epoch * epochs);
            model = fit::descend(optimizer, model, loss, rate);
            progress.batch += 1;
            progress.step += 1;
            loss_sum += value;
            loss_count += 1;
            progress_bar.inc(1);
            if training.stop.load(Ordering::SeqCst) {
                self.checkpoint(&model, optimizer, progress)?;
                progress_bar.abandon();
                bail!(
                    "interrupted: checkpoint saved in {}; continue with --resume",
                    self.dir.join(CHECKPOINT).display()
                );
            }
        }
        progress_bar.finish_and_clear();
        Ok((model, loss_sum / loss_count.max(1) as f64))
    }

    /// The head's calibration, fitted on the validation split with both inputs (as served): one
    /// for admissions with notes, one for those without (labs alone) where there are any; the
    /// logits it was fitted on are written beside it, for those who would compare other
    /// calibrations (experiments/calibration_cv.py).
    fn calibrate(
        &self,
        model: &ClinicalModel,
        held_out_wide: Option<&WideHead>,
        data: &Data,
    ) -> Result<()> {
        let rows = data.validation_rows();
        let validation = self.validate(model, held_out_wide, data, 2, rows)?;
        let has_notes: Vec<bool> = rows.iter().map(|&i| data.examples[i].has_notes).collect();
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
        )
    }
}

/// What every stage of one process's training reads.
struct Training<'a> {
    data: &'a Data,
    held_out_wide: Option<&'a WideHead>,
    device: &'a Device,
    stop: &'a AtomicBool,
    show: bool,
}
