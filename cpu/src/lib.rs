//! bedside's CPU kernels: plain `f32` slices in and out, no tensors and no backend, so that the
//! hot loops of the model on the CPU are one small crate built for speed (`opt-level = 3` in the
//! size-optimised wasm build, where LLVM turns them into SIMD128) and could move into a general
//! CPU backend (burn-flex) as they are.
//!
//! - [`math`]: `exp`, `tanh` and `erf` without branches or libm calls, so that a loop over a slice
//!   is vectorised; within 1e-6 relative of libm over the ranges the model uses (tested).
//! - [`rows`]: T5's RMS norm, the attention softmax with an additive bias, and the gated GELU,
//!   each one pass over memory where composing tensor operations takes five to nine.
//! - [`attention`]: T5's multi-head attention without the score matrix, one query row at a time.
//! - [`linear`]: a linear layer's weights packed once into panels, for the matrix-vector product
//!   every linear layer of a decoding step is.
//! - [`t5_step`]: one T5 decoder step of one sequence on those kernels, with its key/value cache
//!   preallocated and written in place: a step allocates nothing.

pub mod attention;
pub mod linear;
pub mod math;
pub mod rows;
pub mod t5_step;

pub use linear::PackedLinear;

/// `f(index, chunk, scratch)` for each `width`-element chunk of `out`, on rayon's threads with
/// the `rayon` feature (each thread with its own `scratch`), else in order.
pub(crate) fn for_each_chunk<F>(out: &mut [f32], width: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync + Send,
{
    let width = width.max(1);
    #[cfg(feature = "rayon")]
    if out.len() > width {
        use rayon::prelude::*;
        out.par_chunks_mut(width)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (i, chunk)| f(i, chunk, scratch));
        return;
    }
    let mut scratch = Vec::new();
    for (i, chunk) in out.chunks_mut(width).enumerate() {
        f(i, chunk, &mut scratch);
    }
}
pub use t5_step::{DecoderLayerWeights, DecoderState, DecoderWeights, StepError};
