//! LEADER's textualised visit prompt for the teacher: the current visit's codes, then the
//! earlier visits with their drugs, profile first (codes named where MIMIC's tables say).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use bedside::knowledge::atc3_name;
use bedside::record::{PatientRecord, Sex};

use super::config::MedRecRunConfig;

/// ICD code names keyed as records write codes (`icd9:4280`), from a MIMIC dictionary.
pub(super) fn read_code_names(path: &Path) -> Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    let mut summary = bedside_cohort::Summary::new("icd names");
    bedside_cohort::table::for_each_row(
        path,
        &["icd_code", "icd_version", "long_title"],
        &mut summary,
        |row, _, _| {
            names.insert(format!("icd{}:{}", row[1], row[0]), row[2].to_string());
        },
    )?;
    Ok(names)
}

/// Every admission's visit prompt under `config` (its code names and visit limit), with its id:
/// what the online teacher reads, and what `features` sends to a language model.
pub fn visit_prompts(
    config: &MedRecRunConfig,
    records: &[PatientRecord],
) -> Result<Vec<(String, String)>> {
    let names = |p: &Option<PathBuf>| {
        p.as_deref()
            .map(read_code_names)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let (dx_names, px_names) = (
        names(&config.diagnosis_names)?,
        names(&config.procedure_names)?,
    );
    Ok(records
        .iter()
        .map(|r| {
            let prompt = visit_prompt(r, &dx_names, &px_names, config.student.max_visits);
            (r.id.clone(), prompt)
        })
        .collect())
}

/// LEADER's textualised visit prompt. The current visit comes first so that cutting a long
/// history at the token limit drops the oldest visits, never the current one.
pub fn visit_prompt(
    record: &PatientRecord,
    diagnosis_names: &HashMap<String, String>,
    procedure_names: &HashMap<String, String>,
    max_visits: usize,
) -> String {
    let name = |names: &HashMap<String, String>, code: &String| {
        names.get(code).cloned().unwrap_or_else(|| code.clone())
    };
    let list = |codes: &[String], names: &HashMap<String, String>| {
        if codes.is_empty() {
            "none".to_string()
        } else {
            codes
                .iter()
                .map(|c| name(names, c))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let drugs = |codes: &[String]| {
        if codes.is_empty() {
            "none".to_string()
        } else {
            codes
                .iter()
                .map(|c| atc3_name(c).unwrap_or(c).to_string())
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let sex = match record.demographics.sex {
        Some(Sex::Female) => "female",
        Some(Sex::Male) => "male",
        _ => "unknown sex",
    };
    let age = record
        .demographics
        .age
        .filter(|a| a.is_finite())
        .map_or("unknown age".to_string(), |a| format!("age {}", a.round()));
    let mut text = format!("Patient: {sex}, {age}.");
    let visits = &record.visits[record.visits.len().saturating_sub(max_visits)..];
    if let Some((current, earlier)) = visits.split_last() {
        text.push_str(&format!(
            " Current visit: diagnoses: {}. procedures: {}.",
            list(&current.diagnoses, diagnosis_names),
            list(&current.procedures, procedure_names)
        ));
        for (i, v) in earlier.iter().rev().enumerate() {
            text.push_str(&format!(
                " Visit {} before: diagnoses: {}. procedures: {}. medications: {}.",
                i + 1,
                list(&v.diagnoses, diagnosis_names),
                list(&v.procedures, procedure_names),
                drugs(&v.medications)
            ));
        }
    }
    text.push_str(" Recommend the medications.");
    text
}
