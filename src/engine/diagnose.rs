//! `diagnose`: a record's calibrated phenotype probabilities, the diagnoses at the bundle's
//! threshold and the record's evidence for them; and the prompt and tensors every answer of the
//! clinical model starts from.

use super::{Engine, Loaded, MAX_PROMPT_TOKENS};
use crate::bundle::MANIFEST_FILE;
use crate::error::{BedsideError, Result};
use crate::findings::Findings;
use crate::grounded::{Evidence, Fact, evidence};
use crate::knowledge::PHENOTYPES;
use crate::model::ClinicalInput;
use crate::model::input::pad_ids;
use crate::out_of_range::OutOfRange;
use crate::prompt::clinical_prompt;
use crate::record::{GridNotice, PatientRecord, SeriesGrid};
use crate::tokenizer::TextTokenizer;
use burn::prelude::*;
use serde::Serialize;

/// One phenotype's probability.
#[derive(Debug, Clone, Serialize)]
pub struct PhenotypeScore {
    pub name: &'static str,
    pub short: &'static str,
    pub probability: f32,
}

/// What `diagnose` returns for one record.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub id: String,
    /// Every phenotype, most probable first.
    pub phenotypes: Vec<PhenotypeScore>,
    /// Names of the phenotypes at or above the bundle's threshold; none when the record is out
    /// of range.
    pub diagnosed: Vec<&'static str>,
    /// Grid cells (channel × hour) that held a measurement.
    pub observed_cells: usize,
    /// The record's findings that the knowledge base links to each diagnosed phenotype (see
    /// [`crate::grounded::Evidence`]).
    pub evidence: Vec<Evidence>,
    /// Observations that could not be used, and why.
    pub notices: Vec<GridNotice>,
    /// Why the record is outside the model's range, when it is (then nothing is diagnosed and
    /// no evidence given; the probabilities are still computed): [`crate::out_of_range`].
    pub out_of_range: Option<OutOfRange>,
    pub backend: &'static str,
}

impl Engine {
    pub async fn diagnose(&self, record: &PatientRecord) -> Result<Diagnosis> {
        let mut out = self.diagnose_batch(std::slice::from_ref(record)).await?;
        out.pop()
            .ok_or_else(|| BedsideError::backend(self.backend.name(), "no output"))
    }

