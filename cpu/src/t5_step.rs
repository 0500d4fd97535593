//! One step of a T5 decoder for one sequence, on the CPU, with nothing allocated per step.
//!
//! Decoding one token through tensor operations costs about a hundred operations, each with a
//! fresh output buffer, for a few hundred thousand multiply-adds: on a model of bedside's size
//! the allocations, copies and dispatch outweigh the arithmetic (bench/NOTES.md). Here the
//! weights are packed once ([`DecoderWeights`]), the key/value cache and every intermediate
//! buffer are allocated once per sequence ([`DecoderState`]), and a step writes into them.
//!
//! The arithmetic is transformers' `T5ForConditionalGeneration` (and bedside's burn model, which
//! the tests in bedside hold this to): pre-norm layers with RMS norms, attention without score
//! scaling whose only position information is the first layer's relative-position bias, the
//! gated-GELU (T5 v1.1) or ReLU (T5) feed-forward network, and the decoder output optionally
//! scaled by `d_model^-0.5` before the output projection.

use crate::attention::attend_head;
use crate::linear::{PackedLinear, ShapeMismatch};
use crate::rows;

/// The sizes a decoder is built with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderShape {
    pub d_model: usize,
    pub heads: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub vocab: usize,
    pub epsilon: f32,
    /// Multiplies the final hidden state before the output projection (1 or `d_model^-0.5`).
    pub output_scale: f32,
}

impl DecoderShape {
    fn inner(&self) -> usize {
        self.heads * self.d_kv
    }
}

/// The weights of one decoder layer.
#[derive(Debug, Clone)]
pub struct DecoderLayerWeights {
    pub self_attention_norm: Vec<f32>,
    /// `d_model → 3 · heads · d_kv`: the query, key and value projections side by side.
    pub self_qkv: PackedLinear,
    pub self_out: PackedLinear,
    pub cross_attention_norm: Vec<f32>,
    /// `d_model → heads · d_kv`: the cross-attention's query (its keys and values come from the
    /// encoder, once per sequence).
    pub cross_q: PackedLinear,
    pub cross_out: PackedLinear,
    pub ff_norm: Vec<f32>,
    /// `d_model → 2 · d_ff` (the GELU branch, then the linear one) for the gated form,
    /// `d_model → d_ff` for ReLU.
    pub ff_in: PackedLinear,
    pub gated: bool,
    pub ff_out: PackedLinear,
}

/// A decoder's weights, checked against its shape once.
#[derive(Debug, Clone)]
pub struct DecoderWeights {
    shape: DecoderShape,
    /// `[vocab, d_model]`.
    embedding: Vec<f32>,
    layers: Vec<DecoderLayerWeights>,
    final_norm: Vec<f32>,
    lm_head: PackedLinear,
    /// `[heads, distances]`: the self-attention bias of a key `distance` positions back (0: the
    /// query itself); every further distance has the last one's.
    distance_bias: Vec<f32>,
    distances: usize,
}

/// What a step or a construction refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// A part of the weights whose size does not fit the shape.
    Shape(ShapeMismatch),
    /// A token id outside the vocabulary.
    Token { id: u32, vocab: usize },
}

impl core::fmt::Display for StepError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Shape(mismatch) => mismatch.fmt(f),
            Self::Token { id, vocab } => {
                write!(f, "token id {id} is outside the vocabulary of {vocab}")
            }
        }
    }
}

impl std::error::Error for StepError {}

impl From<ShapeMismatch> for StepError {
    fn from(mismatch: ShapeMismatch) -> Self {
        Self::Shape(mismatch)
    }
}

fn expect_len(what: &'static str, found: usize, expected: usize) -> Result<(), ShapeMismatch> {
    match found == expected {
        true => Ok(()),
        false => Err(ShapeMismatch {
            what,
            expected,
            found,
        }),
    }
}

fn expect_linear(
    what: &'static str,
    linear: &PackedLinear,
    d_in: usize,
    d_out: usize,
) -> Result<(), ShapeMismatch> {
    expect_len(what, linear.d_in(), d_in)?;
    expect_len(what, linear.d_out(), d_out)
}

