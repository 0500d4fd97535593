//! The lab-only diagnosis model: time-series encoder → phenotype head. It is the first stage of
//! the full ClinRaGen model (whose language model reads the same channel tokens) and what the
//! browser runs for phenotype probabilities.

use super::wide::{SUMMARIES, lab_summaries};
use super::{PhenotypeHead, PhenotypeHeadConfig, SeriesEncoder, SeriesEncoderConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct LabPhenotypeModelConfig {
    pub series: SeriesEncoderConfig,
    pub labels: usize,
    #[config(default = 128)]
    pub head_hidden: usize,
    /// `Some(true)` adds a linear model over the channels' summaries beside the head (the lab
    /// half of [`super::WideHead`]); absent in bundles written before it existed.
    #[config(default = "None")]
    pub wide: Option<bool>,
}

impl LabPhenotypeModelConfig {
    pub fn init(&self, device: &Device) -> LabPhenotypeModel {
        LabPhenotypeModel {
            series: self.series.init(device),
            head: PhenotypeHeadConfig::new(self.series.channels, self.series.d_model, self.labels)
                .with_hidden(self.head_hidden)
                .with_dropout(self.series.dropout)
                .init(device),
            wide: self.wide.unwrap_or(false).then(|| {
                LinearConfig::new(self.series.channels * SUMMARIES, self.labels)
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            }),
        }
    }
}

#[derive(Module, Debug)]
pub struct LabPhenotypeModel {
    pub series: SeriesEncoder,
    pub head: PhenotypeHead,
    pub wide: Option<Linear>,
}

impl LabPhenotypeModel {
    /// `values`, `mask`: `[batch, channels, hours]` → phenotype logits `[batch, labels]`.
    pub fn forward(&self, values: Tensor<3>, mask: Tensor<3>) -> Tensor<2> {
        let deep = self
            .head
            .forward(self.series.forward(values.clone(), mask.clone()));
        match &self.wide {
            Some(wide) => deep + wide.forward(lab_summaries(values, mask)),
            None => deep,
        }
    }
}
