//! `exp`, `tanh` and `erf` that vectorise in loops over slices. libm evaluates one element at a
//! time through branches and, in wasm, through compiler-builtins' software routines: profiles of
//! the model found them 12–17% of a diagnosis. These are written without branches or calls — range
//! reduction by a rounding constant, polynomials, selects — so that LLVM vectorises a loop over a
//! slice (SIMD128 in wasm, SSE/AVX natively).
//!
//! Accuracy, held by the tests against libm: within 1e-6 relative (about 8 ulp; the polynomials
//! are Cephes' single-precision ones, a few ulp) over the ranges the model evaluates. `exp`
//! returns 0 below −87.34 (where libm's results are subnormal) and saturates at `exp(88.03)`
//! between 88.03 and 88.72 (above, +∞); NaN stays NaN.
#![allow(
    clippy::excessive_precision,
    reason = "the polynomials' coefficients as Cephes publishes them"
)]

/// 1.5 · 2²³: adding it to a float of magnitude below 2²² rounds that float to an integer, which
/// is then in the low bits of the sum's mantissa.
const ROUNDER: f32 = 12_582_912.0;
const LOG2_E: f32 = core::f32::consts::LOG2_E;
/// ln 2 in two parts (Cody–Waite): `n · LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// −126 · ln 2: below it 2ⁿ is subnormal.
const EXP_MIN: f32 = -87.336_55;
/// 127 · ln 2: above it 2ⁿ overflows.
const EXP_MAX: f32 = 88.029_69;
/// ln(f32::MAX): above it libm's `exp` is +∞.
const EXP_OVERFLOW: f32 = 88.722_84;

/// `eˣ` for one element, branch-free (see the module's accuracy note).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = clamped * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    // 2ⁿ built from the integer in the low mantissa bits of `shifted`
    let exponent = (shifted.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32) + 127;
    let scale = f32::from_bits((exponent as u32) << 23);
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let y = (p * r * r + r + 1.0) * scale;
    if x < EXP_MIN {
        0.0
    } else if x > EXP_OVERFLOW {
        f32::INFINITY
    } else {
        y
    }
}

/// `tanh(x)` for one element: an odd polynomial below |x| = 0.625, `1 − 2/(e^{2|x|} + 1)` above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_908_9e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328_2e-1;
    let small = p * z * x + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// `erf(x)` for one element: an odd polynomial below |x| = 1 (Cephes), Abramowitz and Stegun's
/// 7.1.26 above (absolute error 1.5e-7 where erf is above 0.84).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = 7.853_861_4e-5;
    let p = p * z - 8.010_193_6e-4;
    let p = p * z + 5.188_327_7e-3;
    let p = p * z - 2.685_381_2e-2;
    let p = p * z + 1.128_358_5e-1;
    let p = p * z - 3.761_262_6e-1;
    let p = p * z + core::f32::consts::FRAC_2_SQRT_PI;
    let small = p * x;
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let q = 1.061_405_4;
    let q = q * t - 1.453_152;
    let q = q * t + 1.421_413_8;
    let q = q * t - 0.284_496_74;
    let q = q * t + 0.254_829_6;
    let large = (1.0 - q * t * exp(-z)).copysign(x);
    if a < 1.0 { small } else { large }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` points evenly over `[from, to]`.
    fn span(from: f32, to: f32, count: usize) -> impl Iterator<Item = f32> {
        (0..count).map(move |i| from + (to - from) * i as f32 / (count - 1) as f32)
    }

    /// The largest relative error of `ours` against `reference` (libm's, in f64) over `xs`.
    fn worst(
        xs: impl Iterator<Item = f32>,
        ours: fn(f32) -> f32,
        reference: fn(f64) -> f64,
    ) -> (f32, f64) {
        xs.map(|x| {
            let expected = reference(x as f64);
            let error =
                (ours(x) as f64 - expected).abs() / expected.abs().max(f32::MIN_POSITIVE as f64);
            (x, error)
        })
        .fold((0.0, 0.0), |a, b| if b.1 > a.1 { b } else { a })
    }

    fn assert_within(name: &str, (x, error): (f32, f64), tolerance: f64) {
        assert!(
            error <= tolerance,
            "{name}({x}) is {error:e} relative from libm"
        );
    }

    #[test]
    fn exp_is_within_1e6_of_libm() {
        // softmax arguments (scores minus their maximum) and tanh's 2|x|
        assert_within(
            "exp",
            worst(span(-87.3, 88.0, 400_001), exp, f64::exp),
            1e-6,
        );
        assert_within("exp", worst(span(-1.0, 1.0, 100_001), exp, f64::exp), 1e-6);
    }

    #[test]
    fn exp_ends_as_softmax_needs() {
        assert_eq!(exp(-1e9), 0.0); // a masked position weighs exactly nothing
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_1e6_of_libm() {
        // GELU's argument: √(2/π)·(x + 0.044715x³) over activations of ±10 and beyond
        assert_within(
            "tanh",
            worst(span(-12.0, 12.0, 400_001), tanh, f64::tanh),
            1e-6,
        );
        assert_within(
            "tanh",
            worst(span(-1e-3, 1e-3, 10_001), tanh, f64::tanh),
            1e-6,
        );
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn erf_is_within_1e6_of_libm() {
        // Rust's std has no erf: the libm crate's (a port of musl's) is the reference
        assert_within("erf", worst(span(-6.0, 6.0, 400_001), erf, libm::erf), 1e-6);
        assert_within(
            "erf",
            worst(span(-1e-3, 1e-3, 10_001), erf, libm::erf),
            1e-6,
        );
        assert_eq!(erf(10.0), 1.0);
        assert!(erf(f32::NAN).is_nan());
    }
}
