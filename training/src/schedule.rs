//! The learning-rate schedule every trainer here uses: linear warm-up over `warmup` steps, then
//! cosine decay to 5 % of the peak at `total` (one definition for distill, medication
//! recommendation and mortality).

/// The learning rate at `step` of `total`, `warmup` of them warming up from `peak / warmup`.
pub fn warmup_cosine(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()))
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
}
