//! Medication-recommendation metrics as GAMENet, SafeDrug and LEADER report them: per-admission
//! Jaccard, F1 and PRAUC (average precision) averaged over admissions, the DDI rate of the
//! predicted sets (interacting pairs over all pairs) and the mean number of drugs, with a
//! bootstrap interval on Jaccard.

use bedside::knowledge::interacts;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct MedicationMetrics {
    pub n: usize,
    pub jaccard: f64,
    /// 95% bootstrap interval of Jaccard (500 resamples of admissions).
    pub jaccard_ci95: (f64, f64),
    pub f1: f64,
    pub prauc: f64,
    pub ddi_rate: f64,
    pub mean_drugs: f64,
}

/// Per-admission scores of one row: Jaccard, F1, average precision (None without positives).
fn row_scores(probs: &[f32], truth: &[bool], threshold: f32) -> (f64, f64, Option<f64>) {
    let (mut both, mut predicted, mut actual) = (0usize, 0usize, 0usize);
    for (&p, &t) in probs.iter().zip(truth) {
        let y = p >= threshold;
        both += usize::from(y && t);
        predicted += usize::from(y);
        actual += usize::from(t);
    }
    let union = predicted + actual - both;
    let jaccard = if union == 0 {
        0.0
    } else {
        both as f64 / union as f64
    };
    let f1 = if predicted + actual == 0 {
        0.0
    } else {
        2.0 * both as f64 / (predicted + actual) as f64
    };
    let ap = (actual > 0).then(|| {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let (mut hits, mut sum) = (0usize, 0.0);
        for (rank, &i) in order.iter().enumerate() {
            if truth[i] {
                hits += 1;
                sum += hits as f64 / (rank + 1) as f64;
            }
        }
        sum / actual as f64
    });
    (jaccard, f1, ap)
}

/// `probs`, `targets`: row-major `[n, drugs]`; `drugs`: the ATC-3 code of each column; `rows`:
/// the rows to score.
pub fn evaluate(
    probs: &[f32],
    targets: &[bool],
    drugs: &[String],
    threshold: f32,
    rows: &[usize],
) -> MedicationMetrics {
    let m = drugs.len().max(1);
    let scores: Vec<(f64, f64, Option<f64>)> = rows
        .iter()
        .map(|&r| {
            row_scores(
                &probs[r * m..(r + 1) * m],
                &targets[r * m..(r + 1) * m],
                threshold,
            )
        })
        .collect();
    let n = scores.len();
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, count) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
        if count == 0 {
            f64::NAN
        } else {
            sum / count as f64
        }
    };
    let (mut pairs, mut ddi, mut drugs_total) = (0usize, 0usize, 0usize);
    for &r in rows {
        let chosen: Vec<&str> = (0..m)
            .filter(|&j| probs[r * m + j] >= threshold)
            .map(|j| drugs[j].as_str())
            .collect();
        drugs_total += chosen.len();
        for (i, a) in chosen.iter().enumerate() {
            for b in &chosen[i + 1..] {
                pairs += 1;
                ddi += usize::from(interacts(a, b));
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(0);
    let mut boot: Vec<f64> = if n == 0 {
        Vec::new()
    } else {
        (0..500)
            .map(|_| {
                (0..n)
                    .map(|_| scores[rng.random_range(0..n)].0)
                    .sum::<f64>()
                    / n as f64
            })
            .collect()
    };
    boot.sort_by(f64::total_cmp);
    let at = |q: f64| {
        boot.get(((boot.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    MedicationMetrics {
        n,
        jaccard: mean(&mut scores.iter().map(|s| s.0)),
        jaccard_ci95: (at(0.025), at(0.975)),
        f1: mean(&mut scores.iter().map(|s| s.1)),
        prauc: mean(&mut scores.iter().filter_map(|s| s.2)),
        ddi_rate: if pairs == 0 {
            0.0
        } else {
            ddi as f64 / pairs as f64
        },
        mean_drugs: if n == 0 {
            f64::NAN
        } else {
            drugs_total as f64 / n as f64
        },
    }
}

/// The threshold in 0.05..=0.95 that gives the best mean Jaccard on `rows`.
pub fn best_threshold(probs: &[f32], targets: &[bool], drugs: &[String], rows: &[usize]) -> f32 {
    (1..20)
        .map(|i| i as f32 * 0.05)
        .map(|t| (t, evaluate(probs, targets, drugs, t, rows).jaccard))
        .filter(|(_, j)| j.is_finite())
        .fold(
            (0.5, -1.0),
            |best, (t, j)| if j > best.1 { (t, j) } else { best },
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_scores() {
        let drugs: Vec<String> = ["B01A", "C03C", "N02B", "A02B"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // row 0: predicted {B01A, C03C}, true {B01A, N02B}: Jaccard 1/3, F1 1/2;
        // ranking B01A (hit), C03C, N02B (hit), A02B: AP = (1/1 + 2/3) / 2
        // row 1: predicted {A02B}, true {A02B}: all 1
        let probs = [0.9, 0.8, 0.3, 0.1, 0.1, 0.2, 0.3, 0.7];
        let truth = [true, false, true, false, false, false, false, true];
        let m = evaluate(&probs, &truth, &drugs, 0.5, &[0, 1]);
        assert!((m.jaccard - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-9, "{m:?}");
        assert!((m.f1 - 0.75).abs() < 1e-9);
        assert!((m.prauc - ((1.0 + 2.0 / 3.0) / 2.0 + 1.0) / 2.0).abs() < 1e-9);
        assert!((m.mean_drugs - 1.5).abs() < 1e-9);
        let expected_ddi = if interacts("B01A", "C03C") { 1.0 } else { 0.0 };
        assert_eq!(m.ddi_rate, expected_ddi);
        let (a, b) = m.jaccard_ci95;
        assert!(a <= m.jaccard && m.jaccard <= b);
    }

    #[test]
    fn an_interacting_pair_counts() {
        let (a, b) = bedside::knowledge::ddi_pairs()[0];
        let drugs = vec![a.to_string(), b.to_string()];
        let m = evaluate(&[0.9, 0.9], &[true, true], &drugs, 0.5, &[0]);
        assert_eq!(m.ddi_rate, 1.0);
        assert_eq!(m.jaccard, 1.0);
    }
}
