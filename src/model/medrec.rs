//! The LEADER student: a compact medication recommender distilled from a language-model teacher.
//!
//! Codes of the three types (diagnoses, procedures, medications) share one embedding table, each
//! type's index range offset into it (alignment and drug-set embeddings use the offset indices —
//! the reference code forgets the offset). One transformer block per code type encodes a visit's
//! code set, pooled by masked mean; the three are mixed into a visit vector. A visit-level
//! transformer reads a learned patient-profile prompt (age band, sex) followed by the visits, each
//! with an embedding of how many visits before the current one it lies (the reference has no
//! visit order). The current visit's diagnoses and procedures are input; its medications are the
//! target. The head is an MLP whose 2E-wide hidden layer — the *mediator* — is what feature
//! distillation matches to the teacher; the profile token is what profile alignment pulls toward
//! the embedding of the prescribed drug set.

use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Code types, in the order of the shared vocabulary.
pub const CODE_TYPES: usize = 3;
/// Age bands of the profile prompt: <30, 30s, ..., 80s, 90+ and unknown.
pub const AGE_BANDS: usize = 9;
/// Sex values of the profile prompt: female, male, other, unknown.
pub const SEX_VALUES: usize = 4;

#[derive(Config, Debug)]
pub struct MedRecConfig {
    pub diagnoses: usize,
    pub procedures: usize,
    pub medications: usize,
    /// E: the embedding width; the mediator layer is 2E wide.
    #[config(default = 64)]
    pub d_model: usize,
    #[config(default = 4)]
    pub heads: usize,
    #[config(default = 2)]
    pub visit_layers: usize,
    /// Longest history kept (the current visit included); older visits are dropped first.
    #[config(default = 16)]
    pub max_visits: usize,
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl MedRecConfig {
    /// Size of the shared vocabulary: padding (0), then diagnoses, procedures, medications.
    pub fn vocab_size(&self) -> usize {
        1 + self.diagnoses + self.procedures + self.medications
    }

    /// Offset of each code type in the shared vocabulary.
    pub fn offsets(&self) -> [usize; CODE_TYPES] {
        [1, 1 + self.diagnoses, 1 + self.diagnoses + self.procedures]
    }

    pub fn init(&self, device: &Device) -> MedRecModel {
        let e = self.d_model;
        let block = |layers| {
            TransformerEncoderConfig::new(e, 2 * e, self.heads, layers)
                .with_dropout(self.dropout)
                .with_norm_first(true)
                .init(device)
        };
        MedRecModel {
            codes: EmbeddingConfig::new(self.vocab_size(), e).init(device),
            diagnosis_block: block(1),
            procedure_block: block(1),
            medication_block: block(1),
            visit_mix: LinearConfig::new(CODE_TYPES * e, e).init(device),
            visit_position: EmbeddingConfig::new(self.max_visits, e).init(device),
            profile: EmbeddingConfig::new(AGE_BANDS + SEX_VALUES, e).init(device),
            visit_encoder: block(self.visit_layers),
            mediator: LinearConfig::new(2 * e, 2 * e).init(device),
            head: LinearConfig::new(2 * e, self.medications).init(device),
            max_visits: self.max_visits,
        }
    }
}

#[derive(Module, Debug)]
pub struct MedRecModel {
    pub codes: Embedding,
    pub diagnosis_block: TransformerEncoder,
    pub procedure_block: TransformerEncoder,
    pub medication_block: TransformerEncoder,
    pub visit_mix: Linear,
    pub visit_position: Embedding,
    pub profile: Embedding,
    pub visit_encoder: TransformerEncoder,
    pub mediator: Linear,
    pub head: Linear,
    max_visits: usize,
}

/// A batch of patients, built on the host by [`MedRecBatch::new`].
#[derive(Debug, Clone)]
pub struct MedRecBatch {
    /// `[batch, visits, CODE_TYPES, codes]` shared-vocabulary ids, 0 = padding. Visits are
    /// left-aligned; row r's current visit is at `visits[r] - 1`.
    pub codes: Tensor<4, Int>,
    /// Number of (kept) visits of each row, current included.
    pub visits: Vec<usize>,
    /// `[batch, 2]` profile ids: age band, AGE_BANDS + sex.
    pub profile: Tensor<2, Int>,
}

/// One patient: visits oldest first (the last is the current one), each as three lists of
/// shared-vocabulary ids; the current visit's medications are ignored (they are the target).
#[derive(Debug, Clone, Default)]
pub struct Patient {
    pub visits: Vec<[Vec<u32>; CODE_TYPES]>,
    pub age_band: usize,
    pub sex: usize,
}

impl MedRecBatch {
    /// Pads and truncates: at most `max_visits` visits, always keeping the current one (the
    /// reference truncation can drop it), and at most `max_codes` codes per set.
    pub fn new(patients: &[Patient], max_visits: usize, max_codes: usize, device: &Device) -> Self {
        let kept: Vec<&[[Vec<u32>; CODE_TYPES]]> = patients
            .iter()
            .map(|p| &p.visits[p.visits.len().saturating_sub(max_visits.max(1))..])
            .collect();
        let batch = patients.len();
        let visits = kept.iter().map(|v| v.len()).max().unwrap_or(0).max(1);
        let codes = kept
            .iter()
            .flat_map(|v| v.iter().flat_map(|types| types.iter().map(Vec::len)))
            .max()
            .unwrap_or(0)
            .clamp(1, max_codes.max(1));
        let mut ids = vec![0i64; batch * visits * CODE_TYPES * codes];
        for (r, patient_visits) in kept.iter().enumerate() {
            let last = patient_visits.len().saturating_sub(1);
            for (v, types) in patient_visits.iter().enumerate() {
                for (t, set) in types.iter().enumerate() {
                    if v == last && t == CODE_TYPES - 1 {
                        continue; // the current visit's medications are the target
                    }
                    for (k, id) in set.iter().take(codes).enumerate() {
                        ids[((r * visits + v) * CODE_TYPES + t) * codes + k] = i64::from(*id);
                    }
                }
            }
        }
        let profile: Vec<i64> = patients
            .iter()
            .flat_map(|p| {
                [
                    p.age_band.min(AGE_BANDS - 1) as i64,
                    (AGE_BANDS + p.sex.min(SEX_VALUES - 1)) as i64,
                ]
            })
            .collect();
        Self {
            codes: Tensor::<1, Int>::from_data(
                TensorData::new(ids, [batch * visits * CODE_TYPES * codes]),
                device,
            )
            .reshape([batch, visits, CODE_TYPES, codes]),
            visits: kept.iter().map(|v| v.len()).collect(),
            profile: Tensor::from_data(TensorData::new(profile, [batch, 2]), device),
        }
    }
}

/// The age band of the profile prompt.
pub fn age_band(age: Option<f64>) -> usize {
    match age {
        Some(a) if a.is_finite() && a >= 0.0 => {
            ((a / 10.0) as usize).saturating_sub(2).min(AGE_BANDS - 2)
        }
        _ => AGE_BANDS - 1,
    }
}

#[derive(Debug, Clone)]
pub struct MedRecOutput {
    /// `[batch, medications]`.
    pub logits: Tensor<2>,
    /// `[batch, 2E]`: the layer feature distillation matches to the teacher.
    pub mediator: Tensor<2>,
    /// `[batch, E]`: the patient-profile token after the visit encoder.
    pub profile: Tensor<2>,
}

/// Masked mean over axis 1 of `[n, len, e]` with `pad` `[n, len]` (true = padding).
fn masked_mean(x: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<2> {
    let keep = pad.bool_not().float().unsqueeze_dim::<3>(2);
    let count = keep.clone().sum_dim(1).squeeze_dim::<2>(1).clamp_min(1.0);
    (x * keep).sum_dim(1).squeeze_dim::<2>(1) / count
}

impl MedRecModel {
    pub fn forward(&self, batch: &MedRecBatch) -> MedRecOutput {
        let [b, v, _, k] = batch.codes.dims();
        let device = batch.codes.device();
        let e = self.codes.weight.dims()[1];
        // code sets → one vector per type
        let blocks = [
            &self.diagnosis_block,
            &self.procedure_block,
            &self.medication_block,
        ];
        let per_type: Vec<Tensor<3>> = blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let ids = batch.codes.clone().narrow(2, i, 1).reshape([b * v, k]);
                let pad = ids.clone().equal_elem(0);
                let x = block.forward(
                    TransformerEncoderInput::new(self.codes.forward(ids)).mask_pad(pad.clone()),
                );
                masked_mean(x, pad).reshape([b, v, e])
            })
            .collect();
        let visits = self.visit_mix.forward(Tensor::cat(per_type, 2));
        // how many visits before the current one each visit lies (0 = current)
        let before: Vec<i64> = batch
            .visits
            .iter()
            .flat_map(|&n| {
                (0..v).map(move |i| (n.saturating_sub(1 + i)).min(self.max_visits - 1) as i64)
            })
            .collect();
        let before =
            Tensor::<1, Int>::from_data(TensorData::new(before, [b * v]), &device).reshape([b, v]);
        let visits = visits + self.visit_position.forward(before);
        let profile = self.profile.forward(batch.profile.clone()); // [b, 2, e]
        let sequence = Tensor::cat(vec![profile, visits], 1);
        let pad: Vec<bool> = batch
            .visits
            .iter()
            .flat_map(|&n| (0..2 + v).map(move |i| i >= 2 + n))
            .collect();
        let pad = Tensor::<1, Bool>::from_data(TensorData::new(pad, [b * (2 + v)]), &device)
            .reshape([b, 2 + v]);
        let out = self
            .visit_encoder
            .forward(TransformerEncoderInput::new(sequence).mask_pad(pad));
        let current: Vec<i64> = batch
            .visits
            .iter()
            .map(|&n| (1 + n.max(1)) as i64)
            .collect();
        let current = Tensor::<1, Int>::from_data(TensorData::new(current, [b]), &device)
            .reshape([b, 1, 1])
            .repeat_dim(2, e);
        let current = out.clone().gather(1, current).reshape([b, e]);
        let profile = out.narrow(1, 0, 2).mean_dim(1).reshape([b, e]);
        let mediator = relu(
            self.mediator
                .forward(Tensor::cat(vec![current, profile.clone()], 1)),
        );
        MedRecOutput {
            logits: self.head.forward(mediator.clone()),
            mediator,
            profile,
        }
    }

