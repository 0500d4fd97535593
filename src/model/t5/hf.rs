//! Import of HuggingFace T5 / Flan-T5 checkpoints: `config.json` (transformers' `T5Config`) and
//! `model.safetensors` (f32, f16 or bf16), read from bytes so that the browser can import too.
//! Every tensor's presence and shape is checked before the model is built; errors name the file
//! and the tensor or field.

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::{FeedForwardKind, ParamSource, T5, T5Config};
use crate::error::{BedsideError, Result};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The fields of transformers' `T5Config` that bedside uses, with transformers' defaults.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct HfConfig {
    vocab_size: usize,
    d_model: usize,
    d_kv: usize,
    d_ff: usize,
    num_layers: usize,
    num_decoder_layers: Option<usize>,
    num_heads: usize,
    relative_attention_num_buckets: usize,
    relative_attention_max_distance: usize,
    dropout_rate: f64,
    layer_norm_epsilon: f64,
    feed_forward_proj: String,
    tie_word_embeddings: bool,
    /// transformers ≥ 5 only.
    scale_decoder_outputs: Option<bool>,
    /// Shares the encoder's weights with the decoder's: not supported, so refused.
    tie_encoder_decoder: bool,
    pad_token_id: usize,
    /// transformers ≥ 5 may write a list; bedside stops at the first id only (transformers stops
    /// at any of them).
    eos_token_id: OneOrMany,
    decoder_start_token_id: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(usize),
    Many(Vec<usize>),
}

impl Default for HfConfig {
    fn default() -> Self {
        Self {
            vocab_size: 32128,
            d_model: 512,
            d_kv: 64,
            d_ff: 2048,
            num_layers: 6,
            num_decoder_layers: None,
            num_heads: 8,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: true,
            scale_decoder_outputs: None,
            tie_encoder_decoder: false,
            pad_token_id: 0,
            eos_token_id: OneOrMany::One(1),
            decoder_start_token_id: None,
        }
    }
}

fn config_error(message: impl std::fmt::Display) -> BedsideError {
    BedsideError::bundle(CONFIG_FILE, message)
}

/// Reads a transformers `config.json` into a [`T5Config`].
pub fn config_from_json(text: &str) -> Result<T5Config> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let hf: HfConfig = serde_path_to_error::deserialize(de)
        .map_err(|e| config_error(format!("at {}: {}", e.path(), e.inner())))?;
    let feed_forward = match hf.feed_forward_proj.as_str() {
        "relu" => FeedForwardKind::Relu,
        "gated-gelu" | "gated-gelu_new" => FeedForwardKind::GatedGelu,
        other => {
            return Err(config_error(format!(
                "feed_forward_proj {other:?} is not supported (relu or gated-gelu)"
            )));
        }
    };
    if hf.tie_encoder_decoder {
        return Err(config_error(
            "tie_encoder_decoder = true (encoder weights shared with the decoder) is not supported",
        ));
    }
    let eos_token_id = match hf.eos_token_id {
        OneOrMany::One(id) => id,
        OneOrMany::Many(ids) => *ids
            .first()
            .ok_or_else(|| config_error("eos_token_id is an empty list"))?,
    };
    let config = T5Config::new(hf.vocab_size)
        .with_d_model(hf.d_model)
        .with_d_kv(hf.d_kv)
        .with_d_ff(hf.d_ff)
        .with_num_layers(hf.num_layers)
        .with_num_decoder_layers(hf.num_decoder_layers.unwrap_or(hf.num_layers))
        .with_num_heads(hf.num_heads)
        .with_relative_attention_num_buckets(hf.relative_attention_num_buckets)
        .with_relative_attention_max_distance(hf.relative_attention_max_distance)
        .with_layer_norm_epsilon(hf.layer_norm_epsilon)
        .with_feed_forward(feed_forward)
        .with_tie_word_embeddings(hf.tie_word_embeddings)
        .with_scale_decoder_outputs(hf.scale_decoder_outputs)
        .with_dropout_rate(hf.dropout_rate)
        .with_pad_token_id(hf.pad_token_id)
        .with_eos_token_id(eos_token_id)
        .with_decoder_start_token_id(hf.decoder_start_token_id.unwrap_or(hf.pad_token_id));
    // the bundle's bounds: an imported model always exports to a bundle that loads
    config.check().map_err(config_error)?;
    Ok(config)
}

