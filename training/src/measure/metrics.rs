//! Metrics of predicted probabilities: micro/macro F1 at a threshold and macro AUROC (the
//! MIMIC-III phenotyping benchmark's headline metric) with a bootstrap interval, and the ROC
//! curve and calibration bins that the reports plot.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub micro_f1: f64,
    pub macro_f1: f64,
    /// Mean AUROC over labels with both classes present.
    pub macro_auroc: f64,
    /// 95% bootstrap interval of macro AUROC (200 resamples).
    pub macro_auroc_ci95: (f64, f64),
    /// Calibration over every (admission, label) probability: expected calibration error (10
    /// equal-width bins) and Brier score.
    pub ece: f64,
    pub brier: f64,
}

/// The 95% percentile-bootstrap interval of `statistic` over `n` units, `resamples` seeded
/// resamples: `statistic` gets the resampled unit indices; non-finite values are left out.
pub fn bootstrap_ci95(
    n: usize,
    resamples: usize,
    seed: u64,
    statistic: impl Fn(&[usize]) -> f64,
) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f64> = (0..resamples)
        .map(|_| statistic(&(0..n).map(|_| rng.random_range(0..n)).collect::<Vec<_>>()))
        .filter(|v| v.is_finite())
        .collect();
    percentile_ci95(values)
}

