//! MIMIC-IV reader (`hosp/`, lower-case headers, `.csv.gz` or `.csv`): one PatientRecord per
//! admission with the labs of its first `hours` hours (by `d_labitems` item id, see
//! [`MIMIC_IV_LAB_ITEMS`]), its ICD-9/ICD-10 diagnoses as phenotype labels (ICD-10 through the
//! GEMs), procedures, and ATC-3 medications from prescriptions (GSN, else NDC, through
//! `gsn_atc_ndc_mapping.csv.gz`); earlier admissions of the same patient come first as visits.
//! Vital signs live in `icu/chartevents`, which the public demo lacks; they are not read yet.

use super::Summary;
use anyhow::Result;
use bedside::knowledge::{
    IcdVersion, MIMIC_IV_LAB_ITEMS, PHENOTYPES, normalise_code, phenotypes_for_icd,
};
use bedside::record::{
    Demographics, Labels, Observation, Outcomes, PatientRecord, RECORD_FORMAT_VERSION, Sex, Visit,
};
use chrono::NaiveDateTime;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::table::{for_each_row, prescriptions_to_atc3, table, time};

struct Admission {
    hadm: String,
    subject: String,
    admit: NaiveDateTime,
    death: Option<bool>,
}

/// `dir`: the MIMIC-IV root (with `hosp/`) or `hosp/` itself; `atc`: `gsn_atc_ndc_mapping.csv.gz`.
pub fn read(
    dir: &Path,
    atc: Option<&Path>,
    hours: usize,
    summary: &mut Summary,
) -> Result<Vec<PatientRecord>> {
    let hosp = if dir.join("hosp").is_dir() {
        dir.join("hosp")
    } else {
        dir.to_path_buf()
    };

    // subject_id → (sex, anchor_age, anchor_year)
    type Patient = (Option<Sex>, Option<f64>, Option<i32>);
    let mut patients: HashMap<String, Patient> = HashMap::new();
    for_each_row(
        &table(&hosp, "patients")?,
        &["subject_id", "gender", "anchor_age", "anchor_year"],
        summary,
        |f, _, _| {
            let sex = match f[1] {
                "F" => Some(Sex::Female),
                "M" => Some(Sex::Male),
                _ => None,
            };
            patients.insert(
                f[0].to_string(),
                (sex, f[2].parse().ok(), f[3].parse().ok()),
            );
        },
    )?;

    let mut admissions = Vec::new();
    let mut seen = HashSet::new();
    for_each_row(
        &table(&hosp, "admissions")?,
        &["subject_id", "hadm_id", "admittime", "hospital_expire_flag"],
        summary,
        |f, at, s| match time(f[2]) {
            Some(_) if !f[1].is_empty() && !seen.insert(f[1].to_string()) => s
                .skip("admission listed twice (the first row kept)", || {
                    at.to_string()
                }),
            Some(admit) if !f[1].is_empty() => admissions.push(Admission {
                hadm: f[1].to_string(),
                subject: f[0].to_string(),
                admit,
                death: f[3].parse::<u8>().ok().map(|d| d == 1),
            }),
            _ => s.skip("admission without hadm_id or admittime", || at.to_string()),
        },
    )?;
    let admit_of: HashMap<String, NaiveDateTime> = admissions
        .iter()
        .map(|a| (a.hadm.clone(), a.admit))
        .collect();

    let items: HashMap<u32, &str> = MIMIC_IV_LAB_ITEMS.iter().copied().collect();
    let mut labs: HashMap<String, Vec<Observation>> = HashMap::new();
    for_each_row(
        &table(&hosp, "labevents")?,
        &["hadm_id", "itemid", "charttime", "valuenum", "valueuom"],
        summary,
        |f, at, s| {
            let Some(channel) = f[1].parse::<u32>().ok().and_then(|i| items.get(&i)) else {
                return;
            };
            if f[0].is_empty() {
                return s.skip(
                    "lab outside any admission (no hadm_id; not an error)",
                    || at.to_string(),
                );
            }
            let (Some(admit), Some(chart)) = (admit_of.get(f[0]), time(f[2])) else {
                return s.skip(
                    "lab with an unknown hadm_id or an unreadable charttime",
                    || at.to_string(),
                );
            };
            let h = (chart - *admit).num_seconds() as f64 / 3600.0;
            if (0.0..hours as f64).contains(&h) {
                labs.entry(f[0].to_string()).or_default().push(Observation {
                    channel: channel.to_string(),
                    hours: h,
                    value: f[3].parse::<f64>().ok().filter(|v| v.is_finite()),
                    unit: (!f[4].is_empty()).then(|| f[4].to_string()),
                });
            }
        },
    )?;

    let mut diagnoses: HashMap<String, Vec<(u32, String, IcdVersion)>> = HashMap::new();
    for_each_row(
        &table(&hosp, "diagnoses_icd")?,
        &["hadm_id", "seq_num", "icd_code", "icd_version"],
        summary,
        |f, at, s| {
            let version = match f[3] {
                "9" => IcdVersion::Icd9,
                "10" => IcdVersion::Icd10,
                _ => return s.skip("diagnosis with an unknown icd_version", || at.to_string()),
            };
            if f[2].is_empty() {
                return s.skip("diagnosis without an icd_code", || at.to_string());
            }
            diagnoses.entry(f[0].to_string()).or_default().push((
                f[1].parse().unwrap_or(u32::MAX),
                normalise_code(f[2]),
                version,
            ));
        },
    )?;
    let mut procedures: HashMap<String, Vec<String>> = HashMap::new();
    for_each_row(
        &table(&hosp, "procedures_icd")?,
        &["hadm_id", "icd_code", "icd_version"],
        summary,
        |f, at, s| {
            if f[1].is_empty() {
                return s.skip("procedure without an icd_code", || at.to_string());
            }
            procedures
                .entry(f[0].to_string())
                .or_default()
                .push(format!("icd{}:{}", f[2], normalise_code(f[1])));
        },
    )?;

    let medications = match atc {
        Some(atc) => prescriptions_to_atc3(&table(&hosp, "prescriptions")?, atc, summary)?,
        None => HashMap::new(),
    };

    admissions.sort_by(|a, b| (&a.subject, a.admit).cmp(&(&b.subject, b.admit)));
    let visit = |hadm: &str| {
        let mut dx = diagnoses.get(hadm).cloned().unwrap_or_default();
        dx.sort();
        Visit {
            diagnoses: dx
                .iter()
                .map(|(_, code, v)| {
                    format!("icd{}:{code}", if *v == IcdVersion::Icd9 { 9 } else { 10 })
                })
                .collect(),
            procedures: procedures.get(hadm).cloned().unwrap_or_default(),
            medications: medications
                .get(hadm)
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default(),
        }
    };
    let mut records = Vec::with_capacity(admissions.len());
    let mut history: Vec<Visit> = Vec::new();
    for (i, a) in admissions.iter().enumerate() {
        if i > 0 && admissions[i - 1].subject != a.subject {
            history.clear();
        }
        history.push(visit(&a.hadm));
        let (sex, anchor_age, anchor_year) = patients
            .get(&a.subject)
            .cloned()
            .unwrap_or((None, None, None));
        let age = anchor_age
            .zip(anchor_year)
            .map(|(age, year)| age + (chrono::Datelike::year(&a.admit) - year) as f64);
        let mut phenotypes: BTreeSet<usize> = BTreeSet::new();
        for (_, code, version) in diagnoses.get(&a.hadm).into_iter().flatten() {
            phenotypes.extend(phenotypes_for_icd(code, *version));
        }
        let mut observations = labs.remove(&a.hadm).unwrap_or_default();
        observations.sort_by(|x, y| x.hours.total_cmp(&y.hours));
        records.push(PatientRecord {
            format_version: RECORD_FORMAT_VERSION,
            id: format!("mimic4-{}", a.hadm),
            patient: Some(format!("mimic4-{}", a.subject)),
            demographics: Demographics {
                age: age.filter(|a| (0.0..=130.0).contains(a)),
                sex,
                care_unit: None,
            },
            notes: Vec::new(),
            observations,
            visits: history.clone(),
            labels: Some(Labels {
                phenotypes: phenotypes
                    .iter()
                    .map(|&p| PHENOTYPES[p].name.to_string())
                    .collect(),
                medications: history
                    .last()
                    .map(|v| v.medications.clone())
                    .unwrap_or_default(),
                outcomes: Some(Outcomes {
                    in_hospital_death: a.death,
                    ..Outcomes::default()
                }),
            }),
        });
    }
    let subjects: BTreeSet<&str> = admissions.iter().map(|a| a.subject.as_str()).collect();
    summary.describe(&records, subjects.len());
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mimic_iv_demo() {
        let Some(dir) = bedside::test_layers::shared_data("mimic-iv-demo") else {
            return;
        };
        let data = dir.parent().unwrap().to_path_buf();
        let mut summary = Summary::new("mimic4");
        let records = read(
            &dir,
            Some(&data.join("medrec/gsn_atc_ndc_mapping.csv.gz")),
            48,
            &mut summary,
        )
        .unwrap();
        assert_eq!(records.len(), 275, "{}", summary.table());
        assert_eq!(summary.patients, 100);
        for r in &records {
            r.validate().unwrap();
            assert!(
                r.observations
                    .iter()
                    .all(|o| (0.0..48.0).contains(&o.hours))
            );
        }
        // visits accumulate per patient, oldest first, the current admission last
        let multi = records.iter().filter(|r| r.visits.len() > 1).count();
        assert!(multi > 100, "{multi} admissions with history");
        assert!(summary.label_prevalence.values().any(|p| *p > 0.2));
        assert!(summary.channel_coverage["creatinine"] > 0.5);
        let atc = summary.prescription_rows_to_atc3.unwrap();
        assert!(atc > 0.5, "only {atc} of prescription rows reach ATC-3");
    }
}
