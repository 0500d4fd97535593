//! The wide half of a wide-and-deep phenotype head (Cheng et al., 2016): a linear model over the
//! prompt's bag of tokens and per-channel summaries of the lab series, whose logits are added to
//! the deep head's. It exists because a logistic regression over exactly these inputs beat the
//! deep head on every measure (RESULTS.md): words that name a condition and a channel's extremes
//! are linear evidence, and a small transformer trained on a thousand admissions learns them
//! slower than a linear model does. It starts at zero; `bedside-train distill` fits it alone first
//! (stage 0, `training/src/pipelines/distill/wide_fit.rs`) and keeps it fixed while the deep half trains on top.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;

use super::input::{ClinicalInput, length_mask};

/// The summaries of one channel, in this order: min, max, mean, last value, share of hours
/// observed. Values are the grid's standardised values, clipped to ±[`SUMMARY_CLIP`].
pub const SUMMARIES: usize = 5;
/// Standardised values beyond this are clipped before summarising (a wild value cannot swamp
/// the linear model).
pub const SUMMARY_CLIP: f32 = 10.0;

#[derive(Config, Debug)]
pub struct WideHeadConfig {
    /// The language model's vocabulary (rows of the token weights).
    pub vocab_size: usize,
    pub channels: usize,
    pub labels: usize,
}

impl WideHeadConfig {
    pub fn init(&self, device: &Device) -> WideHead {
        WideHead {
            words: EmbeddingConfig::new(self.vocab_size, self.labels)
                .with_initializer(Initializer::Zeros)
                .init(device),
            labs: LinearConfig::new(self.channels * SUMMARIES, self.labels)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct WideHead {
    /// One weight per token and label: the bag-of-tokens model.
    pub words: Embedding,
    /// The summaries model, with the wide half's bias.
    pub labs: Linear,
}

impl WideHead {
    /// The wide logits `[batch, labels]` of whatever `input` holds (notes, labs or both); `None`
    /// when it holds neither.
    pub fn forward(&self, input: &ClinicalInput) -> Option<Tensor<2>> {
        let words = input.text.as_ref().map(|(ids, lengths)| {
            let [batch, len] = ids.dims();
            self.words(ids.clone(), length_mask(lengths, batch, len, &ids.device()))
        });
        let labs = input
            .series
            .as_ref()
            .map(|(values, observed)| self.labs(values.clone(), observed.clone()));
        match (words, labs) {
            (Some(w), Some(l)) => Some(w + l),
            (w, l) => w.or(l),
        }
    }

    /// Logits `[batch, labels]` of the tokens each row contains (`ids` `[batch, len]`, `mask` 1
    /// for real tokens): each distinct token counts once, however often it occurs, as in a
    /// binary bag of words.
    pub fn words(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, len] = ids.dims();
        let device = ids.device();
        // earlier[i, j] = 1 where j < i: a token is a repeat if an earlier real position holds it
        let earlier: Vec<f32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| f32::from(u8::from(j < i))))
            .collect();
        let earlier = Tensor::<1>::from_data(TensorData::new(earlier, [len * len]), &device)
            .reshape([1, len, len])
            .repeat_dim(0, batch);
        let same = ids
            .clone()
            .unsqueeze_dim::<3>(2)
            .repeat_dim(2, len)
            .equal(ids.clone().unsqueeze_dim::<3>(1).repeat_dim(1, len))
            .float();
        let repeat = (same * earlier * mask.clone().unsqueeze_dim::<3>(1))
            .max_dim(2)
            .squeeze_dim::<2>(2);
        let first = mask * (repeat.neg() + 1.0);
        (self.words.forward(ids) * first.unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// Logits `[batch, labels]` of the lab series ([`lab_summaries`]).
    pub fn labs(&self, values: Tensor<3>, observed: Tensor<3>) -> Tensor<2> {
        self.labs.forward(lab_summaries(values, observed))
    }
}

/// The per-channel summaries `[batch, channels × SUMMARIES]` of standardised values and observed
/// mask `[batch, channels, hours]` (values 0 where unobserved); an unobserved channel gives zeros.
pub fn lab_summaries(values: Tensor<3>, observed: Tensor<3>) -> Tensor<2> {
    let hours = values.dims()[2];
    let device = values.device();
    let values = values.clamp(-SUMMARY_CLIP, SUMMARY_CLIP) * observed.clone();
    let count = observed.clone().sum_dim(2);
    let any = count.clone().clamp_max(1.0);
    let far = (observed.clone().neg() + 1.0) * (2.0 * SUMMARY_CLIP);
    let min = (values.clone() + far.clone()).min_dim(2) * any.clone();
    let max = (values.clone() - far).max_dim(2) * any;
    let mean = values.clone().sum_dim(2) / count.clone().clamp_min(1.0);
    // the last observed hour: the largest of observed × (hour + 1)
    let hour = Tensor::<1, Int>::arange(1..hours as i64 + 1, &device)
        .float()
        .reshape([1, 1, hours]);
    let last_hour = (observed * hour).argmax(2);
    let last = values.gather(2, last_hour);
    let share = count / hours.max(1) as f32;
    Tensor::cat(vec![min, max, mean, last, share], 2).flatten::<2>(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(device: &Device) -> WideHead {
        let mut head = WideHeadConfig::new(6, 2, 1).init(device);
        // token t weighs t; summaries weigh 1, 10, 100, 1000, 10000 (channel 0) and 0 (channel 1)
        let words =
            Tensor::<1>::from_floats([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], device).reshape([6, 1]);
        head.words.weight = burn::module::Param::from_tensor(words);
        let labs = Tensor::<1>::from_floats(
            [1.0, 10.0, 100.0, 1000.0, 10000.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            device,
        )
        .reshape([10, 1]);
        head.labs.weight = burn::module::Param::from_tensor(labs);
        head
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    #[test]
    fn words_count_each_distinct_real_token_once() {
        let device = Device::flex();
        let head = head(&device);
        // row 0: 2, 3, 2, 5 (5 is padding); row 1: 4, 4, 4, 1
        let ids = Tensor::<1, Int>::from_ints([2, 3, 2, 5, 4, 4, 4, 1], &device).reshape([2, 4]);
        let mask = Tensor::<1>::from_floats([1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0], &device)
            .reshape([2, 4]);
        assert_eq!(values(head.words(ids, mask)), vec![5.0, 5.0]);
    }

    #[test]
    fn labs_summarise_min_max_mean_last_share() {
        let device = Device::flex();
        let head = head(&device);
        // channel 0 observed at hours 0, 2 (values 1, 3; 3 is last), one unobserved value that
        // must not count; hour 3 holds a clipped 50 → 10 in row 1
        let v = Tensor::<1>::from_floats(
            [
                1.0, 7.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0,
            ],
            &device,
        )
        .reshape([2, 2, 4]);
        let m = Tensor::<1>::from_floats(
            [
                1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0,
            ],
            &device,
        )
        .reshape([2, 2, 4]);
        let got = values(head.labs(v, m));
        // row 0: min 1, max 3, mean 2, last 3, share 0.5; row 1: -2, 10, 4, 10, 0.5
        let want = [
            1.0 + 30.0 + 200.0 + 3000.0 + 5000.0,
            -2.0 + 100.0 + 400.0 + 10000.0 + 5000.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn an_unobserved_channel_summarises_to_zero() {
        let device = Device::flex();
        let head = head(&device);
        let v = Tensor::<3>::full([1, 2, 4], 3.0, &device);
        let m = Tensor::<3>::zeros([1, 2, 4], &device);
        assert_eq!(values(head.labs(v, m)), vec![0.0]);
    }
}
