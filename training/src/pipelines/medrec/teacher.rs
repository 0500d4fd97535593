//! The teacher: the bedside T5 encoder with a classification layer, trained online, and its
//! features (pooled hidden states and logits) read from or written to safetensors.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use bedside::model::input::{length_mask, pad_ids};
use bedside::model::t5::{FeedForwardKind, T5, T5Config};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::config::{MedRecRunConfig, cosine, show_progress};
use super::data::{Example, floats_of, targets_tensor};
use super::report::EpochRecord;
use crate::measure::medrec_metrics::evaluate;
use crate::shared::fit;
use crate::shared::io::{bar, write_atomic};

/// The teacher: the bedside language model's encoder with a classification layer.
#[derive(Module, Debug)]
pub struct Teacher {
    pub lm: T5,
    pub head: Linear,
}

impl Teacher {
    /// `(logits [b, |M|], pooled hidden state [b, H])`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> (Tensor<2>, Tensor<2>) {
        let [b, width] = ids.dims();
        let mask = length_mask(lengths, b, width, &ids.device());
        let hidden = self.lm.encode(ids, mask.clone());
        let keep = mask.unsqueeze_dim::<3>(2);
        let count = keep.clone().sum_dim(1).squeeze_dim::<2>(1).clamp_min(1.0);
        let pooled = (hidden * keep).sum_dim(1).squeeze_dim::<2>(1) / count;
        (self.head.forward(pooled.clone()), pooled)
    }
}

/// Teacher features: per admission id, the pooled hidden state and (optionally) the logits.
/// `write_features` leaves the logits out when `drugs` is empty (hidden states alone, as
/// `features` writes them).
pub struct TeacherFeatures {
    pub hidden: HashMap<String, Vec<f32>>,
    pub width: usize,
    /// Logit columns named by ATC-3 code (metadata `medications`), where the file says.
    pub logits: HashMap<String, HashMap<String, f32>>,
}

impl TeacherFeatures {
    /// Each hidden dimension standardised by its mean and spread over the admissions `rows`:
    /// the student's projection regresses onto it, and a language model's raw hidden states can
    /// be orders of magnitude apart between dimensions.
    pub fn standardise(&mut self, rows: &[String]) {
        let n = rows.len().max(1) as f64;
        let (mut mean, mut square) = (vec![0.0f64; self.width], vec![0.0f64; self.width]);
        for h in rows.iter().filter_map(|id| self.hidden.get(id)) {
            for (k, &x) in h.iter().enumerate() {
                mean[k] += f64::from(x) / n;
                square[k] += f64::from(x) * f64::from(x) / n;
            }
        }
        let spread: Vec<f64> = mean
            .iter()
            .zip(&square)
            .map(|(m, s)| (s - m * m).max(0.0).sqrt())
            .map(|s| if s < 1e-6 { 1.0 } else { s })
            .collect();
        for h in self.hidden.values_mut() {
            for (k, x) in h.iter_mut().enumerate() {
                *x = ((f64::from(*x) - mean[k]) / spread[k]) as f32;
            }
        }
    }

    /// The teacher of hidden states alone: one-vs-rest logistic regression from the (already
    /// standardised) hidden state to the drug set, C chosen on the validation admissions
    /// ([`crate::shared::logistic`]); its logits for every admission become `logits`. Returns C.
    pub fn fit_head(
        &mut self,
        train: (&[String], &[Vec<bool>]),
        validation: (&[String], &[Vec<bool>]),
        drugs: &[String],
    ) -> Result<f64> {
        let device = Device::flex().autodiff();
        let matrix = |ids: &[String]| -> Tensor<2> {
            let flat: Vec<f32> = ids
                .iter()
                .flat_map(|id| self.hidden[id].iter().copied())
                .collect();
            Tensor::<1>::from_data(TensorData::new(flat, [ids.len() * self.width]), &device)
                .reshape([ids.len(), self.width])
        };
        let labels = |rows: &[Vec<bool>]| -> Tensor<2, Int> {
            let flat: Vec<i64> = rows.iter().flatten().map(|&t| i64::from(t)).collect();
            Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * drugs.len()]), &device)
                .reshape([rows.len(), drugs.len()])
        };
        let chosen = crate::shared::logistic::regularisation_path(
            &matrix(train.0),
            &labels(train.1),
            &matrix(validation.0),
            &labels(validation.1),
        )?;
        let ids: Vec<String> = self.hidden.keys().cloned().collect();
        let logits: Vec<f32> = chosen
            .model
            .forward(matrix(&ids))
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        self.logits = ids
            .iter()
            .zip(logits.chunks_exact(drugs.len()))
            .map(|(id, row)| {
                (
                    id.clone(),
                    drugs.iter().cloned().zip(row.iter().copied()).collect(),
                )
            })
            .collect();
        Ok(chosen.c)
    }
}

