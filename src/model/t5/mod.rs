//! A T5-family encoder–decoder language model (original T5 and T5 v1.1 / Flan-T5), the language
//! model of bedside. The same module trains in `bedside-train` and runs in the browser; HuggingFace
//! checkpoints load through [`hf`], so a user who has Flan-T5-small (the ClinRaGen paper's model)
//! can start from it. Numerics follow transformers' `T5ForConditionalGeneration` (parity tested
//! against it in `tests/t5_parity.rs`): no scaling of attention scores, relative position buckets,
//! RMS layer norm, and — with tied embeddings — decoder outputs scaled by `d_model^-0.5`.

pub mod attention;
pub mod hf;
pub mod host_decoder;
pub mod layers;

use std::convert::Infallible;

use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::prelude::*;

use crate::kernels::{self, rms_norm};
pub use attention::{AttentionGeometry, T5Attention, relative_position_bucket};
pub use host_decoder::HostDecoder;
pub use layers::{DecoderCache, DecoderLayer, EncoderLayer, FeedForward, LayerCache};

/// The feed-forward form: `relu` (original T5) or `gated-gelu` (T5 v1.1, Flan-T5).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum FeedForwardKind {
    Relu,
    GatedGelu,
}

#[derive(Config, Debug)]
pub struct T5Config {
    pub vocab_size: usize,
    #[config(default = 256)]
    pub d_model: usize,
    #[config(default = 32)]
    pub d_kv: usize,
    #[config(default = 1024)]
    pub d_ff: usize,
    #[config(default = 4)]
    pub num_layers: usize,
    #[config(default = 4)]
    pub num_decoder_layers: usize,
    #[config(default = 8)]
    pub num_heads: usize,
    #[config(default = 32)]
    pub relative_attention_num_buckets: usize,
    #[config(default = 128)]
    pub relative_attention_max_distance: usize,
    #[config(default = 1e-6)]
    pub layer_norm_epsilon: f64,
    #[config(default = "FeedForwardKind::GatedGelu")]
    pub feed_forward: FeedForwardKind,
    /// Output projection shared with the input embedding (original T5) or separate (v1.1).
    #[config(default = false)]
    pub tie_word_embeddings: bool,
    /// Multiplies the decoder output by `d_model^-0.5` before the output projection.
    /// transformers ≥ 5 writes it (and ties every T5); absent, it follows `tie_word_embeddings`
    /// as in transformers 4.
    #[config(default = "None")]
    pub scale_decoder_outputs: Option<bool>,
    #[config(default = 0.1)]
    pub dropout_rate: f64,
    #[config(default = 0)]
    pub pad_token_id: usize,
    #[config(default = 1)]
    pub eos_token_id: usize,
    #[config(default = 0)]
    pub decoder_start_token_id: usize,
}

/// Where a T5's parameters come from, named as in HuggingFace checkpoints: fresh random values
/// ([`T5Config::init`]) or a checkpoint ([`hf::load`]). One construction path serves both, so an
/// imported model cannot differ in structure from a trained one.
pub trait ParamSource {
    type Error;
    /// A bias-free linear layer `d_in → d_out`; `std` is the initialisation scale.
    fn linear(
        &mut self,
        name: &str,
        d_in: usize,
        d_out: usize,
        std: f64,
    ) -> Result<Linear, Self::Error>;
    fn embedding(
        &mut self,
        name: &str,
        n: usize,
        d: usize,
        std: f64,
    ) -> Result<Embedding, Self::Error>;
    fn norm(&mut self, name: &str, d: usize, epsilon: f64) -> Result<RmsNorm, Self::Error>;
}

/// Random initialisation as transformers' `T5PreTrainedModel._init_weights` (factor 1).
pub struct FreshParams<'a>(pub &'a Device);

