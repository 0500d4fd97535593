//! The in-hospital mortality model (PhysioNet/CinC Challenge 2012): wide and deep, as the
//! phenotype head is — the time-series encoder with a one-output head, plus a logistic regression
//! over the stay's static descriptors ([`statics`]) and each channel's summaries. `bedside-train
//! mortality` fits the linear part first and trains the encoder on top of it; a `"mortality"`
//! bundle carries it and the engine answers `risk` with it.

use super::wide::{SUMMARIES, lab_summaries};
use super::{LabPhenotypeModel, LabPhenotypeModelConfig};
use crate::record::{PatientRecord, Sex};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

/// What the model's one output estimates, as a manifest's `labels` names it.
pub const MORTALITY_LABEL: &str = "In-hospital death";

/// The static descriptors as the model reads them: age in centuries (0 where unknown), age
/// unknown, male, female, and the ICU type one-hot (coronary care, cardiac surgery recovery,
/// medical, surgical). Age and ICU type are among the strongest predictors of ICU death, and the
/// grid has neither.
pub const STATICS: usize = 8;

/// The care units of the ICU type one-hot, as the PhysioNet 2012 reader names them.
pub const ICU_TYPES: [&str; 4] = [
    "coronary care unit",
    "cardiac surgery recovery unit",
    "medical ICU",
    "surgical ICU",
];

/// A record's [`STATICS`].
pub fn statics(record: &PatientRecord) -> [f32; STATICS] {
    let d = &record.demographics;
    let mut out = [0.0; STATICS];
    match d.age {
        Some(age) if age.is_finite() => out[0] = (age / 100.0) as f32,
        _ => out[1] = 1.0,
    }
    match d.sex {
        Some(Sex::Male) => out[2] = 1.0,
        Some(Sex::Female) => out[3] = 1.0,
        _ => {}
    }
    if let Some(i) = ICU_TYPES
        .iter()
        .position(|u| d.care_unit.as_deref() == Some(u))
    {
        out[4 + i] = 1.0;
    }
    out
}

#[derive(Config, Debug)]
pub struct MortalityModelConfig {
    /// The encoder with its one-output head (no wide half of its own).
    pub series: LabPhenotypeModelConfig,
    /// Whether the linear part reads the channels' summaries beside the statics.
    pub summaries: bool,
}

impl MortalityModelConfig {
    pub fn init(&self, device: &Device) -> MortalityModel {
        MortalityModel {
            series: self.series.init(device),
            linear: LinearConfig::new(self.linear_inputs(), 1)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// The linear part's inputs: the summaries (where read), then the statics.
    pub fn linear_inputs(&self) -> usize {
        let summaries = if self.summaries {
            self.series.series.channels * SUMMARIES
        } else {
            0
        };
        summaries + STATICS
    }
}

/// A wide-and-deep mortality model: the time-series encoder with its one-output head, plus a
/// logistic regression over the stay's [`STATICS`] (and, with `summaries`, the channels'
/// summaries), fitted first and then frozen in training.
#[derive(Module, Debug)]
pub struct MortalityModel {
    pub series: LabPhenotypeModel,
    pub linear: Linear,
}

impl MortalityModel {
    /// The linear part's inputs `[batch, summaries? + STATICS]`.
    pub fn features(&self, values: Tensor<3>, mask: Tensor<3>, statics: Tensor<2>) -> Tensor<2> {
        if self.linear.weight.dims()[0] > STATICS {
            Tensor::cat(vec![lab_summaries(values, mask), statics], 1)
        } else {
            statics
        }
    }

    /// `values`, `mask`: `[batch, channels, hours]`, `statics`: `[batch, STATICS]` → the death
    /// logits `[batch, 1]`.
    pub fn forward(&self, values: Tensor<3>, mask: Tensor<3>, statics: Tensor<2>) -> Tensor<2> {
        let linear = self.features(values.clone(), mask.clone(), statics);
        self.series.forward(values, mask) + self.linear.forward(linear)
    }

    /// The statics of `records` as a `[batch, STATICS]` tensor.
    pub fn statics_tensor(records: &[&PatientRecord], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = records.iter().flat_map(|r| statics(r)).collect();
        Tensor::<1>::from_floats(flat.as_slice(), device).reshape([records.len(), STATICS])
    }
}
