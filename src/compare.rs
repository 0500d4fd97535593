//! The one way bedside says how far two lists of numbers are apart. Every numeric check — the
//! engine's self-test, the parity and backend tests, training's comparisons — goes through it, so
//! that none folds a NaN away: `f32::max(0.0, NaN)` is `0.0`, so a largest difference folded from
//! zero with it lets a GPU that returned NaN pass. Here NaN, an infinity on either side, or two
//! lists of different lengths are the worst difference there is.

/// The largest absolute difference between `a` and `b`, element by element (`0.0` for two empty
/// lists); `f64::INFINITY` when an element of either is NaN or infinite, or the lengths differ.
pub fn max_abs_diff<A, B>(a: &[A], b: &[B]) -> f64
where
    A: Copy + Into<f64>,
    B: Copy + Into<f64>,
{
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut worst = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let (x, y): (f64, f64) = (x.into(), y.into());
        let d = (x - y).abs();
        if !d.is_finite() {
            return f64::INFINITY;
        }
        worst = worst.max(d); // nan-ok: d is finite
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::max_abs_diff;

    #[test]
    fn the_largest_difference() {
        assert_eq!(max_abs_diff(&[1.0f32, 2.0, 3.0], &[1.0f32, 2.5, 2.0]), 1.0);
        assert_eq!(max_abs_diff::<f64, f64>(&[], &[]), 0.0);
        // f32 against f64: the f32 is widened exactly
        assert_eq!(max_abs_diff(&[0.5f32], &[0.25f64]), 0.25);
    }

    #[test]
    fn nan_infinity_and_length_are_the_worst() {
        for (a, b) in [
            (vec![f32::NAN, 1.0], vec![0.0, 1.0]),
            (vec![0.0, 1.0], vec![0.0, f32::NAN]),
            (vec![f32::INFINITY], vec![f32::INFINITY]),
            (vec![0.0], vec![f32::NEG_INFINITY]),
            (vec![0.0, 0.0], vec![0.0]),
        ] {
            assert_eq!(max_abs_diff(&a, &b), f64::INFINITY, "{a:?} vs {b:?}");
        }
    }
}