impl ParamSource for FreshParams<'_> {
    type Error = Infallible;
    fn linear(
        &mut self,
        _: &str,
        d_in: usize,
        d_out: usize,
        std: f64,
    ) -> Result<Linear, Infallible> {
        Ok(LinearConfig::new(d_in, d_out)
            .with_bias(false)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(self.0))
    }
    fn embedding(
        &mut self,
        _: &str,
        n: usize,
        d: usize,
        std: f64,
    ) -> Result<Embedding, Infallible> {
        Ok(EmbeddingConfig::new(n, d)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(self.0))
    }
    fn norm(&mut self, _: &str, d: usize, epsilon: f64) -> Result<RmsNorm, Infallible> {
        Ok(RmsNormConfig::new(d).with_epsilon(epsilon).init(self.0))
    }
}

impl T5Config {
    pub fn init(&self, device: &Device) -> T5 {
        match self.build(&mut FreshParams(device)) {
            Ok(model) => model,
            Err(never) => match never {},
        }
    }

    /// Whether the decoder output is scaled by `d_model^-0.5` (see `scale_decoder_outputs`).
    pub fn scales_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs
            .unwrap_or(self.tie_word_embeddings)
    }

    /// Number of parameters of the model this config builds.
    pub fn num_params(&self) -> usize {
        let (d, inner, ff) = (self.d_model, self.num_heads * self.d_kv, self.d_ff);
        let attention = 4 * d * inner;
        let ff = ff
            * d
            * if self.feed_forward == FeedForwardKind::GatedGelu {
                3
            } else {
                2
            };
        let bias = 2 * self.relative_attention_num_buckets * self.num_heads;
        let embeddings = self.vocab_size * d * if self.tie_word_embeddings { 1 } else { 2 };
        embeddings
            + self.num_layers * (attention + ff + 2 * d)
            + self.num_decoder_layers * (2 * attention + ff + 3 * d)
            + bias
            + 2 * d
    }

    fn dropout(&self) -> Dropout {
        DropoutConfig::new(self.dropout_rate).init()
    }

    fn geometry(&self, bidirectional: bool) -> AttentionGeometry {
        AttentionGeometry {
            heads: self.num_heads,
            d_kv: self.d_kv,
            bidirectional,
            num_buckets: self.relative_attention_num_buckets,
            max_distance: self.relative_attention_max_distance,
        }
    }

    fn attention<S: ParamSource>(
        &self,
        src: &mut S,
        name: &str,
        with_bias: bool,
        bidirectional: bool,
    ) -> Result<T5Attention, S::Error> {
        let (d, inner) = (self.d_model, self.num_heads * self.d_kv);
        let d_f = d as f64;
        Ok(T5Attention {
            q: src.linear(
                &format!("{name}.q"),
                d,
                inner,
                (d_f * self.d_kv as f64).powf(-0.5),
            )?,
            k: src.linear(&format!("{name}.k"), d, inner, d_f.powf(-0.5))?,
            v: src.linear(&format!("{name}.v"), d, inner, d_f.powf(-0.5))?,
            o: src.linear(&format!("{name}.o"), inner, d, (inner as f64).powf(-0.5))?,
            relative_attention_bias: match with_bias {
                true => Some(src.embedding(
                    &format!("{name}.relative_attention_bias"),
                    self.relative_attention_num_buckets,
                    self.num_heads,
                    d_f.powf(-0.5),
                )?),
                false => None,
            },
            geometry: self.geometry(bidirectional),
        })
    }

    fn feed_forward<S: ParamSource>(
        &self,
        src: &mut S,
        name: &str,
    ) -> Result<FeedForward, S::Error> {
        let (d, ff) = (self.d_model, self.d_ff);
        let std_in = (d as f64).powf(-0.5);
        let (wi, wi_linear) = match self.feed_forward {
            FeedForwardKind::Relu => (src.linear(&format!("{name}.wi"), d, ff, std_in)?, None),
            FeedForwardKind::GatedGelu => (
                src.linear(&format!("{name}.wi_0"), d, ff, std_in)?,
                Some(src.linear(&format!("{name}.wi_1"), d, ff, std_in)?),
            ),
        };
        Ok(FeedForward {
            wi,
            wi_linear,
            wo: src.linear(&format!("{name}.wo"), ff, d, (ff as f64).powf(-0.5))?,
            dropout: self.dropout(),
        })
    }

    /// Builds the model from `src`, asking for every parameter by its HuggingFace name.
    pub fn build<S: ParamSource>(&self, src: &mut S) -> Result<T5, S::Error> {
        let (d, eps) = (self.d_model, self.layer_norm_epsilon);
        let shared = src.embedding("shared", self.vocab_size, d, 1.0)?;
        let mut encoder = Vec::with_capacity(self.num_layers);
        for i in 0..self.num_layers {
            let p = format!("encoder.block.{i}.layer");
            encoder.push(EncoderLayer {
                attention_norm: src.norm(&format!("{p}.0.layer_norm"), d, eps)?,
                attention: self.attention(src, &format!("{p}.0.SelfAttention"), i == 0, true)?,
                ff_norm: src.norm(&format!("{p}.1.layer_norm"), d, eps)?,
                ff: self.feed_forward(src, &format!("{p}.1.DenseReluDense"))?,
                dropout: self.dropout(),
            });
        }
        let encoder_norm = src.norm("encoder.final_layer_norm", d, eps)?;
        let mut decoder = Vec::with_capacity(self.num_decoder_layers);
        for i in 0..self.num_decoder_layers {
            let p = format!("decoder.block.{i}.layer");
            decoder.push(DecoderLayer {
                self_attention_norm: src.norm(&format!("{p}.0.layer_norm"), d, eps)?,
                self_attention: self.attention(
                    src,
                    &format!("{p}.0.SelfAttention"),
                    i == 0,
                    false,
                )?,
                cross_attention_norm: src.norm(&format!("{p}.1.layer_norm"), d, eps)?,
                cross_attention: self.attention(
                    src,
                    &format!("{p}.1.EncDecAttention"),
                    false,
                    true,
                )?,
                ff_norm: src.norm(&format!("{p}.2.layer_norm"), d, eps)?,
                ff: self.feed_forward(src, &format!("{p}.2.DenseReluDense"))?,
                dropout: self.dropout(),
            });
        }
        let decoder_norm = src.norm("decoder.final_layer_norm", d, eps)?;
        let lm_head = match self.tie_word_embeddings {
            true => None,
            // transformers draws lm_head with std 1 (logits of std sqrt(d_model)); d_model^-0.5
            // trains faster from scratch and does not matter for imported weights
            false => Some(src.linear("lm_head", d, self.vocab_size, (d as f64).powf(-0.5))?),
        };
        Ok(T5 {
            shared,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            lm_head,
            dropout: self.dropout(),
            d_model: d,
            scale_output: self.scales_decoder_outputs(),
            // below vocab_size (at most 2^18) once the config is checked
            decoder_start: u32::try_from(self.decoder_start_token_id).unwrap_or(0),
        })
    }
}

