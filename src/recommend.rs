//! Medication recommendation at inference: the code vocabularies that turn a record's coded
//! visits into the LEADER student's input, and the drug–drug-interaction warnings that come with
//! what it recommends. `bedside-train medrec` builds the vocabularies; a bundle carries them in
//! its manifest (`medications`) next to the student's weights (`medrec.safetensors`).

use crate::error::{BedsideError, Result};
use crate::knowledge::{atc3_name, interacts};
use crate::model::medrec::{CODE_TYPES, MedRecConfig, Patient, SEX_VALUES, age_band};
use crate::record::{PatientRecord, Sex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub use crate::files::MEDREC_FILE;

/// What a bundle says about its medication recommender.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MedicationSpec {
    pub config: MedRecConfig,
    /// Diagnosis codes as records write them (`icd9:4280`), in the order of the shared vocabulary.
    pub diagnoses: Vec<String>,
    pub procedures: Vec<String>,
    /// ATC level-3 codes, in the order of the model's outputs.
    pub medications: Vec<String>,
    /// Probability at or above which a drug is recommended.
    pub threshold: f32,
    /// Most codes of one type read per visit.
    pub max_codes: usize,
}

impl MedicationSpec {
    /// Checks the spec against itself and the knowledge base, with bounds that keep a hostile
    /// manifest from allocating without limit.
    pub fn check(&self, file: &str) -> Result<()> {
        let bad = |message: String| BedsideError::bundle(file, format!("medications: {message}"));
        let c = &self.config;
        for (field, listed, configured) in [
            ("diagnoses", self.diagnoses.len(), c.diagnoses),
            ("procedures", self.procedures.len(), c.procedures),
            ("medications", self.medications.len(), c.medications),
        ] {
            if listed != configured {
                return Err(bad(format!(
                    "{listed} {field} listed, config says {}",
                    configured
                )));
            }
            if listed > 1 << 17 {
                return Err(bad(format!("{listed} {field} is more than {}", 1 << 17)));
            }
        }
        if self.medications.is_empty() {
            return Err(bad("no medications to recommend".into()));
        }
        if let Some(code) = self.medications.iter().find(|m| atc3_name(m).is_none()) {
            return Err(bad(format!(
                "{code:?} is not an ATC level-3 code of the knowledge base"
            )));
        }
        for (field, value, max) in [
            ("config.d_model", c.d_model, 2048),
            ("config.heads", c.heads, 64),
            ("config.visit_layers", c.visit_layers, 32),
            ("config.max_visits", c.max_visits, 512),
            ("max_codes", self.max_codes, 4096),
        ] {
            if value == 0 || value > max {
                return Err(bad(format!("{field} = {value} is outside 1..={max}")));
            }
        }
        if !c.d_model.is_multiple_of(c.heads) {
            return Err(bad("config.d_model is not divisible by config.heads".into()));
        }
        crate::model::bounds::rate("config.dropout", c.dropout).map_err(bad)?;
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(bad("threshold must be within 0..=1".into()));
        }
        Ok(())
    }

    /// The recommender's input for a record: its coded visits (the last is the current one), and
    /// the codes the vocabularies do not know. A record without visits is refused by field.
    pub fn input(&self, record: &PatientRecord) -> Result<(Patient, Vec<String>)> {
        record.validate()?;
        if record.visits.is_empty() {
            return Err(BedsideError::InvalidRecord(vec![
                crate::error::FieldProblem {
                    path: "$.visits".into(),
                    message:
                        "empty: recommending medications needs at least the current visit's codes"
                            .into(),
                },
            ]));
        }
        Ok(self.patient(record))
    }

    /// The answer from the recommender's probabilities (one per drug of `medications`, in order):
    /// every drug ranked, those at or above the threshold recommended, and the drug–drug
    /// interactions among them and with what the patient already takes.
    pub fn rank(
        &self,
        record: &PatientRecord,
        probs: Vec<f32>,
        unknown_codes: Vec<String>,
        backend: &'static str,
    ) -> Recommendation {
        let mut scores: Vec<DrugScore> = self
            .medications
            .iter()
            .zip(probs)
            .map(|(code, probability)| DrugScore {
                name: atc3_name(code).unwrap_or("unknown ATC class"),
                code: code.clone(),
                probability,
            })
            .collect();
        scores.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let medications: Vec<DrugScore> = scores
            .iter()
            .filter(|d| d.probability >= self.threshold)
            .cloned()
            .collect();
        let current = current_medications(record);
        let recommended: Vec<&str> = medications.iter().map(|d| d.code.as_str()).collect();
        Recommendation {
            id: record.id.clone(),
            ddi_warnings: ddi_warnings(&recommended, &current),
            medications,
            scores,
            current,
            unknown_codes,
            out_of_range: None,
            backend,
        }
    }

    /// The student's input for a record, and the codes it does not know (reported, not dropped
    /// silently). Visits beyond the model's `max_visits` are left to [`crate::model::MedRecBatch`].
    pub fn patient(&self, record: &PatientRecord) -> (Patient, Vec<String>) {
        let offsets = self.config.offsets();
        let index = |codes: &[String], offset: usize| -> HashMap<String, u32> {
            codes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), (offset + i) as u32))
                .collect()
        };
        let maps = [
            index(&self.diagnoses, offsets[0]),
            index(&self.procedures, offsets[1]),
            index(&self.medications, offsets[2]),
        ];
        let mut unknown = BTreeSet::new();
        let last = record.visits.len().saturating_sub(1);
        let visits = record
            .visits
            .iter()
            .enumerate()
            .map(|(v, visit)| {
                let sets = [&visit.diagnoses, &visit.procedures, &visit.medications];
                std::array::from_fn::<Vec<u32>, CODE_TYPES, _>(|t| {
                    if v == last && t == CODE_TYPES - 1 {
                        return Vec::new(); // what is being recommended is not input
                    }
                    let mut ids: Vec<u32> = Vec::new();
                    for code in sets[t] {
                        let key = if t == CODE_TYPES - 1 {
                            code.trim().to_ascii_uppercase()
                        } else {
                            code.trim().to_string()
                        };
                        match maps[t].get(&key) {
                            Some(&id) if !ids.contains(&id) => ids.push(id),
                            Some(_) => {}
                            None => {
                                unknown.insert(code.clone());
                            }
                        }
                    }
                    ids
                })
            })
            .collect();
        let sex = match record.demographics.sex {
            Some(Sex::Female) => 0,
            Some(Sex::Male) => 1,
            Some(Sex::Other) => 2,
            Some(Sex::Unknown) | None => SEX_VALUES - 1,
        };
        let patient = Patient {
            visits,
            age_band: age_band(record.demographics.age),
            sex,
        };
        (patient, unknown.into_iter().collect())
    }
}

