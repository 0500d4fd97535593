//! In-hospital mortality from the first 48 hours of an ICU stay (PhysioNet/CinC Challenge 2012):
//! a wide-and-deep model — a logistic regression over the static descriptors and the channels'
//! summaries, fitted first ([`crate::shared::logistic`]), and the time-series encoder with a one-output
//! head trained with BCE on top of it — on one set (C, the encoder's early stopping on the
//! validation AUROC and Platt scaling all on a held-out fifth of it), tested on another against
//! the SAPS-I score of the same stays. It measures what the encoder that ClinRaGen builds on learns from real ICU
//! data, where the phenotype labels of the demo cohort are synthetic.

pub mod bundle;

use crate::measure::eval::average_precision;
use crate::measure::metrics::{CalibrationBin, auroc, calibration, percentile_ci95, roc_curve};
use crate::shared::fit;
use crate::shared::logistic::{Scaling, regularisation_path};
use anyhow::{Context, Result};
use bedside::knowledge::CHANNELS;
use bedside::model::mortality::{STATICS, statics};
use bedside::model::{
    LabPhenotypeModelConfig, MortalityModel, MortalityModelConfig, SeriesEncoderConfig,
};
use bedside::record::{PatientRecord, SeriesGrid};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

/// The challenge's window: the first 48 hours of the stay.
pub const HOURS: usize = 48;

#[derive(Debug, Clone, clap::Args)]
pub struct MortalityOptions {
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Epochs without a better validation AUROC before training stops.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 32)]
    pub d_model: usize,
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// The linear part (fitted first, then frozen) reads the channels' summaries beside the
    /// static descriptors (`--wide false`: the statics alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wide: bool,
    /// Encoders trained with seeds --seed, --seed + 1, …; the model averages their logits.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Bootstrap resamples for the 95% intervals.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Train on the CPU, on a GPU through wgpu (Vulkan, Metal, DX12), or through CUDA (a
    /// build with `--features bedside-train/cuda`).
    #[arg(long, value_enum, default_value_t = crate::shared::backend::TrainingBackend::Cpu)]
    pub backend: crate::shared::backend::TrainingBackend,
    /// Progress bars (on where stderr is a terminal).
    #[arg(skip = std::io::IsTerminal::is_terminal(&std::io::stderr()))]
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_auroc: f64,
    pub validation_auprc: f64,
    pub seconds: f64,
}

/// One binary classifier's scores on a set, with 95% bootstrap intervals (percentile method,
/// resampling stays).
#[derive(Debug, Clone, Serialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub positives: usize,
    pub auroc: f64,
    pub auroc_ci95: (f64, f64),
    pub auprc: f64,
    pub auprc_ci95: (f64, f64),
}

#[derive(Debug, Clone, Serialize)]
pub struct MortalityReport {
    pub train_stays: usize,
    pub validation_stays: usize,
    pub test_stays: usize,
    /// Stays left out because their outcome is unknown.
    pub without_outcome: usize,
    pub parameters: usize,
    /// The first seed's epochs and best epoch (each seed's: `members`).
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    /// Each seed's training; the model is their mean logit.
    pub members: Vec<Member>,
    pub test: BinaryMetrics,
    /// AUROC on the test set of each part's own logit: the linear part alone, and the encoder's
    /// contribution alone (the model's logit less the linear part's). The linear part alone
    /// already ranks far above chance, so this is how a broken encoder shows.
    pub test_linear_part_auroc: f64,
    pub test_encoder_part_auroc: f64,
    /// Brier score of the model's probabilities on the test set.
    pub test_brier: f64,
    /// The 2012 challenge's scores on the test set: Event 1, min(Se, +P) with the training death
    /// rate called positive, and Event 2, the Hosmer–Lemeshow H statistic (deciles).
    pub test_event1: f64,
    pub test_hosmer_lemeshow: f64,
    /// The linear part's C, chosen on the validation fifth, and each C tried with its validation
    /// loss.
    pub linear_c: f64,
    pub linear_tried: Vec<(f64, f64)>,
    /// H of the probabilities before Platt scaling.
    pub test_hosmer_lemeshow_uncalibrated: f64,
    /// Platt scaling fitted on the validation fifth: probability = σ(scale · logit + shift).
    pub recalibration: (f32, f32),
    pub calibration: Vec<CalibrationBin>,
    /// ROC curve of the test set, (false positive rate, true positive rate), at most ~200 points.
    pub roc: Vec<(f64, f64)>,
    /// SAPS-I on the same test stays (those that have it), and its ROC curve.
    pub saps_i: Option<BinaryMetrics>,
    pub saps_i_roc: Vec<(f64, f64)>,
    pub train_seconds: f64,
    /// Training (with validation) and test stays, written to `split.json`.
    #[serde(skip)]
    pub split: crate::pipelines::lab_phenotype::Split,
}

