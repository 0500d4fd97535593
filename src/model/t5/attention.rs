//! T5 attention: multi-head attention without the 1/sqrt(d) scaling, whose only position
//! information is a learned scalar bias per head and *relative position bucket* (T5 has no
//! absolute positions). Only the first layer of each stack owns the bias table; the stack computes
//! the bias once and every layer adds it.

use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use crate::kernels::{self, softmax_with_bias};

/// Keys and values of one attention, laid out for the two products of [`T5Attention::attend`]:
/// the keys already transposed, so that neither product has to copy a permuted operand.
#[derive(Debug, Clone)]
pub struct KeyValues {
    /// `[batch, heads, d_kv, keys]`.
    pub keys_t: Tensor<4>,
    /// `[batch, heads, keys, d_kv]`.
    pub values: Tensor<4>,
}

impl KeyValues {
    /// Applies `f` to both tensors.
    pub fn map(&self, f: impl Fn(Tensor<4>) -> Tensor<4>) -> Self {
        Self {
            keys_t: f(self.keys_t.clone()),
            values: f(self.values.clone()),
        }
    }

    /// Appends `new` after the keys and values held.
    pub fn append(self, new: Self) -> Self {
        Self {
            keys_t: Tensor::cat(vec![self.keys_t, new.keys_t], 3),
            values: Tensor::cat(vec![self.values, new.values], 2),
        }
    }

    /// Both tensors copied into contiguous memory, for keys and values that every decoding step
    /// reads (the encoder output's): the products then read them as they are instead of copying
    /// a permuted view at each step. A reshape that merges permuted axes is what makes the copy
    /// on every backend.
    pub fn contiguous(self) -> Self {
        fn copy(t: Tensor<4>) -> Tensor<4> {
            let [a, b, c, d] = t.dims();
            t.reshape([a, b, c * d]).reshape([a, b, c, d])
        }
        Self {
            keys_t: copy(self.keys_t),
            values: copy(self.values),
        }
    }
}

#[derive(Module, Debug)]
pub struct T5Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// `[buckets, heads]`: present in the first layer of a stack only.
    pub relative_attention_bias: Option<Embedding>,
    #[module(skip)]
    pub geometry: AttentionGeometry,
}

/// The hyper-parameters an attention needs at run time.
#[derive(Debug, Clone, Copy)]
pub struct AttentionGeometry {
    pub heads: usize,
    pub d_kv: usize,
    /// Encoder self-attention sees both directions; decoder self-attention only the past.
    pub bidirectional: bool,
    pub num_buckets: usize,
    pub max_distance: usize,
}

/// T5's bucketing of `key - query` distances (transformers' `_relative_position_bucket`, with the
/// log-spaced part computed in f32 as there): exact buckets for small distances, log-spaced ones
/// up to `max_distance`, everything further shares the last bucket. Needs `num_buckets >= 4`
/// (configurations are checked for it).
pub fn relative_position_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets as i64;
    let mut base = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            base = buckets;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = buckets / 2;
    let bucket = if distance < max_exact {
        distance
    } else {
        let scale = ((distance as f32) / max_exact as f32).ln()
            / (max_distance as f32 / max_exact as f32).ln()
            * (buckets - max_exact) as f32;
        // max_exact + trunc(scale) as in transformers; clamped in floats so that a degenerate
        // configuration cannot overflow (NaN and infinities saturate)
        ((max_exact as f32 + scale)
            .min((buckets - 1) as f32)
            .max(0.0) as i64)
            .min(buckets - 1)
    };
    (base + bucket) as usize
}