pub fn write_features(
    path: &Path,
    ids: &[String],
    hidden: &[f32],
    width: usize,
    logits: &[f32],
    drugs: &[String],
) -> Result<()> {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (h, l) = (bytes(hidden), bytes(logits));
    let mut views = vec![(
        "hidden",
        TensorView::new(Dtype::F32, vec![ids.len(), width], &h)?,
    )];
    let mut metadata = HashMap::from([("ids".to_string(), serde_json::to_string(ids)?)]);
    if !drugs.is_empty() {
        views.push((
            "logits",
            TensorView::new(Dtype::F32, vec![ids.len(), drugs.len()], &l)?,
        ));
        metadata.insert("medications".to_string(), serde_json::to_string(drugs)?);
    }
    write_atomic(path, &safetensors::serialize(views, Some(metadata))?)
}

pub fn read_features(path: &Path) -> Result<TeacherFeatures> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let where_ = || path.display().to_string();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).with_context(where_)?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes).with_context(where_)?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let ids: Vec<String> = serde_json::from_str(meta.get("ids").ok_or_else(|| {
        anyhow!(
            "{}: metadata has no \"ids\" (a JSON array of admission ids)",
            where_()
        )
    })?)
    .with_context(|| format!("{}: metadata \"ids\"", where_()))?;
    let floats = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = tensors
            .tensor(name)
            .with_context(|| format!("{}: tensor {name:?}", where_()))?;
        ensure!(
            view.dtype() == safetensors::Dtype::F32,
            "{}: tensor {name:?} is {:?}, F32 expected",
            where_(),
            view.dtype()
        );
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((view.shape().to_vec(), values))
    };
    let (shape, hidden) = floats("hidden")?;
    ensure!(
        shape.len() == 2 && shape[0] == ids.len() && shape[1] > 0,
        "{}: hidden is {shape:?}, [{} ids, H] expected",
        where_(),
        ids.len()
    );
    let width = shape[1];
    ensure!(
        hidden.iter().all(|x| x.is_finite()),
        "{}: hidden holds NaN or infinite values",
        where_()
    );
    let mut logits = HashMap::new();
    if let Some(drugs) = meta.get("medications") {
        let drugs: Vec<String> = serde_json::from_str(drugs)
            .with_context(|| format!("{}: metadata \"medications\"", where_()))?;
        let (shape, values) = floats("logits")?;
        ensure!(
            shape == [ids.len(), drugs.len()],
            "{}: logits is {shape:?}, [{}, {}] expected",
            where_(),
            ids.len(),
            drugs.len()
        );
        for (i, id) in ids.iter().enumerate() {
            let row = &values[i * drugs.len()..(i + 1) * drugs.len()];
            logits.insert(
                id.clone(),
                drugs.iter().cloned().zip(row.iter().copied()).collect(),
            );
        }
    }
    let hidden = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), hidden[i * width..(i + 1) * width].to_vec()))
        .collect();
    Ok(TeacherFeatures {
        hidden,
        width,
        logits,
    })
}