    /// Diagnoses several records in one forward pass.
    pub async fn diagnose_batch(&self, records: &[PatientRecord]) -> Result<Vec<Diagnosis>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let hours = self.manifest.model.hours();
        let grids: Vec<SeriesGrid> = records
            .iter()
            .map(|r| r.validate().map(|()| SeriesGrid::from_record(r, hours)))
            .collect::<Result<_>>()?;
        // each record's findings once: its prompt states them, its evidence cites them
        let findings: Vec<Findings> = records.iter().map(|r| Findings::of(r, hours)).collect();
        let probabilities = self.probabilities(records, &grids, &findings).await?;
        let labels = PHENOTYPES.len();
        Ok(records
            .iter()
            .zip(grids)
            .zip(&findings)
            .zip(probabilities.chunks(labels))
            .map(|(((record, grid), findings), probs)| self.describe(record, grid, findings, probs))
            .collect())
    }

    /// A record's prompt ids, cut at the length the model was trained with (the manifest's
    /// `max_prompt_tokens`; [`MAX_PROMPT_TOKENS`] for bundles that do not say).
    pub(super) fn prompt_ids(
        &self,
        tokenizer: &TextTokenizer,
        record: &PatientRecord,
        findings: &Findings,
    ) -> Result<Vec<u32>> {
        let limit = self.manifest.max_prompt_tokens.unwrap_or(MAX_PROMPT_TOKENS);
        tokenizer.encode_at_most(&clinical_prompt(record, findings, true, true), limit)
    }

    /// A clinical bundle's prompt ids for `record`, as `explain` encodes it.
    pub fn prompt(&self, record: &PatientRecord) -> Result<Vec<u32>> {
        let Loaded::Clinical { tokenizer, .. } = &self.model else {
            return Ok(Vec::new());
        };
        self.prompt_ids(
            tokenizer,
            record,
            &Findings::of(record, self.manifest.model.hours()),
        )
    }

    /// The clinical model's input for records: notes prompt ids (at most [`MAX_PROMPT_TOKENS`])
    /// and the lab grids.
    pub fn clinical_input(
        &self,
        tokenizer: &TextTokenizer,
        records: &[PatientRecord],
        grids: &[SeriesGrid],
    ) -> Result<ClinicalInput> {
        let hours = self.manifest.model.hours();
        let findings: Vec<Findings> = records.iter().map(|r| Findings::of(r, hours)).collect();
        self.input_with(tokenizer, records, grids, &findings)
    }

    /// [`Self::clinical_input`] with each record's findings already made.
    fn input_with(
        &self,
        tokenizer: &TextTokenizer,
        records: &[PatientRecord],
        grids: &[SeriesGrid],
        findings: &[Findings],
    ) -> Result<ClinicalInput> {
        let prompts = records
            .iter()
            .zip(findings)
            .map(|(r, f)| self.prompt_ids(tokenizer, r, f))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.input_of(&prompts, grids))
    }

    /// The clinical model's input from prompt ids and grids.
    pub(super) fn input_of(&self, prompts: &[Vec<u32>], grids: &[SeriesGrid]) -> ClinicalInput {
        let grids: Vec<&SeriesGrid> = grids.iter().collect();
        ClinicalInput {
            text: Some(pad_ids(prompts, &self.device)),
            series: Some(SeriesGrid::tensors(&grids, &self.device)),
        }
    }

    async fn probabilities(
        &self,
        records: &[PatientRecord],
        grids: &[SeriesGrid],
        findings: &[Findings],
    ) -> Result<Vec<f32>> {
        let logits = match &self.model {
            Loaded::LabPhenotype(model) => {
                let grids: Vec<&SeriesGrid> = grids.iter().collect();
                let (values, mask) = SeriesGrid::tensors(&grids, &self.device);
                model.forward(values, mask)
            }
            Loaded::Clinical {
                model, tokenizer, ..
            } => {
                let input = self.input_with(tokenizer, records, grids, findings)?;
                model.phenotype_logits(&model.encode(&input))
            }
            Loaded::Mortality(_) => {
                return Err(BedsideError::Incompatible {
                    file: MANIFEST_FILE.into(),
                    message: "a mortality bundle answers risk, not diagnose".into(),
                });
            }
        };
        let probs = self.read_back(self.calibrated(logits, records)).await?;
        if probs.len() != grids.len() * PHENOTYPES.len() || probs.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped probabilities",
            ));
        }
        Ok(probs)
    }

    /// The head's probabilities of its logits: the sigmoid after the bundle's calibration, the
    /// map fitted on records like each row's (with notes, or labs alone:
    /// [`crate::calibration::HeadCalibration`]), for the whole batch in two operations.
    pub(super) fn calibrated(&self, logits: Tensor<2>, records: &[PatientRecord]) -> Tensor<2> {
        let Some(calibration) = self.manifest.head_calibration() else {
            return burn::tensor::activation::sigmoid(logits);
        };
        let [rows, labels] = logits.dims();
        let maps: Vec<_> = records
            .iter()
            .map(|r| calibration.for_record(!r.notes.is_empty()))
            .collect();
        let scales: Vec<f32> = maps.iter().map(|m| m.scale).collect();
        let shifts: Vec<f32> = maps
            .iter()
            .flat_map(|m| (0..labels).map(|label| m.shift_of(label)))
            .collect();
        let scales = Tensor::<1>::from_floats(scales.as_slice(), &self.device).reshape([rows, 1]);
        let shifts =
            Tensor::<1>::from_floats(shifts.as_slice(), &self.device).reshape([rows, labels]);
        burn::tensor::activation::sigmoid(logits * scales + shifts)
    }

    fn describe(
        &self,
        record: &PatientRecord,
        grid: SeriesGrid,
        findings: &Findings,
        probs: &[f32],
    ) -> Diagnosis {
        let mut phenotypes: Vec<PhenotypeScore> = PHENOTYPES
            .iter()
            .zip(probs)
            .map(|(p, &probability)| PhenotypeScore {
                name: p.name,
                short: p.short,
                probability,
            })
            .collect();
        phenotypes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let out_of_range = OutOfRange::of(record, &grid);
        let diagnosed: Vec<&'static str> = phenotypes
            .iter()
            .filter(|p| out_of_range.is_none() && p.probability >= self.manifest.threshold)
            .map(|p| p.name)
            .collect();
        let facts: Vec<Fact> = findings
            .labs
            .iter()
            .map(Fact::Lab)
            .chain(
                findings
                    .sentences
                    .iter()
                    .take(crate::grounded::MAX_QUOTED_SENTENCES)
                    .map(Fact::Note),
            )
            .collect();
        let mut evidence = evidence(record, &facts, &diagnosed);
        evidence.retain(|e| e.diagnosis.is_some());
        let observed_cells = grid.observed();
        let mut notices = crate::record::record_notices(record);
        notices.extend(grid.notices);
        Diagnosis {
            id: record.id.clone(),
            evidence,
            observed_cells,
            notices,
            phenotypes,
            diagnosed,
            out_of_range,
            backend: self.backend.name(),
        }
    }
}