impl T5Attention {
    /// `[1, heads, queries, keys]` bias for queries at positions `offset..offset+queries` and keys
    /// at `0..keys`. Zero when this layer has no bias table (cross-attention).
    pub fn position_bias(
        &self,
        queries: usize,
        keys: usize,
        offset: usize,
        device: &Device,
    ) -> Tensor<4> {
        let g = self.geometry;
        let Some(table) = &self.relative_attention_bias else {
            return Tensor::zeros([1, g.heads, queries, keys], device);
        };
        // a bucket depends on `key - query` only: each of those once (a logarithm each), not
        // once per pair
        let nearest = -(offset as i64) - queries as i64 + 1;
        let by_relative: Vec<i64> = (nearest..keys as i64 - offset as i64)
            .map(|relative| {
                relative_position_bucket(relative, g.bidirectional, g.num_buckets, g.max_distance)
                    as i64
            })
            .collect();
        let buckets: Vec<i64> = (0..queries)
            .flat_map(|q| {
                let from = queries - 1 - q;
                by_relative[from..from + keys].iter().copied()
            })
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(buckets, [queries * keys]), device);
        table
            .forward(ids.unsqueeze_dim(0))
            .reshape([queries, keys, g.heads])
            .permute([2, 0, 1])
            .unsqueeze_dim(0)
    }

    /// `[batch, len, heads · d_kv]` → `[batch, heads, len, d_kv]`. One position (a decoding
    /// step) is a plain reshape, which keeps the tensor contiguous.
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, len, _] = x.dims();
        let g = self.geometry;
        match len {
            1 => x.reshape([batch, g.heads, 1, g.d_kv]),
            _ => x.reshape([batch, len, g.heads, g.d_kv]).swap_dims(1, 2),
        }
    }

    /// The inverse of [`Self::split_heads`].
    fn merge_heads(&self, x: Tensor<4>) -> Tensor<3> {
        let [batch, _, len, _] = x.dims();
        let g = self.geometry;
        match len {
            1 => x.reshape([batch, 1, g.heads * g.d_kv]),
            _ => x.swap_dims(1, 2).reshape([batch, len, g.heads * g.d_kv]),
        }
    }

    /// Keys and values of `source` (`[batch, len, d_model]`).
    pub fn key_values(&self, source: Tensor<3>) -> KeyValues {
        let [batch, len, _] = source.dims();
        let g = self.geometry;
        let keys = self.k.forward(source.clone());
        KeyValues {
            keys_t: match len {
                1 => keys.reshape([batch, g.heads, g.d_kv, 1]),
                _ => keys
                    .reshape([batch, len, g.heads, g.d_kv])
                    .permute([0, 2, 3, 1]),
            },
            values: self.split_heads(self.v.forward(source)),
        }
    }

    /// Attends from `x` (`[batch, queries, d_model]`) to the given keys and values with the
    /// additive `bias` (`[1 or batch, heads or 1, queries or 1, keys]`, masks included). Returns
    /// the output `[batch, queries, d_model]`. On the CPU (inference) one kernel computes it
    /// without the score matrix; elsewhere burn's operations and the fused softmax.
    pub fn attend(&self, x: Tensor<3>, kv: &KeyValues, bias: Tensor<4>) -> Tensor<3> {
        let q = self.split_heads(self.q.forward(x));
        let context = match kernels::attention(&q, &kv.keys_t, &kv.values, &bias) {
            Some(context) => context,
            None => {
                let weights = softmax_with_bias(q.matmul(kv.keys_t.clone()), bias);
                self.merge_heads(weights.matmul(kv.values.clone()))
            }
        };
        self.o.forward(context)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket as bucket;

    #[test]
    fn buckets_match_transformers() {
        // Printed by transformers 4.57's T5Attention._relative_position_bucket(num_buckets=32,
        // max_distance=128).
        assert_eq!(bucket(0, true, 32, 128), 0);
        assert_eq!(bucket(-1, true, 32, 128), 1);
        assert_eq!(bucket(1, true, 32, 128), 17);
        assert_eq!(bucket(-7, true, 32, 128), 7);
        assert_eq!(bucket(-8, true, 32, 128), 8);
        assert_eq!(bucket(-20, true, 32, 128), 10);
        assert_eq!(bucket(-1000, true, 32, 128), 15);
        assert_eq!(bucket(1000, true, 32, 128), 31);
        // decoder: the future is bucket 0, the past grows
        assert_eq!(bucket(3, false, 32, 128), 0);
        assert_eq!(bucket(-15, false, 32, 128), 15);
        assert_eq!(bucket(-16, false, 32, 128), 16);
        assert_eq!(bucket(-1000, false, 32, 128), 31);
    }

    #[test]
    fn degenerate_configurations_stay_in_range() {
        // configurations refuse fewer than 4 buckets; any max_distance must stay in range
        for (buckets, distance) in [(4, 0), (4, 1), (5, 0), (6, 2), (8, 0), (8, 1), (9, 100_000)] {
            for relative in [-10_000, -3, 0, 3, 10_000] {
                assert!(bucket(relative, true, buckets, distance) < buckets);
                assert!(bucket(relative, false, buckets, distance) < buckets);
            }
        }
    }
}
