//! The multimodal ClinRaGen model: the prompt's token embeddings with the lab channel tokens
//! (time-series encoder → knowledge-augmented attention) appended, under one padding mask, into the
//! T5 encoder; the decoder writes diagnoses and rationale; a phenotype head on the masked mean of
//! the encoder output gives probabilities for the UI. Padding is masked everywhere (the reference
//! code attends to padding at evaluation; this does not), and pad tokens never count in the loss.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::input::{ClinicalInput, length_mask};
use super::knowledge_attention::{KnowledgeAttention, KnowledgeAttentionConfig};
use super::series::{SeriesEncoder, SeriesEncoderConfig};
use super::t5::{T5, T5Config};
use super::wide::{WideHead, WideHeadConfig};

#[derive(Config, Debug)]
pub struct ClinicalModelConfig {
    pub t5: T5Config,
    pub series: SeriesEncoderConfig,
    /// Rows of `E_K`: unique knowledge tokens.
    pub knowledge_tokens: usize,
    #[config(default = 24)]
    pub prototypes: usize,
    #[config(default = 8)]
    pub knowledge_heads: usize,
    #[config(default = 25)]
    pub phenotypes: usize,
    /// Hidden width of the phenotype head's MLP.
    #[config(default = 128)]
    pub head_hidden: usize,
    /// `Some(true)` adds the wide half ([`WideHead`]) to the phenotype head; absent in bundles
    /// written before it existed (an `Option` because burn's configs read a missing field as
    /// `None` only for options).
    #[config(default = "None")]
    pub wide: Option<bool>,
}

/// The phenotype head: an MLP over the masked mean of the encoder output and, kept apart per
/// channel, the encoder outputs at the channel tokens — a mean over channel tokens alone would
/// wash out which channel is abnormal.
#[derive(Module, Debug)]
pub struct ClinicalHead {
    pub hidden: Linear,
    pub output: Linear,
}

/// The parts that ClinRaGen's stages train or freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    LanguageModel,
    SeriesEncoder,
    KnowledgeAttention,
    /// The phenotype head's MLP.
    PhenotypeHead,
    /// The phenotype head's wide half.
    WideHead,
}

impl ClinicalModelConfig {
    fn knowledge_config(&self) -> KnowledgeAttentionConfig {
        KnowledgeAttentionConfig::new(self.series.d_model, self.t5.d_model, self.knowledge_tokens)
            .with_prototypes(self.prototypes)
            .with_heads(self.knowledge_heads)
            .with_dropout(self.t5.dropout_rate)
    }

    /// A model with a fresh language model and `E_K` taken from its embeddings of
    /// `knowledge_ids`.
    pub fn init(&self, knowledge_ids: &[u32], device: &Device) -> ClinicalModel {
        self.init_with_lm(self.t5.init(device), knowledge_ids, device)
    }

    fn head(&self, device: &Device) -> ClinicalHead {
        let width = self.t5.d_model * (1 + self.series.channels);
        ClinicalHead {
            hidden: LinearConfig::new(width, self.head_hidden).init(device),
            output: LinearConfig::new(self.head_hidden, self.phenotypes).init(device),
        }
    }

    fn wide_head(&self, device: &Device) -> Option<WideHead> {
        self.wide.unwrap_or(false).then(|| {
            WideHeadConfig::new(self.t5.vocab_size, self.series.channels, self.phenotypes)
                .init(device)
        })
    }

    /// A model whose weights will be loaded (`E_K` zeros until then).
    pub fn init_empty(&self, device: &Device) -> ClinicalModel {
        let knowledge = Tensor::zeros([self.knowledge_tokens, self.t5.d_model], device);
        ClinicalModel {
            knowledge: self.knowledge_config().init(knowledge, device),
            series: self.series.init(device),
            phenotype_head: self.head(device),
            wide: self.wide_head(device),
            lm: self.t5.init(device),
        }
    }

    /// A model around an existing (e.g. imported Flan-T5) language model.
    pub fn init_with_lm(&self, lm: T5, knowledge_ids: &[u32], device: &Device) -> ClinicalModel {
        let knowledge = knowledge_embeddings(&lm, knowledge_ids, device);
        ClinicalModel {
            knowledge: self.knowledge_config().init(knowledge, device),
            series: self.series.init(device),
            phenotype_head: self.head(device),
            wide: self.wide_head(device),
            lm,
        }
    }
}

