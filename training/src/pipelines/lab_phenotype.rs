//! Supervised training of the lab-phenotype model (time-series encoder + phenotype head) with
//! multi-label BCE, AdamW and gradient clipping, evaluation on a held-out split, and export to a
//! bundle the browser loads.

use crate::measure::metrics::{Metrics, evaluate};
use crate::shared::fit;
use crate::shared::io::write_atomic;
use anyhow::{Context, Result};
use bedside::bundle::{Bundle, Manifest, ModelSpec, WeightsDtype};
use bedside::knowledge::{CHANNELS, PHENOTYPES};
use bedside::model::{LabPhenotypeModel, LabPhenotypeModelConfig, SeriesEncoderConfig};
use bedside::record::{PatientRecord, SeriesGrid};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct TrainOptions {
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 48)]
    pub hours: usize,
    #[arg(long, default_value_t = 64)]
    pub d_model: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// A linear model over the channels' summaries beside the head (`--wide true`). Off by
    /// default: on the MIMIC-IV demo's five splits it lowered macro AUROC (0.663 vs 0.681).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub wide: bool,
    #[arg(skip = true)]
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub train_admissions: usize,
    pub test_admissions: usize,
    /// The admissions on each side, written to `split.json` (not into the manifest).
    #[serde(skip)]
    pub split: Split,
    pub epochs: usize,
    pub final_train_loss: f64,
    pub test: Metrics,
}

/// The record ids a model trained and was tested on: `split.json` beside its report, so that
/// `experiments/baselines.py --split` trains and tests the baselines on exactly the same admissions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Split {
    pub train: Vec<String>,
    pub test: Vec<String>,
}

impl Split {
    pub fn of<'a>(
        train: impl IntoIterator<Item = &'a str>,
        test: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            train: train.into_iter().map(str::to_string).collect(),
            test: test.into_iter().map(str::to_string).collect(),
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        write_atomic(
            &dir.join("split.json"),
            serde_json::to_string(self)?.as_bytes(),
        )
    }
}

/// A batch as tensors: values and mask `[B, C, T]`, targets `[B, L]`.
struct Batch {
    values: Tensor<3>,
    mask: Tensor<3>,
    targets: Tensor<2, Int>,
}

fn batch(grids: &[&SeriesGrid], targets: &[&Vec<bool>], device: &Device) -> Batch {
    let (values, mask) = SeriesGrid::tensors(grids, device);
    let y: Vec<i64> = targets
        .iter()
        .flat_map(|t| t.iter().map(|&b| b as i64))
        .collect();
    Batch {
        values,
        mask,
        targets: Tensor::<1, Int>::from_ints(y.as_slice(), device)
            .reshape([grids.len(), PHENOTYPES.len()]),
    }
}

pub fn model_config(options: &TrainOptions) -> LabPhenotypeModelConfig {
    LabPhenotypeModelConfig::new(
        SeriesEncoderConfig::new(CHANNELS.len())
            .with_hours(options.hours)
            .with_d_model(options.d_model)
            .with_n_layers(options.layers)
            .with_d_ff(2 * options.d_model),
        PHENOTYPES.len(),
    )
    .with_wide(Some(options.wide))
}

