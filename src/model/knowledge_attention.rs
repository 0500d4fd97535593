//! Knowledge-augmented attention (ClinRaGen; Time-LLM's reprogramming layer restricted to
//! knowledge tokens): turns each lab channel's token into a token of the language model's own
//! embedding space by attending over *knowledge prototypes*.
//!
//! `E_K` is the language model's input embedding of every unique token of the knowledge texts
//! (channel and phenotype descriptions), in ascending token-id order. It is copied in when the
//! model is built and stored with the model (never re-derived at load time, so a bundle does not
//! depend on how its tokenizer is read). A mapping layer — linear over the token axis — mixes the
//! K knowledge tokens into S prototypes; queries come from the channel tokens, keys and values from
//! the prototypes; the output is projected to `d_model`. The attention weights (channel ×
//! prototype) are returned for the browser to show.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

#[derive(Config, Debug)]
pub struct KnowledgeAttentionConfig {
    /// Width of the incoming channel tokens (the time-series encoder's d_model).
    pub d_series: usize,
    /// Width of the language model.
    pub d_model: usize,
    /// Number of unique knowledge tokens (rows of `E_K`).
    pub knowledge_tokens: usize,
    #[config(default = 24)]
    pub prototypes: usize,
    #[config(default = 8)]
    pub heads: usize,
    /// Width of each head's keys; default d_model / heads.
    pub d_keys: Option<usize>,
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl KnowledgeAttentionConfig {
    fn d_keys(&self) -> usize {
        self.d_keys
            .unwrap_or((self.d_model / self.heads.max(1)).max(1))
    }

    /// `knowledge`: `E_K`, `[knowledge_tokens, d_model]` (zeros when the weights will be loaded).
    pub fn init(&self, knowledge: Tensor<2>, device: &Device) -> KnowledgeAttention {
        let inner = self.heads * self.d_keys();
        KnowledgeAttention {
            knowledge: Param::from_tensor(knowledge).set_require_grad(false),
            mapping: LinearConfig::new(self.knowledge_tokens, self.prototypes).init(device),
            query: LinearConfig::new(self.d_series, inner).init(device),
            key: LinearConfig::new(self.d_model, inner).init(device),
            value: LinearConfig::new(self.d_model, inner).init(device),
            out: LinearConfig::new(inner, self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
        }
    }
}

#[derive(Module, Debug)]
pub struct KnowledgeAttention {
    /// `E_K`: frozen token embeddings of the knowledge texts.
    pub knowledge: Param<Tensor<2>>,
    /// Linear over the token axis: K knowledge tokens → S prototypes.
    pub mapping: Linear,
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub out: Linear,
    pub dropout: Dropout,
    heads: usize,
}

impl KnowledgeAttention {
    /// The S prototypes, `[prototypes, d_model]`.
    pub fn prototypes(&self) -> Tensor<2> {
        // mapping acts on the token axis: (E_K^T W)^T
        self.mapping
            .forward(self.knowledge.val().transpose())
            .transpose()
    }

    /// `channels`: `[batch, channels, d_series]`. Returns the channel tokens in the language
    /// model's space, `[batch, channels, d_model]`, and the attention weights
    /// `[batch, heads, channels, prototypes]`.
    pub fn forward(&self, channels: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let [batch, n, _] = channels.dims();
        let prototypes = self.prototypes();
        let [s, _] = prototypes.dims();
        let h = self.heads;
        let q = self.query.forward(channels);
        let inner = q.dims()[2];
        let e = inner / h;
        let q = q.reshape([batch, n, h, e]).swap_dims(1, 2);
        let k = self
            .key
            .forward(prototypes.clone())
            .reshape([1, s, h, e])
            .swap_dims(1, 2);
        let v = self
            .value
            .forward(prototypes)
            .reshape([1, s, h, e])
            .swap_dims(1, 2);
        let scores = q.matmul(k.swap_dims(2, 3)) / (e as f64).sqrt();
        let weights = softmax(scores, 3);
        let context = self
            .dropout
            .forward(weights.clone())
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, n, inner]);
        (self.out.forward(context), weights)
    }
}

/// The unique token ids of the knowledge texts in ascending order: the rows of `E_K`.
pub fn knowledge_token_ids(tokenizer: &crate::tokenizer::TextTokenizer) -> crate::Result<Vec<u32>> {
    let mut ids = std::collections::BTreeSet::new();
    for text in crate::knowledge::knowledge_texts() {
        ids.extend(tokenizer.encode(text)?);
    }
    ids.remove(&tokenizer.eos_id());
    ids.remove(&tokenizer.pad_id());
    Ok(ids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_distributions_over_prototypes() -> Result<(), String> {
        let device = Device::flex();
        let config = KnowledgeAttentionConfig::new(16, 32, 50)
            .with_prototypes(6)
            .with_heads(4);
        let knowledge = Tensor::<2>::random(
            [50, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let layer = config.init(knowledge, &device);
        assert!(!layer.knowledge.val().is_require_grad());
        let channels = Tensor::<3>::random(
            [2, 5, 16],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (tokens, weights) = layer.forward(channels);
        assert_eq!(tokens.dims(), [2, 5, 32]);
        assert_eq!(weights.dims(), [2, 4, 5, 6]);
        let sums = weights
            .sum_dim(3)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        Ok(())
    }
}
