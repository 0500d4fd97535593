//! Calibration of the phenotype head on the validation split, so that a probability of 0.8 is
//! right about 80 % of the time: Platt scaling (a scale and a shift of the logits) with a shift
//! per label held near zero by a Gaussian prior ([`bedside::calibration::LogitMap`]), fitted by
//! maximum likelihood. A positive scale keeps every logit's order, so every AUROC is unchanged;
//! the diagnoses at 0.5 and the probabilities move.
//!
//! Why more than a temperature: on real admissions (labs alone) the model learnt mostly from
//! synthetic ones, whose base rates differ, and a temperature can only flatten the logits towards
//! 0.5. On the committed run's 41 real validation admissions, 5-fold cross-validated
//! (`experiments/calibration_cv.py` on the run's `validation-logits.json`), a temperature took the ECE
//! from 0.115 to 0.134, Platt scaling to 0.047, Platt scaling with the label shifts to 0.029
//! (leave-one-out 0.014; any prior weight from 1 to 3 stays under 0.03, RESULTS).
//!
//! `distill` fits one map on the validation admissions with notes and one on those without
//! (`calibration.json`), `export` writes them into the manifest, and the library applies them
//! (`Manifest::calibration`). `mortality` recalibrates its risk with the same fit, without
//! label shifts.

use bedside::calibration::{HeadCalibration, LogitMap};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{GradientsParams, LBFGSConfig, LineSearchFn};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The prior's weight λ on each label shift c: the fit minimises Σ BCE + λ·Σ c² over the pairs,
/// a Gaussian prior of standard deviation 1/√(2λ) = 0.5 on each shift. Chosen by cross-validation
/// on the committed run's real validation admissions (module doc).
pub const LABEL_SHIFT_PRIOR: f64 = 2.0;

/// What `distill` writes to `calibration.json`: one group's map and how it moved the
/// validation figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub map: LogitMap,
    /// Validation (admission, label) pairs it was fitted on.
    pub pairs: usize,
    /// Expected calibration error (10 equal-width bins) and Brier score, before and after.
    pub ece_before: f64,
    pub ece_after: f64,
    pub brier_before: f64,
    pub brier_after: f64,
    /// The validation admissions without notes fitted apart, where a run has any: they are the
    /// real ones in the committed bundle, whose labs alone must carry the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_notes: Option<Box<Calibration>>,
}

impl Calibration {
    /// The maps as a manifest carries them.
    pub fn head_calibration(&self) -> HeadCalibration {
        HeadCalibration {
            with_notes: self.map.clone(),
            without_notes: self.without_notes.as_ref().map(|c| c.map.clone()),
        }
    }
}

