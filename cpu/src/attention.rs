//! T5's multi-head attention (no score scaling; an additive bias carries positions and masks)
//! without the score matrix: each query row's scores live in one reused buffer, so a prompt of
//! `L` tokens never allocates or writes the `[batch, heads, L, L]` scores and weights that the
//! composed operations make (46 MB at batch 32 and 300 tokens), nor copies heads in and out.

use crate::rows;

/// One head's attention for one query: `scores` gets the weights over the first `keys` keys,
/// `context` (`d_kv` values) their weighted sum of the values. `keys_t`: `[d_kv, stride]` (keys
/// transposed, so that the scores are products along contiguous memory); `values`: `[≥ keys,
/// d_kv]`; `bias`: at least `keys` values.
#[inline(always)]
pub(crate) fn attend_head(
    query: &[f32],
    keys_t: &[f32],
    stride: usize,
    values: &[f32],
    bias: &[f32],
    scores: &mut [f32],
    context: &mut [f32],
) {
    let keys = scores.len();
    scores.copy_from_slice(&bias[..keys]);
    for (q, key_row) in query.iter().zip(keys_t.chunks(stride)) {
        scores
            .iter_mut()
            .zip(&key_row[..keys])
            .for_each(|(s, k)| *s += q * k);
    }
    rows::softmax(scores);
    context.fill(0.0);
    for (w, value) in scores.iter().zip(values.chunks_exact(context.len())) {
        context.iter_mut().zip(value).for_each(|(c, v)| *c += w * v);
    }
}

/// The row of a bias `[batch, heads, queries, keys]` (`dims`: its first three axes, each 1 where
/// it broadcasts) that query `query` of head `head` of batch row `batch` adds.
pub fn bias_row([batch, head, query]: [usize; 3], dims: [usize; 3]) -> usize {
    let pick = |index: usize, size: usize| if size == 1 { 0 } else { index };
    (pick(batch, dims[0]) * dims[1] + pick(head, dims[1])) * dims[2] + pick(query, dims[2])
}

/// The sizes of an attention: `batch × heads` of `queries` attending to `keys`, and the bias's
/// first three axes, each 1 (broadcast) or the full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub batch: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub d_kv: usize,
    pub bias_batch: usize,
    pub bias_heads: usize,
    pub bias_queries: usize,
}

impl AttentionShape {
    /// Whether slices of these lengths fit: `q` `[batch, heads, queries, d_kv]`, `keys_t`
    /// `[batch, heads, d_kv, keys]`, `values` `[batch, heads, keys, d_kv]`, `bias`
    /// `[bias_batch, bias_heads, bias_queries, keys]`, `out` `[batch, queries, heads · d_kv]`.
    pub fn fits(&self, q: usize, keys_t: usize, values: usize, bias: usize, out: usize) -> bool {
        let s = self;
        let broadcasts = |n: usize, of: usize| n == of || n == 1;
        let per_head = s.batch * s.heads * s.d_kv;
        broadcasts(s.bias_batch, s.batch)
            && broadcasts(s.bias_heads, s.heads)
            && broadcasts(s.bias_queries, s.queries)
            && q == per_head * s.queries
            && out == q
            && keys_t == per_head * s.keys
            && values == per_head * s.keys
            && bias == s.bias_batch * s.bias_heads * s.bias_queries * s.keys
    }
}

/// `softmax(q·kᵀ + bias)·v` of every head, written with the heads side by side:
/// `out[b, query, h · d_kv + i]`. Lengths as [`AttentionShape::fits`] checks (the caller checks
/// first; a slice too short panics).
pub fn attention(
    q: &[f32],
    keys_t: &[f32],
    values: &[f32],
    bias: &[f32],
    shape: AttentionShape,
    out: &mut [f32],
) {
    let AttentionShape {
        heads,
        queries,
        keys,
        d_kv,
        ..
    } = shape;
    let bias_dims = [shape.bias_batch, shape.bias_heads, shape.bias_queries];
    // one query row of every head per task: `out`'s rows are `[batch, queries]`
    crate::for_each_chunk(out, heads * d_kv, |row, out, scores| {
        let (b, i) = (row / queries.max(1), row % queries.max(1));
        scores.resize(keys, 0.0);
        for (h, context) in out.chunks_exact_mut(d_kv.max(1)).enumerate() {
            let head = b * heads + h;
            let bias_row = bias_row([b, h, i], bias_dims);
            attend_head(
                &q[(head * queries + i) * d_kv..][..d_kv],
                &keys_t[head * d_kv * keys..][..d_kv * keys],
                keys,
                &values[head * keys * d_kv..][..keys * d_kv],
                &bias[bias_row * keys..][..keys],
                scores,
                context,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_matches_its_definition() {
        let (batch, heads, queries, keys, d_kv) = (2, 3, 4, 5, 2);
        let value = |i: usize| ((i * 37 % 23) as f32 - 11.0) / 7.0;
        let q: Vec<f32> = (0..batch * heads * queries * d_kv).map(value).collect();
        let k: Vec<f32> = (0..batch * heads * keys * d_kv)
            .map(|i| value(i + 5))
            .collect();
        let v: Vec<f32> = (0..batch * heads * keys * d_kv)
            .map(|i| value(i + 9))
            .collect();
        // the keys transposed: [b, h, d_kv, keys]
        let mut keys_t = vec![0.0; k.len()];
        for head in 0..batch * heads {
            for t in 0..keys {
                for i in 0..d_kv {
                    keys_t[(head * d_kv + i) * keys + t] = k[(head * keys + t) * d_kv + i];
                }
            }
        }
        // a bias per batch row, shared by heads and queries, one key masked in the second row
        let bias: Vec<f32> = (0..batch * keys)
            .map(|i| if i == 7 { -1e9 } else { value(i) * 0.3 })
            .collect();
        let shape = AttentionShape {
            batch,
            heads,
            queries,
            keys,
            d_kv,
            bias_batch: batch,
            bias_heads: 1,
            bias_queries: 1,
        };
        let mut out = vec![f32::NAN; q.len()];
        assert!(shape.fits(q.len(), keys_t.len(), v.len(), bias.len(), out.len()));
        attention(&q, &keys_t, &v, &bias, shape, &mut out);
        for b in 0..batch {
            for h in 0..heads {
                let head = b * heads + h;
                for i in 0..queries {
                    let scores: Vec<f64> = (0..keys)
                        .map(|t| {
                            (0..d_kv)
                                .map(|c| {
                                    (q[(head * queries + i) * d_kv + c]
                                        * k[(head * keys + t) * d_kv + c])
                                        as f64
                                })
                                .sum::<f64>()
                                + bias[b * keys + t] as f64
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max); // nan-ok: finite test values
                    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for c in 0..d_kv {
                        let expected: f64 = (0..keys)
                            .map(|t| {
                                (scores[t] - max).exp() / total
                                    * v[(head * keys + t) * d_kv + c] as f64
                            })
                            .sum();
                        let got = out[((b * queries + i) * heads + h) * d_kv + c];
                        assert!(
                            (got as f64 - expected).abs() < 1e-6,
                            "[{b}, {i}, {h}, {c}]: {got} against {expected}"
                        );
                    }
                }
            }
        }
        assert!(!shape.fits(q.len() + 1, keys_t.len(), v.len(), bias.len(), out.len()));
    }
}