impl DecoderWeights {
    /// Checks every part against `shape`; `distance_bias` is `[heads, distances]`.
    pub fn new(
        shape: DecoderShape,
        embedding: Vec<f32>,
        layers: Vec<DecoderLayerWeights>,
        final_norm: Vec<f32>,
        lm_head: PackedLinear,
        distance_bias: Vec<f32>,
    ) -> Result<Self, StepError> {
        let (d, inner, ff) = (shape.d_model, shape.inner(), shape.d_ff);
        for (what, size) in [
            ("d_model", d),
            ("heads", shape.heads),
            ("d_kv", shape.d_kv),
            ("d_ff", ff),
            ("vocabulary", shape.vocab),
            ("decoder layers", layers.len()),
        ] {
            if size == 0 {
                return Err(StepError::Shape(ShapeMismatch {
                    what,
                    expected: 1,
                    found: 0,
                }));
            }
        }
        expect_len("embedding", embedding.len(), shape.vocab * d)?;
        expect_len("final norm", final_norm.len(), d)?;
        expect_linear("output projection", &lm_head, d, shape.vocab)?;
        let distances = distance_bias.len() / shape.heads.max(1);
        expect_len(
            "position bias",
            distance_bias.len(),
            shape.heads * distances.max(1),
        )?;
        for layer in &layers {
            expect_len("self-attention norm", layer.self_attention_norm.len(), d)?;
            expect_len("cross-attention norm", layer.cross_attention_norm.len(), d)?;
            expect_len("feed-forward norm", layer.ff_norm.len(), d)?;
            expect_linear("self-attention projections", &layer.self_qkv, d, 3 * inner)?;
            expect_linear("self-attention output", &layer.self_out, inner, d)?;
            expect_linear("cross-attention query", &layer.cross_q, d, inner)?;
            expect_linear("cross-attention output", &layer.cross_out, inner, d)?;
            let ff_width = if layer.gated { 2 * ff } else { ff };
            expect_linear("feed-forward input", &layer.ff_in, d, ff_width)?;
            expect_linear("feed-forward output", &layer.ff_out, ff, d)?;
        }
        Ok(Self {
            shape,
            embedding,
            layers,
            final_norm,
            lm_head,
            distance_bias,
            distances,
        })
    }

    pub fn shape(&self) -> DecoderShape {
        self.shape
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }
}

/// The cross-attention keys and values of one layer, `[source, heads · d_kv]` each (the encoder
/// output through the layer's key and value projections).
pub struct CrossKeyValues<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
}

