//! The layers of a T5 stack: the feed-forward network (ReLU as in the original T5, gated GELU as
//! in T5 v1.1 / Flan-T5) and the pre-norm encoder and decoder layers, each sub-layer wrapped as
//! `x + dropout(sublayer(rms_norm(x)))`.

use burn::nn::{Dropout, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::attention::{KeyValues, T5Attention};
use crate::kernels::{gated_gelu, rms_norm};

#[derive(Module, Debug)]
pub struct FeedForward {
    /// `wi` (ReLU) or `wi_0` (the GELU branch of the gated form).
    pub wi: Linear,
    /// `wi_1`: the linear branch of the gated form.
    pub wi_linear: Option<Linear>,
    pub wo: Linear,
    pub dropout: Dropout,
}

impl FeedForward {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = match &self.wi_linear {
            Some(linear) => gated_gelu(self.wi.forward(x.clone()), linear.forward(x)),
            None => relu(self.wi.forward(x)),
        };
        self.wo.forward(self.dropout.forward(hidden))
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub attention_norm: RmsNorm,
    pub attention: T5Attention,
    pub ff_norm: RmsNorm,
    pub ff: FeedForward,
    pub dropout: Dropout,
}

impl EncoderLayer {
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let h = rms_norm(&self.attention_norm, x.clone());
        let kv = self.attention.key_values(h.clone());
        let x = x + self.dropout.forward(self.attention.attend(h, &kv, bias));
        let h = self.ff.forward(rms_norm(&self.ff_norm, x.clone()));
        x + self.dropout.forward(h)
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attention_norm: RmsNorm,
    pub self_attention: T5Attention,
    pub cross_attention_norm: RmsNorm,
    pub cross_attention: T5Attention,
    pub ff_norm: RmsNorm,
    pub ff: FeedForward,
    pub dropout: Dropout,
}

/// What one decoder layer keeps between decoding steps.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    /// Keys and values of every target position decoded so far.
    pub self_kv: Option<KeyValues>,
    /// Keys and values of the encoder output: computed at the first step, then reused.
    pub cross_kv: Option<KeyValues>,
}

impl LayerCache {
    fn map(&self, f: &impl Fn(Tensor<4>) -> Tensor<4>) -> Self {
        let apply = |kv: &Option<KeyValues>| kv.as_ref().map(|kv| kv.map(f));
        Self {
            self_kv: apply(&self.self_kv),
            cross_kv: apply(&self.cross_kv),
        }
    }
}

impl DecoderLayer {
    /// `x`: the new target positions `[batch, new, d_model]`; their keys and values are appended
    /// to `cache.self_kv`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        encoder: &Tensor<3>,
        self_bias: Tensor<4>,
        cross_bias: Tensor<4>,
        cache: &mut LayerCache,
    ) -> Tensor<3> {
        let h = rms_norm(&self.self_attention_norm, x.clone());
        let new = self.self_attention.key_values(h.clone());
        let kv = match cache.self_kv.take() {
            Some(past) => past.append(new),
            None => new,
        };
        let out = self.self_attention.attend(h, &kv, self_bias);
        cache.self_kv = Some(kv);
        let x = x + self.dropout.forward(out);

        let h = rms_norm(&self.cross_attention_norm, x.clone());
        let cross_kv = cache.cross_kv.get_or_insert_with(|| {
            self.cross_attention
                .key_values(encoder.clone())
                .contiguous()
        });
        let out = self.cross_attention.attend(h, cross_kv, cross_bias);
        let x = x + self.dropout.forward(out);

        let h = self.ff.forward(rms_norm(&self.ff_norm, x.clone()));
        x + self.dropout.forward(h)
    }
}

/// The decoder's key/value cache: one [`LayerCache`] per layer, the number of target positions
/// already decoded, and the attention biases that stay the same from one step to the next, so
/// that a decoding step uploads nothing and recomputes no bias.
#[derive(Debug, Clone, Default)]
pub struct DecoderCache {
    pub layers: Vec<LayerCache>,
    pub len: usize,
    /// `[batch, 1, 1, source]`: the encoder's padding bias, made at the first step (like
    /// `cross_kv`, so a cache serves one encoder output and mask).
    pub cross_bias: Option<Tensor<4>>,
    /// `[1, heads, 1, capacity]`: the self-attention position bias of a query after
    /// `capacity - 1` keys. The decoder's buckets depend only on the distance back to a key, so
    /// the bias of any step up to `capacity` is the tail of this row (see [`Self::step_bias`]).
    pub distance_bias: Option<Tensor<4>>,
}

impl DecoderCache {
    /// Keeps (and repeats) the batch rows in `rows`, in that order: beam search reorders its
    /// hypotheses with this.
    pub fn select(&self, rows: Tensor<1, Int>) -> Self {
        let f = |t: Tensor<4>| t.select(0, rows.clone());
        Self {
            layers: self.layers.iter().map(|l| l.map(&f)).collect(),
            len: self.len,
            cross_bias: self.cross_bias.clone().map(f),
            distance_bias: self.distance_bias.clone(),
        }
    }

    /// `[1, heads, 1, len + 1]`: the self-attention bias of one new position after the `len`
    /// decoded, from `attention`'s table (a decoder's first layer). Nothing after it is hidden,
    /// so no causal mask is added. The row is made for 64 positions at first and for twice as
    /// many whenever it runs out, so a long generation makes it a few times, not at every step.
    pub fn step_bias(&mut self, attention: &T5Attention, device: &Device) -> Tensor<4> {
        let keys = self.len + 1;
        let row = match self.distance_bias.take() {
            Some(row) if row.dims()[3] >= keys => row,
            _ => {
                let capacity = keys.next_power_of_two().max(64);
                attention.position_bias(1, capacity, capacity - 1, device)
            }
        };
        let capacity = row.dims()[3];
        self.distance_bias = Some(row.clone());
        row.narrow(3, capacity - keys, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::t5::T5Config;

    /// One position at a time, past the 64 positions the first self-attention bias row covers,
    /// gives the logits of decoding the whole target at once.
    #[test]
    fn stepping_past_the_bias_row_matches_full_decoding() -> Result<(), Box<dyn std::error::Error>>
    {
        let device = Device::flex();
        device.seed(7);
        let model = T5Config::new(40)
            .with_d_model(16)
            .with_d_kv(4)
            .with_num_heads(2)
            .with_d_ff(24)
            .with_num_layers(1)
            .with_num_decoder_layers(2)
            .init(&device);
        let ids = |values: Vec<i64>| {
            let n = values.len();
            Tensor::<1, Int>::from_data(TensorData::new(values, [n]), &device).reshape([1, n])
        };
        let mask = Tensor::<2>::ones([1, 5], &device);
        let encoder = model.encode(ids(vec![3, 9, 4, 17, 1]), mask.clone());
        let len = 150;
        let target = ids((0..len).map(|i| (i * 7 % 40) as i64).collect());
        let full = model.decode(
            target.clone(),
            &encoder,
            &mask,
            &mut DecoderCache::default(),
        );
        let mut cache = DecoderCache::default();
        let steps: Vec<Tensor<3>> = (0..len)
            .map(|t| model.decode(target.clone().narrow(1, t, 1), &encoder, &mask, &mut cache))
            .collect();
        let diff: f32 = (Tensor::cat(steps, 1) - full).abs().max().into_scalar();
        assert!(diff < 1e-5, "stepped decoding differs by {diff}");
        assert_eq!(cache.distance_bias.map(|b| b.dims()[3]), Some(256));
        Ok(())
    }
}
