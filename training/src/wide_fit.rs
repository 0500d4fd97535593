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
    /// Mean BCE on the validation split at the best epoch (`None` without a validation split).
    pub validation_loss: Option<f64>,
}

const EPOCHS: usize = 200;
const PATIENCE: usize = 10;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 1e-2;
const WEIGHT_DECAY: f32 = 1e-2;

/// The wide logits of a batch (stage 0 reads the notes and the labs).
fn logits(wide: &WideHead, input: &ClinicalInput) -> Result<Tensor<2>> {
    wide.forward(input)
        .ok_or_else(|| anyhow!("stage 0 needs the notes or the labs of a batch"))
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
    // validation batches are built once; training batches each epoch, in a new order
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
    for epoch in 0..EPOCHS {
        order.shuffle(&mut StdRng::seed_from_u64(
            seed ^ 0x7769_6465 ^ epoch as u64,
        ));
        for b in rows_of(&order) {
            let loss = bce.forward(logits(&wide, &b.input)?, b.phenotypes);
            let grads = GradientsParams::from_grads(loss.backward(), &wide);
            // cosine by epoch from the peak to 5 %, no warm-up
            let lr = crate::schedule::warmup_cosine(LEARNING_RATE, epoch, 0, EPOCHS);
            wide = optimizer.step(lr, wide, grads);
        }
        fit.epochs = epoch + 1;
        if validation_batches.is_empty() {
            (best, fit.best_epoch) = (wide.clone(), epoch + 1);
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
        if fit.validation_loss.is_none_or(|best| loss < best) {
            (best, fit.best_epoch, fit.validation_loss, stale) =
                (wide.clone(), epoch + 1, Some(loss), 0);
        } else {
            stale += 1;
            if stale >= PATIENCE {
                break;
            }
        }
    }
    tracing::info!(
        "stage 0 (wide head alone): {} epochs, best {}, validation loss {:?}",
        fit.epochs,
        fit.best_epoch,
        fit.validation_loss
    );
    Ok((best, fit))
}
