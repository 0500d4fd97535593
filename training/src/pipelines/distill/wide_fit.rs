//! Stage 0 of `distill`: the wide half of the phenotype head (`bedside::model::wide`) fitted
//! alone, before the three ClinRaGen stages, as the logistic regression it is. The objective is
//! scikit-learn's `LogisticRegression(C)` — per label, C·Σ BCE + ½‖w‖², the bias unpenalised —
//! solved to convergence by burn's L-BFGS ([`crate::shared::logistic`]) on all rows at once, with the lab
//! summaries standardised (the scaling is folded back into the weights, so the served model reads
//! raw summaries). C is chosen on the validation loss, then the model is refitted on the training
//! and validation admissions together, as the baseline learns from all of them. The stages then
//! train the deep half on top with the wide half frozen, so the model starts where the linear
//! baseline ends.
//!
//! It replaced early-stopped AdamW over mini-batches on the training split alone: that wide half
//! scored micro-F1 0.956 where scikit-learn's logistic regression on the same 1,200 admissions
//! reached 0.966 — most of the gap was the fifth held out (the same regression on 960 of them:
//! 0.957), the rest the stop short of the optimum (RESULTS.md).

use anyhow::{Result, ensure};
use bedside::model::{WideHead, lab_summaries};
use bedside::record::SeriesGrid;
use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Example;
use crate::shared::logistic::{Chosen, Scaling, l2_logistic, leaf, regularisation_path, zeros};

/// What stage 0 did, kept in the run's progress and `training` history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WideFit {
    /// The inverse regularisation strength chosen (scikit-learn's C).
    pub c: f64,
    /// Each C tried, with its mean validation BCE.
    pub tried: Vec<(f64, f64)>,
    /// Mean BCE on the validation split with the chosen C, fitted on the training split (`None`
    /// without a validation split).
    pub validation_loss: Option<f64>,
    /// Admissions of the final fit (training and validation splits).
    pub rows: usize,
}

/// Without a validation split: scikit-learn's default.
const DEFAULT_C: f64 = 1.0;
/// Rows whose summaries are computed at once.
const CHUNK: usize = 16;

/// The wide half's raw inputs for some rows, on `device`: the design matrix `[rows, vocab +
/// channels × 5]` (the binary bag of the prompt's tokens, then the lab summaries) and the labels
/// `[rows, labels]`.
fn design(
    examples: &[Example],
    rows: &[usize],
    vocab: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2, Int>) {
    let mut bag = vec![0f32; rows.len() * vocab];
    for (r, &i) in rows.iter().enumerate() {
        for &id in &examples[i].both_prompt {
            if (id as usize) < vocab {
                bag[r * vocab + id as usize] = 1.0;
            }
        }
    }
    let words = Tensor::<1>::from_data(TensorData::new(bag, [rows.len() * vocab]), device)
        .reshape([rows.len(), vocab]);
    // the served function computes the summaries, a chunk of rows at a time (small enough that
    // the tiny runs of the tests take several)
    let labs = rows
        .chunks(CHUNK)
        .map(|chunk| {
            let grids: Vec<&SeriesGrid> = chunk.iter().map(|&i| &examples[i].grid).collect();
            let (values, observed) = SeriesGrid::tensors(&grids, device);
            lab_summaries(values, observed)
        })
        .collect();
    let x = Tensor::cat(vec![words, Tensor::cat(labs, 0)], 1);
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|&i| examples[i].phenotypes.iter().map(|&b| i64::from(b)))
        .collect();
    let per_row = flat.len() / rows.len().max(1);
    let y = Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * per_row]), device)
        .reshape([rows.len(), per_row]);
    (x, y)
}