/// One ICU stay with a known outcome.
pub struct Stay {
    grid: SeriesGrid,
    statics: [f32; STATICS],
    died: bool,
}

/// Stays with a known outcome.
fn labelled(records: &[PatientRecord]) -> (Vec<Stay>, usize) {
    let mut out = Vec::new();
    let mut missing = 0;
    for record in records {
        match outcome(record) {
            Some(died) => out.push(Stay {
                grid: SeriesGrid::from_record(record, HOURS),
                statics: statics(record),
                died,
            }),
            None => missing += 1,
        }
    }
    (out, missing)
}

pub fn model_config(options: &MortalityOptions) -> MortalityModelConfig {
    MortalityModelConfig::new(
        LabPhenotypeModelConfig::new(
            SeriesEncoderConfig::new(CHANNELS.len())
                .with_hours(HOURS)
                .with_d_model(options.d_model)
                .with_n_layers(options.layers)
                .with_d_ff(2 * options.d_model),
            1,
        ),
        options.wide,
    )
}

/// The linear part's design matrix and outcomes over `stays`.
fn linear_design(
    model: &MortalityModel,
    stays: &[&Stay],
    device: &Device,
) -> (Tensor<2>, Tensor<2, Int>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for chunk in stays.chunks(256) {
        let (values, mask, statics, y) = tensors(chunk, device);
        xs.push(model.features(values, mask, statics));
        ys.push(y);
    }
    (Tensor::cat(xs, 0), Tensor::cat(ys, 0))
}

/// A batch's grid values and mask, statics and outcomes `[batch, 1]`.
fn tensors(stays: &[&Stay], device: &Device) -> (Tensor<3>, Tensor<3>, Tensor<2>, Tensor<2, Int>) {
    let grids: Vec<&SeriesGrid> = stays.iter().map(|s| &s.grid).collect();
    let (values, mask) = SeriesGrid::tensors(&grids, device);
    let statics: Vec<f32> = stays.iter().flat_map(|s| s.statics).collect();
    let statics = Tensor::<1>::from_data(TensorData::new(statics, [stays.len() * STATICS]), device)
        .reshape([stays.len(), STATICS]);
    let y: Vec<i64> = stays.iter().map(|s| i64::from(s.died)).collect();
    let targets = Tensor::<1, Int>::from_ints(y.as_slice(), device).reshape([stays.len(), 1]);
    (values, mask, statics, targets)
}

/// Death logits of `stays`, in order, as `logit` computes them from a batch's tensors.
fn logits_of(
    stays: &[&Stay],
    device: &Device,
    logit: impl Fn(Tensor<3>, Tensor<3>, Tensor<2>) -> Tensor<2>,
) -> Result<Vec<f32>> {
    let mut logits = Vec::with_capacity(stays.len());
    for chunk in stays.chunks(128) {
        let (values, mask, statics, _) = tensors(chunk, device);
        logits.extend(
            logit(values, mask, statics)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?,
        );
    }
    Ok(logits)
}

/// Death logits for `stays`, in order.
pub fn predict(model: &MortalityModel, stays: &[&Stay], device: &Device) -> Result<Vec<f32>> {
    logits_of(stays, device, |v, m, s| model.forward(v, m, s))
}

/// The linear part's death logit alone for each of `stays`, in order.
fn linear_logits(model: &MortalityModel, stays: &[&Stay], device: &Device) -> Result<Vec<f32>> {
    logits_of(stays, device, |v, m, s| {
        model.linear.forward(model.features(v, m, s))
    })
}

/// (probability, died) of each stay, logits recalibrated by `(scale, shift)`.
fn recalibrated(logits: &[f32], stays: &[&Stay], (scale, shift): (f32, f32)) -> Vec<(f32, bool)> {
    logits
        .iter()
        .zip(stays)
        .map(|(&z, s)| (1.0 / (1.0 + (-(scale * z + shift)).exp()), s.died))
        .collect()
}

