//! What a bundle says about itself to the people who use it: what the model was trained on (the
//! cohorts, their sizes and licences), how it did on held-out data (cohort, split, size, figures
//! with their intervals), the out-of-range rule it abstains by, its intended use and its limits.
//! `bedside-train card` writes it into the manifest from `eval` reports; the page shows it. For
//! people only: nothing is computed from it, it is bounded in size when read, and fields it does
//! not know are passed over (a newer card does not make an older library refuse the bundle).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::out_of_range::MIN_CHANNELS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub trained_on: Vec<TrainingData>,
    pub evaluations: Vec<Evaluation>,
    /// The out-of-range rule, in words ([`out_of_range_rule`]).
    pub out_of_range: String,
    pub intended_use: String,
    pub limits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// What of the bundle learned from it ("clinical model", "medication recommender").
    pub part: String,
    pub cohort: String,
    pub admissions: usize,
    pub licence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub cohort: String,
    /// Which split of the protocol (RESULTS.md): development or final test.
    pub split: String,
    pub admissions: usize,
    /// The figures by name ("macro AUROC", "ECE", …).
    pub measures: BTreeMap<String, Measure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<(f64, f64)>,
}

/// The rule of [`crate::out_of_range`], in the words a model card states it.
pub fn out_of_range_rule() -> String {
    format!(
        "No answer, only the reasons, for a child (under 18), a setting outside the hospital \
         (outpatient, clinic, home, virtual), a record without observations, or fewer than \
         {MIN_CHANNELS} of the model's channels observed in its window. The probabilities are \
         still computed and counted in the evaluations."
    )
}

/// Longest text and most entries of any list a card may hold: it is shown, never computed with.
const MAX_TEXT: usize = 4000;
const MAX_ENTRIES: usize = 64;

impl ModelCard {
    /// Bounds every text, list and number, naming the field at fault.
    pub fn check(&self) -> std::result::Result<(), String> {
        let text = |field: &str, s: &str| {
            (s.chars().count() <= MAX_TEXT)
                .then_some(())
                .ok_or_else(|| format!("{field} is longer than {MAX_TEXT} characters"))
        };
        let entries = |field: &str, n: usize| {
            (n <= MAX_ENTRIES)
                .then_some(())
                .ok_or_else(|| format!("{field} has more than {MAX_ENTRIES} entries"))
        };
        entries("trained_on", self.trained_on.len())?;
        entries("evaluations", self.evaluations.len())?;
        entries("limits", self.limits.len())?;
        text("out_of_range", &self.out_of_range)?;
        text("intended_use", &self.intended_use)?;
        for (i, l) in self.limits.iter().enumerate() {
            text(&format!("limits[{i}]"), l)?;
        }
        for (i, t) in self.trained_on.iter().enumerate() {
            for (name, s) in [
                ("part", &t.part),
                ("cohort", &t.cohort),
                ("licence", &t.licence),
            ] {
                text(&format!("trained_on[{i}].{name}"), s)?;
            }
        }
        for (i, e) in self.evaluations.iter().enumerate() {
            text(&format!("evaluations[{i}].cohort"), &e.cohort)?;
            text(&format!("evaluations[{i}].split"), &e.split)?;
            entries(&format!("evaluations[{i}].measures"), e.measures.len())?;
            for (name, m) in &e.measures {
                text(&format!("evaluations[{i}].measures"), name)?;
                let (low, high) = m.ci95.unwrap_or((m.value, m.value));
                if ![m.value, low, high].iter().all(|v| v.is_finite()) {
                    return Err(format!(
                        "evaluations[{i}].measures[{name:?}] is not a finite number"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> ModelCard {
        ModelCard {
            trained_on: vec![TrainingData {
                part: "clinical model".into(),
                cohort: "synthetic".into(),
                admissions: 1200,
                licence: "generated".into(),
            }],
            evaluations: vec![Evaluation {
                cohort: "synthetic".into(),
                split: "final test".into(),
                admissions: 300,
                measures: [(
                    "macro AUROC".to_string(),
                    Measure {
                        value: 0.99,
                        ci95: Some((0.98, 0.995)),
                    },
                )]
                .into(),
            }],
            out_of_range: out_of_range_rule(),
            intended_use: "research".into(),
            limits: vec!["not a medical device".into()],
        }
    }

    #[test]
    fn a_card_is_bounded_naming_the_field() {
        assert_eq!(card().check(), Ok(()));
        let mut long = card();
        long.limits.push("x".repeat(MAX_TEXT + 1));
        assert!(long.check().unwrap_err().contains("limits[1]"));
        let mut nan = card();
        nan.evaluations[0]
            .measures
            .get_mut("macro AUROC")
            .unwrap()
            .ci95 = Some((f64::NAN, 1.0));
        assert!(nan.check().unwrap_err().contains("macro AUROC"));
        let mut many = card();
        many.limits = vec![String::new(); MAX_ENTRIES + 1];
        assert!(many.check().unwrap_err().contains("limits"));
        assert!(out_of_range_rule().contains(&MIN_CHANNELS.to_string()));
    }
}
