//! What a run reports: each epoch's validation (written diagnoses and the phenotype head)
//! and the training curve.

use std::path::Path;

use anyhow::{Result, anyhow};
use bedside::generate::{self, GenerateOptions};
use bedside::knowledge::PHENOTYPES;
use bedside::model::{ClinicalModel, WideHead};
use bedside::prompt::parse_target;
use burn::prelude::*;

use super::EpochRecord;
use super::data::{Data, Example, batch};
use super::run::Run;

/// What one validation pass measured, with the head's logits for calibration.
pub(super) struct Validation {
    pub(super) generated_micro_f1: f64,
    pub(super) head: crate::measure::metrics::Metrics,
    /// Row-major `[rows, phenotypes]`, and the truth in the same order.
    pub(super) logits: Vec<f32>,
    pub(super) truth: Vec<bool>,
}

impl Run {
    /// Validation of `rows` with the stage's inputs: the diagnoses the decoder writes and the
    /// phenotype head. `held_out_wide` replaces the model's wide half: stage 0's fit on the
    /// training split alone, so that validation never scores a wide half fitted on it.
    pub(super) fn validate(
        &self,
        model: &ClinicalModel,
        held_out_wide: Option<&WideHead>,
        data: &Data,
        stage: usize,
        rows: &[usize],
    ) -> Result<Validation> {
        let device = Device::flex();
        let mut model = model.valid().to_device(&device);
        if let Some(wide) = held_out_wide {
            model.wide = Some(wide.valid().to_device(&device));
        }
        let (mut logits, mut written, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        let options = GenerateOptions {
            max_new_tokens: data.diagnosis_tokens,
            ..Default::default()
        };
        let constraint = data
            .grammar
            .as_ref()
            .map(|g| move |prefix: &[u32]| g.allowed(prefix));
        let constraint: Option<generate::Constraint> = constraint.as_ref().map(|c| c as _);
        for chunk in rows.chunks(32) {
            let examples: Vec<&Example> = chunk.iter().map(|&i| &data.examples[i]).collect();
            let b = batch(&examples, stage, &device);
            let encoded = model.encode(&b.input);
            logits.extend(
                model
                    .phenotype_logits(&encoded)
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| anyhow!("{e:?}"))?,
            );
            truth.extend(examples.iter().flat_map(|e| e.phenotypes.iter().copied()));
            let eos = data.tokenizer.eos_id();
            let generated = pollster::block_on(generate::greedy(
                &model.lm,
                None,
                encoded.hidden,
                encoded.mask,
                model.lm.decoder_start(),
                eos,
                &options,
                constraint,
                &mut |_, _| true,
            ))?;
            for tokens in generated {
                let parsed = parse_target(&data.tokenizer.decode(&tokens)?);
                written.extend(PHENOTYPES.iter().map(|p| {
                    if parsed.diagnoses.iter().any(|d| d == p.name) {
                        1.0f32
                    } else {
                        0.0
                    }
                }));
            }
        }
        let probs: Vec<f32> = logits.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
        Ok(Validation {
            generated_micro_f1: crate::measure::metrics::f1(
                &written,
                &truth,
                PHENOTYPES.len(),
                0.5,
            )
            .0,
            head: crate::measure::metrics::evaluate(&probs, &truth, PHENOTYPES.len(), 0.5),
            logits,
            truth,
        })
    }
}

/// The run's curves by epoch across the three stages: training loss, and on the validation split
/// the micro-F1 of the written diagnoses and the head's macro AUROC.
pub(super) fn plot_history(history: &[EpochRecord], path: &Path) -> Result<()> {
    use crate::measure::plots::{Axis, Line, line_chart, padded, value_axis};
    let series = |value: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, value(e)))
            .collect()
    };
    let lines = [
        Line::new("training loss / 10", series(|e| e.train_loss / 10.0)),
        Line::new(
            "written diagnoses micro-F1",
            series(|e| e.generated_micro_f1),
        ),
        Line::new("head macro AUROC", series(|e| e.head_macro_auroc)),
    ];
    let x = Axis {
        label: "epoch (stages 1, 2, 3 in turn)",
        range: padded((1..=history.len().max(1)).map(|i| i as f64)),
    };
    let y = value_axis(&lines, &[0.0, 1.0]);
    line_chart(
        path,
        "Distillation: training and validation",
        x,
        y,
        &lines,
        false,
    )
}
