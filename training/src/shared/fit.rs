//! The training kit every trainer here shares (distill, the medication recommender, mortality,
//! the lab-phenotype trainer, bench): the learning-rate schedule, AdamW with gradient-norm
//! clipping, one descent step, and a module's weights to and from safetensors bytes. One
//! definition each, so that a change to how bedside trains reaches every model.

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::shared::io::write_atomic;

/// The learning rate at `step` of `total`: linear warm-up over `warmup` steps from
/// `peak / warmup`, then cosine decay to 5 % of the peak at `total`.
pub fn warmup_cosine(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()))
}

/// AdamW (decoupled weight decay) with the gradients' global norm clipped at `grad_clip`.
pub fn adamw(weight_decay: f64, grad_clip: f64) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(grad_clip as f32)))
        .init()
}

/// One step of `optimizer` down the gradient of `loss` with respect to `model`'s parameters.
pub fn descend<M: Module>(
    optimizer: &mut ModuleOptimizer,
    model: M,
    loss: Tensor<1>,
    learning_rate: f64,
) -> M {
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optimizer.step(learning_rate, model, grads)
}

/// Early stopping's bookkeeping after an epoch that scored `score` on validation (higher is
/// better): true when it beats `best`, which then takes it while `stale` restarts at 0; else
/// `stale` counts one more epoch without improvement (a trainer stops once it reaches its
/// patience).
pub fn improved(score: f64, best: &mut f64, stale: &mut usize) -> bool {
    if score > *best {
        *best = score;
        *stale = 0;
        true
    } else {
        *stale += 1;
        false
    }
}

/// The module's parameters as a safetensors file; `what` names it in errors.
pub fn weights_bytes<M: ModuleSnapshot>(module: &M, what: &str) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| anyhow!("serialising {what}: {e}"))?;
    store
        .get_bytes()
        .map_err(|e| anyhow!("serialising {what}: {e}"))
}

/// Loads a safetensors file into `module`: every parameter must be there and fit; `what` names
/// the file in errors.
pub fn load_weights_bytes<M: ModuleSnapshot>(
    module: &mut M,
    bytes: Vec<u8>,
    what: &str,
) -> Result<()> {
    let result = module
        .load_from(&mut SafetensorsStore::from_bytes(Some(bytes)))
        .map_err(|e| anyhow!("{what}: {e}"))?;
    ensure!(
        result.errors.is_empty() && result.missing.is_empty(),
        "{what}: {:?} {:?}",
        result.errors,
        result.missing
    );
    Ok(())
}

/// Writes the module's parameters to `path` (atomically: a checkpoint is whole or absent).
pub fn save_weights<M: ModuleSnapshot>(module: &M, path: &Path) -> Result<()> {
    write_atomic(path, &weights_bytes(module, "weights")?)
}

/// Reads `path` into `module` (see [`load_weights_bytes`]).
pub fn load_weights<M: ModuleSnapshot>(module: &mut M, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_weights_bytes(module, bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        assert!((warmup_cosine(1.0, 0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((warmup_cosine(1.0, 9, 10, 100) - 1.0).abs() < 1e-12);
        assert!((warmup_cosine(1.0, 100, 10, 100) - 0.05).abs() < 1e-12);
        // no warm-up: the peak at the start, half way down the cosine at the middle
        assert!((warmup_cosine(1.0, 0, 0, 100) - 1.0).abs() < 1e-12);
        assert!((warmup_cosine(1.0, 50, 0, 100) - 0.525).abs() < 1e-12);
    }

    #[test]
    fn early_stopping_counts_epochs_without_a_better_score() {
        let (mut best, mut stale) = (-1.0, 0);
        assert!(improved(0.5, &mut best, &mut stale));
        assert!(
            !improved(0.5, &mut best, &mut stale),
            "a tie is no improvement"
        );
        assert!(!improved(0.4, &mut best, &mut stale));
        assert_eq!((best, stale), (0.5, 2));
        assert!(improved(0.6, &mut best, &mut stale));
        assert_eq!((best, stale), (0.6, 0));
    }
}