fn knowledge_embeddings(lm: &T5, ids: &[u32], device: &Device) -> Tensor<2> {
    let ids: Vec<i64> = ids.iter().map(|i| i64::from(*i)).collect();
    let n = ids.len();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), device);
    lm.shared.weight.val().select(0, ids).detach()
}

#[derive(Module, Debug)]
pub struct ClinicalModel {
    pub lm: T5,
    pub series: SeriesEncoder,
    pub knowledge: KnowledgeAttention,
    pub phenotype_head: ClinicalHead,
    pub wide: Option<WideHead>,
}

/// The encoder's output for a batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub hidden: Tensor<3>,
    pub mask: Tensor<2>,
    /// Knowledge attention weights `[batch, heads, channels, prototypes]` when labs were read.
    pub knowledge_weights: Option<Tensor<4>>,
    /// The encoder outputs at the channel tokens `[batch, channels, d_model]` and the channels'
    /// mask, when labs were read.
    pub channels: Option<(Tensor<3>, Tensor<2>)>,
    /// The wide half's logits `[batch, phenotypes]` of what was read, for models that have one.
    pub wide: Option<Tensor<2>>,
}

impl ClinicalModel {
    /// Re-copies `E_K` from the language model's current embeddings (after stage 1 trained them).
    pub fn refresh_knowledge(mut self, knowledge_ids: &[u32]) -> Self {
        let device = self.lm.shared.weight.val().device();
        let e_k = knowledge_embeddings(&self.lm, knowledge_ids, &device);
        self.knowledge.knowledge = burn::module::Param::from_tensor(e_k).set_require_grad(false);
        self
    }

    /// Stops gradients into `part` (ClinRaGen's per-stage freezing); dropout stays active.
    pub fn freeze_part(mut self, part: Part) -> Self {
        match part {
            Part::LanguageModel => self.lm = self.lm.no_grad(),
            Part::SeriesEncoder => self.series = self.series.no_grad(),
            Part::KnowledgeAttention => self.knowledge = self.knowledge.no_grad(),
            Part::PhenotypeHead => self.phenotype_head = self.phenotype_head.no_grad(),
            Part::WideHead => self.wide = self.wide.map(|w| w.no_grad()),
        }
        self
    }

    /// Keeps `E_K` out of training (call after any `set_require_grad(true)`).
    pub fn freeze_knowledge_tokens(mut self) -> Self {
        self.knowledge.knowledge = self.knowledge.knowledge.set_require_grad(false);
        self
    }

    /// Channel tokens in the language model's space with their mask: a channel with no
    /// observation at all is padding.
    pub fn channel_tokens(
        &self,
        values: Tensor<3>,
        observed: Tensor<3>,
    ) -> (Tensor<3>, Tensor<2>, Tensor<4>) {
        let mask = observed.clone().max_dim(2).squeeze_dim(2);
        let (tokens, weights) = self
            .knowledge
            .forward(self.series.forward(values, observed));
        (tokens, mask, weights)
    }

