//! What a run reads: the cohorts' admissions split by patient, the code vocabularies of the
//! training split, and each admission ready for both models.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Result, bail};
use bedside::knowledge::atc3_of;
use bedside::model::medrec::Patient;
use bedside::record::PatientRecord;

use burn::prelude::*;

use anyhow::anyhow;
use bedside::recommend::MedicationSpec;

use super::config::MedRecRunConfig;

/// The admissions a run uses, split by patient, and the bundle's medication spec built from the
/// training side's vocabularies.
pub(super) struct Cohort {
    pub(super) records: Vec<PatientRecord>,
    pub(super) train: Vec<usize>,
    pub(super) validation: Vec<usize>,
    pub(super) test: Vec<usize>,
    pub(super) spec: MedicationSpec,
}

impl Cohort {
    pub(super) fn drugs(&self) -> &[String] {
        &self.spec.medications
    }

    /// The multi-hot targets of `rows`, one after another.
    pub(super) fn truth(examples: &[Example], rows: &[usize]) -> Vec<bool> {
        rows.iter()
            .flat_map(|&i| examples[i].target.clone())
            .collect()
    }
}

/// One admission, ready for both models.
pub(super) struct Example {
    pub(super) id: String,
    pub(super) source: String,
    pub(super) patient: Patient,
    pub(super) prompt: Vec<u32>,
    /// Multi-hot over the drug vocabulary.
    pub(super) target: Vec<bool>,
    /// Shared-vocabulary ids of the prescribed drugs (profile alignment).
    pub(super) target_ids: Vec<u32>,
    pub(super) multi_visit: bool,
}

/// The drug labels of a record at ATC level 3 (known classes only).
pub(super) fn drug_labels(record: &PatientRecord) -> BTreeSet<String> {
    record
        .labels
        .iter()
        .flat_map(|l| &l.medications)
        .filter_map(|m| atc3_of(m))
        .map(str::to_string)
        .collect()
}

/// The code vocabularies of the training split.
pub(super) fn vocabulary(
    records: &[PatientRecord],
    train: &[usize],
    config: &MedRecRunConfig,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut counts: [BTreeMap<String, usize>; 3] = Default::default();
    for &i in train {
        let r = &records[i];
        for v in &r.visits {
            for c in &v.diagnoses {
                *counts[0].entry(c.trim().to_string()).or_default() += 1;
            }
            for c in &v.procedures {
                *counts[1].entry(c.trim().to_string()).or_default() += 1;
            }
            for c in v.medications.iter().filter_map(|m| atc3_of(m)) {
                *counts[2].entry(c.to_string()).or_default() += 1;
            }
        }
        for c in drug_labels(r) {
            *counts[2].entry(c).or_default() += 1;
        }
    }
    let [d, p, m] = counts.map(|c| {
        c.into_iter()
            .filter(|(_, n)| *n >= config.min_code_count)
            .map(|(k, _)| k)
            .collect()
    });
    (d, p, m)
}

/// Reads the records of a run's cohorts (or the synthetic cohort).
pub fn records(
    config: &MedRecRunConfig,
    read: impl Fn(&PathBuf) -> Result<Vec<PatientRecord>>,
) -> Result<Vec<PatientRecord>> {
    if config.cohorts.is_empty() {
        return Ok(crate::shared::synthetic::cohort(
            config.synthetic,
            48,
            config.seed,
        ));
    }
    let mut out = Vec::new();
    for path in &config.cohorts {
        out.extend(read(path)?);
    }
    if out.is_empty() {
        bail!("the cohorts hold no admissions");
    }
    Ok(out)
}

/// The multi-hot drug targets of a batch as a `[batch, drugs]` tensor.
pub(super) fn targets_tensor(examples: &[&Example], m: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = examples
        .iter()
        .flat_map(|e| e.target.iter().map(|&t| f32::from(u8::from(t))))
        .collect();
    Tensor::<1>::from_data(TensorData::new(values, [examples.len() * m]), device)
        .reshape([examples.len(), m])
}

/// A tensor's values on the host.
pub(super) fn floats_of(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("{e:?}"))
}
