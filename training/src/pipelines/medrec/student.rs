//! The student's training loop: BCE on the drug set + α·MSE between the projected mediator
//! layer and the teacher's hidden state + β·profile alignment, AdamW with warm-up and cosine
//! decay, the best validation PRAUC kept.

use anyhow::{Result, ensure};
use bedside::model::medrec::{MedRecBatch, MedRecModel, Patient};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::config::{MedRecRunConfig, cosine, show_progress};
use super::data::{Cohort, Example, floats_of, targets_tensor};
use super::report::EpochRecord;
use super::teacher::TeacherFeatures;
use crate::measure::medrec_metrics::evaluate;
use crate::shared::fit;
use crate::shared::io::bar;

/// The student with the projection that feature distillation trains alongside it.
#[derive(Module, Debug)]
pub struct Student {
    pub model: MedRecModel,
    pub projection: Linear,
}

/// Trains the student on the training admissions and returns the epoch with the best
/// validation PRAUC (threshold-free, so that early epochs with low probabilities are compared
/// fairly), stopping after `patience` epochs without one.
pub(super) fn train_student(
    config: &MedRecRunConfig,
    cohort: &Cohort,
    examples: &[Example],
    features: Option<&TeacherFeatures>,
    history: &mut Vec<EpochRecord>,
) -> Result<MedRecModel> {
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let width = features.map_or(1, |f| f.width);
    let mut student = Student {
        model: cohort.spec.config.init(&device),
        projection: LinearConfig::new(2 * config.student.d_model, width).init(&device),
    };
    let mut optimizer = fit::adamw(config.weight_decay, config.grad_clip);
    let (mut best, mut best_prauc, mut stale) = (student.valid(), -1.0, 0);
    let per_epoch = cohort.train.len().div_ceil(config.batch_size);
    let total_steps = per_epoch * config.epochs;
    let mut step = 0;
    for epoch in 0..config.epochs {
        let mut order = cohort.train.clone();
        order.shuffle(&mut StdRng::seed_from_u64(config.seed ^ (epoch as u64 + 1)));
        let progress = bar(
            per_epoch,
            show_progress(),
            format!("student epoch {}/{}", epoch + 1, config.epochs),
        );
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(config.batch_size) {
            let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let loss = student_loss(&student, &batch, config, features, &device);
            let value = loss.clone().into_scalar::<f64>();
            ensure!(
                value.is_finite(),
                "student training diverged: loss {value} at epoch {}",
                epoch + 1
            );
            student = fit::descend(
                &mut optimizer,
                student,
                loss,
                cosine(config.learning_rate, step, total_steps),
            );
            step += 1;
            loss_sum += value;
            batches += 1;
            progress.inc(1);
        }
        progress.finish_and_clear();
        let probs = student_probs(&student.valid().model, examples, &cohort.validation, config)?;
        let truth = Cohort::truth(examples, &cohort.validation);
        let local: Vec<usize> = (0..cohort.validation.len()).collect();
        let prauc = evaluate(&probs, &truth, cohort.drugs(), 0.5, &local).prauc;
        let train_loss = loss_sum / f64::from(batches.max(1));
        tracing::info!(
            "student epoch {}: train loss {train_loss:.4}, validation PRAUC {prauc:.3}",
            epoch + 1
        );
        history.push(EpochRecord {
            model: "student",
            epoch,
            train_loss,
            validation_prauc: prauc,
        });
        if fit::improved(prauc, &mut best_prauc, &mut stale) {
            best = student.valid();
        } else if stale >= config.patience {
            eprintln!("student: no better validation PRAUC for {stale} epochs; stopping");
            break;
        }
    }
    Ok(best.model)
}

/// One batch's loss: BCE, plus feature distillation and profile alignment where they weigh.
fn student_loss(
    student: &Student,
    batch: &[&Example],
    config: &MedRecRunConfig,
    features: Option<&TeacherFeatures>,
    device: &Device,
) -> Tensor<1> {
    let patients: Vec<Patient> = batch.iter().map(|e| e.patient.clone()).collect();
    let input = MedRecBatch::new(
        &patients,
        config.student.max_visits,
        config.max_codes,
        device,
    );
    let out = student.model.forward(&input);
    let m = out.logits.dims()[1];
    let targets = targets_tensor(batch, m, device);
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(device);
    let mut loss = bce.forward(out.logits, targets.int());
    if let (Some(f), true) = (features, config.alpha > 0.0) {
        let hidden: Vec<f32> = batch
            .iter()
            .flat_map(|e| {
                f.hidden
                    .get(&e.id)
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; f.width])
            })
            .collect();
        let hidden =
            Tensor::<1>::from_data(TensorData::new(hidden, [batch.len() * f.width]), device)
                .reshape([batch.len(), f.width]);
        let projected = student.projection.forward(out.mediator);
        loss = loss + (projected - hidden).powi_scalar(2).mean() * config.alpha;
    }
    if config.beta > 0.0 && batch.len() > 1 {
        loss = loss
            + profile_alignment(
                &student.model,
                out.profile,
                batch,
                config.temperature,
                device,
            ) * config.beta;
    }
    loss
}
/// Symmetric InfoNCE between profile embeddings and the embeddings of the prescribed drug sets.
fn profile_alignment(
    model: &MedRecModel,
    profile: Tensor<2>,
    batch: &[&Example],
    temperature: f64,
    device: &Device,
) -> Tensor<1> {
    let width = batch
        .iter()
        .map(|e| e.target_ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let ids: Vec<i64> = batch
        .iter()
        .flat_map(|e| (0..width).map(move |k| e.target_ids.get(k).map_or(0, |&x| i64::from(x))))
        .collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch.len() * width]), device)
        .reshape([batch.len(), width]);
    let drugs = model.drug_set_embedding(ids);
    let normalise = |x: Tensor<2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-6);
        x / norm
    };
    let similarity = normalise(profile).matmul(normalise(drugs).transpose()) / temperature;
    let n = batch.len();
    let diagonal = Tensor::<1, Int>::arange(0..n as i64, device).reshape([n, 1]);
    let forward = -log_softmax(similarity.clone(), 1)
        .gather(1, diagonal.clone())
        .mean();
    let backward = -log_softmax(similarity.transpose(), 1)
        .gather(1, diagonal)
        .mean();
    (forward + backward) / 2.0
}

pub(super) fn student_probs(
    model: &MedRecModel,
    examples: &[Example],
    rows: &[usize],
    config: &MedRecRunConfig,
) -> Result<Vec<f32>> {
    let device = Device::flex();
    let model = model.clone().to_device(&device);
    let mut out = Vec::new();
    for chunk in rows.chunks(64) {
        let patients: Vec<Patient> = chunk.iter().map(|&i| examples[i].patient.clone()).collect();
        let input = MedRecBatch::new(
            &patients,
            config.student.max_visits,
            config.max_codes,
            &device,
        );
        out.extend(floats_of(sigmoid(model.forward(&input).logits))?);
    }
    Ok(out)
}