/// Parameters read from a HuggingFace safetensors file.
struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
    device: &'a Device,
    /// The checkpoint's vocabulary rows, how many of them its tokenizer uses (rows from there on
    /// start at the mean, [`load_with_vocab`]) and the model's vocabulary size.
    stored_vocab: usize,
    used: usize,
    vocab: usize,
}

/// Tokens added to a checkpoint's tokenizer ([`load_with_vocab`]): its own ids are below `used`
/// (a T5 tokenizer has 32,100 where config.json's `vocab_size` pads the rows to 32,128), and
/// `added` new ids follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedTokens {
    pub used: usize,
    pub added: usize,
}

/// The parameters with a row per token: the shared embedding and the output projection.
const VOCABULARY_ROWS: [&str; 2] = ["shared", "lm_head"];

fn weights_error(message: impl std::fmt::Display) -> BedsideError {
    BedsideError::bundle(WEIGHTS_FILE, message)
}

impl Checkpoint<'_> {
    /// The tensor `name` as f32 values, checked to have `shape`.
    fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| weights_error(format!("tensor {name} is missing")))?;
        if view.shape() != shape {
            return Err(weights_error(format!(
                "tensor {name} has shape {:?}, the config needs {shape:?}",
                view.shape()
            )));
        }
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(weights_error(format!(
                    "tensor {name} has dtype {other:?}; f32, f16 or bf16 expected"
                )));
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(weights_error(format!(
                "tensor {name} holds a non-finite value at index {i}"
            )));
        }
        Ok(values)
    }

    /// The `[rows, width]` parameter `module` (tensor `key`). With added tokens, a vocabulary
    /// parameter keeps the rows its tokenizer uses, and every row after them (the padding rows
    /// the tokenizer never produced, then the new ones) starts at the mean of the kept rows:
    /// transformers' `resize_token_embeddings(mean_resizing=True)` without its 1e-5 noise, so a
    /// new token starts as the average token, not as a random or untrained one.
    fn read_rows(&self, module: &str, key: &str, rows: usize, width: usize) -> Result<Vec<f32>> {
        if !VOCABULARY_ROWS.contains(&module) || rows != self.vocab || self.used >= rows {
            return self.read(key, &[rows, width]);
        }
        let mut values = self.read(key, &[self.stored_vocab, width])?;
        values.truncate(self.used * width);
        let mut mean = vec![0.0f64; width];
        for row in values.chunks_exact(width) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += f64::from(*v);
            }
        }
        let n = self.used.max(1) as f64;
        let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
        for _ in self.used..rows {
            values.extend_from_slice(&mean);
        }
        Ok(values)
    }

    fn param<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        ))
    }
}

impl ParamSource for Checkpoint<'_> {
    type Error = BedsideError;

    fn linear(&mut self, name: &str, d_in: usize, d_out: usize, _: f64) -> Result<Linear> {
        // PyTorch stores [out, in]; burn multiplies by [in, out].
        let rows = self.read_rows(name, &format!("{name}.weight"), d_out, d_in)?;
        let mut transposed = vec![0.0; rows.len()];
        for (o, row) in rows.chunks_exact(d_in).enumerate() {
            for (i, v) in row.iter().enumerate() {
                transposed[i * d_out + o] = *v;
            }
        }
        Ok(Linear {
            weight: self.param(transposed, [d_in, d_out]),
            bias: None,
        })
    }

    fn embedding(&mut self, name: &str, n: usize, d: usize, _: f64) -> Result<Embedding> {
        let key = format!("{name}.weight");
        // Some exports keep the shared embedding only under the encoder's name.
        let key = match (name, self.tensors.tensor(&key)) {
            ("shared", Err(_)) => "encoder.embed_tokens.weight".to_string(),
            _ => key,
        };
        Ok(Embedding {
            weight: self.param(self.read_rows(name, &key, n, d)?, [n, d]),
        })
    }

    fn norm(&mut self, name: &str, d: usize, epsilon: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            gamma: self.param(self.read(&format!("{name}.weight"), &[d])?, [d]),
            epsilon,
        })
    }
}