#[derive(Module, Debug)]
pub struct T5 {
    pub shared: Embedding,
    pub encoder: Vec<EncoderLayer>,
    pub encoder_norm: RmsNorm,
    pub decoder: Vec<DecoderLayer>,
    pub decoder_norm: RmsNorm,
    /// `None` when the output projection is tied to `shared`.
    pub lm_head: Option<Linear>,
    pub dropout: Dropout,
    d_model: usize,
    /// See [`T5Config::scale_decoder_outputs`].
    scale_output: bool,
    /// See [`T5Config::decoder_start_token_id`].
    decoder_start: u32,
}

/// `[batch, 1, 1, len]` additive bias from a `[batch, len]` mask (1 = real token, 0 = padding):
/// padding gets -1e9, which `exp` turns into exactly zero weight.
pub fn padding_bias(mask: Tensor<2>) -> Tensor<4> {
    let [batch, len] = mask.dims();
    ((mask - 1.0) * 1e9).reshape([batch, 1, 1, len])
}

/// `[1, 1, new, offset + new]` additive bias that hides future positions from the decoder.
fn causal_bias(new: usize, offset: usize, device: &Device) -> Tensor<4> {
    let keys = offset + new;
    let values: Vec<f32> = (0..new)
        .flat_map(|q| (0..keys).map(move |k| if k > offset + q { -1e9 } else { 0.0 }))
        .collect();
    Tensor::<1>::from_data(TensorData::new(values, [new * keys]), device).reshape([1, 1, new, keys])
}

