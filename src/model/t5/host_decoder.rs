//! The T5 decoder's steps on the CPU through bedside-cpu's allocation-free step
//! ([`bedside_cpu::t5_step`]): the model's weights packed once, each sequence's key/value cache
//! preallocated. On burn's CPU backend a decoding step is otherwise about a hundred tensor
//! operations on a batch of one, each allocating; the step gives the same logits (held to
//! [`T5::decode`] by the tests, which are held to transformers) several times faster.
//!
//! It serves one sequence on the CPU without autodiff; every other case (a GPU, a batch of
//! several rows, training) decodes through [`T5::decode`].

use bedside_cpu::PackedLinear;
use bedside_cpu::t5_step::{
    CrossKeyValues, DecoderLayerWeights, DecoderShape, DecoderState, DecoderWeights,
};
use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use super::{T5, relative_position_bucket};
use crate::error::{BedsideError, Result};
use crate::kernels::host_values;

/// The farthest relative-position distance the packed bias table covers (T5's default is 128;
/// generations here stop at 1,024 tokens).
const MAX_DISTANCE: usize = 4096;

/// A T5's decoder, packed for [`DecoderState::step`].
#[derive(Debug, Clone)]
pub struct HostDecoder {
    weights: DecoderWeights,
}

/// The error of a part that does not fit (a bundle's config and weights disagree).
fn shape_error(e: impl std::fmt::Display) -> BedsideError {
    BedsideError::backend("cpu", format!("decoder step: {e}"))
}

/// A tensor's values on the host (the model was checked to be on the CPU).
fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    host_values(&tensor).ok_or_else(|| shape_error("a weight not on the CPU"))
}

/// `[d_in, d_out]` weights of linear layers of the same input, packed side by side.
fn side_by_side(linears: &[&Linear]) -> Result<PackedLinear> {
    let mut parts = Vec::with_capacity(linears.len());
    for linear in linears {
        if linear.bias.is_some() {
            return Err(shape_error("a linear layer with a bias (T5's have none)"));
        }
        let [d_in, d_out] = linear.weight.dims();
        parts.push((values(linear.weight.val())?, d_in, d_out));
    }
    let d_in = parts.first().map_or(0, |p| p.1);
    if parts.iter().any(|p| p.1 != d_in) {
        return Err(shape_error("linear layers of different inputs"));
    }
    let d_out: usize = parts.iter().map(|p| p.2).sum();
    let mut joined = Vec::with_capacity(d_in * d_out);
    for i in 0..d_in {
        for (weight, _, width) in &parts {
            joined.extend_from_slice(&weight[i * width..][..*width]);
        }
    }
    PackedLinear::pack(&joined, d_in, d_out).map_err(shape_error)
}

fn gamma(norm: &RmsNorm) -> Result<Vec<f32>> {
    values(norm.gamma.val())
}

impl HostDecoder {
    /// The decoder of `t5` packed for the CPU step, or `None` where the step does not apply
    /// (the model is not on burn's CPU backend, or is under autodiff).
    pub fn new(t5: &T5) -> Option<Result<Self>> {
        host_values(&t5.decoder_norm.gamma.val())?;
        // the bias table by distance is `heads × distances`: a configuration whose buckets reach
        // further than any generation decodes through burn's operations instead
        let g = t5.decoder.first()?.self_attention.geometry;
        if g.max_distance.max(g.num_buckets) > MAX_DISTANCE {
            return None;
        }
        Some(Self::pack(t5))
    }

    fn pack(t5: &T5) -> Result<Self> {
        let [vocab, d] = t5.shared.weight.dims();
        let first = t5
            .decoder
            .first()
            .ok_or_else(|| shape_error("a decoder without layers"))?;
        let g = first.self_attention.geometry;
        let [d_ff, _] = first.ff.wo.weight.dims();
        let mut layers = Vec::with_capacity(t5.decoder.len());
        for layer in &t5.decoder {
            let (sa, ca, ff) = (&layer.self_attention, &layer.cross_attention, &layer.ff);
            let ff_in: Vec<&Linear> = std::iter::once(&ff.wi)
                .chain(ff.wi_linear.as_ref())
                .collect();
            layers.push(DecoderLayerWeights {
                self_attention_norm: gamma(&layer.self_attention_norm)?,
                self_qkv: side_by_side(&[&sa.q, &sa.k, &sa.v])?,
                self_out: side_by_side(&[&sa.o])?,
                cross_attention_norm: gamma(&layer.cross_attention_norm)?,
                cross_q: side_by_side(&[&ca.q])?,
                cross_out: side_by_side(&[&ca.o])?,
                ff_norm: gamma(&layer.ff_norm)?,
                ff_in: side_by_side(&ff_in)?,
                gated: ff.wi_linear.is_some(),
                ff_out: side_by_side(&[&ff.wo])?,
            });
        }
        let lm_head = match &t5.lm_head {
            Some(head) => side_by_side(&[head])?,
            // tied: the embedding `[vocab, d]` is the projection's transpose
            None => PackedLinear::pack(&values(t5.shared.weight.val().transpose())?, d, vocab)
                .map_err(shape_error)?,
        };
        // the self-attention bias by distance back; beyond the table's last distance every key
        // shares the last bucket
        let distances = g.max_distance.max(g.num_buckets) + 1;
        let mut distance_bias = vec![0.0; g.heads * distances];
        if let Some(table) = &first.self_attention.relative_attention_bias {
            let table = values(table.weight.val())?;
            for distance in 0..distances {
                let bucket = relative_position_bucket(
                    -(distance as i64),
                    false,
                    g.num_buckets,
                    g.max_distance,
                );
                for h in 0..g.heads {
                    distance_bias[h * distances + distance] = *table
                        .get(bucket * g.heads + h)
                        .ok_or_else(|| shape_error("a position bias table short of its buckets"))?;
                }
            }
        }
        let shape = DecoderShape {
            d_model: d,
            heads: g.heads,
            d_kv: g.d_kv,
            d_ff,
            vocab,
            epsilon: first.self_attention_norm.epsilon as f32,
            output_scale: match t5.scale_output {
                true => (d as f32).powf(-0.5),
                false => 1.0,
            },
        };
        let weights = DecoderWeights::new(
            shape,
            values(t5.shared.weight.val())?,
            layers,
            gamma(&t5.decoder_norm)?,
            lm_head,
            distance_bias,
        )
        .map_err(shape_error)?;
        Ok(Self { weights })
    }