    /// Encodes a batch. Each row reads its real prompt tokens, then its channel tokens, then
    /// padding: padding only ever comes last, so that T5's relative positions between a row's
    /// text and its channel tokens do not depend on the other rows of the batch.
    pub fn encode(&self, input: &ClinicalInput) -> Encoded {
        let text = input.text.as_ref().map(|(ids, lengths)| {
            let [batch, len] = ids.dims();
            let mask = length_mask(lengths, batch, len, &ids.device());
            (self.lm.embed(ids.clone()), mask, lengths)
        });
        let series = input
            .series
            .as_ref()
            .map(|(values, observed)| self.channel_tokens(values.clone(), observed.clone()));
        // where each row's channel tokens sit: after its real prompt tokens
        let channel_start: Vec<usize> = match &input.text {
            Some((ids, lengths)) => lengths.iter().map(|l| (*l).min(ids.dims()[1])).collect(),
            None => Vec::new(),
        };
        let (embeddings, mask, knowledge_weights, channel_mask) = match (text, series) {
            (Some((e, m, _)), None) => (e, m, None, None),
            (None, Some((e, m, w))) => (e, m.clone(), Some(w), Some(m)),
            (Some((te, tm, lengths)), Some((ce, cm, w))) => {
                let [batch, len, d] = te.dims();
                let channels = ce.dims()[1];
                let device = te.device();
                // row r: text 0..L_r, channels (at len..len+C), then text padding (index len-1,
                // which is padding whenever L_r < len)
                let index: Vec<i64> = (0..batch)
                    .flat_map(|r| {
                        let l = lengths.get(r).copied().unwrap_or(0).min(len);
                        (0..len + channels).map(move |i| match i {
                            i if i < l => i as i64,
                            i if i < l + channels => (len + i - l) as i64,
                            _ => len as i64 - 1,
                        })
                    })
                    .collect();
                let index = Tensor::<1, Int>::from_data(
                    TensorData::new(index, [batch * (len + channels)]),
                    &device,
                )
                .reshape([batch, len + channels]);
                let embeddings = Tensor::cat(vec![te, ce], 1)
                    .gather(1, index.clone().unsqueeze_dim::<3>(2).repeat_dim(2, d));
                let mask = Tensor::cat(vec![tm, cm.clone()], 1).gather(1, index);
                (embeddings, mask, Some(w), Some(cm))
            }
            (None, None) => {
                let device = self.lm.shared.weight.val().device();
                (
                    Tensor::zeros([1, 0, self.lm.d_model()], &device),
                    Tensor::zeros([1, 0], &device),
                    None,
                    None,
                )
            }
        };
        let hidden = self.lm.encode_embeddings(embeddings, mask.clone());
        let wide = self.wide.as_ref().and_then(|wide| wide.forward(input));
        let channels = channel_mask.map(|channel_mask| {
            let [batch, channels] = channel_mask.dims();
            let d = hidden.dims()[2];
            let device = hidden.device();
            let index: Vec<i64> = (0..batch)
                .flat_map(|r| {
                    let start = channel_start.get(r).copied().unwrap_or(0);
                    (0..channels).map(move |c| (start + c) as i64)
                })
                .collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [batch * channels]), &device)
                    .reshape([batch, channels])
                    .unsqueeze_dim::<3>(2)
                    .repeat_dim(2, d);
            (hidden.clone().gather(1, index), channel_mask)
        });
        Encoded {
            hidden,
            mask,
            knowledge_weights,
            channels,
            wide,
        }
    }

    /// Phenotype logits `[batch, phenotypes]` (see [`ClinicalHead`]).
    pub fn phenotype_logits(&self, encoded: &Encoded) -> Tensor<2> {
        let mask = encoded.mask.clone().unsqueeze_dim::<3>(2);
        let summed = (encoded.hidden.clone() * mask.clone())
            .sum_dim(1)
            .squeeze_dim(1);
        let count = mask.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1.0);
        let pooled: Tensor<2> = summed / count;
        let [batch, d] = pooled.dims();
        let width = self.phenotype_head.hidden.weight.dims()[0];
        let per_channel = match &encoded.channels {
            Some((hidden, mask)) => {
                (hidden.clone() * mask.clone().unsqueeze_dim::<3>(2)).flatten::<2>(1, 2)
            }
            // no labs read (stage 1): those inputs are zero
            None => Tensor::zeros([batch, width - d], &pooled.device()),
        };
        let x = Tensor::cat(vec![pooled, per_channel], 1);
        let x = burn::tensor::activation::gelu(self.phenotype_head.hidden.forward(x));
        let deep = self.phenotype_head.output.forward(x);
        match &encoded.wide {
            Some(wide) => deep + wide.clone(),
            None => deep,
        }
    }

    /// Teacher-forced decoder logits `[batch, len, vocab]` for `targets` (`[batch, len]`, EOS
    /// last, padded): the decoder reads the start token and `targets` shifted right.
    pub fn target_logits(&self, encoded: &Encoded, targets: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = targets.dims();
        let device = targets.device();
        let start = i64::from(self.lm.decoder_start());
        let start = Tensor::<2, Int>::full([batch, 1], start, &device);
        let inputs = Tensor::cat(
            vec![start, targets.narrow(1, 0, len.saturating_sub(1).max(1))],
            1,
        )
        .narrow(1, 0, len);
        let mut cache = super::t5::DecoderCache::default();
        self.lm
            .decode(inputs, &encoded.hidden, &encoded.mask, &mut cache)
    }
}

