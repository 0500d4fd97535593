//! The other models' answers on the same engine: `recommend` (LEADER's student) and `risk`
//! (the mortality model).

use super::{Engine, Loaded};
use crate::bundle::MANIFEST_FILE;
use crate::chart::channel_series;
use crate::error::{BedsideError, Result};
use crate::findings::Findings;
use crate::model::{MedRecBatch, MortalityModel};
use crate::out_of_range::OutOfRange;
use crate::recommend::Recommendation;
use crate::record::{PatientRecord, SeriesGrid};
use crate::risk::Risk;

impl Engine {
    /// Recommends ATC-3 drugs for a record's current visit from its coded history, with the
    /// drug–drug interactions among them and with what the patient already takes.
    pub async fn recommend(&self, record: &PatientRecord) -> Result<Recommendation> {
        let Some((model, spec)) = &self.medrec else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: "this bundle has no medication recommender (manifest.medications)".into(),
            });
        };
        let (patient, unknown_codes) = spec.input(record)?;
        let batch = MedRecBatch::new(
            std::slice::from_ref(&patient),
            spec.config.max_visits,
            spec.max_codes,
            &self.device,
        );
        let probs = burn::tensor::activation::sigmoid(model.forward(&batch).logits);
        let probs = self.read_back(probs).await?;
        if probs.len() != spec.medications.len() || probs.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the recommender returned non-finite or mis-shaped probabilities",
            ));
        }
        let mut recommendation = spec.rank(record, probs, unknown_codes, self.backend.name());
        // out of range: the scores stay, nothing is recommended
        if let Some(out) = OutOfRange::for_recommender(record) {
            recommendation.medications.clear();
            recommendation.ddi_warnings.clear();
            recommendation.out_of_range = Some(out);
        }
        Ok(recommendation)
    }

    /// The calibrated risk of a mortality bundle's outcome for `record`, with the record's
    /// findings ordered by how much each moved it (occlusion: [`crate::risk`]). Out of range
    /// (the clinical model's rule, [`crate::out_of_range`]): the risk is still computed, and
    /// given with the reasons and no findings.
    pub async fn risk(&self, record: &PatientRecord) -> Result<Risk> {
        let Loaded::Mortality(model) = &self.model else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: format!(
                    "a {} bundle does not answer risk: load a mortality bundle",
                    self.manifest.model.kind()
                ),
            });
        };
        record.validate()?;
        let hours = self.manifest.model.hours();
        let grid = SeriesGrid::from_record(record, hours);
        let out_of_range = OutOfRange::of(record, &grid);
        let findings = match out_of_range {
            None => Findings::of(record, hours),
            Some(_) => Findings::default(),
        };
        let records = crate::risk::occlusions(record, &findings, hours);
        let grids: Vec<SeriesGrid> = records
            .iter()
            .map(|r| SeriesGrid::from_record(r, hours))
            .collect();
        let (values, mask) = SeriesGrid::tensors(&grids.iter().collect::<Vec<_>>(), &self.device);
        let statics =
            MortalityModel::statics_tensor(&records.iter().collect::<Vec<_>>(), &self.device);
        let logits = model.forward(values, mask, statics);
        let risks = self.read_back(self.calibrated(logits, &records)).await?;
        if risks.len() != records.len() || risks.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped risks",
            ));
        }
        // the model reads no notes; what it does read unlike its training stays is said
        let mut notices = crate::record::record_notices(record);
        notices.retain(|n| n.kind != "no_notes");
        notices.extend(crate::risk::unlike_training(record));
        let observed_cells = grid.observed();
        let series = channel_series(&grid, &[], &[]);
        notices.extend(grid.notices);
        Ok(Risk {
            id: record.id.clone(),
            outcome: self.manifest.labels.first().cloned().unwrap_or_default(),
            probability: risks[0],
            findings: crate::risk::ranked_findings(record, &findings, &risks),
            observed_cells,
            notices,
            out_of_range,
            series,
            backend: self.backend.name(),
        })
    }
}
