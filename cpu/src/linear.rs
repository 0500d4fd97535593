//! A linear layer's weights packed once for matrix-vector products: in a decoding step every
//! linear layer multiplies one row, where a general matrix product (gemm) re-reads the weights
//! in their stored order with a stride of a whole row per element. Packed into panels of
//! [`PANEL`] outputs — for each input, the panel's outputs side by side — a product reads the
//! weights once, in order, and keeps the panel's sums in SIMD registers (four SIMD128 vectors,
//! two AVX ones).

/// Outputs per panel.
pub const PANEL: usize = 16;

/// The weights `[d_in, d_out]` (burn's `Linear` layout, `y = x·W`) packed as
/// `[⌈d_out / PANEL⌉][d_in][PANEL]`, the last panel padded with zeros.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    d_in: usize,
    d_out: usize,
    panels: Vec<f32>,
}

/// A shape that does not fit: what was expected, what was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub what: &'static str,
    pub expected: usize,
    pub found: usize,
}

impl core::fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}: expected {} values, found {}",
            self.what, self.expected, self.found
        )
    }
}

impl std::error::Error for ShapeMismatch {}

impl PackedLinear {
    /// Packs `weight`, row-major `[d_in, d_out]`.
    pub fn pack(weight: &[f32], d_in: usize, d_out: usize) -> Result<Self, ShapeMismatch> {
        let expected = d_in.saturating_mul(d_out);
        if weight.len() != expected || expected == 0 {
            return Err(ShapeMismatch {
                what: "linear weight",
                expected,
                found: weight.len(),
            });
        }
        let panels = d_out.div_ceil(PANEL);
        let mut packed = vec![0.0; panels * d_in * PANEL];
        for (p, panel) in packed.chunks_exact_mut(d_in * PANEL).enumerate() {
            let first = p * PANEL;
            let width = PANEL.min(d_out - first);
            for (i, lanes) in panel.chunks_exact_mut(PANEL).enumerate() {
                let row = &weight[i * d_out + first..][..width];
                lanes[..width].copy_from_slice(row);
            }
        }
        Ok(Self {
            d_in,
            d_out,
            panels: packed,
        })
    }

    pub fn d_in(&self) -> usize {
        self.d_in
    }

    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// `out = x·W` (`x`: `d_in` values, `out`: `d_out`). Extra elements of either are ignored;
    /// callers size them from [`Self::d_in`] and [`Self::d_out`].
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        self.each_panel(x, out, |o, sum| *o = sum);
    }

    /// `out += x·W`: a residual connection without a temporary.
    pub fn forward_add(&self, x: &[f32], out: &mut [f32]) {
        self.each_panel(x, out, |o, sum| *o += sum);
    }

    #[inline(always)]
    fn each_panel(&self, x: &[f32], out: &mut [f32], mut write: impl FnMut(&mut f32, f32)) {
        let x = &x[..self.d_in.min(x.len())];
        let n = self.d_out.min(out.len());
        let out = &mut out[..n];
        for (panel, outs) in self
            .panels
            .chunks_exact(self.d_in * PANEL)
            .zip(out.chunks_mut(PANEL))
        {
            let sums = panel_product(x, panel);
            outs.iter_mut().zip(sums).for_each(|(o, s)| write(o, s));
        }
    }
}

/// The `PANEL` sums `Σᵢ x[i] · panel[i][l]`, two inputs at a time in two sets of accumulators so
/// that consecutive additions do not wait on each other.
#[inline(always)]
fn panel_product(x: &[f32], panel: &[f32]) -> [f32; PANEL] {
    let mut even = [0.0f32; PANEL];
    let mut odd = [0.0f32; PANEL];
    let mut pairs = panel.chunks_exact(2 * PANEL);
    let mut inputs = x.chunks_exact(2);
    for (w, xs) in (&mut pairs).zip(&mut inputs) {
        let (w0, w1) = w.split_at(PANEL);
        for l in 0..PANEL {
            even[l] += xs[0] * w0[l];
            odd[l] += xs[1] * w1[l];
        }
    }
    if let (Some(x0), Some(w)) = (inputs.remainder().first(), pairs.remainder().get(..PANEL)) {
        for l in 0..PANEL {
            even[l] += x0 * w[l];
        }
    }
    for l in 0..PANEL {
        even[l] += odd[l];
    }
    even
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product in f64, in the weights' own order.
    fn reference(weight: &[f32], x: &[f32], d_out: usize) -> Vec<f32> {
        (0..d_out)
            .map(|j| {
                x.iter()
                    .enumerate()
                    .map(|(i, v)| *v as f64 * weight[i * d_out + j] as f64)
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn packed_products_match_the_plain_product() -> Result<(), ShapeMismatch> {
        // odd inputs, a partial last panel, one panel, fewer outputs than a panel
        for (d_in, d_out) in [(7, 37), (128, 1506), (1, 1), (33, 16), (4, 3)] {
            let weight: Vec<f32> = (0..d_in * d_out)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 250.0)
                .collect();
            let x: Vec<f32> = (0..d_in).map(|i| (i as f32 * 0.61).cos()).collect();
            let packed = PackedLinear::pack(&weight, d_in, d_out)?;
            let mut out = vec![f32::NAN; d_out];
            packed.forward(&x, &mut out);
            let expected = reference(&weight, &x, d_out);
            for (j, (a, b)) in out.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (d_in as f32).sqrt() * b.abs().max(1.0),
                    "{d_in}×{d_out} [{j}]: {a} against {b}"
                );
            }
            let mut added = vec![1.0; d_out];
            packed.forward_add(&x, &mut added);
            for (a, b) in added.iter().zip(&out) {
                assert!((a - (b + 1.0)).abs() <= 1e-6 * a.abs().max(1.0));
            }
        }
        Ok(())
    }

    #[test]
    fn a_weight_of_the_wrong_size_is_refused() {
        let error = PackedLinear::pack(&[0.0; 5], 2, 3).err();
        assert_eq!(
            error,
            Some(ShapeMismatch {
                what: "linear weight",
                expected: 6,
                found: 5
            })
        );
    }
}