/// Mean cross-entropy over the real (non-padding) target tokens; `mask` 1 = real.
pub fn sequence_loss(logits: Tensor<3>, targets: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<1> {
    let picked = log_softmax(logits, 2)
        .gather(2, targets.unsqueeze_dim(2))
        .squeeze_dim::<2>(2);
    let total = mask.clone().sum().clamp_min(1.0);
    -(picked * mask).sum() / total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(device: &Device) -> ClinicalModel {
        let t5 = T5Config::new(60)
            .with_d_model(32)
            .with_d_kv(8)
            .with_d_ff(48)
            .with_num_layers(2)
            .with_num_decoder_layers(2)
            .with_num_heads(4)
            .with_dropout_rate(0.0);
        let series = SeriesEncoderConfig::new(5)
            .with_hours(24)
            .with_d_model(16)
            .with_d_ff(32)
            .with_dropout(0.0);
        let config = ClinicalModelConfig::new(t5, series, 10)
            .with_prototypes(4)
            .with_knowledge_heads(2)
            .with_wide(Some(true));
        let mut model = config.init(&(10..20).collect::<Vec<u32>>(), device);
        // the wide half starts at zero: random weights, so that the tests see it
        if let Some(wide) = model.wide.as_mut() {
            let random = |shape: [usize; 2]| {
                burn::module::Param::from_tensor(Tensor::<2>::random(
                    shape,
                    burn::tensor::Distribution::Default,
                    device,
                ))
            };
            wide.words.weight = random(wide.words.weight.dims());
            wide.labs.weight = random(wide.labs.weight.dims());
        }
        model
    }

    fn input(device: &Device, len: usize, pad: usize) -> ClinicalInput {
        let ids: Vec<i64> = (0..len)
            .map(|i| if i < len - pad { 3 + i as i64 } else { 0 })
            .collect();
        let values = Tensor::<3>::random(
            [1, 5, 24],
            burn::tensor::Distribution::Default,
            &Device::flex(),
        )
        .to_device(device);
        let observed = Tensor::<3>::ones([1, 5, 24], device);
        // channel 4 never observed: padding
        let observed =
            observed.slice_assign([0..1, 4..5, 0..24], Tensor::zeros([1, 1, 24], device));
        ClinicalInput {
            text: Some((
                Tensor::from_data(TensorData::new(ids, [1, len]), device),
                vec![len - pad],
            )),
            series: Some((values, observed)),
        }
    }

    #[test]
    fn padding_changes_no_output() -> Result<(), String> {
        let device = Device::flex();
        let model = tiny(&device);
        let plain = input(&device, 6, 0);
        let mut padded = input(&device, 9, 3);
        padded.series = plain.series.clone();
        let a = model.encode(&plain);
        let b = model.encode(&padded);
        assert_eq!(b.hidden.dims(), [1, 9 + 5, 32]);
        assert_eq!(
            a.knowledge_weights.as_ref().map(|w| w.dims()),
            Some([1, 2, 5, 4])
        );
        let pa = model
            .phenotype_logits(&a)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let pb = model
            .phenotype_logits(&b)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let diff = crate::compare::max_abs_diff(&pa, &pb);
        assert!(
            diff < 1e-5,
            "padding changed the phenotype logits by {diff}"
        );
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 6, 7, 1], [1, 4]), &device);
        let la = model
            .target_logits(&a, targets.clone())
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let lb = model
            .target_logits(&b, targets)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let diff = crate::compare::max_abs_diff(&la, &lb);
        assert!(diff < 1e-4, "padding changed the decoder logits by {diff}");
        Ok(())
    }

    #[test]
    fn pad_tokens_do_not_count_in_the_loss() -> Result<(), String> {
        let device = Device::flex();
        let logits = Tensor::<3>::random([1, 3, 8], burn::tensor::Distribution::Default, &device);
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 3, 0], [1, 3]), &device);
        let full = Tensor::<2>::from_data(TensorData::new(vec![1f32, 1.0, 0.0], [1, 3]), &device);
        let a = sequence_loss(logits.clone(), targets.clone(), full.clone()).into_scalar::<f32>();
        // a different logit at the pad position changes nothing
        let changed =
            logits.slice_assign([0..1, 2..3, 0..8], Tensor::full([1, 1, 8], 9.0, &device));
        let b = sequence_loss(changed, targets, full).into_scalar::<f32>();
        assert!((a - b).abs() < 1e-6 && a > 0.0, "{a} vs {b}");
        Ok(())
    }

    #[test]
    fn stages_read_notes_only_or_labs_only() {
        let device = Device::flex();
        let model = tiny(&device);
        let both = input(&device, 6, 0);
        let notes = ClinicalInput {
            series: None,
            ..both.clone()
        };
        let labs = ClinicalInput { text: None, ..both };
        assert_eq!(model.encode(&notes).hidden.dims(), [1, 6, 32]);
        let encoded = model.encode(&labs);
        assert_eq!(encoded.hidden.dims(), [1, 5, 32]);
        assert_eq!(model.phenotype_logits(&encoded).dims(), [1, 25]);
    }
}