/// Whether the stay ended in death in hospital, where known.
fn outcome(record: &PatientRecord) -> Option<bool> {
    record
        .labels
        .as_ref()
        .and_then(|l| l.outcomes.as_ref())
        .and_then(|o| o.in_hospital_death)
}

/// The ids of the stays [`labelled`] keeps.
fn with_outcome(records: &[PatientRecord]) -> impl Iterator<Item = &str> {
    records
        .iter()
        .filter(|r| outcome(r).is_some())
        .map(|r| r.id.as_str())
}

/// One seed's training of the encoder (the linear part frozen): its epochs and best epoch.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub seed: u64,
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_validation_auroc: f64,
}

/// Trains `model` on `stays` with AdamW, warm-up and cosine, keeping the epoch with the best
/// validation AUROC (early stopping after `options.patience` epochs without one).
fn train_member(
    mut model: MortalityModel,
    stays: &[Stay],
    validation: &[&Stay],
    seed: u64,
    options: &MortalityOptions,
    base: &Device,
) -> Result<(MortalityModel, Member)> {
    let device = base.clone().autodiff();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut optimizer = fit::adamw(1e-4, 1.0);
    let loss_fn = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let steps_per_epoch = stays.len().div_ceil(options.batch_size);
    let total_steps = options.epochs * steps_per_epoch;
    let warmup = steps_per_epoch.min(total_steps / 10).max(1);
    let bar = if options.progress {
        ProgressBar::new(total_steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {eta} left · {msg}")
            .context("progress template")?,
    );
    let mut order: Vec<usize> = (0..stays.len()).collect();
    let mut best = model.valid();
    let mut member = Member {
        seed,
        epochs: Vec::new(),
        best_epoch: 0,
        best_validation_auroc: f64::NEG_INFINITY,
    };
    let (mut stale, mut step) = (0, 0);
    for epoch in 1..=options.epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut rng);
        let (mut sum, mut count) = (0.0, 0);
        for chunk in order.chunks(options.batch_size) {
            let batch: Vec<&Stay> = chunk.iter().map(|&i| &stays[i]).collect();
            let (values, mask, statics, targets) = tensors(&batch, &device);
            let loss = loss_fn.forward(model.forward(values, mask, statics), targets);
            let value = loss.clone().into_scalar::<f64>();
            anyhow::ensure!(
                value.is_finite(),
                "training diverged: loss is {value} at epoch {epoch} (seed {seed})"
            );
            let rate = fit::warmup_cosine(options.learning_rate, step, warmup, total_steps);
            model = fit::descend(&mut optimizer, model, loss, rate);
            step += 1;
            sum += value;
            count += 1;
            bar.inc(1);
        }
        let valid = model.valid();
        let logits = predict(&valid, validation, base)?;
        let pairs = recalibrated(&logits, validation, (1.0, 0.0));
        let log = EpochLog {
            epoch,
            train_loss: sum / count.max(1) as f64,
            validation_auroc: auroc(&pairs).unwrap_or(f64::NAN),
            validation_auprc: average_precision(&pairs).unwrap_or(f64::NAN),
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        bar.set_message(format!(
            "seed {seed} epoch {epoch} loss {:.4} validation AUROC {:.3}",
            log.train_loss, log.validation_auroc
        ));
        tracing::debug!(
            seed,
            epoch,
            train_loss = log.train_loss,
            validation_auroc = log.validation_auroc,
            "mortality epoch"
        );
        if fit::improved(
            log.validation_auroc,
            &mut member.best_validation_auroc,
            &mut stale,
        ) {
            (best, member.best_epoch) = (valid, epoch);
        }
        member.epochs.push(log);
        if stale >= options.patience {
            break;
        }
    }
    bar.finish_and_clear();
    Ok((best, member))
}

/// The members' mean death logit for each of `stays`.
fn ensemble(members: &[MortalityModel], stays: &[&Stay], device: &Device) -> Result<Vec<f32>> {
    let mut sum = vec![0f32; stays.len()];
    for member in members {
        for (total, z) in sum.iter_mut().zip(predict(member, stays, device)?) {
            *total += z;
        }
    }
    Ok(sum
        .into_iter()
        .map(|z| z / members.len().max(1) as f32)
        .collect())
}