/// One drug and the student's probability for it.
#[derive(Debug, Clone, Serialize)]
pub struct DrugScore {
    /// ATC level-3 code.
    pub code: String,
    pub name: &'static str,
    pub probability: f32,
}

/// Two drugs of a recommendation that interact (TWOSIDES pairs at ATC level 3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DdiWarning {
    /// The recommended drug.
    pub drug: String,
    pub drug_name: &'static str,
    /// The drug it interacts with: another recommended one, or one the patient already takes.
    pub with: String,
    pub with_name: &'static str,
    /// Whether `with` is a current medication rather than another recommended drug.
    pub with_current: bool,
}

/// What `recommend` returns for one record.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub id: String,
    /// The drugs at or above the bundle's threshold, most probable first.
    pub medications: Vec<DrugScore>,
    /// Every drug of the vocabulary, most probable first.
    pub scores: Vec<DrugScore>,
    /// The medications the patient already takes (see [`current_medications`]).
    pub current: Vec<String>,
    pub ddi_warnings: Vec<DdiWarning>,
    /// Codes of the record's visits that the recommender does not know (not used).
    pub unknown_codes: Vec<String>,
    /// Why the record is outside the recommender's range (a child, a setting outside the
    /// hospital), when it is: then `medications` and `ddi_warnings` are empty and only `scores` is
    /// given ([`crate::out_of_range::OutOfRange::for_recommender`]).
    pub out_of_range: Option<crate::out_of_range::OutOfRange>,
    pub backend: &'static str,
}

