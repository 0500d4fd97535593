//! bedside's own kernels, apart from any model file: one GPU kernel each for the three chains of small operations that fill a T5 step on WebGPU:
//! the RMS norm (six kernels as burn composes it), the attention softmax with its additive bias
//! (six) and the gated GELU (nine). A decoding step of the two-layer decoder runs 7 norms, 4
//! softmaxes and 2 GELUs, so these take it from about 127 dispatches to about 56: each dispatch
//! costs tens of microseconds in a browser whatever the GPU.
//!
//! The kernels run on a cubecl device (WebGPU, wgpu, CUDA) without autodiff, on f32; on burn's
//! CPU backend the same three run through bedside-cpu (`kernels/cpu.rs`). Under autodiff (training)
//! burn's own operations run, and the tests hold both sets of kernels to them.
//! [`gelu_new`] is the T5 GELU those operations compute.
//! The row kernels give each row a workgroup whose threads read it in turn (neighbours read
//! neighbouring elements) and reduce through shared memory; the GELU gives each element a
//! thread. They reach the cubecl tensors through burn's `extension` feature, which hands out a
//! `CubeTensor` only while burn's `fusion` is off (as it is: see bench/NOTES.md).

use burn::backend::{Cube, DispatchDevice};
use burn::nn::RmsNorm;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::softmax;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::{CubeCount, CubeDim};

mod cpu;

use cube::{ROW_THREADS, gated_gelu_kernel, rms_norm_kernel, softmax_with_bias_kernel};

/// The tanh approximation of GELU that T5 v1.1 uses (transformers' `gelu_new`):
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, with x³ as products. burn's `gelu_approximate`
/// takes x³ through `powf`, which a profile found to be 10% of a diagnosis in wasm (software
/// `powf`) and 3% natively. The argument of tanh is taken as `x·(c + c·0.044715·x²)`: four
/// element-wise kernels on a GPU where the textbook order takes five.
pub fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SQRT_2_OVER_PI: f64 =
        core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
    let inner = x.clone() * (x.clone() * x.clone() * (0.044715 * SQRT_2_OVER_PI) + SQRT_2_OVER_PI);
    x * (inner.tanh() + 1.0) * 0.5
}

/// The kernels, in cubecl's dialect of Rust (its prelude's names clash with burn's).
mod cube {
    use cubecl::prelude::*;

    /// `√(2/π)`, the scale of `gelu_new`'s argument.
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;

    /// Threads per row of the row kernels: a power of two, as the tree reductions halve it.
    pub const ROW_THREADS: usize = 64;

    /// The row a workgroup of a row kernel works on: the launch spreads rows over two axes,
    /// WebGPU allowing 65,535 workgroups along each.
    #[cube]
    fn row() -> usize {
        (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize
    }

    /// The sum of `values` over the workgroup (one value per thread, `ROW_THREADS` of them).
    #[cube]
    fn cube_sum<F: Float>(values: &mut Shared<[F]>) -> F {
        sync_cube();
        let mut active = CUBE_DIM;
        while active > 1 {
            active /= 2;
            if UNIT_POS < active {
                let other = values[(UNIT_POS + active) as usize];
                values[UNIT_POS as usize] += other;
            }
            sync_cube();
        }
        values[0]
    }

    /// The maximum of `values` over the workgroup, as [`cube_sum`].
    #[cube]
    fn cube_max<F: Float>(values: &mut Shared<[F]>) -> F {
        sync_cube();
        let mut active = CUBE_DIM;
        while active > 1 {
            active /= 2;
            if UNIT_POS < active {
                let other = values[(UNIT_POS + active) as usize];
                values[UNIT_POS as usize] = F::max(values[UNIT_POS as usize], other);
            }
            sync_cube();
        }
        values[0]
    }

    /// One workgroup per row; its threads read the row in turn, so neighbours read neighbouring
    /// elements.
    #[cube(launch_unchecked)]
    pub fn rms_norm_kernel<F: Float>(
        input: &[F],
        gamma: &[F],
        output: &mut [F],
        rows: usize,
        width: usize,
        epsilon: f32,
    ) {
        let row = row();
        if row >= rows {
            terminate!();
        }
        let base = row * width;
        let unit = UNIT_POS as usize;
        let step = CUBE_DIM as usize;
        let mut partial = Shared::<[F]>::new_slice(ROW_THREADS);
        let mut sum = F::new(0.0);
        for i in range_stepped(unit, width, step) {
            let v = input[base + i];
            sum += v * v;
        }
        partial[unit] = sum;
        let sum = cube_sum::<F>(&mut partial);
        let scale = F::new(1.0) / F::sqrt(sum / F::cast_from(width) + F::cast_from(epsilon));
        for i in range_stepped(unit, width, step) {
            output[base + i] = input[base + i] * scale * gamma[i];
        }
    }

    /// One workgroup per row of scores, as [`rms_norm_kernel`].
    #[cube(launch_unchecked)]
    #[expect(
        clippy::too_many_arguments,
        reason = "a kernel takes its shape as scalars"
    )]
    pub fn softmax_with_bias_kernel<F: Float>(
        scores: &[F],
        bias: &[F],
        output: &mut [F],
        rows: usize,
        keys: usize,
        heads: usize,
        queries: usize,
        bias_batch: usize,
        bias_heads: usize,
        bias_queries: usize,
    ) {
        let row = row();
        if row >= rows {
            terminate!();
        }
        let query = row % queries;
        let head = (row / queries) % heads;
        let batch = row / (queries * heads);
        let bias_row = ((batch % bias_batch) * bias_heads + head % bias_heads) * bias_queries
            + query % bias_queries;
        let base = row * keys;
        let bias_base = bias_row * keys;
        let unit = UNIT_POS as usize;
        let step = CUBE_DIM as usize;
        let mut maxima = Shared::<[F]>::new_slice(ROW_THREADS);
        let mut sums = Shared::<[F]>::new_slice(ROW_THREADS);
        // every thread starts from the row's first key, so an idle thread cannot win the max
        let mut max = scores[base] + bias[bias_base];
        for i in range_stepped(unit, keys, step) {
            max = F::max(max, scores[base + i] + bias[bias_base + i]);
        }
        maxima[unit] = max;
        let max = cube_max::<F>(&mut maxima);
        let mut sum = F::new(0.0);
        for i in range_stepped(unit, keys, step) {
            let e = F::exp(scores[base + i] + bias[bias_base + i] - max);
            output[base + i] = e;
            sum += e;
        }
        sums[unit] = sum;
        let inverse = F::new(1.0) / cube_sum::<F>(&mut sums);
        for i in range_stepped(unit, keys, step) {
            output[base + i] *= inverse;
        }
    }

    #[cube(launch_unchecked)]
    pub fn gated_gelu_kernel<F: Float>(gate: &[F], linear: &[F], output: &mut [F], len: usize) {
        let i = ABSOLUTE_POS;
        if i >= len {
            terminate!();
        }
        let x = gate[i];
        let inner =
            x * (x * x * F::cast_from(0.044715f32 * SQRT_2_OVER_PI) + F::cast_from(SQRT_2_OVER_PI));
        output[i] = x * (F::tanh(inner) + F::new(1.0)) * F::new(0.5) * linear[i];
    }
}