/// Trains on the admissions of 80% of the patients (shuffled with the seed) and evaluates on the
/// other 20%.
pub fn train(
    records: &[PatientRecord],
    options: &TrainOptions,
) -> Result<(LabPhenotypeModel, TrainReport)> {
    anyhow::ensure!(
        records.len() >= 10,
        "need at least 10 admissions to train, got {}",
        records.len()
    );
    let device = Device::flex().autodiff();
    device.seed(options.seed);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (train_idx, test_idx) = split_by_patient(records, &mut rng);
    anyhow::ensure!(
        !train_idx.is_empty() && !test_idx.is_empty(),
        "too few patients to split into train and test"
    );
    let (train_idx, test_idx) = (train_idx.as_slice(), test_idx.as_slice());

    let grids: Vec<SeriesGrid> = records
        .iter()
        .map(|r| SeriesGrid::from_record(r, options.hours))
        .collect();
    let targets: Vec<Vec<bool>> = records.iter().map(PatientRecord::phenotype_truth).collect();

    let mut model = model_config(options).init(&device);
    let mut optimizer = fit::adamw(1e-4, 1.0);
    let loss_fn = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);

    let steps_per_epoch = train_idx.len().div_ceil(options.batch_size);
    let bar = if options.progress {
        ProgressBar::new((options.epochs * steps_per_epoch) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {eta} left · {msg}")
            .context("progress template")?,
    );
    let mut last_epoch_loss = f64::NAN;
    let mut shuffled = train_idx.to_vec();
    for epoch in 0..options.epochs {
        shuffled.shuffle(&mut rng);
        let (mut sum, mut count) = (0.0, 0);
        for chunk in shuffled.chunks(options.batch_size) {
            let g: Vec<&SeriesGrid> = chunk.iter().map(|&i| &grids[i]).collect();
            let t: Vec<&Vec<bool>> = chunk.iter().map(|&i| &targets[i]).collect();
            let b = batch(&g, &t, &device);
            let logits = model.forward(b.values, b.mask);
            let loss = loss_fn.forward(logits, b.targets);
            let value = loss.clone().into_scalar::<f64>();
            anyhow::ensure!(
                value.is_finite(),
                "training diverged: loss is {value} at epoch {epoch}"
            );
            // cosine decay from the base rate, by epoch, floored at 5 %
            let progress = epoch as f64 / options.epochs.max(1) as f64;
            let lr = options.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            model = fit::descend(
                &mut optimizer,
                model,
                loss,
                lr.max(options.learning_rate * 0.05),
            );
            sum += value;
            count += 1;
            bar.inc(1);
        }
        last_epoch_loss = sum / count.max(1) as f64;
        bar.set_message(format!("epoch {} loss {last_epoch_loss:.4}", epoch + 1));
    }
    bar.finish();

    let model = model.valid();
    let test = evaluate_split(&model, &grids, &targets, test_idx, &Device::flex())?;
    let id = |i: &usize| records[*i].id.as_str();
    let report = TrainReport {
        train_admissions: train_idx.len(),
        test_admissions: test_idx.len(),
        split: Split::of(train_idx.iter().map(id), test_idx.iter().map(id)),
        epochs: options.epochs,
        final_train_loss: last_epoch_loss,
        test,
    };
    Ok((model, report))
}

/// About 80% of the patients (all their admissions) for training, the rest for testing, so that
/// no patient is on both sides; a record without `patient` is its own patient.
fn split_by_patient(records: &[PatientRecord], rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let mut patients: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        patients
            .entry(record.patient.as_deref().unwrap_or(&record.id))
            .or_default()
            .push(i);
    }
    let mut groups: Vec<Vec<usize>> = patients.into_values().collect();
    groups.shuffle(rng);
    let split = groups.len() * 4 / 5;
    let (train, test) = groups.split_at(split);
    (train.concat(), test.concat())
}

fn evaluate_split(
    model: &LabPhenotypeModel,
    grids: &[SeriesGrid],
    targets: &[Vec<bool>],
    rows: &[usize],
    device: &Device,
) -> Result<Metrics> {
    let model = model.clone().to_device(device);
    let mut probs = Vec::new();
    let mut truth = Vec::new();
    for chunk in rows.chunks(64) {
        let g: Vec<&SeriesGrid> = chunk.iter().map(|&i| &grids[i]).collect();
        let t: Vec<&Vec<bool>> = chunk.iter().map(|&i| &targets[i]).collect();
        let b = batch(&g, &t, device);
        let p = burn::tensor::activation::sigmoid(model.forward(b.values, b.mask));
        probs.extend(
            p.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        truth.extend(t.iter().flat_map(|v| v.iter().copied()));
    }
    Ok(evaluate(&probs, &truth, PHENOTYPES.len(), 0.5))
}

/// Writes `model.safetensors` + `manifest.json` into `dir` ([`Bundle::write_to`]: an
/// interrupted or failed export never leaves a half-written bundle behind).
pub fn export(
    model: &LabPhenotypeModel,
    config: LabPhenotypeModelConfig,
    report: &TrainReport,
    dir: &Path,
) -> Result<Manifest> {
    let weights = fit::weights_bytes(model, "weights")?;
    let mut manifest = Manifest::new(ModelSpec::LabPhenotype(config), WeightsDtype::F32, 0.5);
    manifest.training = Some(serde_json::to_value(report)?);
    report.split.write(dir)?;
    let mut bundle = Bundle::new(manifest, weights, None, None)?;
    crate::pipelines::export::record_self_test(&mut bundle)?;
    bundle.write_to(dir)?;
    Ok(bundle.manifest().clone())
}
