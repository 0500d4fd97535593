//! The same three kernels on burn's CPU backend (Flex), through bedside-cpu: burn composes the
//! RMS norm, the biased softmax and the gated GELU from five to nine element-wise operations,
//! each with a fresh buffer and, for `exp` and `tanh`, libm one element at a time; these are one
//! pass each, in place where the input is not shared, with vectorised `exp` and `tanh`. They
//! apply to f32 tensors on the CPU without autodiff (inference); training keeps burn's
//! operations, which the tests hold these to.

#![allow(
    clippy::result_large_err,
    reason = "a kernel that does not apply hands its input tensor back, unboxed, to burn's operations"
)]

use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchDevice, Flex};
use burn::prelude::*;
use burn::tensor::DType;

/// The contiguous CPU tensor behind `tensor` (sharing its buffer), when the kernels apply to it.
pub(super) fn on_cpu<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    if !matches!(tensor.device().as_dispatch(), DispatchDevice::Flex(_))
        || tensor.dtype() != DType::F32
    {
        return None;
    }
    let flex = tensor.clone().try_into_primitive::<Flex>().ok()?;
    Some(
        match flex.is_contiguous() && flex.layout().start_offset() == 0 {
            true => flex,
            false => flex.to_contiguous(),
        },
    )
}

/// `tensor` as a CPU tensor that holds its buffer alone unless the caller kept a clone, or
/// `tensor` itself where the kernels do not apply.
fn take<const D: usize>(tensor: Tensor<D>) -> Result<FlexTensor, Tensor<D>> {
    match on_cpu(&tensor) {
        Some(flex) => Ok(flex),
        None => Err(tensor),
    }
}

/// The values of a tensor from [`on_cpu`].
pub(super) fn values(tensor: &FlexTensor) -> Option<&[f32]> {
    tensor.as_slice::<f32>()
}

/// The values of `tensor` to write in place (copied first if another tensor shares them).
fn values_mut(tensor: &mut FlexTensor) -> &mut [f32] {
    let elements = tensor.layout().num_elements();
    let storage = tensor.storage_mut::<f32>();
    let len = storage.len().min(elements);
    &mut storage[..len]
}

/// A CPU tensor of `shape` holding `values`.
fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, shape)))
}

/// T5's RMS norm of `x`'s rows of `gamma.len()` elements; `None` off the CPU.
pub fn rms_norm<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    epsilon: f32,
) -> Option<Tensor<D>> {
    let (input, gamma) = (on_cpu(x)?, on_cpu(gamma)?);
    let (input, gamma) = (values(&input)?, values(&gamma)?);
    let mut out = vec![0.0; input.len()];
    bedside_cpu::rows::rms_norm_rows(input, gamma, epsilon, &mut out);
    Some(tensor(out, x.dims()))
}

/// `softmax(scores + bias)` over the last axis, `bias` broadcast over any of its first three axes
/// of size 1 (shapes checked by the caller); `scores` back where the kernels do not apply.
pub fn softmax_with_bias(scores: Tensor<4>, bias: &Tensor<4>) -> Result<Tensor<4>, Tensor<4>> {
    let [_, heads, queries, keys] = scores.dims();
    let [bias_batch, bias_heads, bias_queries, _] = bias.dims();
    let Some(bias) = on_cpu(bias) else {
        return Err(scores);
    };
    let Some(bias) =
        values(&bias).filter(|b| b.len() == bias_batch * bias_heads * bias_queries * keys)
    else {
        return Err(scores);
    };
    let mut out = take(scores)?;
    for (row, scores) in values_mut(&mut out).chunks_exact_mut(keys).enumerate() {
        let (q, h, b) = (row % queries, row / queries % heads, row / queries / heads);
        let bias_row =
            bedside_cpu::attention::bias_row([b, h, q], [bias_batch, bias_heads, bias_queries]);
        if let Some(bias) = bias.get(bias_row * keys..).and_then(|b| b.get(..keys)) {
            bedside_cpu::rows::softmax_with_bias(scores, bias);
        }
    }
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// `gelu_new(gate) · linear` (shapes equal, checked by the caller); `gate` back where the
/// kernels do not apply.
pub fn gated_gelu<const D: usize>(
    gate: Tensor<D>,
    linear: &Tensor<D>,
) -> Result<Tensor<D>, Tensor<D>> {
    let Some(linear) = on_cpu(linear) else {
        return Err(gate);
    };
    let Some(linear) = values(&linear) else {
        return Err(gate);
    };
    let mut out = take(gate)?;
    bedside_cpu::rows::gated_gelu(values_mut(&mut out), linear);
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// Scores (f32) of an attention above which it runs row by row without the score matrix: 8 MB,
/// about what a core's share of cache holds.
const SCORES_IN_CACHE: usize = 1 << 21;

/// `softmax(q·kᵀ + bias)·v` with the heads merged, `[batch, queries, heads · d_kv]`, from `q`
/// `[batch, heads, queries, d_kv]`, the keys transposed `[batch, heads, d_kv, keys]`, the values
/// `[batch, heads, keys, d_kv]` and a bias broadcast over any of its first three axes; `None`
/// off the CPU, for a score matrix small enough to stay in cache, or for shapes that do not fit,
/// where the caller composes it from burn's operations and [`super::softmax_with_bias`].
pub fn attention(
    q: &Tensor<4>,
    keys_t: &Tensor<4>,
    values: &Tensor<4>,
    bias: &Tensor<4>,
) -> Option<Tensor<3>> {
    let [batch, heads, queries, d_kv] = q.dims();
    let keys = keys_t.dims()[3];
    let [bias_batch, bias_heads, bias_queries, bias_keys] = bias.dims();
    // a score matrix that stays in cache is faster through two matrix products (gemm's register
    // tiles) and the in-place softmax; a larger one costs more to write and read back than the
    // row-at-a-time kernel's repeated reads of the keys (bench/NOTES.md, finding 14)
    if batch * heads * queries * keys < SCORES_IN_CACHE {
        return None;
    }
    let fit = keys_t.dims() == [batch, heads, d_kv, keys]
        && values.dims() == [batch, heads, keys, d_kv]
        && bias_keys == keys;
    if !fit {
        return None;
    }
    let shape = bedside_cpu::attention::AttentionShape {
        batch,
        heads,
        queries,
        keys,
        d_kv,
        bias_batch,
        bias_heads,
        bias_queries,
    };
    let (q, keys_t, values, bias) = (on_cpu(q)?, on_cpu(keys_t)?, on_cpu(values)?, on_cpu(bias)?);
    let (q, keys_t, values, bias) = (
        self::values(&q)?,
        self::values(&keys_t)?,
        self::values(&values)?,
        self::values(&bias)?,
    );
    if !shape.fits(q.len(), keys_t.len(), values.len(), bias.len(), q.len()) {
        return None;
    }
    let mut out = vec![0.0; q.len()];
    bedside_cpu::attention::attention(q, keys_t, values, bias, shape, &mut out);
    Some(tensor(out, [batch, queries, heads * d_kv]))
}
