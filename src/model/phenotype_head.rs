//! Multi-label phenotype head: reads the channel tokens and gives one logit per phenotype group.
//! The tokens are normalised and flattened (channel identity matters: a high creatinine is not a
//! high heart rate), then pass a small MLP.

use burn::nn::{Dropout, DropoutConfig, Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct PhenotypeHeadConfig {
    pub channels: usize,
    pub d_model: usize,
    pub labels: usize,
    #[config(default = 128)]
    pub hidden: usize,
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl PhenotypeHeadConfig {
    pub fn init(&self, device: &Device) -> PhenotypeHead {
        PhenotypeHead {
            norm: LayerNormConfig::new(self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            hidden: LinearConfig::new(self.channels * self.d_model, self.hidden).init(device),
            activation: Gelu::new(),
            output: LinearConfig::new(self.hidden, self.labels).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct PhenotypeHead {
    pub norm: LayerNorm,
    pub dropout: Dropout,
    pub hidden: Linear,
    pub activation: Gelu,
    pub output: Linear,
}

impl PhenotypeHead {
    /// `tokens`: `[batch, channels, d_model]` → logits `[batch, labels]`.
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<2> {
        let x = self.norm.forward(tokens).flatten::<2>(1, 2);
        let x = self
            .activation
            .forward(self.hidden.forward(self.dropout.forward(x)));
        self.output.forward(self.dropout.forward(x))
    }
}