/// What [`fit`] learned and how: the model (one member per seed), its Platt scaling, and the
/// stays it read.
pub struct Fitted {
    pub members: Vec<MortalityModel>,
    pub logs: Vec<Member>,
    /// The stays trained on, and the fifth held out for C, early stopping and Platt scaling.
    stays: Vec<Stay>,
    validation: Vec<Stay>,
    /// Stays left out because their outcome is unknown.
    pub without_outcome: usize,
    pub parameters: usize,
    pub linear_c: f64,
    pub linear_tried: Vec<(f64, f64)>,
    /// Platt scaling: probability = σ(scale · logit + shift).
    pub recalibration: (f32, f32),
    pub train_seconds: f64,
}

impl Fitted {
    /// The stays read: trained on, and held out for the choices.
    pub fn stays(&self) -> (usize, usize) {
        (self.stays.len(), self.validation.len())
    }
}

/// Fits the model on `train` by the whole procedure: a fifth of it held out, the linear part
/// fitted first with C chosen on that fifth, then the encoder(s) on top with early stopping on
/// it, and Platt scaling on it. [`run`] tests what it fits; `mortality --refit` fits the shipped
/// bundle by it on every stay.
pub fn fit(train: &[PatientRecord], options: &MortalityOptions) -> Result<Fitted> {
    anyhow::ensure!(
        options.epochs > 0 && options.batch_size > 0 && options.seeds > 0,
        "--epochs, --batch-size and --seeds must be at least 1"
    );
    let (mut stays, without_outcome) = labelled(train);
    anyhow::ensure!(
        stays.len() >= 20,
        "need at least 20 training stays with an outcome, got {}",
        stays.len()
    );
    let mut rng = StdRng::seed_from_u64(options.seed);
    stays.shuffle(&mut rng);
    let validation = stays.split_off(stays.len() * 4 / 5);
    let base = options.backend.device()?;
    let device = base.clone().autodiff();
    let mut model = crate::shared::backend::initialised(options.seed, &device, |d| {
        model_config(options).init(d)
    })?;
    let parameters = model.num_params();
    // the linear part first, to its optimum, then frozen while the encoder trains on top
    let (linear_c, linear_tried) = {
        let stays: Vec<&Stay> = stays.iter().collect();
        let (x, y) = linear_design(&model, &stays, &device);
        let (x_val, y_val) = linear_design(&model, &validation.iter().collect::<Vec<_>>(), &device);
        let scaling = Scaling::of(&x, 0);
        let chosen = regularisation_path(&scaling.apply(&x), &y, &scaling.apply(&x_val), &y_val)?;
        model.linear = scaling.fold(&chosen.model).no_grad();
        (chosen.c, chosen.tried)
    };
    let linear = model.linear.clone();
    let validation_refs: Vec<&Stay> = validation.iter().collect();
    let started = Instant::now();
    let mut members = Vec::new();
    let mut logs = Vec::new();
    for k in 0..options.seeds {
        let seed = options.seed.wrapping_add(k as u64);
        let mut member = if k == 0 {
            model.clone()
        } else {
            crate::shared::backend::initialised(seed, &device, |d| model_config(options).init(d))?
        };
        member.linear = linear.clone();
        device.seed(seed); // dropout
        let (best, log) = train_member(member, &stays, &validation_refs, seed, options, &base)?;
        members.push(best);
        logs.push(log);
    }
    let train_seconds = started.elapsed().as_secs_f64();

    // Platt scaling on the validation fifth: early stopping picks the epoch by ranking, which
    // leaves the probabilities' level wherever that epoch had it
    let died: Vec<bool> = validation.iter().map(|s| s.died).collect();
    let map = crate::measure::calibration::fit_map(
        &ensemble(&members, &validation_refs, &base)?,
        &died,
        1,
        None,
    );
    let recalibration = (map.scale, map.shift);
    Ok(Fitted {
        members,
        logs,
        stays,
        validation,
        without_outcome,
        parameters,
        linear_c,
        linear_tried,
        recalibration,
        train_seconds,
    })
}