/// Trains the teacher (BCE), keeps its best validation epoch and returns its features for every
/// admission, also written to `teacher-features.safetensors`.
pub(super) fn train_teacher(
    config: &MedRecRunConfig,
    examples: &[Example],
    train: &[usize],
    validation: &[usize],
    drugs: &[String],
    dir: &Path,
    history: &mut Vec<EpochRecord>,
) -> Result<(TeacherFeatures, usize)> {
    let t = &config.teacher;
    let m = drugs.len();
    let device = Device::flex().autodiff();
    device.seed(config.seed.wrapping_add(1));
    let lm_config = T5Config::new(t.vocab_size)
        .with_d_model(t.d_model)
        .with_d_kv(t.d_model / t.heads)
        .with_d_ff(t.d_ff)
        .with_num_layers(t.layers)
        .with_num_decoder_layers(0)
        .with_num_heads(t.heads)
        .with_feed_forward(FeedForwardKind::GatedGelu)
        .with_dropout_rate(t.dropout);
    let mut teacher = Teacher {
        lm: lm_config.init(&device),
        head: LinearConfig::new(t.d_model, m).init(&device),
    };
    let parameters = teacher.num_params();
    let mut optimizer = fit::adamw(config.weight_decay, config.grad_clip);
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let per_epoch = train.len().div_ceil(config.batch_size);
    let (mut best, mut best_prauc, mut step) = (teacher.valid(), -1.0, 0);
    let truth: Vec<bool> = validation
        .iter()
        .flat_map(|&i| examples[i].target.clone())
        .collect();
    for epoch in 0..t.epochs {
        let mut order = train.to_vec();
        order.shuffle(&mut StdRng::seed_from_u64(
            config.seed.wrapping_add(7919) ^ epoch as u64,
        ));
        let progress = bar(
            per_epoch,
            show_progress(),
            format!("teacher epoch {}/{}", epoch + 1, t.epochs),
        );
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(config.batch_size) {
            let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let prompts: Vec<Vec<u32>> = batch.iter().map(|e| e.prompt.clone()).collect();
            let (ids, lengths) = pad_ids(&prompts, &device);
            let (logits, _) = teacher.forward(ids, &lengths);
            let loss = bce.forward(logits, targets_tensor(&batch, m, &device).int());
            let value = loss.clone().into_scalar::<f64>();
            ensure!(
                value.is_finite(),
                "teacher training diverged: loss {value} at epoch {}",
                epoch + 1
            );
            teacher = fit::descend(
                &mut optimizer,
                teacher,
                loss,
                cosine(t.learning_rate, step, per_epoch * t.epochs),
            );
            step += 1;
            loss_sum += value;
            batches += 1;
            progress.inc(1);
        }
        progress.finish_and_clear();
        let (_, logits) = teacher_outputs(&teacher.valid(), examples, validation)?;
        let probs: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let prauc = evaluate(
            &probs,
            &truth,
            drugs,
            0.5,
            &(0..validation.len()).collect::<Vec<_>>(),
        )
        .prauc;
        let train_loss = loss_sum / f64::from(batches.max(1));
        tracing::info!(
            "teacher epoch {}: train loss {train_loss:.4}, validation PRAUC {prauc:.3}",
            epoch + 1
        );
        history.push(EpochRecord {
            model: "teacher",
            epoch,
            train_loss,
            validation_prauc: prauc,
        });
        if prauc > best_prauc {
            (best, best_prauc) = (teacher.valid(), prauc);
        }
    }
    let all: Vec<usize> = (0..examples.len()).collect();
    let (hidden, logits) = teacher_outputs(&best, examples, &all)?;
    let ids: Vec<String> = examples.iter().map(|e| e.id.clone()).collect();
    write_features(
        &dir.join("teacher-features.safetensors"),
        &ids,
        &hidden,
        t.d_model,
        &logits,
        drugs,
    )?;
    let features = TeacherFeatures {
        hidden: ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    hidden[i * t.d_model..(i + 1) * t.d_model].to_vec(),
                )
            })
            .collect(),
        width: t.d_model,
        logits: ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    drugs
                        .iter()
                        .cloned()
                        .zip(logits[i * m..(i + 1) * m].iter().copied())
                        .collect(),
                )
            })
            .collect(),
    };
    Ok((features, parameters))
}

/// The teacher's pooled hidden states and logits for `rows`, row-major.
pub(super) fn teacher_outputs(
    teacher: &Teacher,
    examples: &[Example],
    rows: &[usize],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let device = Device::flex();
    let teacher = teacher.clone().to_device(&device);
    let (mut hidden, mut logits) = (Vec::new(), Vec::new());
    for chunk in rows.chunks(32) {
        let prompts: Vec<Vec<u32>> = chunk.iter().map(|&i| examples[i].prompt.clone()).collect();
        let (ids, lengths) = pad_ids(&prompts, &device);
        let (l, h) = teacher.forward(ids, &lengths);
        hidden.extend(floats_of(h)?);
        logits.extend(floats_of(l)?);
    }
    Ok((hidden, logits))
}
