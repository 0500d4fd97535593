//! Stage 0 of `distill`: the wide half of the phenotype head (`bedside::model::wide`) fitted
//! alone, before the three ClinRaGen stages, as the logistic regression it is — many cheap epochs
//! (no transformer runs) with early stopping on the validation loss. The stages then train the
//! deep half on top of it with the wide half frozen, so the model starts where the linear
//! baseline ends instead of having to find it again in 21 epochs of the whole network.

use anyhow::{Result, anyhow};
use bedside::model::{ClinicalInput, WideHead};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::distill::{Example, batch};

/// What stage 0 did, kept in the run's progress and `training` history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WideFit {
    pub epochs: usize,
    pub best_epoch: usize,
    /// Mean BCE on the validation split at the best epoch.
    pub validation_loss: f64,
}

const EPOCHS: usize = 200;
const PATIENCE: usize = 10;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 1e-2;
const WEIGHT_DECAY: f32 = 1e-2;

/// The wide logits of a batch with both inputs (notes prompt and lab series).
fn logits(wide: &WideHead, input: &ClinicalInput) -> Result<Tensor<2>> {
    let (Some((ids, lengths)), Some((values, observed))) = (&input.text, &input.series) else {
        return Err(anyhow!(
            "stage 0 needs both the notes and the labs of a batch"
        ));
    };
    let [rows, len] = ids.dims();
    let mask = bedside::model::clinical::length_mask(lengths, rows, len, &ids.device());
    Ok(wide.words(ids.clone(), mask) + wide.labs(values.clone(), observed.clone()))
}

/// Fits `wide` on the `train` rows of `examples` (autodiff `device`), keeping the epoch with the
/// lowest validation loss (`validation` empty: the last).
pub fn fit(
    mut wide: WideHead,
    examples: &[Example],
    train: &[usize],
    validation: &[usize],
    seed: u64,
    device: &Device,
) -> Result<(WideHead, WideFit)> {
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(device);
    let mut optimizer = AdamWConfig::new().with_weight_decay(WEIGHT_DECAY).init();
    // the batches are built once: only the order changes between epochs
    let rows_of = |rows: &[usize]| -> Vec<crate::distill::Batch> {
        rows.chunks(BATCH)
            .map(|chunk| {
                let chosen: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
                batch(&chosen, 2, device)
            })
            .collect()
    };
    let validation_batches = rows_of(validation);
    let mut order = train.to_vec();
    let (mut best, mut fit, mut stale) = (wide.clone(), WideFit::default(), 0);
    fit.validation_loss = f64::INFINITY;
    for epoch in 0..EPOCHS {
        order.shuffle(&mut StdRng::seed_from_u64(
            seed ^ 0x7769_6465 ^ epoch as u64,
        ));
        for b in rows_of(&order) {
            let loss = bce.forward(logits(&wide, &b.input)?, b.phenotypes);
            let grads = GradientsParams::from_grads(loss.backward(), &wide);
            // cosine from the peak to 5 %
            let progress = epoch as f64 / EPOCHS as f64;
            let lr = LEARNING_RATE
                * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
            wide = optimizer.step(lr, wide, grads);
        }
        fit.epochs = epoch + 1;
        if validation_batches.is_empty() {
            best = wide.clone();
            continue;
        }
        let (mut total, mut count) = (0.0, 0usize);
        for b in &validation_batches {
            let n = b.phenotypes.dims()[0];
            let loss = bce.forward(logits(&wide, &b.input)?, b.phenotypes.clone());
            total += f64::from(loss.into_scalar::<f32>()) * n as f64;
            count += n;
        }
        let loss = total / count.max(1) as f64;
        if loss < fit.validation_loss {
            (best, fit.best_epoch, fit.validation_loss, stale) = (wide.clone(), epoch + 1, loss, 0);
        } else {
            stale += 1;
            if stale >= PATIENCE {
                break;
            }
        }
    }
    tracing::info!(
        "stage 0 (wide head alone): {} epochs, best {} with validation loss {:.4}",
        fit.epochs,
        fit.best_epoch,
        fit.validation_loss
    );
    Ok((best, fit))
}