/// Builds a [`T5`] from a checkpoint's `config.json` text and `model.safetensors` bytes.
pub fn load(config_json: &str, weights: &[u8], device: &Device) -> Result<(T5Config, T5)> {
    load_with_vocab(config_json, weights, None, device)
}

/// [`load`], for a tokenizer that gained tokens (bedside's reserved rationale tokens): the
/// vocabulary becomes `used + added` rows (at least the checkpoint's), and the embedding and
/// output rows from `used` on start at the mean of the rows before it. A tokenizer that uses
/// more ids than the checkpoint has rows is refused.
pub fn load_with_vocab(
    config_json: &str,
    weights: &[u8],
    added: Option<AddedTokens>,
    device: &Device,
) -> Result<(T5Config, T5)> {
    let mut config = config_from_json(config_json)?;
    let stored_vocab = config.vocab_size;
    let used = match added {
        Some(AddedTokens { used, added }) => {
            if used == 0 || used > stored_vocab {
                return Err(config_error(format!(
                    "vocab_size is {stored_vocab}, but the tokenizer uses {used} ids"
                )));
            }
            config.vocab_size = stored_vocab.max(used.saturating_add(added));
            config.check().map_err(config_error)?;
            used
        }
        None => stored_vocab,
    };
    let tensors = SafeTensors::deserialize(weights)
        .map_err(|e| weights_error(format!("not a safetensors file: {e}")))?;
    // a tied config with its own, different output projection: which one transformers would use
    // depends on its version, so refuse rather than guess
    if config.tie_word_embeddings
        && let (Ok(head), Ok(shared)) = (
            tensors.tensor("lm_head.weight"),
            tensors.tensor("shared.weight"),
        )
        && head.data() != shared.data()
    {
        return Err(weights_error(
            "tensor lm_head.weight differs from shared.weight, but config.json ties them \
             (tie_word_embeddings); set tie_word_embeddings to false to use lm_head.weight",
        ));
    }
    let model = config.build(&mut Checkpoint {
        tensors,
        device,
        stored_vocab,
        used,
        vocab: config.vocab_size,
    })?;
    Ok((config, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#""vocab_size": 40, "d_model": 16, "d_kv": 4, "d_ff": 24, "num_layers": 1,
        "num_heads": 4, "feed_forward_proj": "gated-gelu""#;

    #[test]
    fn transformers_5_fields_are_read() {
        // transformers 5 ties every T5 and says whether to scale
        let v5 = config_from_json(&format!(
            r#"{{{TINY}, "tie_word_embeddings": true, "scale_decoder_outputs": false,
            "eos_token_id": [1, 2], "transformers_version": "5.24.0"}}"#
        ))
        .unwrap();
        assert!(v5.tie_word_embeddings && !v5.scales_decoder_outputs());
        assert_eq!(v5.eos_token_id, 1);
        // transformers 4: scaling follows tying
        let tied = config_from_json(&format!(r#"{{{TINY}}}"#)).unwrap();
        assert!(tied.scales_decoder_outputs());
        let untied =
            config_from_json(&format!(r#"{{{TINY}, "tie_word_embeddings": false}}"#)).unwrap();
        assert!(!untied.scales_decoder_outputs());
    }

    #[test]
    fn fields_that_would_change_the_computation_are_refused_by_name() {
        for (field, json) in [
            ("tie_encoder_decoder", r#""tie_encoder_decoder": true"#),
            ("eos_token_id", r#""eos_token_id": []"#),
            ("feed_forward_proj", r#""feed_forward_proj": "gated-silu""#),
            ("scale_decoder_outputs", r#""scale_decoder_outputs": "yes""#),
        ] {
            let err = config_from_json(&format!(r#"{{{TINY}, {json}}}"#))
                .expect_err(field)
                .to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
