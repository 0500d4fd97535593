//! The lab/vital time-series encoder (PatchTST-style): each channel's hourly series is cut into
//! patches of `patch_len` hours (value and missingness mask per hour), embedded, given a learnable
//! position encoding and passed through a transformer encoder. Channels are independent and share
//! all weights; each channel comes out as one token (the mean over its patches) plus a learned
//! channel-identity embedding, so later layers know which channel a token stands for.
//!
//! Unlike the ClinRaGen reference code, which reshapes `[B, T, C]` into patches without a
//! transpose and so mixes channels inside a patch, every patch here holds one channel's values
//! (see [`patchify`] and its test).

use burn::module::Param;
use burn::nn::attention::MhaInput;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct SeriesEncoderConfig {
    /// Number of channels (rows of the grid).
    pub channels: usize,
    /// Hours in the grid.
    #[config(default = 48)]
    pub hours: usize,
    #[config(default = 8)]
    pub patch_len: usize,
    #[config(default = 4)]
    pub stride: usize,
    #[config(default = 64)]
    pub d_model: usize,
    #[config(default = 4)]
    pub n_heads: usize,
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = 128)]
    pub d_ff: usize,
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl SeriesEncoderConfig {
    /// Number of patches per channel.
    pub fn patches(&self) -> usize {
        if self.hours < self.patch_len || self.stride == 0 {
            return 0;
        }
        (self.hours - self.patch_len) / self.stride + 1
    }

    pub fn init(&self, device: &Device) -> SeriesEncoder {
        SeriesEncoder {
            patch_embedding: LinearConfig::new(2 * self.patch_len, self.d_model).init(device),
            position: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([self.patches(), self.d_model], device),
            channel_embedding: EmbeddingConfig::new(self.channels, self.d_model).init(device),
            encoder: TransformerEncoderConfig::new(
                self.d_model,
                self.d_ff,
                self.n_heads,
                self.n_layers,
            )
            .with_dropout(self.dropout)
            .with_norm_first(true)
            .init(device),
            patch_len: self.patch_len,
            stride: self.stride,
        }
    }
}

#[derive(Module, Debug)]
pub struct SeriesEncoder {
    pub patch_embedding: Linear,
    pub position: Param<Tensor<2>>,
    pub channel_embedding: Embedding,
    pub encoder: TransformerEncoder,
    patch_len: usize,
    stride: usize,
}

/// Cuts `[batch, channels, hours]` into `[batch, channels, patches, patch_len]`: patch `p` of
/// channel `c` holds hours `p*stride .. p*stride+patch_len` of channel `c` only. A strided view
/// (`unfold`): on a GPU, one kernel per patch and its copy into a stack were 2 × 11 dispatches
/// per diagnosis.
pub fn patchify(series: Tensor<3>, patch_len: usize, stride: usize) -> Tensor<4> {
    series.unfold(2, patch_len, stride)
}

impl SeriesEncoder {
    /// The embedded patches `[batch * channels, patches, d_model]` the encoder reads.
    fn embed(&self, values: Tensor<3>, mask: Tensor<3>) -> Tensor<3> {
        let [batch, channels, _] = values.dims();
        let patches = Tensor::cat(
            vec![
                patchify(values, self.patch_len, self.stride),
                patchify(mask, self.patch_len, self.stride),
            ],
            3,
        );
        let [_, _, n_patches, width] = patches.dims();
        let x = patches.reshape([batch * channels, n_patches, width]);
        self.patch_embedding.forward(x) + self.position.val().unsqueeze_dim(0)
    }

    /// `(start hour, end hour)` of each patch.
    pub fn patch_hours(&self, hours: usize) -> Vec<(usize, usize)> {
        if hours < self.patch_len || self.stride == 0 {
            return Vec::new();
        }
        (0..(hours - self.patch_len) / self.stride + 1)
            .map(|p| (p * self.stride, p * self.stride + self.patch_len))
            .collect()
    }