/// The map of `logits` (row-major, `labels` per row) that maximises the likelihood of `targets`:
/// scale and shift unpenalised, and with `label_prior` = Some(λ) a shift per label under the
/// penalty λ·Σ c². No data or a non-finite logit: the identity.
pub fn fit_map(
    logits: &[f32],
    targets: &[bool],
    labels: usize,
    label_prior: Option<f64>,
) -> LogitMap {
    let identity = LogitMap::temperature(1.0);
    let n = logits.len();
    if n == 0
        || labels == 0
        || !n.is_multiple_of(labels)
        || targets.len() != n
        || logits.iter().any(|z| !z.is_finite())
    {
        return identity;
    }
    let device = Device::flex().autodiff();
    // columns: the logit, then (with label shifts) one indicator per label
    let width = 1 + if label_prior.is_some() { labels } else { 0 };
    let mut x = vec![0f32; n * width];
    for (k, &z) in logits.iter().enumerate() {
        x[k * width] = z;
        if width > 1 {
            x[k * width + 1 + k % labels] = 1.0;
        }
    }
    let x = Tensor::<1>::from_floats(x.as_slice(), &device).reshape([n, width]);
    let y: Vec<i64> = targets.iter().map(|&t| i64::from(t)).collect();
    let y = Tensor::<1, Int>::from_ints(y.as_slice(), &device).reshape([n, 1]);
    let mut start = LinearConfig::new(width, 1)
        .with_initializer(Initializer::Zeros)
        .init(&device);
    let mut weight = vec![0f32; width];
    weight[0] = 1.0;
    start.weight = crate::shared::logistic::leaf(
        Tensor::<1>::from_floats(weight.as_slice(), &device).reshape([width, 1]),
    );
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let prior = label_prior.unwrap_or(0.0);
    let mut closure = |model: Linear| {
        let fitted = bce.forward(model.forward(x.clone()), y.clone());
        let loss = if width > 1 {
            let shifts = model.weight.val().slice([1..width, 0..1]);
            fitted + shifts.powi_scalar(2).sum() * (prior / n as f64)
        } else {
            fitted
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (loss.into_scalar::<f64>(), grads)
    };
    let mut optimizer = LBFGSConfig::new()
        .with_max_iter(200)
        .with_tolerance_grad(1e-9)
        .with_tolerance_change(1e-12)
        .with_line_search_fn(LineSearchFn::StrongWolfe)
        .init();
    let model = optimizer.step(1.0, start, &mut closure).0;
    let Ok(weight) = model.weight.val().into_data().try_to_vec::<f32>() else {
        return identity;
    };
    let shift = model
        .bias
        .and_then(|b| b.val().into_data().try_to_vec::<f32>().ok())
        .and_then(|b| b.first().copied())
        .unwrap_or(0.0);
    let map = LogitMap {
        scale: weight[0],
        shift,
        label_shifts: weight[1..].to_vec(),
    };
    // a fit the library would refuse (a scale at or below zero: logits that do not rank) is none
    match map.check("map", labels) {
        Ok(()) => map,
        Err(why) => {
            tracing::warn!("calibration: the fitted map is out of bounds ({why}); none applied");
            identity
        }
    }
}

/// Fits the map on one group and measures calibration before and after.
pub fn calibrate(logits: &[f32], targets: &[bool], labels: usize) -> Calibration {
    let map = fit_map(logits, targets, labels, Some(LABEL_SHIFT_PRIOR));
    let pairs = |m: &LogitMap| -> Vec<(f32, bool)> {
        logits
            .iter()
            .zip(targets)
            .enumerate()
            .map(|(k, (&z, &y))| (m.probability(z, k % labels.max(1)), y))
            .collect()
    };
    let (before, after) = (pairs(&LogitMap::temperature(1.0)), pairs(&map));
    Calibration {
        map,
        pairs: logits.len(),
        ece_before: crate::measure::metrics::expected_calibration_error(&before, 10),
        ece_after: crate::measure::metrics::expected_calibration_error(&after, 10),
        brier_before: crate::measure::metrics::brier(&before),
        brier_after: crate::measure::metrics::brier(&after),
        without_notes: None,
    }
}

/// One map for the rows with notes (all rows where none has notes) and, where some rows have
/// none, one for those (`without_notes`). `logits` and `targets` are row-major, as many values
/// per row as `logits.len() / has_notes.len()`.
pub fn calibrate_by_notes(logits: &[f32], targets: &[bool], has_notes: &[bool]) -> Calibration {
    let width = logits.len() / has_notes.len().max(1);
    let group = |notes: bool| -> (Vec<f32>, Vec<bool>) {
        let rows = (0..has_notes.len()).filter(|&r| has_notes[r] == notes);
        rows.flat_map(|r| (r * width..(r + 1) * width).map(|k| (logits[k], targets[k])))
            .unzip()
    };
    let (with_logits, with_targets) = group(true);
    let mut calibration = match with_logits.is_empty() {
        true => calibrate(logits, targets, width),
        false => calibrate(&with_logits, &with_targets, width),
    };
    let (without_logits, without_targets) = group(false);
    if !without_logits.is_empty() && !with_logits.is_empty() {
        calibration.without_notes = Some(Box::new(calibrate(
            &without_logits,
            &without_targets,
            width,
        )));
    }
    calibration
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Labels drawn at σ(2z − 1 + c_label) from logits z: the fit must recover the 2, the −1
    /// and each label's c (shrunk a little by the prior), and calibration must get better.
    #[test]
    fn recovers_the_scale_the_shift_and_each_label_shift() {
        let mut rng = StdRng::seed_from_u64(11);
        let label_shifts = [0.0, 1.0, -1.0];
        let (mut logits, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            for c in label_shifts {
                let z: f64 = rng.random_range(-3.0..3.0);
                targets.push(rng.random::<f64>() < sigmoid(2.0 * z - 1.0 + c));
                logits.push(z as f32);
            }
        }
        let c = calibrate(&logits, &targets, 3);
        let m = &c.map;
        // 30,000 pairs: standard errors near 0.03; the three label shifts are only defined up to
        // the common shift, so compare shift + c_label
        assert!((m.scale - 2.0).abs() < 0.1, "{c:?}");
        for (label, want) in label_shifts.iter().enumerate() {
            let got = m.shift_of(label);
            assert!(
                (f64::from(got) - (want - 1.0)).abs() < 0.12,
                "{label}: {c:?}"
            );
        }
        assert!(c.ece_after < c.ece_before / 3.0, "{c:?}");
        assert!(c.brier_after < c.brier_before, "{c:?}");
        // calibrated logits stay put
        let calibrated: Vec<f32> = logits
            .iter()
            .enumerate()
            .map(|(k, &z)| m.scale * z + m.shift_of(k % 3))
            .collect();
        let again = fit_map(&calibrated, &targets, 3, Some(LABEL_SHIFT_PRIOR));
        assert!((again.scale - 1.0).abs() < 0.02, "{again:?}");
        assert!((0..3).all(|l| again.shift_of(l).abs() < 0.02), "{again:?}");
    }

    /// Outcomes drawn at σ(2z − 1) from logits z: Platt scaling (no label shifts, as `mortality`
    /// uses it) recovers the 2 and the −1.
    #[test]
    fn platt_scaling_recovers_the_miscalibration() {
        let mut rng = StdRng::seed_from_u64(3);
        let logits: Vec<f32> = (0..20_000).map(|_| rng.random_range(-3.0..3.0)).collect();
        let died: Vec<bool> = logits
            .iter()
            .map(|&z| rng.random::<f64>() < sigmoid(2.0 * f64::from(z) - 1.0))
            .collect();
        let map = fit_map(&logits, &died, 1, None);
        // 20,000 draws: standard errors near 0.03
        assert!(
            (map.scale - 2.0).abs() < 0.1 && (map.shift + 1.0).abs() < 0.1,
            "{map:?}"
        );
        assert!(map.label_shifts.is_empty());
    }

    /// Rows with notes shown at 3z, rows without at 0.5z − 1: each group gets its own map.
    #[test]
    fn rows_with_and_without_notes_are_fitted_apart() {
        let mut rng = StdRng::seed_from_u64(12);
        let (mut logits, mut targets, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for row in 0..8_000 {
            let with = row % 3 != 0;
            notes.push(with);
            for _ in 0..2 {
                let z: f64 = rng.random_range(-4.0..4.0);
                targets.push(rng.random::<f64>() < sigmoid(z));
                logits.push(if with { 3.0 * z } else { 0.5 * z - 1.0 } as f32);
            }
        }
        let c = calibrate_by_notes(&logits, &targets, &notes);
        assert!((c.map.scale - 1.0 / 3.0).abs() < 0.03, "{c:?}");
        let without = c.without_notes.as_ref().expect("a group without notes");
        assert!((without.map.scale - 2.0).abs() < 0.15, "{without:?}");
        assert!(
            (0..2).all(|l| (without.map.shift_of(l) - 2.0).abs() < 0.15),
            "{without:?}"
        );
        assert_eq!(without.pairs, 2 * notes.iter().filter(|&&n| !n).count());
        let manifest = c.head_calibration();
        assert_eq!(manifest.without_notes.as_ref(), Some(&without.map));
        // one group only: one map
        let all = calibrate_by_notes(&logits, &targets, &vec![false; 8_000]);
        assert!(all.without_notes.is_none());
    }

    #[test]
    fn no_data_or_bad_logits_leave_the_logits_as_they_are() {
        let identity = LogitMap::temperature(1.0);
        assert_eq!(fit_map(&[], &[], 3, Some(1.0)), identity);
        assert_eq!(fit_map(&[f32::NAN], &[true], 1, None), identity);
    }
}
