//! bedside's CPU kernels: plain `f32` slices in and out, no tensors and no backend, so that the
//! hot loops of the model on the CPU are one small crate built for speed (`opt-level = 3` in the
//! size-optimised wasm build, where LLVM turns them into SIMD128) and could move into a general
//! CPU backend (burn-flex) as they are.
//!
//! - [`math`]: `exp`, `tanh` and `erf` without branches or libm calls, so that a loop over a slice
//!   is vectorised; within 1e-6 relative of libm over the ranges the model uses (tested).
//! - [`rows`]: T5's RMS norm, the attention softmax with an additive bias, and the gated GELU,
//!   each one pass over memory where composing tensor operations takes five to nine.
//! - [`linear`]: a linear layer's weights packed once into panels, for the matrix-vector product
//!   every linear layer of a decoding step is.
//! - [`t5_step`]: one T5 decoder step of one sequence on those kernels, with its key/value cache
//!   preallocated and written in place: a step allocates nothing.

pub mod linear;
pub mod math;
pub mod rows;
pub mod t5_step;

pub use linear::PackedLinear;
pub use t5_step::{DecoderLayerWeights, DecoderState, DecoderWeights, StepError};