/// The cubecl tensor behind `tensor` when the fused kernels apply to it: a cubecl device without
/// autodiff, f32.
fn on_gpu<const D: usize>(tensor: &Tensor<D>) -> Option<CubeTensor> {
    if !matches!(tensor.device().as_dispatch(), DispatchDevice::Cube(_))
        || tensor.dtype() != DType::F32
    {
        return None;
    }
    tensor
        .clone()
        .try_into_primitive::<Cube>()
        .ok()
        .map(into_contiguous)
}

/// The cubecl tensors behind `a` and `b` when their shapes `fit` the kernel and the kernels
/// apply to both.
fn pair_on_gpu<const D: usize, const E: usize>(
    fit: bool,
    a: &Tensor<D>,
    b: &Tensor<E>,
) -> Option<(CubeTensor, CubeTensor)> {
    match fit {
        true => on_gpu(a).zip(on_gpu(b)),
        false => None,
    }
}

/// `tensor` in contiguous memory on a GPU (one copy when it is a permuted or sliced view), as it
/// is elsewhere: for a tensor that several kernels read, such as an attention bias that every
/// layer adds, so that each of them does not make the copy again. On the CPU, burn's kernels
/// read strided tensors as they are.
pub fn contiguous<const D: usize>(tensor: Tensor<D>) -> Tensor<D> {
    match on_gpu(&tensor) {
        Some(gpu) => Tensor::from_primitive::<Cube>(gpu),
        None => tensor,
    }
}

pub use cpu::attention;

/// A tensor's values, read where they are, when it is an f32 tensor on burn's CPU backend
/// (without autodiff): no read-back, so it works synchronously in wasm too.
pub fn host_values<const D: usize>(tensor: &Tensor<D>) -> Option<Vec<f32>> {
    let flex = cpu::on_cpu(tensor)?;
    cpu::values(&flex).map(<[f32]>::to_vec)
}

/// An empty f32 tensor shaped like `like`, on its device.
fn empty_like(like: &CubeTensor) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        like.meta.shape().clone(),
        like.dtype,
    )
}

/// A launch of one thread per unit of `units`.
fn grid(like: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&like.client, units);
    (calculate_cube_count_elemwise(&like.client, units, dim), dim)
}

/// A launch of one workgroup of `ROW_THREADS` per row, the rows spread over two axes.
fn row_grid(rows: usize) -> (CubeCount, CubeDim) {
    const MAX_PER_AXIS: usize = 65_535;
    let x = rows.clamp(1, MAX_PER_AXIS);
    let y = rows.div_ceil(x).max(1);
    (
        CubeCount::Static(x as u32, y as u32, 1),
        CubeDim::new_1d(ROW_THREADS as u32),
    )
}