/// The medications a patient already takes: those listed on the current visit, or, where it
/// lists none (an admission just begun), those of the visit before.
pub fn current_medications(record: &PatientRecord) -> Vec<String> {
    record
        .visits
        .iter()
        .rev()
        .take(2)
        .map(|v| &v.medications)
        .find(|m| !m.is_empty())
        .map(|m| {
            m.iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
}

/// Every interacting pair among the recommended drugs, and between a recommended drug and a
/// current one (unless it is itself current: continuing a drug adds no new interaction).
pub fn ddi_warnings(recommended: &[&str], current: &[String]) -> Vec<DdiWarning> {
    let name = |c: &str| atc3_name(c).unwrap_or("unknown ATC class");
    let warning = |a: &str, b: &str, with_current| DdiWarning {
        drug: a.to_string(),
        drug_name: name(a),
        with: b.to_string(),
        with_name: name(b),
        with_current,
    };
    let mut out = Vec::new();
    for (i, a) in recommended.iter().enumerate() {
        for b in &recommended[i + 1..] {
            if interacts(a, b) {
                out.push(warning(a, b, false));
            }
        }
        for b in current {
            if !recommended.contains(&b.as_str()) && interacts(a, b) {
                out.push(warning(a, b, true));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::ddi_pairs;
    use crate::record::Visit;

    fn spec() -> MedicationSpec {
        MedicationSpec {
            config: MedRecConfig::new(2, 1, 3),
            diagnoses: vec!["icd9:4280".into(), "icd9:5849".into()],
            procedures: vec!["icd9:3995".into()],
            medications: vec!["B01A".into(), "C03C".into(), "N02B".into()],
            threshold: 0.5,
            max_codes: 32,
        }
    }

    fn record(visits: Vec<Visit>) -> PatientRecord {
        PatientRecord {
            skipped: Vec::new(),
            window_start: None,
            format_version: 1,
            id: "x".into(),
            patient: None,
            demographics: Default::default(),
            notes: Vec::new(),
            observations: Vec::new(),
            visits,
            labels: None,
        }
    }

    #[test]
    fn codes_map_to_the_shared_vocabulary_and_unknown_ones_are_reported() {
        let visit = |d: &[&str], m: &[&str]| Visit {
            diagnoses: d.iter().map(|s| s.to_string()).collect(),
            procedures: vec!["icd9:3995".into()],
            medications: m.iter().map(|s| s.to_string()).collect(),
        };
        let r = record(vec![
            visit(&["icd9:4280", "icd9:9999"], &["c03c", "Z99Z"]),
            visit(&["icd9:5849"], &["B01A"]),
        ]);
        let (patient, unknown) = spec().patient(&r);
        // offsets: diagnoses 1.., procedures 3.., medications 4..
        assert_eq!(patient.visits[0], [vec![1], vec![3], vec![5]]);
        assert_eq!(
            patient.visits[1],
            [vec![2], vec![3], vec![]],
            "the current visit's drugs are not input"
        );
        assert_eq!(unknown, ["Z99Z", "icd9:9999"]);
        assert!(spec().check("manifest.json").is_ok());
    }

    #[test]
    fn a_spec_that_disagrees_with_itself_is_refused() {
        let mut s = spec();
        s.medications.push("XXXX".into());
        s.config.medications = 4;
        let e = s
            .check("manifest.json")
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("XXXX"), "{e}");
        let mut s = spec();
        s.config.diagnoses = 5;
        assert!(s.check("manifest.json").is_err());
    }

    #[test]
    fn warnings_between_recommended_drugs_and_with_current_ones() {
        let pairs = ddi_pairs();
        let (a, b) = pairs[0];
        let w = ddi_warnings(&[a, b], &[]);
        assert_eq!(w.len(), 1);
        assert!(!w[0].with_current);
        let w = ddi_warnings(&[a], &[b.to_string()]);
        assert_eq!(w.len(), 1);
        assert!(w[0].with_current && w[0].with == b);
        assert!(
            ddi_warnings(&[a, b], &[b.to_string()])
                .iter()
                .all(|w| !w.with_current),
            "a continued drug adds nothing"
        );
        let r = record(vec![
            Visit {
                medications: vec!["n02b".into()],
                ..Visit::default()
            },
            Visit::default(),
        ]);
        assert_eq!(current_medications(&r), ["N02B"]);
    }
}