/// One sequence's decoding state: the key/value caches and the step's buffers.
#[derive(Debug, Clone)]
pub struct DecoderState {
    len: usize,
    capacity: usize,
    source: usize,
    /// Per layer, `[heads, d_kv, capacity]`: keys transposed, so that a query's scores are
    /// products along contiguous memory.
    self_keys: Vec<Vec<f32>>,
    /// Per layer, `[heads, capacity, d_kv]`.
    self_values: Vec<Vec<f32>>,
    /// Per layer, `[heads, d_kv, source]`.
    cross_keys: Vec<Vec<f32>>,
    /// Per layer, `[heads, source, d_kv]`.
    cross_values: Vec<Vec<f32>>,
    /// `[source]`: 0 for a real encoder position, −1e9 for padding.
    cross_bias: Vec<f32>,
    x: Vec<f32>,
    normed: Vec<f32>,
    projected: Vec<f32>,
    context: Vec<f32>,
    scores: Vec<f32>,
    /// The self-attention bias of the current step's keys, for one head.
    bias_row: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

/// `[positions, heads · d_kv]` → `[heads, d_kv, capacity]` (transposed) at positions `0..`.
fn write_transposed(dest: &mut [f32], source: &[f32], heads: usize, d_kv: usize, capacity: usize) {
    for (t, row) in source.chunks_exact(heads * d_kv).enumerate() {
        for (c, v) in row.iter().enumerate() {
            dest[c * capacity + t] = *v;
        }
    }
}

/// `[positions, heads · d_kv]` → `[heads, capacity, d_kv]` at positions `0..`.
fn write_by_head(dest: &mut [f32], source: &[f32], heads: usize, d_kv: usize, capacity: usize) {
    for (t, row) in source.chunks_exact(heads * d_kv).enumerate() {
        for (h, head) in row.chunks_exact(d_kv).enumerate() {
            dest[(h * capacity + t) * d_kv..][..d_kv].copy_from_slice(head);
        }
    }
}

impl DecoderState {
    /// A state for decoding up to `capacity` positions (more are possible: the caches then grow)
    /// against an encoder output of `mask.len()` positions (1 real, 0 padding), with each
    /// layer's cross-attention keys and values.
    pub fn new(
        weights: &DecoderWeights,
        mask: &[f32],
        cross: &[CrossKeyValues<'_>],
        capacity: usize,
    ) -> Result<Self, StepError> {
        let s = weights.shape;
        let (inner, source, capacity) = (s.inner(), mask.len(), capacity.max(1));
        expect_len("cross-attention layers", cross.len(), weights.layers.len())?;
        let mut cross_keys = Vec::with_capacity(cross.len());
        let mut cross_values = Vec::with_capacity(cross.len());
        for kv in cross {
            expect_len("cross-attention keys", kv.keys.len(), source * inner)?;
            expect_len("cross-attention values", kv.values.len(), source * inner)?;
            let mut keys = vec![0.0; source * inner];
            write_transposed(&mut keys, kv.keys, s.heads, s.d_kv, source);
            let mut values = vec![0.0; source * inner];
            write_by_head(&mut values, kv.values, s.heads, s.d_kv, source);
            cross_keys.push(keys);
            cross_values.push(values);
        }
        let layers = weights.layers.len();
        Ok(Self {
            len: 0,
            capacity,
            source,
            self_keys: vec![vec![0.0; inner * capacity]; layers],
            self_values: vec![vec![0.0; inner * capacity]; layers],
            cross_keys,
            cross_values,
            cross_bias: mask.iter().map(|m| (m - 1.0) * 1e9).collect(),
            x: vec![0.0; s.d_model],
            normed: vec![0.0; s.d_model],
            projected: vec![0.0; 3 * inner],
            context: vec![0.0; inner],
            scores: vec![0.0; capacity.max(source)],
            bias_row: vec![0.0; capacity],
            hidden: vec![0.0; 2 * s.d_ff],
            logits: vec![0.0; s.vocab],
        })
    }

    /// Positions decoded so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Twice the room in the self-attention caches (a generation longer than planned).
    fn grow(&mut self, inner: usize, d_kv: usize) {
        let old = self.capacity;
        let capacity = 2 * old;
        for keys in &mut self.self_keys {
            let mut grown = vec![0.0; inner * capacity];
            for (c, row) in keys.chunks_exact(old).enumerate() {
                grown[c * capacity..][..old].copy_from_slice(row);
            }
            *keys = grown;
        }
        for values in &mut self.self_values {
            let mut grown = vec![0.0; inner * capacity];
            for (h, head) in values.chunks_exact(old * d_kv).enumerate() {
                grown[h * capacity * d_kv..][..old * d_kv].copy_from_slice(head);
            }
            *values = grown;
        }
        self.scores.resize(capacity.max(self.source), 0.0);
        self.bias_row.resize(capacity, 0.0);
        self.capacity = capacity;
    }

    /// Decodes `token` at the next position and returns the logits of the position after it.
    pub fn step(&mut self, weights: &DecoderWeights, token: u32) -> Result<&[f32], StepError> {
        let s = weights.shape;
        let (d, heads, d_kv, inner, ff) = (s.d_model, s.heads, s.d_kv, s.inner(), s.d_ff);
        if token as usize >= s.vocab {
            return Err(StepError::Token {
                id: token,
                vocab: s.vocab,
            });
        }
        let embedding = &weights.embedding[token as usize * d..][..d];
        if self.len == self.capacity {
            self.grow(inner, d_kv);
        }
        let (pos, capacity, source) = (self.len, self.capacity, self.source);
        let keys = pos + 1;
        let distances = weights.distances;
        self.x.copy_from_slice(embedding);
        for (l, layer) in weights.layers.iter().enumerate() {
            // self-attention over the positions so far and this one
            rows::rms_norm(
                &self.x,
                &layer.self_attention_norm,
                s.epsilon,
                &mut self.normed,
            );
            layer.self_qkv.forward(&self.normed, &mut self.projected);
            let (query, kv) = self.projected.split_at(inner);
            let (key, value) = kv.split_at(inner);
            let (cache_k, cache_v) = (&mut self.self_keys[l], &mut self.self_values[l]);
            for (c, k) in key.iter().enumerate() {
                cache_k[c * capacity + pos] = *k;
            }
            for (h, v) in value.chunks_exact(d_kv).enumerate() {
                cache_v[(h * capacity + pos) * d_kv..][..d_kv].copy_from_slice(v);
            }
            for h in 0..heads {
                let bias = &weights.distance_bias[h * distances..][..distances];
                for (t, b) in self.bias_row[..keys].iter_mut().enumerate() {
                    *b = bias[(pos - t).min(distances - 1)];
                }
                attend_head(
                    &query[h * d_kv..][..d_kv],
                    &cache_k[h * d_kv * capacity..][..d_kv * capacity],
                    capacity,
                    &cache_v[h * capacity * d_kv..][..capacity * d_kv],
                    &self.bias_row[..keys],
                    &mut self.scores[..keys],
                    &mut self.context[h * d_kv..][..d_kv],
                );
            }
            layer.self_out.forward_add(&self.context, &mut self.x);

            // cross-attention over the encoder output
            rows::rms_norm(
                &self.x,
                &layer.cross_attention_norm,
                s.epsilon,
                &mut self.normed,
            );
            layer
                .cross_q
                .forward(&self.normed, &mut self.projected[..inner]);
            let (cross_k, cross_v) = (&self.cross_keys[l], &self.cross_values[l]);
            for h in 0..heads {
                attend_head(
                    &self.projected[h * d_kv..][..d_kv],
                    &cross_k[h * d_kv * source..][..d_kv * source],
                    source,
                    &cross_v[h * source * d_kv..][..source * d_kv],
                    &self.cross_bias,
                    &mut self.scores[..source],
                    &mut self.context[h * d_kv..][..d_kv],
                );
            }
            layer.cross_out.forward_add(&self.context, &mut self.x);

            // feed-forward
            rows::rms_norm(&self.x, &layer.ff_norm, s.epsilon, &mut self.normed);
            let hidden = match layer.gated {
                true => {
                    layer.ff_in.forward(&self.normed, &mut self.hidden);
                    let (gate, linear) = self.hidden.split_at_mut(ff);
                    rows::gated_gelu(gate, linear);
                    &self.hidden[..ff]
                }
                false => {
                    layer.ff_in.forward(&self.normed, &mut self.hidden[..ff]);
                    self.hidden[..ff]
                        .iter_mut()
                        .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v });
                    &self.hidden[..ff]
                }
            };
            layer.ff_out.forward_add(hidden, &mut self.x);
        }
        rows::rms_norm(&self.x, &weights.final_norm, s.epsilon, &mut self.normed);
        self.normed.iter_mut().for_each(|v| *v *= s.output_scale);
        weights.lm_head.forward(&self.normed, &mut self.logits);
        self.len += 1;
        Ok(&self.logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(heads: usize, vocab: usize) -> DecoderShape {
        DecoderShape {
            d_model: 2,
            heads,
            d_kv: 1,
            d_ff: 2,
            vocab,
            epsilon: 1e-6,
            output_scale: 1.0,
        }
    }

    /// Sizes of zero and a too-short part are refused by name, never reached by a step.
    #[test]
    fn misfit_weights_are_refused() -> Result<(), ShapeMismatch> {
        let head = PackedLinear::pack(&[0.0; 6], 2, 3)?;
        let refused = |shape, embedding: Vec<f32>| {
            DecoderWeights::new(
                shape,
                embedding,
                Vec::new(),
                vec![1.0; 2],
                head.clone(),
                vec![0.0; 2],
            )
            .err()
        };
        let zero = refused(shape(0, 3), vec![0.0; 6]);
        assert!(matches!(
            zero,
            Some(StepError::Shape(ShapeMismatch { what: "heads", .. }))
        ));
        // no layers
        let none = refused(shape(2, 3), vec![0.0; 6]);
        assert!(matches!(
            none,
            Some(StepError::Shape(ShapeMismatch {
                what: "decoder layers",
                ..
            }))
        ));
        assert!(
            PackedLinear::pack(&[], 0, 3).is_err(),
            "a linear layer of no inputs"
        );
        Ok(())
    }
}
