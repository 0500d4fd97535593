//! L2-regularised logistic regression with scikit-learn's objective, solved by burn's L-BFGS, with
//! what fitting one well takes: standardised columns (folded back into the weights afterwards, so
//! the fitted model reads raw features) and C chosen on validation rows. Stage 0 of `distill` fits
//! the wide half of the phenotype head with it ([`crate::pipelines::distill::wide_fit`]); `mortality` fits its linear
//! part and recalibrates its probabilities (Platt scaling). Tested against scikit-learn's own fit
//! (tools/logistic_reference.py).

use burn::module::Param;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{GradientsParams, LBFGSConfig, LineSearchFn};
use burn::prelude::*;

/// L-BFGS iterations of a fit; it stops earlier once the gradient or the loss stops changing.
const MAX_ITERATIONS: usize = 500;

/// The C tried by [`regularisation_path`], strongest regularisation first.
pub const CS: [f64; 9] = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0];

/// The mean and spread of a design matrix's columns `first..` over some rows: the columns a fit
/// standardises (a constant column keeps a spread of 1), and the way back to raw features.
pub struct Scaling {
    first: usize,
    mean: Tensor<2>,
    std: Tensor<2>,
}

impl Scaling {
    pub fn of(x: &Tensor<2>, first: usize) -> Self {
        let [rows, width] = x.dims();
        let scaled = x.clone().slice([0..rows, first..width]);
        let mean = scaled.clone().mean_dim(0);
        let std = (scaled - mean.clone()).powi_scalar(2).mean_dim(0).sqrt();
        let std = std.clone().mask_fill(std.lower_elem(1e-6), 1.0);
        Self { first, mean, std }
    }

    /// `x` with its columns `first..` standardised.
    pub fn apply(&self, x: &Tensor<2>) -> Tensor<2> {
        let [rows, width] = x.dims();
        let kept = x.clone().slice([0..rows, 0..self.first]);
        let scaled =
            (x.clone().slice([0..rows, self.first..width]) - self.mean.clone()) / self.std.clone();
        Tensor::cat(vec![kept, scaled], 1)
    }

    /// `model`, fitted on [`Scaling::apply`]'d rows, as a linear model of the raw rows:
    /// ((x − μ)/σ)·W + b = x·(W/σ) + (b − (μ/σ)·W). Its parameters are new leaves.
    pub fn fold(&self, model: &Linear) -> Linear {
        let [width, labels] = model.weight.dims();
        let weight = model.weight.val();
        let bias = model
            .bias
            .as_ref()
            .map(|b| b.val())
            .unwrap_or_else(|| Tensor::zeros([labels], &weight.device()));
        let kept = weight.clone().slice([0..self.first, 0..labels]);
        let scaled = weight.slice([self.first..width, 0..labels])
            / self.std.clone().reshape([width - self.first, 1]);
        let shift = self.mean.clone().matmul(scaled.clone()).reshape([labels]);
        Linear {
            weight: leaf(Tensor::cat(vec![kept, scaled], 0)),
            bias: Some(leaf(bias - shift)),
        }
    }
}

/// A parameter holding `t`'s values as a new leaf: a computed tensor carries the autodiff graph
/// of its computation, and a parameter must not.
pub fn leaf<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_inner(t.inner()))
}

/// Mean BCE of `model`'s logits over every (row, label).
pub fn mean_bce(model: &Linear, x: Tensor<2>, y: Tensor<2, Int>) -> f64 {
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&x.device());
    bce.forward(model.forward(x), y).into_scalar::<f64>()
}

/// The fit [`regularisation_path`] chose.
pub struct Chosen {
    pub model: Linear,
    pub c: f64,
    /// Each C tried, with its validation loss.
    pub tried: Vec<(f64, f64)>,
}

/// A fit for each of [`CS`] on `(x, y)` (each starting from the previous), and the one with the
/// lowest mean BCE on `(x_val, y_val)`. An error when no C gives a finite validation loss.
pub fn regularisation_path(
    x: &Tensor<2>,
    y: &Tensor<2, Int>,
    x_val: &Tensor<2>,
    y_val: &Tensor<2, Int>,
) -> anyhow::Result<Chosen> {
    let mut model = zeros(x.dims()[1], y.dims()[1], &x.device());
    let (mut best, mut tried) = (None, Vec::new());
    for c in CS {
        model = l2_logistic(model, x, y, c);
        let loss = mean_bce(&model, x_val.clone(), y_val.clone());
        tried.push((c, loss));
        if loss.is_finite() && best.as_ref().is_none_or(|(_, _, l)| loss < *l) {
            best = Some((model.clone(), c, loss));
        }
    }
    let (model, c, _) =
        best.ok_or_else(|| anyhow::anyhow!("no C gave a finite validation loss: {tried:?}"))?;
    Ok(Chosen { model, c, tried })
}

