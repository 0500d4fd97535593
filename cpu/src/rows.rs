//! The three chains of small operations that fill a T5 layer, each as one pass over memory:
//! T5's RMS norm, the attention softmax with its additive bias, and the gated GELU of T5 v1.1.
//! Composed from tensor operations they take six, six and nine kernels, each with a fresh output
//! buffer; bedside's GPU kernels (`src/kernels.rs`) are the same three, and these follow the same
//! arithmetic so that every backend gives the same numbers.

use crate::math;

/// √(2/π), the scale of `gelu_new`'s argument.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// Partial sums kept side by side in reductions: a float sum in one accumulator is a chain of
/// dependent additions that the compiler may not reorder into SIMD lanes; eight independent
/// ones it turns into two SIMD128 (or one AVX) vector.
const LANES: usize = 8;

/// `Σ f(x)` over `xs`, in [`LANES`] partial sums.
#[inline(always)]
fn sum_of(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|v| f(*v)).sum();
    for chunk in chunks {
        for l in 0..LANES {
            lanes[l] += f(chunk[l]);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// The largest of `xs` (−∞ for none), in [`LANES`] partial maxima. NaN is passed over here;
/// it still reaches a softmax's output through `exp(NaN − max)`.
#[inline(always)]
fn largest(xs: &[f32]) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| larger(m, *v));
    for chunk in chunks {
        for l in 0..LANES {
            lanes[l] = larger(lanes[l], chunk[l]);
        }
    }
    lanes.iter().fold(rest, |m, v| larger(m, *v))
}

/// T5's RMS norm of one row: `x / √(mean(x²) + ε) · γ`, into `out`.
pub fn rms_norm(x: &[f32], gamma: &[f32], epsilon: f32, out: &mut [f32]) {
    let sum = sum_of(x, |v| v * v);
    let scale = 1.0 / (sum / x.len().max(1) as f32 + epsilon).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(gamma) {
        *o = v * scale * g;
    }
}

/// [`rms_norm`] of every row of `width` elements of `x`.
pub fn rms_norm_rows(x: &[f32], gamma: &[f32], epsilon: f32, out: &mut [f32]) {
    let width = gamma.len().max(1);
    crate::for_each_chunk(out, width, |row, out, _| {
        if let Some(x) = x.get(row * width..(row + 1) * width) {
            rms_norm(x, gamma, epsilon, out);
        }
    });
}

/// `row = softmax(row + bias)` in place; `bias` as long as `row`.
pub fn softmax_with_bias(row: &mut [f32], bias: &[f32]) {
    row.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
    softmax(row);
}

/// `row = softmax(row)` in place. A row of −∞ (nothing allowed) stays as it is, where burn's
/// softmax gives NaN: the model's masks are −1e9, which never make one.
pub fn softmax(row: &mut [f32]) {
    let max = largest(row);
    if max == f32::NEG_INFINITY {
        return;
    }
    row.iter_mut().for_each(|s| *s = math::exp(*s - max));
    let inverse = 1.0 / sum_of(row, |v| v);
    row.iter_mut().for_each(|s| *s *= inverse);
}

/// `gate = gelu_new(gate) · linear` in place: the hidden layer of the gated feed-forward network,
/// with transformers' `gelu_new`, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gated_gelu(gate: &mut [f32], linear: &[f32]) {
    /// Elements per task on rayon's threads.
    const CHUNK: usize = 4096;
    crate::for_each_chunk(gate, CHUNK, |chunk, gate, _| {
        if let Some(linear) = linear.get(chunk * CHUNK..) {
            gated_gelu_chunk(gate, linear);
        }
    });
}

fn gated_gelu_chunk(gate: &mut [f32], linear: &[f32]) {
    for (g, l) in gate.iter_mut().zip(linear) {
        let x = *g;
        let inner = x * (x * x * (0.044_715 * SQRT_2_OVER_PI) + SQRT_2_OVER_PI);
        *g = x * (math::tanh(inner) + 1.0) * 0.5 * l;
    }
}

/// `x = gelu(x)` in place, the exact (erf) GELU: `0.5·x·(1 + erf(x/√2))`.
pub fn gelu(x: &mut [f32]) {
    x.iter_mut()
        .for_each(|v| *v = 0.5 * *v * (1.0 + math::erf(*v * core::f32::consts::FRAC_1_SQRT_2)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32], tolerance: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * y.abs().max(1.0),
                "[{i}]: {x} against {y}"
            );
        }
    }

    #[test]
    fn rows_match_their_definitions() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let gamma: Vec<f32> = (0..6).map(|i| 0.5 + i as f32 * 0.1).collect();
        let mut out = vec![0.0; 12];
        rms_norm_rows(&x, &gamma, 1e-6, &mut out);
        let expected: Vec<f32> = x
            .chunks(6)
            .flat_map(|row| {
                let rms =
                    (row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 6.0 + 1e-6).sqrt();
                row.iter()
                    .zip(&gamma)
                    .map(move |(v, g)| (*v as f64 / rms * *g as f64) as f32)
            })
            .collect();
        close(&out, &expected, 1e-6);

        let mut row = x.clone();
        let bias: Vec<f32> = (0..12)
            .map(|i| if i == 3 { -1e9 } else { i as f32 * 0.1 })
            .collect();
        softmax_with_bias(&mut row, &bias);
        let shifted: Vec<f64> = x.iter().zip(&bias).map(|(a, b)| (*a + *b) as f64).collect();
        let total: f64 = shifted.iter().map(|v| v.exp()).sum();
        let expected: Vec<f32> = shifted.iter().map(|v| (v.exp() / total) as f32).collect();
        close(&row, &expected, 1e-6);
        assert_eq!(row[3], 0.0);

        let mut gate = x.clone();
        let linear: Vec<f32> = x.iter().rev().copied().collect();
        gated_gelu(&mut gate, &linear);
        let expected: Vec<f32> = x
            .iter()
            .zip(&linear)
            .map(|(v, l)| {
                let v = *v as f64;
                let c = (2.0 / core::f64::consts::PI).sqrt();
                (0.5 * v * (1.0 + (c * (v + 0.044715 * v.powi(3))).tanh()) * *l as f64) as f32
            })
            .collect();
        close(&gate, &expected, 1e-6);

        let mut exact = x.clone();
        gelu(&mut exact);
        let expected: Vec<f32> = x
            .iter()
            .map(|v| (0.5 * *v as f64 * (1.0 + libm::erf(*v as f64 / 2f64.sqrt()))) as f32)
            .collect();
        close(&exact, &expected, 1e-6);
    }

    #[test]
    fn a_row_with_nothing_allowed_is_left_alone() {
        let mut row = [f32::NEG_INFINITY; 4];
        softmax(&mut row);
        assert!(row.iter().all(|v| *v == f32::NEG_INFINITY));
    }
}