/// `norm.forward(x)`: T5's RMS norm of the last axis.
pub fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    let gamma = norm.gamma.val();
    let [width] = gamma.dims();
    let rows = x.shape().num_elements() / width.max(1);
    let fit = x.dims()[D - 1] == width && rows > 0;
    let Some((input, gamma_gpu)) = pair_on_gpu(fit, &x, &gamma) else {
        let on_cpu = fit.then(|| cpu::rms_norm(&x, &gamma, norm.epsilon as f32));
        return on_cpu.flatten().unwrap_or_else(|| norm.forward(x));
    };
    let output = empty_like(&input);
    let (count, dim) = row_grid(rows);
    // SAFETY: both inputs are contiguous f32 (on_gpu), the output has the input's shape, and the
    // kernel reads and writes `rows · width` elements of each and `width` of gamma.
    unsafe {
        rms_norm_kernel::launch_unchecked::<f32>(
            &input.client.clone(),
            count,
            dim,
            input.into_buffer_arg(),
            gamma_gpu.into_buffer_arg(),
            output.clone().into_buffer_arg(),
            rows,
            width,
            norm.epsilon as f32,
        );
    }
    Tensor::from_primitive::<Cube>(output)
}

/// `softmax(scores + bias, 3)`, with `bias` broadcast over any of its first three axes of size 1.
pub fn softmax_with_bias(scores: Tensor<4>, bias: Tensor<4>) -> Tensor<4> {
    let [batch, heads, queries, keys] = scores.dims();
    let [bias_batch, bias_heads, bias_queries, bias_keys] = bias.dims();
    let broadcasts = |n: usize, of: usize| n == of || n == 1;
    let fit = bias_keys == keys
        && broadcasts(bias_batch, batch)
        && broadcasts(bias_heads, heads)
        && broadcasts(bias_queries, queries)
        && keys > 0;
    let Some((scores_gpu, bias_gpu)) = pair_on_gpu(fit, &scores, &bias) else {
        let scores = match fit {
            true => match cpu::softmax_with_bias(scores, &bias) {
                Ok(weights) => return weights,
                Err(scores) => scores,
            },
            false => scores,
        };
        return softmax(scores + bias, 3);
    };
    let rows = batch * heads * queries;
    let output = empty_like(&scores_gpu);
    let (count, dim) = row_grid(rows);
    // SAFETY: contiguous f32 inputs (on_gpu); every row index the kernel forms is below `rows`
    // for the scores and below `bias_batch · bias_heads · bias_queries` for the bias, whose
    // shapes were checked above.
    unsafe {
        softmax_with_bias_kernel::launch_unchecked::<f32>(
            &scores_gpu.client.clone(),
            count,
            dim,
            scores_gpu.into_buffer_arg(),
            bias_gpu.into_buffer_arg(),
            output.clone().into_buffer_arg(),
            rows,
            keys,
            heads,
            queries,
            bias_batch,
            bias_heads,
            bias_queries,
        );
    }
    Tensor::from_primitive::<Cube>(output)
}

/// `gelu_new(gate) * linear`: the hidden layer of T5 v1.1's gated feed-forward network.
pub fn gated_gelu<const D: usize>(gate: Tensor<D>, linear: Tensor<D>) -> Tensor<D> {
    let fit = gate.dims() == linear.dims();
    let Some((gate_gpu, linear_gpu)) = pair_on_gpu(fit, &gate, &linear) else {
        let gate = match fit {
            true => match cpu::gated_gelu(gate, &linear) {
                Ok(hidden) => return hidden,
                Err(gate) => gate,
            },
            false => gate,
        };
        return gelu_new(gate) * linear;
    };
    let len = gate_gpu.meta.num_elements();
    let output = empty_like(&gate_gpu);
    let (count, dim) = grid(&gate_gpu, len);
    // SAFETY: contiguous f32 inputs of the same shape (checked), `len` elements each.
    unsafe {
        gated_gelu_kernel::launch_unchecked::<f32>(
            &gate_gpu.client.clone(),
            count,
            dim,
            gate_gpu.into_buffer_arg(),
            linear_gpu.into_buffer_arg(),
            output.clone().into_buffer_arg(),
            len,
        );
    }
    Tensor::from_primitive::<Cube>(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_new_matches_the_formula_and_burns_version() -> Result<(), Box<dyn std::error::Error>> {
        let device = Device::flex();
        let xs = [-6.0f32, -3.0, -1.5, -0.5, 0.0, 0.25, 1.0, 2.5, 8.0];
        let input = || Tensor::<1>::from_floats(xs.as_slice(), &device);
        let ours: Vec<f32> = gelu_new(input())
            .into_data()
            .try_to_vec()
            .map_err(|e| format!("{e:?}"))?;
        let burns: Vec<f32> = burn::tensor::activation::gelu_approximate(input())
            .into_data()
            .try_to_vec()
            .map_err(|e| format!("{e:?}"))?;
        for ((x, a), b) in xs.iter().zip(&ours).zip(&burns) {
            let x = *x as f64;
            let expected = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
            assert!(
                (*a as f64 - expected).abs() < 1e-6,
                "gelu_new({x}) = {a}, expected {expected}"
            );
            assert!((a - b).abs() < 1e-6, "gelu_new({x}) = {a}, burn's {b}");
        }
        Ok(())
    }
}