    /// A decoding state for the one sequence of `encoder` (`[1, source, d_model]`, padding `mask`
    /// `[1, source]`), with room for `capacity` positions; `None` off the CPU.
    pub fn start(
        &self,
        t5: &T5,
        encoder: &Tensor<3>,
        mask: &Tensor<2>,
        capacity: usize,
    ) -> Option<Result<DecoderState>> {
        if encoder.dims()[0] != 1 {
            return Some(Err(shape_error("the step decodes one sequence")));
        }
        let mask = host_values(mask)?;
        let mut projected = Vec::with_capacity(t5.decoder.len());
        for layer in &t5.decoder {
            let attention = &layer.cross_attention;
            projected.push((
                host_values(&attention.k.forward(encoder.clone()))?,
                host_values(&attention.v.forward(encoder.clone()))?,
            ));
        }
        let cross: Vec<CrossKeyValues<'_>> = projected
            .iter()
            .map(|(keys, values)| CrossKeyValues { keys, values })
            .collect();
        Some(DecoderState::new(&self.weights, &mask, &cross, capacity).map_err(shape_error))
    }

    /// Decodes `token` and returns the next position's logits.
    pub fn step<'a>(&self, state: &'a mut DecoderState, token: u32) -> Result<&'a [f32]> {
        state.step(&self.weights, token).map_err(shape_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::max_abs_diff;
    use crate::model::t5::{DecoderCache, FeedForwardKind, T5Config};

    /// Each form of T5 (gated GELU and ReLU, tied and separate output projections), an encoder
    /// output with padding, 150 steps from a cache made for 16 (so it grows past its room and
    /// past the 128-position bias distance): the step's logits are burn's `decode`'s.
    #[test]
    fn steps_match_burns_decoding() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let device = Device::flex();
        for (seed, feed_forward, tied) in [
            (3, FeedForwardKind::GatedGelu, false),
            (4, FeedForwardKind::Relu, true),
        ] {
            device.seed(seed);
            let model = T5Config::new(40)
                .with_d_model(16)
                .with_d_kv(4)
                .with_num_heads(3)
                .with_d_ff(24)
                .with_num_layers(1)
                .with_num_decoder_layers(2)
                .with_relative_attention_max_distance(64)
                .with_feed_forward(feed_forward)
                .with_tie_word_embeddings(tied)
                .init(&device);
            let ids = Tensor::<1, Int>::from_data(
                TensorData::new(vec![3i64, 9, 4, 17, 1, 0], [6]),
                &device,
            )
            .reshape([1, 6]);
            let mask =
                Tensor::<1>::from_floats([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], &device).reshape([1, 6]);
            let encoder = model.encode(ids, mask.clone());
            let decoder = HostDecoder::new(&model).ok_or("not on the CPU")??;
            let mut state = decoder
                .start(&model, &encoder, &mask, 16)
                .ok_or("not on the CPU")??;
            let mut cache = DecoderCache::default();
            for t in 0..150u32 {
                let token = t * 7 % 40;
                let ours = decoder.step(&mut state, token)?.to_vec();
                let id =
                    Tensor::<1, Int>::from_data(TensorData::new(vec![token as i64], [1]), &device)
                        .reshape([1, 1]);
                let burns: Vec<f32> = model
                    .decode(id, &encoder, &mask, &mut cache)
                    .into_data()
                    .try_to_vec()
                    .map_err(|e| format!("{e:?}"))?;
                let diff = max_abs_diff(&ours, &burns);
                assert!(
                    diff < 1e-5,
                    "{feed_forward:?}, tied {tied}, step {t}: logits differ by {diff}"
                );
            }
            assert!(
                decoder.step(&mut state, 40).is_err(),
                "a token outside the vocabulary"
            );
        }
        Ok(())
    }
}