/// The 2.5th and 97.5th percentiles of bootstrap `values` (nearest rank; NaN for none).
pub fn percentile_ci95(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        values
            .get(((values.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.025), at(0.975))
}

/// `probs`, `targets`: row-major `[n, labels]`.
pub fn evaluate(probs: &[f32], targets: &[bool], labels: usize, threshold: f32) -> Metrics {
    let n = targets.len() / labels;
    let rows: Vec<usize> = (0..n).collect();
    let (micro_f1, macro_f1) = f1(probs, targets, labels, threshold);
    let macro_auroc = macro_auroc_of(probs, targets, labels, &rows);
    let pairs: Vec<(f32, bool)> = probs.iter().copied().zip(targets.iter().copied()).collect();
    let mut rng = StdRng::seed_from_u64(0);
    let mut boot: Vec<f64> = (0..200)
        .map(|_| {
            let sample: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            macro_auroc_of(probs, targets, labels, &sample)
        })
        .filter(|v| v.is_finite())
        .collect();
    boot.sort_by(f64::total_cmp);
    let at = |q: f64| {
        boot.get(((boot.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Metrics {
        n,
        micro_f1,
        macro_f1,
        macro_auroc,
        macro_auroc_ci95: (at(0.025), at(0.975)),
        ece: expected_calibration_error(&pairs, 10),
        brier: brier(&pairs),
    }
}

/// Expected calibration error: |mean predicted − observed rate| per equal-width bin of the
/// probabilities, weighted by the bin's share of the predictions.
pub fn expected_calibration_error(pairs: &[(f32, bool)], bins: usize) -> f64 {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins]; // n, Σp, positives
    for &(p, y) in pairs {
        let bin = ((f64::from(p) * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += f64::from(p);
        sums[bin].2 += usize::from(y);
    }
    let total = pairs.len().max(1) as f64;
    sums.iter()
        .filter(|b| b.0 > 0)
        .map(|&(n, p, y)| (p / n as f64 - y as f64 / n as f64).abs() * n as f64 / total)
        .sum()
}

/// The PhysioNet/CinC 2012 challenge's Event 1 score, min(sensitivity, positive predictive
/// value), when the `rate` share of stays with the highest risk is called positive (`rate`: the
/// training set's death rate, so that no test label picks the threshold; `experiments/baselines.py`
/// applies the same rule to the baselines).
pub fn event1(pairs: &[(f32, bool)], rate: f64) -> f64 {
    let mut sorted: Vec<f32> = pairs.iter().map(|p| p.0).collect();
    sorted.sort_by(f32::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    // numpy's quantile (linear interpolation) at 1 - rate
    let q = (1.0 - rate).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (q.floor() as usize, q.ceil() as usize);
    let threshold =
        f64::from(sorted[low]) + (q - low as f64) * f64::from(sorted[high] - sorted[low]);
    let called = |p: &(f32, bool)| f64::from(p.0) >= threshold;
    let tp = pairs.iter().filter(|p| called(p) && p.1).count() as f64;
    let positives = pairs.iter().filter(|p| p.1).count().max(1) as f64;
    let calls = pairs.iter().filter(|p| called(p)).count().max(1) as f64;
    (tp / positives).min(tp / calls)
}

/// The Hosmer–Lemeshow H statistic over `groups` equal-size groups of predicted risk (the 2012
/// challenge's Event 2): Σ (O − E)² / (E (1 − E/n)); lower is better calibrated.
pub fn hosmer_lemeshow(pairs: &[(f32, bool)], groups: usize) -> f64 {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (n, groups) = (sorted.len(), groups.max(1));
    // numpy's array_split: the first n % groups groups hold one more (as experiments/baselines.py)
    let start = |g: usize| g * (n / groups) + g.min(n % groups);
    (0..groups)
        .map(|g| &sorted[start(g)..start(g + 1)])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let size = part.len() as f64;
            let observed = part.iter().filter(|p| p.1).count() as f64;
            let expected: f64 = part.iter().map(|p| f64::from(p.0)).sum();
            if expected > 0.0 && expected < size {
                (observed - expected).powi(2) / (expected * (1.0 - expected / size))
            } else {
                0.0
            }
        })
        .sum()
}

/// Mean squared difference between the probability and the outcome (0 or 1).
pub fn brier(pairs: &[(f32, bool)]) -> f64 {
    let total: f64 = pairs
        .iter()
        .map(|&(p, y)| (f64::from(p) - f64::from(u8::from(y))).powi(2))
        .sum();
    total / pairs.len().max(1) as f64
}

pub fn f1(probs: &[f32], targets: &[bool], labels: usize, threshold: f32) -> (f64, f64) {
    let mut per_label = vec![(0usize, 0usize, 0usize); labels]; // tp, fp, fn
    for (i, (&p, &t)) in probs.iter().zip(targets).enumerate() {
        let entry = &mut per_label[i % labels];
        match (p >= threshold, t) {
            (true, true) => entry.0 += 1,
            (true, false) => entry.1 += 1,
            (false, true) => entry.2 += 1,
            _ => {}
        }
    }
    let score = |(tp, fp, fn_): (usize, usize, usize)| {
        if tp + fp + fn_ == 0 {
            f64::NAN
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        }
    };
    let total = per_label
        .iter()
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let macros: Vec<f64> = per_label
        .iter()
        .map(|&c| score(c))
        .filter(|v| v.is_finite())
        .collect();
    (
        score(total),
        macros.iter().sum::<f64>() / macros.len().max(1) as f64,
    )
}

fn macro_auroc_of(probs: &[f32], targets: &[bool], labels: usize, rows: &[usize]) -> f64 {
    let aucs: Vec<f64> = (0..labels)
        .filter_map(|l| {
            let pairs: Vec<(f32, bool)> = rows
                .iter()
                .map(|&r| (probs[r * labels + l], targets[r * labels + l]))
                .collect();
            auroc(&pairs)
        })
        .collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// Mann–Whitney AUROC with ties counted as one half; `None` when one class is absent.
pub fn auroc(pairs: &[(f32, bool)]) -> Option<f64> {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|p| p.1).count();
    let negatives = sorted.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let mid_rank = (i + j + 1) as f64 / 2.0; // 1-based mean rank of the tie group
        rank_sum += mid_rank * sorted[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives * negatives) as f64)
}

/// Mean predicted probability against the observed rate, in one bin of the predictions.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationBin {
    pub n: usize,
    pub mean_predicted: f64,
    pub observed: f64,
}

/// Equal-count bins of the predictions, lowest risk first.
pub fn calibration(pairs: &[(f32, bool)], bins: usize) -> Vec<CalibrationBin> {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let size = sorted.len().div_ceil(bins.max(1)).max(1);
    sorted
        .chunks(size)
        .map(|bin| CalibrationBin {
            n: bin.len(),
            mean_predicted: bin.iter().map(|p| p.0 as f64).sum::<f64>() / bin.len() as f64,
            observed: bin.iter().filter(|p| p.1).count() as f64 / bin.len() as f64,
        })
        .collect()
}

/// The ROC curve's corners (one per distinct score), thinned to about `points` points.
pub fn roc_curve(pairs: &[(f32, bool)], points: usize) -> Vec<(f64, f64)> {
    let positives = pairs.iter().filter(|p| p.1).count().max(1) as f64;
    let negatives = pairs.iter().filter(|p| !p.1).count().max(1) as f64;
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut curve = vec![(0.0, 0.0)];
    let (mut tp, mut fp, mut i) = (0.0, 0.0, 0);
    while i < sorted.len() {
        let score = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == score {
            if sorted[i].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        curve.push((fp / negatives, tp / positives));
    }
    let stride = curve.len().div_ceil(points.max(2)).max(1);
    let last = curve.len() - 1;
    curve
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % stride == 0 || *k == last)
        .map(|(_, p)| p)
        .collect()
}

/// A share with its 95% bootstrap interval and its denominator.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub value: f64,
    pub ci95: (f64, f64),
    pub of: usize,
}

impl Share {
    /// `part(row)` gives each row's `[numerator, denominator]`; the share is micro-averaged
    /// (NaN without a denominator), its interval from 200 resamples of the rows.
    pub fn of<T>(rows: &[T], part: impl Fn(&T) -> [usize; 2]) -> Self {
        let ratio = |rows: &mut dyn Iterator<Item = &T>| {
            let (num, den) = rows
                .map(&part)
                .fold((0, 0), |a, b| (a.0 + b[0], a.1 + b[1]));
            if den == 0 {
                f64::NAN
            } else {
                num as f64 / den as f64
            }
        };
        let ci95 = bootstrap_ci95(rows.len(), 200, 1, |sample| {
            ratio(&mut sample.iter().map(|&r| &rows[r]))
        });
        Self {
            value: ratio(&mut rows.iter()),
            ci95,
            of: rows.iter().map(|r| part(r)[1]).sum(),
        }
    }

    /// "0.912 of 340 (0.880–0.940)", or "— (none)" without a denominator.
    pub fn cell(&self) -> String {
        if self.of == 0 {
            "— (none)".into()
        } else {
            format!(
                "{:.3} of {} ({:.3}–{:.3})",
                self.value, self.of, self.ci95.0, self.ci95.1
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_known_values() {
        assert_eq!(auroc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(auroc(&[(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(auroc(&[(0.5, false), (0.5, true)]), Some(0.5));
        // 3 positives, 2 negatives: pairs won 5 of 6 → 5/6
        let a = auroc(&[
            (0.1, false),
            (0.4, true),
            (0.5, false),
            (0.8, true),
            (0.7, true),
        ])
        .unwrap();
        assert!((a - 5.0 / 6.0).abs() < 1e-12, "{a}");
        assert_eq!(auroc(&[(0.1, true)]), None);
    }

    #[test]
    fn f1_counts() {
        // labels=2; row0: (1,0) vs truth (1,1); row1: (1,0) vs (0,0)
        let (micro, _) = f1(&[0.9, 0.1, 0.8, 0.2], &[true, true, false, false], 2, 0.5);
        // tp=1, fp=1, fn=1 → 2/(2+1+1)
        assert!((micro - 0.5).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_and_brier_known_values() {
        // bin [0.2, 0.3): predicted 0.25, observed 1/2; bin [0.9, 1]: predicted 0.95, observed 1
        let pairs = [(0.25, true), (0.25, false), (0.95, true), (0.95, true)];
        let ece = expected_calibration_error(&pairs, 10);
        assert!((ece - (0.5 * 0.25 + 0.5 * 0.05)).abs() < 1e-6, "{ece}");
        // (0.75² + 0.25² + 0.05² + 0.05²) / 4
        let b = brier(&pairs);
        assert!(
            (b - (0.5625 + 0.0625 + 0.0025 + 0.0025) / 4.0).abs() < 1e-6,
            "{b}"
        );
        assert_eq!(
            expected_calibration_error(&[(1.0, true), (0.0, false)], 10),
            0.0
        );
    }

    #[test]
    fn event1_and_hosmer_lemeshow_known_values() {
        // 10 stays, 3 deaths; the top 30 % (3 stays) called: 2 of them died → Se 2/3, +P 2/3
        let pairs: Vec<(f32, bool)> = [
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.6, false),
            (0.5, true),
            (0.4, false),
            (0.3, false),
            (0.2, false),
            (0.1, false),
            (0.05, false),
        ]
        .to_vec();
        assert!((event1(&pairs, 0.3) - 2.0 / 3.0).abs() < 1e-9);
        // two groups of 5: low risks 0.05..0.4 (E 1.05, O 0), high 0.5..0.9 (E 3.5, O 3)
        let h = hosmer_lemeshow(&pairs, 2);
        let want = 1.05f64.powi(2) / (1.05 * (1.0 - 1.05 / 5.0))
            + 0.5f64.powi(2) / (3.5 * (1.0 - 3.5 / 5.0));
        assert!((h - want).abs() < 1e-5, "{h} vs {want}");
        // perfectly calibrated groups: H = 0
        let even: Vec<(f32, bool)> = (0..4).map(|i| (0.5, i % 2 == 0)).collect();
        assert!(hosmer_lemeshow(&even, 2).abs() < 1e-12);
    }

    #[test]
    fn roc_curve_runs_from_origin_to_corner() {
        let pairs = [(0.9, true), (0.8, false), (0.7, true), (0.1, false)];
        let curve = roc_curve(&pairs, 200);
        assert_eq!(
            curve,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn calibration_bins_are_equal_count_and_ordered() {
        let pairs: Vec<(f32, bool)> = (0..20).map(|i| (i as f32 / 20.0, i >= 15)).collect();
        let bins = calibration(&pairs, 4);
        assert_eq!(
            bins.iter().map(|b| b.n).collect::<Vec<_>>(),
            vec![5, 5, 5, 5]
        );
        assert_eq!(
            bins.iter().map(|b| b.observed).collect::<Vec<_>>(),
            vec![0.0, 0.0, 0.0, 1.0]
        );
        assert!(
            bins.windows(2)
                .all(|w| w[0].mean_predicted < w[1].mean_predicted)
        );
    }
}