    /// The embedding of a drug set `[batch, codes]` (shared-vocabulary ids, 0 = padding): the
    /// masked mean of its codes' embeddings, what profile alignment pulls the profile toward.
    pub fn drug_set_embedding(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let pad = ids.clone().equal_elem(0);
        masked_mean(self.codes.forward(ids), pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MedRecConfig {
        MedRecConfig::new(20, 10, 15)
            .with_d_model(16)
            .with_heads(2)
            .with_max_visits(3)
            .with_dropout(0.0)
    }

    fn patient(visits: usize, med: u32) -> Patient {
        let o = config().offsets().map(|x| x as u32);
        Patient {
            visits: (0..visits)
                .map(|v| {
                    [
                        vec![o[0] + v as u32, o[0] + 3],
                        vec![o[1] + 1],
                        vec![o[2] + med, o[2] + 2],
                    ]
                })
                .collect(),
            age_band: 5,
            sex: 0,
        }
    }

    #[test]
    fn shapes_and_batch_independence() -> Result<(), String> {
        let device = Device::flex();
        let model = config().init(&device);
        let alone = model.forward(&MedRecBatch::new(&[patient(2, 4)], 3, 8, &device));
        let together = model.forward(&MedRecBatch::new(
            &[patient(2, 4), patient(5, 7)],
            3,
            8,
            &device,
        ));
        assert_eq!(together.logits.dims(), [2, 15]);
        assert_eq!(together.mediator.dims(), [2, 32]);
        assert_eq!(together.profile.dims(), [2, 16]);
        let a = alone
            .logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let b = together
            .logits
            .narrow(0, 0, 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let diff = crate::compare::max_abs_diff(&a, &b);
        assert!(
            diff < 1e-4,
            "a longer patient in the batch changed another's logits by {diff}"
        );
        Ok(())
    }

    #[test]
    fn truncation_keeps_the_current_visit_and_hides_its_medications() -> Result<(), String> {
        let device = Device::flex();
        let mut p = patient(5, 4);
        p.visits[4][0] = vec![99];
        let batch = MedRecBatch::new(&[p], 3, 8, &device);
        assert_eq!(batch.visits, [3]);
        let ids = batch
            .codes
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| format!("{e:?}"))?;
        let k = ids.len() / (3 * CODE_TYPES);
        // current visit (index 2): its diagnosis is kept, its medication set is empty
        assert_eq!(ids[(2 * CODE_TYPES) * k], 99);
        assert!(
            ids[(2 * CODE_TYPES + 2) * k..(2 * CODE_TYPES + 3) * k]
                .iter()
                .all(|i| *i == 0)
        );
        Ok(())
    }

    #[test]
    fn age_bands() {
        assert_eq!(age_band(Some(25.0)), 0);
        assert_eq!(age_band(Some(45.0)), 2);
        assert_eq!(age_band(Some(95.0)), 7);
        assert_eq!(age_band(Some(f64::NAN)), 8);
        assert_eq!(age_band(None), 8);
    }
}