/// Fits on `train` ([`fit`]) and tests on `test`.
pub fn run(
    train: &[PatientRecord],
    test: &[PatientRecord],
    options: &MortalityOptions,
) -> Result<(Vec<MortalityModel>, MortalityReport)> {
    let (test_stays, missing_test) = labelled(test);
    anyhow::ensure!(!test_stays.is_empty(), "no test stay has an outcome");
    let Fitted {
        members,
        logs,
        stays,
        validation,
        without_outcome: missing_train,
        parameters,
        linear_c,
        linear_tried,
        recalibration,
        train_seconds,
    } = fit(train, options)?;
    let Member {
        epochs, best_epoch, ..
    } = logs[0].clone();
    let base = options.backend.device()?;
    let test_refs: Vec<&Stay> = test_stays.iter().collect();
    let logits = ensemble(&members, &test_refs, &base)?;
    let uncalibrated = recalibrated(&logits, &test_refs, (1.0, 0.0));
    // each part's own ranking: the members share the linear part, so the encoders' mean
    // contribution is the mean logit less it
    let linear_part = linear_logits(&members[0], &test_refs, &base)?;
    let part_auroc = |logits: &[f32]| {
        let pairs: Vec<(f32, bool)> = logits
            .iter()
            .zip(&test_refs)
            .map(|(&z, s)| (z, s.died))
            .collect();
        auroc(&pairs).unwrap_or(f64::NAN)
    };
    let encoder_part: Vec<f32> = logits
        .iter()
        .zip(&linear_part)
        .map(|(z, l)| z - l)
        .collect();
    let pairs = recalibrated(&logits, &test_refs, recalibration);
    let saps: Vec<(f32, bool)> = test
        .iter()
        .filter_map(|r| {
            let o = r.labels.as_ref()?.outcomes.as_ref()?;
            Some((o.saps_i? as f32, o.in_hospital_death?))
        })
        .collect();
    // the training side's death rate (with the validation fifth), as the baselines see it
    let train_death_rate = stays.iter().chain(&validation).filter(|s| s.died).count() as f64
        / (stays.len() + validation.len()).max(1) as f64;
    let report = MortalityReport {
        train_stays: stays.len(),
        validation_stays: validation.len(),
        test_stays: test_stays.len(),
        without_outcome: missing_train + missing_test,
        parameters,
        epochs,
        best_epoch,
        members: logs,
        test: binary_metrics(&pairs, options.resamples, options.seed),
        test_linear_part_auroc: part_auroc(&linear_part),
        test_encoder_part_auroc: part_auroc(&encoder_part),
        test_brier: crate::measure::metrics::brier(&pairs),
        test_event1: crate::measure::metrics::event1(&pairs, train_death_rate),
        test_hosmer_lemeshow: crate::measure::metrics::hosmer_lemeshow(&pairs, 10),
        test_hosmer_lemeshow_uncalibrated: crate::measure::metrics::hosmer_lemeshow(
            &uncalibrated,
            10,
        ),
        recalibration,
        linear_c,
        linear_tried,
        calibration: calibration(&pairs, 10),
        roc: roc_curve(&pairs, 200),
        saps_i: (!saps.is_empty()).then(|| binary_metrics(&saps, options.resamples, options.seed)),
        saps_i_roc: if saps.is_empty() {
            Vec::new()
        } else {
            roc_curve(&saps, 200)
        },
        train_seconds,
        split: crate::pipelines::lab_phenotype::Split::of(with_outcome(train), with_outcome(test)),
    };
    Ok((members, report))
}

/// AUROC and AUPRC with percentile bootstrap intervals.
pub fn binary_metrics(pairs: &[(f32, bool)], resamples: usize, seed: u64) -> BinaryMetrics {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut aurocs, mut auprcs) = (Vec::new(), Vec::new());
    let mut sample = Vec::with_capacity(pairs.len());
    for _ in 0..resamples {
        sample.clear();
        sample.extend((0..pairs.len()).map(|_| pairs[rng.random_range(0..pairs.len())]));
        aurocs.extend(auroc(&sample));
        auprcs.extend(average_precision(&sample));
    }
    BinaryMetrics {
        n: pairs.len(),
        positives: pairs.iter().filter(|p| p.1).count(),
        auroc: auroc(pairs).unwrap_or(f64::NAN),
        auroc_ci95: percentile_ci95(aurocs),
        auprc: average_precision(pairs).unwrap_or(f64::NAN),
        auprc_ci95: percentile_ci95(auprcs),
    }
}

