//! Temperature scaling (Guo et al., 2017) of the phenotype head on the validation split: one
//! number T that divides every logit, chosen to minimise the binary cross-entropy, so that a
//! probability of 0.8 is right about 80 % of the time. T > 0 keeps every logit's sign, so the
//! diagnoses at threshold 0.5 (the bundles' threshold) and every AUROC are unchanged; only the
//! probabilities move.
//! `distill` fits it at the end of a run (`calibration.json`), `export` writes it into the
//! manifest, and the library divides by it (`Manifest::temperature`). Admissions without notes
//! (labs alone, as most real feeds are) get a temperature of their own where a run validates on
//! some (`Manifest::temperature_without_notes`): one number per group, as few as the data allow.

use serde::{Deserialize, Serialize};

/// The search range of T (the manifest's bounds are wider).
const LOWEST: f64 = 0.1;
const HIGHEST: f64 = 10.0;

/// What `distill` writes to `calibration.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub temperature: f64,
    /// Validation (admission, label) pairs it was fitted on.
    pub pairs: usize,
    /// Expected calibration error (10 equal-width bins) and Brier score, before and after.
    pub ece_before: f64,
    pub ece_after: f64,
    pub brier_before: f64,
    pub brier_after: f64,
    /// The validation admissions without notes fitted apart (`temperature_without_notes` in the
    /// manifest), where a run has any: they are the real ones in the committed bundle, whose
    /// labs alone must carry the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_notes: Option<Box<Calibration>>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean binary cross-entropy of `logits / t`, computed stably from the logits.
fn loss(logits: &[f32], targets: &[bool], t: f64) -> f64 {
    let total: f64 = logits
        .iter()
        .zip(targets)
        .map(|(&z, &y)| {
            let z = f64::from(z) / t;
            // -log σ(z) for y, -log(1-σ(z)) = -log σ(-z) otherwise; log σ(z) = -softplus(-z)
            let z = if y { z } else { -z };
            (-z).max(0.0) + (-z.abs()).exp().ln_1p()
        })
        .sum();
    total / logits.len().max(1) as f64
}

/// The temperature in [0.1, 10] that minimises the cross-entropy of `logits` against `targets`
/// (golden-section search on log T; the loss is unimodal there). No data: 1.
pub fn fit_temperature(logits: &[f32], targets: &[bool]) -> f64 {
    if logits.is_empty() || logits.iter().any(|z| !z.is_finite()) {
        return 1.0;
    }
    let f = |log_t: f64| loss(logits, targets, log_t.exp());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (LOWEST.ln(), HIGHEST.ln());
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - ratio * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + ratio * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

/// Fits T and measures calibration before and after.
pub fn calibrate(logits: &[f32], targets: &[bool]) -> Calibration {
    let temperature = fit_temperature(logits, targets);
    let pairs = |t: f64| -> Vec<(f32, bool)> {
        logits
            .iter()
            .zip(targets)
            .map(|(&z, &y)| (sigmoid(f64::from(z) / t) as f32, y))
            .collect()
    };
    let (before, after) = (pairs(1.0), pairs(temperature));
    Calibration {
        temperature,
        pairs: logits.len(),
        ece_before: crate::metrics::expected_calibration_error(&before, 10),
        ece_after: crate::metrics::expected_calibration_error(&after, 10),
        brier_before: crate::metrics::brier(&before),
        brier_after: crate::metrics::brier(&after),
        without_notes: None,
    }
}

/// One temperature for the rows with notes (all rows where none has notes) and, where some rows
/// have none, one for those (`without_notes`). `logits` and `targets` are row-major, as many
/// values per row as `logits.len() / has_notes.len()`.
pub fn calibrate_by_notes(logits: &[f32], targets: &[bool], has_notes: &[bool]) -> Calibration {
    let width = logits.len() / has_notes.len().max(1);
    let group = |notes: bool| -> (Vec<f32>, Vec<bool>) {
        let rows = (0..has_notes.len()).filter(|&r| has_notes[r] == notes);
        rows.flat_map(|r| (r * width..(r + 1) * width).map(|k| (logits[k], targets[k])))
            .unzip()
    };
    let (with_logits, with_targets) = group(true);
    let mut calibration = match with_logits.is_empty() {
        true => calibrate(logits, targets),
        false => calibrate(&with_logits, &with_targets),
    };
    let (without_logits, without_targets) = group(false);
    if !without_logits.is_empty() && !with_logits.is_empty() {
        calibration.without_notes = Some(Box::new(calibrate(&without_logits, &without_targets)));
    }
    calibration
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Labels drawn from σ(z) with z spread widely, shown to the fit as 3z: it must find T ≈ 3,
    /// and calibration must get better.
    #[test]
    fn finds_the_temperature_that_was_applied() {
        let mut rng = StdRng::seed_from_u64(11);
        let (mut logits, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let z: f64 = rng.random_range(-4.0..4.0);
            targets.push(rng.random::<f64>() < sigmoid(z));
            logits.push((3.0 * z) as f32);
        }
        let c = calibrate(&logits, &targets);
        assert!((c.temperature - 3.0).abs() < 0.15, "{c:?}");
        assert!(c.ece_after < c.ece_before / 3.0, "{c:?}");
        assert!(c.brier_after < c.brier_before, "{c:?}");
        // calibrated logits stay put
        let calibrated: Vec<f32> = logits.iter().map(|z| z / 3.0).collect();
        let t = fit_temperature(&calibrated, &targets);
        assert!((t - 1.0).abs() < 0.05, "{t}");
    }

    /// Rows with notes shown at 3z, rows without at 0.5z: each group gets its own temperature.
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
                logits.push((if with { 3.0 } else { 0.5 } * z) as f32);
            }
        }
        let c = calibrate_by_notes(&logits, &targets, &notes);
        assert!((c.temperature - 3.0).abs() < 0.2, "{c:?}");
        let without = c.without_notes.expect("a group without notes");
        assert!((without.temperature - 0.5).abs() < 0.05, "{without:?}");
        assert_eq!(without.pairs, 2 * notes.iter().filter(|&&n| !n).count());
        // one group only: one temperature
        let all = calibrate_by_notes(&logits, &targets, &vec![false; 8_000]);
        assert!(all.without_notes.is_none());
    }

    #[test]
    fn no_data_or_bad_logits_leave_it_at_one() {
        assert_eq!(fit_temperature(&[], &[]), 1.0);
        assert_eq!(fit_temperature(&[f32::NAN], &[true]), 1.0);
    }
}