impl T5 {
    pub fn d_model(&self) -> usize {
        self.d_model
    }

    /// The token the decoder starts from (the config's `decoder_start_token_id`).
    pub fn decoder_start(&self) -> u32 {
        self.decoder_start
    }

    /// Token embeddings `[batch, len, d_model]` of `ids` (`[batch, len]`).
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.shared.forward(ids)
    }

    /// Encodes token ids. `mask`: `[batch, len]`, 1 for real tokens and 0 for padding; padding
    /// never changes the outputs at real positions.
    pub fn encode(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        self.encode_embeddings(self.embed(ids), mask)
    }

    /// Encodes embeddings directly (token embeddings with time-series tokens appended).
    pub fn encode_embeddings(&self, embeddings: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let [_, len, _] = embeddings.dims();
        let device = embeddings.device();
        // every layer adds it: copied once into the order the softmax reads, not in each layer
        let bias = kernels::contiguous(
            match self.encoder.first() {
                Some(layer) => layer.attention.position_bias(len, len, 0, &device),
                None => return rms_norm(&self.encoder_norm, embeddings),
            } + padding_bias(mask),
        );
        let mut x = self.dropout.forward(embeddings);
        for layer in &self.encoder {
            x = layer.forward(x, bias.clone());
        }
        self.dropout.forward(rms_norm(&self.encoder_norm, x))
    }

    /// Decoder hidden states for the new target ids `[batch, new]`, continuing `cache` (empty for
    /// a full pass). `encoder_mask` is the encoder's padding mask.
    pub fn decode_hidden(
        &self,
        ids: Tensor<2, Int>,
        encoder: &Tensor<3>,
        encoder_mask: &Tensor<2>,
        cache: &mut DecoderCache,
    ) -> Tensor<3> {
        let [_, new] = ids.dims();
        let device = encoder.device();
        let offset = cache.len;
        cache
            .layers
            .resize_with(self.decoder.len(), LayerCache::default);
        let self_bias = match self.decoder.first() {
            Some(layer) if new == 1 => cache.step_bias(&layer.self_attention, &device),
            Some(layer) => kernels::contiguous(
                layer
                    .self_attention
                    .position_bias(new, offset + new, offset, &device)
                    + causal_bias(new, offset, &device),
            ),
            None => Tensor::zeros([1, 1, new, offset + new], &device),
        };
        let cross_bias = cache
            .cross_bias
            .get_or_insert_with(|| padding_bias(encoder_mask.clone()))
            .clone();
        let mut x = self.dropout.forward(self.embed(ids));
        for (layer, layer_cache) in self.decoder.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward(
                x,
                encoder,
                self_bias.clone(),
                cross_bias.clone(),
                layer_cache,
            );
        }
        cache.len += new;
        self.dropout.forward(rms_norm(&self.decoder_norm, x))
    }

    /// Vocabulary logits of decoder hidden states.
    pub fn lm_logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let hidden = match self.scale_output {
            true => hidden * (self.d_model as f64).powf(-0.5),
            false => hidden,
        };
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(self.shared.weight.val().transpose().unsqueeze_dim(0)),
        }
    }

    /// Logits `[batch, new, vocab]` for the new target ids, continuing `cache`.
    pub fn decode(
        &self,
        ids: Tensor<2, Int>,
        encoder: &Tensor<3>,
        encoder_mask: &Tensor<2>,
        cache: &mut DecoderCache,
    ) -> Tensor<3> {
        self.lm_logits(self.decode_hidden(ids, encoder, encoder_mask, cache))
    }

    /// Teacher-forced logits `[batch, target_len, vocab]`.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        decoder_ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let encoder = self.encode(ids, mask.clone());
        self.decode(decoder_ids, &encoder, &mask, &mut DecoderCache::default())
    }
}
