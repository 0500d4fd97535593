//! The clinical model's own work on tensors already built — the encoder with the phenotype head,
//! and greedy decoding — apart from reading a record, building its grid and prompt and
//! explaining. Benchmarks time these next to a runtime that starts from tensors (onnxruntime-web
//! on bedside's model exported to ONNX, `bench/measure.js`), so that both sides do the same work.

use burn::prelude::*;

use super::{Engine, Loaded};
use crate::bundle::MANIFEST_FILE;
use crate::error::{BedsideError, FieldProblem, Result};
use crate::generate::{self, GenerateOptions};
use crate::model::input::pad_ids;
use crate::model::t5::HostDecoder;
use crate::model::{ClinicalInput, Encoded};

/// The clinical model and its decoder packed for the CPU step, or why this bundle has none.
fn clinical(engine: &Engine) -> Result<(&crate::model::ClinicalModel, Option<&HostDecoder>)> {
    match &engine.model {
        Loaded::Clinical { model, host, .. } => Ok((model, host.as_ref())),
        _ => Err(BedsideError::Incompatible {
            file: MANIFEST_FILE.into(),
            message: "only a clinical bundle's model encodes prompts and decodes".into(),
        }),
    }
}

/// An input tensor that does not fit the model, named.
fn misfit(field: &str, message: String) -> BedsideError {
    BedsideError::InvalidRecord(vec![FieldProblem {
        path: field.into(),
        message,
    }])
}

impl Engine {
    /// A clinical model's input from prompt `ids` and a lab grid (`values` and `observed` flags,
    /// `[channels, hours]` row-major), batch 1.
    pub fn model_input(
        &self,
        ids: &[u32],
        values: &[f32],
        observed: &[f32],
    ) -> Result<ClinicalInput> {
        let (model, _) = clinical(self)?;
        let vocab = model.lm.shared.weight.dims()[0];
        if let Some(id) = ids.iter().find(|id| **id as usize >= vocab) {
            return Err(misfit(
                "ids",
                format!("token id {id} is outside the vocabulary of {vocab}"),
            ));
        }
        let channels = model.series.channel_embedding.weight.dims()[0];
        let hours = self.manifest.model.hours();
        for (field, grid) in [("values", values), ("observed", observed)] {
            if grid.len() != channels * hours {
                return Err(misfit(
                    field,
                    format!(
                        "{} numbers where the grid is {channels} channels × {hours} hours",
                        grid.len()
                    ),
                ));
            }
        }
        let grid =
            |v: &[f32]| Tensor::<1>::from_floats(v, &self.device).reshape([1, channels, hours]);
        Ok(ClinicalInput {
            text: Some(pad_ids(&[ids.to_vec()], &self.device)),
            series: Some((grid(values), grid(observed))),
        })
    }

    /// The encoder and the phenotype head on `input`: the encoder's output and the sigmoid
    /// probabilities, read back (the model's part of `diagnose`, before calibration).
    pub async fn encode_with_head(&self, input: &ClinicalInput) -> Result<(Encoded, Vec<f32>)> {
        let (model, _) = clinical(self)?;
        let encoded = model.encode(input);
        let logits = model.phenotype_logits(&encoded);
        let probabilities = self
            .read_back(burn::tensor::activation::sigmoid(logits))
            .await?;
        Ok((encoded, probabilities))
    }

    /// Greedy decoding of exactly `tokens` tokens after `encoded`, without a constraint and
    /// without stopping at the end token (as a runtime's plain greedy loop is timed).
    pub async fn greedy_tokens(&self, encoded: &Encoded, tokens: usize) -> Result<Vec<u32>> {
        let (model, packed) = clinical(self)?;
        let options = GenerateOptions {
            max_new_tokens: tokens,
            ..Default::default()
        };
        let lm = &model.lm;
        let mut rows = generate::greedy(
            lm,
            packed,
            encoded.hidden.clone(),
            encoded.mask.clone(),
            lm.decoder_start(),
            u32::MAX,
            &options,
            None,
            &mut |_, _| true,
        )
        .await?;
        Ok(rows.pop().unwrap_or_default())
    }
}