    /// Where in time each channel's token looked: the attention each patch receives in the last
    /// encoder layer, averaged over heads and over the patches attending, `[batch, channels,
    /// patches]` (each channel's row sums to 1). The channel token is the mean of the last
    /// layer's outputs, so these weights say which hours shaped it.
    pub fn patch_attention(&self, values: Tensor<3>, mask: Tensor<3>) -> Tensor<3> {
        let [batch, channels, _] = values.dims();
        let mut x = self.embed(values, mask);
        let Some((last, earlier)) = self.encoder.layers.split_last() else {
            let patches = x.dims()[1];
            return Tensor::ones([batch, channels, patches], &x.device()) / patches.max(1) as f64;
        };
        for layer in earlier {
            x = layer.forward(x, None, None);
        }
        // the last layer is pre-norm (norm_first): its attention reads norm_2(x)
        let weights = last
            .mha
            .forward(MhaInput::self_attn(last.norm_2.forward(x)))
            .weights;
        let [_, _, _, patches] = weights.dims();
        weights
            .mean_dim(1)
            .mean_dim(2)
            .reshape([batch, channels, patches])
    }

    /// `values` and `mask`: `[batch, channels, hours]`. Returns one token per channel,
    /// `[batch, channels, d_model]`.
    pub fn forward(&self, values: Tensor<3>, mask: Tensor<3>) -> Tensor<3> {
        let [batch, channels, _] = values.dims();
        let x = self.embed(values, mask);
        let x = self.encoder.forward(TransformerEncoderInput::new(x));
        let d_model = x.dims()[2];
        let tokens = x.mean_dim(1).reshape([batch, channels, d_model]);
        let ids = Tensor::<1, Int>::arange(0..channels as i64, &tokens.device())
            .unsqueeze_dim::<2>(0)
            .repeat_dim(0, batch);
        tokens + self.channel_embedding.forward(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_holds_one_channels_values() -> Result<(), String> {
        let device = Device::flex();
        // value = 100 * channel + hour, so every cell says where it came from
        let data: Vec<f32> = (0..2 * 3 * 12)
            .map(|i| {
                let (c, t) = ((i / 12) % 3, i % 12);
                (100 * c + t) as f32
            })
            .collect();
        let series = Tensor::<1>::from_floats(data.as_slice(), &device).reshape([2, 3, 12]);
        let patches = patchify(series, 4, 2);
        assert_eq!(patches.dims(), [2, 3, 5, 4]);
        let out = patches
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        for (i, v) in out.iter().enumerate() {
            let (c, p, k) = ((i / 20) % 3, (i / 4) % 5, i % 4);
            assert_eq!(*v, (100 * c + p * 2 + k) as f32, "cell {i}");
        }
        Ok(())
    }

    #[test]
    fn patch_attention_is_a_distribution_over_patches() -> Result<(), String> {
        let device = Device::flex();
        let config = SeriesEncoderConfig::new(3)
            .with_hours(24)
            .with_d_model(16)
            .with_d_ff(32)
            .with_dropout(0.0);
        let encoder = config.init(&device);
        assert_eq!(
            encoder.patch_hours(24),
            vec![(0, 8), (4, 12), (8, 16), (12, 20), (16, 24)]
        );
        let values = Tensor::<3>::random(
            [2, 3, 24],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let weights = encoder.patch_attention(values.clone(), values.ones_like());
        assert_eq!(weights.dims(), [2, 3, 5]);
        let sums = weights
            .sum_dim(2)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        Ok(())
    }

    #[test]
    fn one_token_per_channel() {
        let device = Device::flex();
        let config = SeriesEncoderConfig::new(5)
            .with_hours(24)
            .with_d_model(16)
            .with_d_ff(32);
        let encoder = config.init(&device);
        let values = Tensor::<3>::zeros([3, 5, 24], &device);
        let out = encoder.forward(values.clone(), values.ones_like());
        assert_eq!(out.dims(), [3, 5, 16]);
    }
}