/// Fits `wide` on the `train` rows of `examples` (autodiff `device`): C is chosen on the
/// `validation` rows, then the model is refitted with it on both (as scikit-learn's
/// `LogisticRegressionCV` refits), so that it learns from every admission the baseline does.
/// Returns the refitted wide half and, with validation rows, the one fitted without them (for
/// validation: a wide half scored on rows it was fitted on looks better than it is). Without
/// validation rows: C = 1 on the training rows.
pub fn fit(
    wide: WideHead,
    examples: &[Example],
    train: &[usize],
    validation: &[usize],
    device: &Device,
) -> Result<(WideHead, Option<WideHead>, WideFit)> {
    ensure!(!train.is_empty(), "stage 0 needs training admissions");
    let [vocab, labels] = wide.words.weight.dims();
    let (x, y) = design(examples, train, vocab, device);
    ensure!(
        y.dims()[1] == labels,
        "the wide head has {labels} outputs, the examples {} labels",
        y.dims()[1]
    );
    let mut fit = WideFit {
        c: DEFAULT_C,
        ..WideFit::default()
    };
    // the bag stays binary, as scikit-learn's baseline reads it; the summaries are standardised
    let (start, x, y, held_out) = if validation.is_empty() {
        (zeros(x.dims()[1], labels, device), x, y, None)
    } else {
        let (x_val, y_val) = design(examples, validation, vocab, device);
        let scaling = Scaling::of(&x, vocab);
        let Chosen {
            model: best,
            c,
            tried,
        } = regularisation_path(&scaling.apply(&x), &y, &scaling.apply(&x_val), &y_val)?;
        fit.validation_loss = tried.iter().find(|t| t.0 == c).map(|t| t.1);
        (fit.c, fit.tried) = (c, tried);
        let held_out = to_wide(wide.clone(), scaling.fold(&best));
        let x = Tensor::cat(vec![x, x_val], 0);
        (best, x, Tensor::cat(vec![y, y_val], 0), Some(held_out))
    };
    fit.rows = y.dims()[0];
    let scaling = Scaling::of(&x, vocab);
    let model = l2_logistic(start, &scaling.apply(&x), &y, fit.c);
    tracing::info!(
        "stage 0 (wide head alone): C {} of {:?} (validation loss {:?}), refitted on {} admissions",
        fit.c,
        fit.tried,
        fit.validation_loss,
        fit.rows
    );
    Ok((to_wide(wide, scaling.fold(&model)), held_out, fit))
}

/// `wide` with the weights of a linear model of the [`design`] matrix.
fn to_wide(mut wide: WideHead, linear: Linear) -> WideHead {
    let [vocab, labels] = wide.words.weight.dims();
    let [width, _] = linear.weight.dims();
    let weight = linear.weight.val();
    wide.words.weight = leaf(weight.clone().slice([0..vocab, 0..labels]));
    wide.labs.weight = leaf(weight.slice([vocab..width, 0..labels]));
    wide.labs.bias = linear.bias;
    wide
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside::model::{ClinicalInput, WideHeadConfig};
    use burn::module::Param;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    /// The wide half made from a model fitted on standardised summaries reads a record exactly
    /// as that model reads the record's design row.
    #[test]
    fn folding_keeps_the_logits() {
        let device = Device::flex();
        let (vocab, channels, hours, labels) = (7, 3, 5, 2);
        let mut model = LinearConfig::new(vocab + channels * 5, labels).init(&device);
        model.bias = Some(Param::from_tensor(Tensor::from_floats(
            [0.3, -0.7],
            &device,
        )));
        let values = Tensor::<3>::random(
            [2, channels, hours],
            Distribution::Normal(0.0, 2.0),
            &device,
        );
        let observed =
            Tensor::<3>::random([2, channels, hours], Distribution::Bernoulli(0.6), &device);
        let ids = Tensor::<2, Int>::from_ints([[1, 3, 3, 6], [2, 5, 0, 0]], &device);
        let bag = Tensor::<2>::from_floats(
            [[0., 1., 0., 1., 0., 0., 1.], [0., 0., 1., 0., 0., 1., 0.]],
            &device,
        );
        let x = Tensor::cat(
            vec![bag, lab_summaries(values.clone(), observed.clone())],
            1,
        );
        // a scaling from other rows, as in training
        let other = Tensor::<2>::random(
            [9, vocab + channels * 5],
            Distribution::Normal(1.0, 3.0),
            &device,
        );
        let scaling = Scaling::of(&other, vocab);
        let expected: Vec<f32> = model
            .forward(scaling.apply(&x))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let wide = to_wide(
            WideHeadConfig::new(vocab, channels, labels).init(&device),
            scaling.fold(&model),
        );
        let input = ClinicalInput {
            text: Some((ids, vec![4, 2])),
            series: Some((values, observed)),
        };
        let got: Vec<f32> = wide
            .forward(&input)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-4, "{got:?} vs {expected:?}");
        }
    }
}