/// A linear model `inputs → outputs` with every weight and bias at zero, where a fit starts.
pub fn zeros(inputs: usize, outputs: usize, device: &Device) -> Linear {
    LinearConfig::new(inputs, outputs)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// scikit-learn's `LogisticRegression(C = c)` for each column of `y` at once (the objective is a
/// sum over labels, so the joint minimum is each label's): (1/n)·(Σ BCE + ‖W‖²/(2c)), the bias
/// unpenalised, minimised by L-BFGS with a strong-Wolfe line search from `start`.
pub fn l2_logistic(start: Linear, x: &Tensor<2>, y: &Tensor<2, Int>, c: f64) -> Linear {
    let [n, labels] = y.dims();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&x.device());
    let mut closure = |model: Linear| {
        let fitted = bce.forward(model.forward(x.clone()), y.clone()) * labels as f64;
        let penalty = model.weight.val().powi_scalar(2).sum() / (2.0 * c * n as f64);
        let loss = fitted + penalty;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (loss.into_scalar::<f64>(), grads)
    };
    let mut optimizer = LBFGSConfig::new()
        .with_max_iter(MAX_ITERATIONS)
        .with_tolerance_grad(1e-9)
        .with_tolerance_change(1e-12)
        .with_line_search_fn(LineSearchFn::StrongWolfe)
        .init();
    optimizer.step(1.0, start, &mut closure).0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weights scikit-learn fits (tools/logistic_reference.py writes the fixture).
    #[test]
    fn l2_logistic_matches_scikit_learn() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/logistic/reference.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let rows = |v: &serde_json::Value| -> Vec<Vec<f64>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        };
        let (x, y) = (rows(&fixture["x"]), rows(&fixture["y"]));
        let (n, d, labels) = (x.len(), x[0].len(), y[0].len());
        let device = Device::flex().autodiff();
        let flat = |m: &[Vec<f64>]| m.iter().flatten().map(|&v| v as f32).collect::<Vec<f32>>();
        let xt =
            Tensor::<1>::from_data(TensorData::new(flat(&x), [n * d]), &device).reshape([n, d]);
        let yt = Tensor::<1, Int>::from_data(
            TensorData::new(
                y.iter().flatten().map(|&v| v as i64).collect(),
                [n * labels],
            ),
            &device,
        )
        .reshape([n, labels]);
        for reference in fixture["fits"].as_array().unwrap() {
            let c = reference["c"].as_f64().unwrap();
            let start = LinearConfig::new(d, labels)
                .with_initializer(Initializer::Zeros)
                .init(&device);
            let model = l2_logistic(start, &xt, &yt, c);
            let weight: Vec<f32> = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
            let bias: Vec<f32> = model
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let coef = rows(&reference["coef"]);
            let (ours, theirs): (Vec<f32>, Vec<f64>) = (0..labels)
                .flat_map(|j| (0..d).map(move |k| (j, k)))
                .map(|(j, k)| (weight[k * labels + j], coef[j][k]))
                .unzip();
            let worst = bedside::compare::max_abs_diff(&ours, &theirs);
            let probabilities: Vec<f32> =
                burn::tensor::activation::sigmoid(model.forward(xt.clone()))
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
            let expected: Vec<f64> = rows(&reference["probabilities"]).concat();
            let worst_p = bedside::compare::max_abs_diff(&probabilities, &expected);
            eprintln!(
                "C {c}: largest difference of a weight {worst:.1e}, of a probability {worst_p:.1e}"
            );
            assert!(worst_p < 5e-4, "C {c}: probabilities differ by {worst_p}");
            let intercept: Vec<f64> = reference["intercept"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            // f32 against f64: near the optimum a weight 5e-4 away changes the objective by less
            // than f32 resolves, so the line search stops there (measured over C 0.1, 1, 10: at
            // most 1.3e-3 on a weight of 2.4, 2.6e-4 on a probability); tolerances 1e-3 (relative
            // above 1) and 5e-4
            for j in 0..labels {
                for k in 0..d {
                    let ours = f64::from(weight[k * labels + j]);
                    assert!(
                        (ours - coef[j][k]).abs() < 1e-3 * coef[j][k].abs().max(1.0),
                        "C {c} label {j} weight {k}: {ours} vs scikit-learn {}",
                        coef[j][k]
                    );
                }
                let ours = f64::from(bias[j]);
                assert!(
                    (ours - intercept[j]).abs() < 1e-3 * intercept[j].abs().max(1.0),
                    "C {c} label {j} intercept: {ours} vs scikit-learn {}",
                    intercept[j]
                );
            }
        }
    }
}