impl MortalityReport {
    /// roc.png (with SAPS-I), calibration.png and training.png into `dir`.
    pub fn plot(&self, dir: &std::path::Path) -> Result<()> {
        use crate::measure::plots::{Axis, Line, calibration_chart, line_chart, padded, roc_chart};
        let mut roc = vec![Line::new(
            format!("bedside (AUROC {:.3})", self.test.auroc),
            self.roc.clone(),
        )];
        if let Some(saps) = &self.saps_i {
            roc.push(Line::new(
                format!("SAPS-I (AUROC {:.3})", saps.auroc),
                self.saps_i_roc.clone(),
            ));
        }
        roc_chart(
            &dir.join("roc.png"),
            "In-hospital mortality: ROC on the test set",
            &roc,
        )?;
        calibration_chart(
            &dir.join("calibration.png"),
            "Calibration on the test set",
            &self.calibration,
            "mean predicted risk",
            "observed death rate",
        )?;
        let loss: Vec<(f64, f64)> = self
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.train_loss))
            .collect();
        let auroc: Vec<(f64, f64)> = self
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.validation_auroc))
            .collect();
        let x = Axis {
            label: "epoch",
            range: padded(loss.iter().map(|p| p.0)),
        };
        let y = Axis {
            label: "",
            range: padded(loss.iter().chain(&auroc).map(|p| p.1)),
        };
        line_chart(
            &dir.join("training.png"),
            "Training",
            x,
            y,
            &[
                Line::new("training loss", loss),
                Line::new("validation AUROC", auroc),
            ],
            false,
        )
    }

    pub fn markdown(&self) -> String {
        let ci = |m: &BinaryMetrics| {
            format!(
                "| {} | {} | {:.3} ({:.3}–{:.3}) | {:.3} ({:.3}–{:.3}) |",
                m.n,
                m.positives,
                m.auroc,
                m.auroc_ci95.0,
                m.auroc_ci95.1,
                m.auprc,
                m.auprc_ci95.0,
                m.auprc_ci95.1
            )
        };
        let mut out = String::from(
            "| model | stays | deaths | AUROC (95% CI) | AUPRC (95% CI) |\n|---|---|---|---|---|\n",
        );
        out += &format!(
            "| bedside time-series encoder + statics + head | {}\n",
            &ci(&self.test)[2..]
        );
        if let Some(saps) = &self.saps_i {
            out += &format!("| SAPS-I score (reference) | {}\n", &ci(saps)[2..]);
        }
        out += &format!(
            "\nBrier score {:.4}; Event 1, min(Se, +P) {:.3}; Hosmer–Lemeshow H {:.1} (before Platt \
             scaling by {:.3}, {:+.3}: {:.1}); {} parameters; \
             linear part's C {}; encoders averaged: {}; first one's best validation epoch {} of {}; \
             training {:.0} s.\n\n\
             | predicted risk (tenths) | stays | mean predicted | observed deaths |\n|---|---|---|---|\n",
            self.test_brier,
            self.test_event1,
            self.test_hosmer_lemeshow,
            self.recalibration.0,
            self.recalibration.1,
            self.test_hosmer_lemeshow_uncalibrated,
            self.parameters,
            self.linear_c,
            self.members.len(),
            self.best_epoch,
            self.epochs.len(),
            self.train_seconds
        );
        for (i, bin) in self.calibration.iter().enumerate() {
            out += &format!(
                "| {} | {} | {:.3} | {:.3} |\n",
                i + 1,
                bin.n,
                bin.mean_predicted,
                bin.observed
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_contains_the_estimate() {
        let pairs: Vec<(f32, bool)> = (0..200)
            .map(|i| ((i % 17) as f32 / 17.0, (i * 7) % 5 == 0))
            .collect();
        let m = binary_metrics(&pairs, 200, 1);
        assert!(
            m.auroc_ci95.0 <= m.auroc && m.auroc <= m.auroc_ci95.1,
            "{m:?}"
        );
        assert!(
            m.auprc_ci95.0 <= m.auprc && m.auprc <= m.auprc_ci95.1,
            "{m:?}"
        );
        assert_eq!(m.positives, 40);
    }
}
