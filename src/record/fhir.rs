//! FHIR R4 import: a `Bundle` (or a single resource) → PatientRecord, in the library so the
//! browser can read what an EHR exports.
//!
//! Patient → demographics; Encounter → the admission (its `period.start` is hour 0);
//! Observation (LOINC, UCUM units) → observations; Condition (ICD-9-CM/ICD-10-CM) → diagnoses of
//! the current visit and phenotype labels; Procedure → procedures; MedicationRequest and
//! MedicationStatement (ATC, or RxNorm where the NDC tables reach a class) → ATC-3 medications; DocumentReference (text attachments) and
//! Composition (section narrative) → notes. What cannot be mapped is kept with its system
//! (`loinc:…`, `rxnorm:…`, `snomed:…`) so the record reports it rather than dropping it.

use super::{
    Demographics, Labels, Note, Observation, PatientRecord, RECORD_FORMAT_VERSION, Sex, Visit,
};
use crate::error::{BedsideError, Result};
use crate::knowledge::{IcdVersion, LOINC_CODES, PHENOTYPES, normalise_code, phenotypes_for_icd};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;
use std::collections::BTreeSet;

const LOINC: &str = "http://loinc.org";
const ICD9: &[&str] = &[
    "http://hl7.org/fhir/sid/icd-9-cm",
    "http://hl7.org/fhir/sid/icd-9",
];
const ICD10: &[&str] = &[
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10",
];
const ATC: &str = "http://www.whocc.no/atc";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

fn invalid(path: &str, message: impl std::fmt::Display) -> BedsideError {
    BedsideError::Fhir {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// A FHIR instant, dateTime or date; a date alone is taken at midnight UTC.
fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
    })
}

fn codings(concept: &Value) -> impl Iterator<Item = (&str, &str)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str().unwrap_or(""), c["code"].as_str()?)))
}

fn short_system(system: &str) -> &str {
    match system {
        LOINC => "loinc",
        RXNORM => "rxnorm",
        ATC => "atc",
        "http://snomed.info/sct" => "snomed",
        "" => "code",
        other => other,
    }
}

/// Reads a FHIR R4 Bundle (or one resource) as a PatientRecord.
pub fn from_fhir(value: &Value) -> Result<PatientRecord> {
    let resources: Vec<(String, &Value)> = match value["resourceType"].as_str() {
        Some("Bundle") => value["entry"]
            .as_array()
            .ok_or_else(|| invalid("$.entry", "a Bundle needs an entry array"))?
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("$.entry[{i}].resource"), &e["resource"]))
            .collect(),
        Some("Patient") => vec![("$".to_string(), value)],
        Some(other) => {
            return Err(invalid(
                "$.resourceType",
                format!("{other:?}: a Bundle of the patient's resources (or a Patient) expected"),
            ));
        }
        None => return Err(invalid("$.resourceType", "missing; not a FHIR resource")),
    };
    let of = |kind: &'static str| {
        resources
            .iter()
            .filter(move |(_, r)| r["resourceType"] == kind)
    };

    let patient = of("Patient").next();
    let id = patient
        .and_then(|(_, p)| p["id"].as_str())
        .or_else(|| value["id"].as_str())
        .unwrap_or("fhir-patient")
        .to_string();
    let patient_id = patient
        .and_then(|(_, p)| p["id"].as_str())
        .map(str::to_string);
    let encounter = of("Encounter").next();
    let start = encounter
        .and_then(|(_, e)| parse_time(e["period"]["start"].as_str()?))
        .or_else(|| {
            of("Observation")
                .filter_map(|(_, o)| parse_time(o["effectiveDateTime"].as_str()?))
                .min()
        });

    let mut demographics = Demographics::default();
    if let Some((path, p)) = patient {
        demographics.sex = match &p["gender"] {
            Value::String(g) if g == "female" => Some(Sex::Female),
            Value::String(g) if g == "male" => Some(Sex::Male),
            Value::String(g) if g == "other" => Some(Sex::Other),
            Value::Null => None,
            Value::String(g) if g == "unknown" => None,
            other => {
                return Err(invalid(
                    &format!("{path}.gender"),
                    format!("{other} is not a FHIR gender"),
                ));
            }
        };
        let birth = match &p["birthDate"] {
            Value::Null => None,
            value => Some(value.as_str().and_then(parse_time).ok_or_else(|| {
                invalid(
                    &format!("{path}.birthDate"),
                    format!("{value} is not a FHIR date"),
                )
            })?),
        };
        if let (Some(birth), Some(start)) = (birth, start) {
            demographics.age = Some(((start - birth).num_days() as f64 / 365.25).floor());
        }
    }
    if let Some((_, e)) = encounter {
        // the ward where the encounter names one; a class outside the hospital is said whatever
        // the location's name (an outpatient visit at "… County Hospital" is still outpatient)
        let class = match e["class"]["code"]
            .as_str()
            .or(e["class"][0]["coding"][0]["code"].as_str())
        {
            Some("AMB") => Some("outpatient (ambulatory encounter)"),
            Some("VR") => Some("virtual encounter"),
            Some("HH") => Some("home health encounter"),
            _ => None,
        };
        let location = e["location"][0]["location"]["display"].as_str();
        demographics.care_unit = match (class, location) {
            (Some(class), Some(location)) => Some(format!("{class} at {location}")),
            (class, location) => class.or(location).map(str::to_string),
        };
    }

    let mut observations = Vec::new();
    for (path, o) in of("Observation") {
        let Some(time) = o["effectiveDateTime"]
            .as_str()
            .or_else(|| o["effectivePeriod"]["start"].as_str())
        else {
            return Err(invalid(
                &format!("{path}.effectiveDateTime"),
                "an Observation needs a time",
            ));
        };
        let time = parse_time(time).ok_or_else(|| {
            invalid(
                &format!("{path}.effectiveDateTime"),
                format!("{time:?} is not a FHIR dateTime"),
            )
        })?;
        let hours = start.map_or(0.0, |s| (time - s).num_seconds() as f64 / 3600.0);
        let code = &o["code"];
        let channel = codings(code)
            .find_map(|(system, c)| {
                (system == LOINC)
                    .then(|| LOINC_CODES.iter().find(|(l, _)| *l == c))
                    .flatten()
                    .map(|(_, ch)| ch.to_string())
            })
            .or_else(|| {
                codings(code)
                    .next()
                    .map(|(system, c)| format!("{}:{c}", short_system(system)))
            })
            .ok_or_else(|| invalid(&format!("{path}.code"), "an Observation needs a coded code"))?;
        let quantity = &o["valueQuantity"];
        observations.push(Observation {
            channel,
            hours,
            value: quantity["value"].as_f64(),
            unit: quantity["code"]
                .as_str()
                .or_else(|| quantity["unit"].as_str())
                .map(str::to_string),
        });
    }
    observations.sort_by(|a, b| a.hours.total_cmp(&b.hours));

    let mut visit = Visit::default();
    let mut phenotypes = BTreeSet::new();
    for (_, c) in of("Condition") {
        for (system, code) in codings(&c["code"]) {
            let version = if ICD9.contains(&system) {
                Some(IcdVersion::Icd9)
            } else if ICD10.contains(&system) {
                Some(IcdVersion::Icd10)
            } else {
                None
            };
            match version {
                Some(v) => {
                    phenotypes.extend(phenotypes_for_icd(code, v).iter().copied());
                    let n = if v == IcdVersion::Icd9 { 9 } else { 10 };
                    visit
                        .diagnoses
                        .push(format!("icd{n}:{}", normalise_code(code)));
                }
                None => visit
                    .diagnoses
                    .push(format!("{}:{code}", short_system(system))),
            }
        }
    }
    for (_, p) in of("Procedure") {
        visit
            .procedures
            .extend(codings(&p["code"]).map(|(system, code)| match system {
                s if s.ends_with("icd-9-cm") => format!("icd9:{}", normalise_code(code)),
                s if s.ends_with("icd-10-pcs") => format!("icd10:{}", normalise_code(code)),
                s => format!("{}:{code}", short_system(s)),
            }));
    }
    let mut medications = BTreeSet::new();
    for (_, m) in of("MedicationRequest").chain(of("MedicationStatement")) {
        for (system, code) in codings(&m["medicationCodeableConcept"]) {
            match (
                system,
                code.get(..4),
                crate::knowledge::atc3_of_rxnorm(code),
            ) {
                (ATC, Some(atc3), _) => medications.insert(atc3.to_ascii_uppercase()),
                (RXNORM, _, Some(atc3)) => medications.insert(atc3.to_string()),
                _ => medications.insert(format!("{}:{code}", short_system(system))),
            };
        }
    }
    visit.medications = medications.into_iter().collect();

    let mut notes = Vec::new();
    for (path, d) in of("DocumentReference") {
        for (i, content) in d["content"].as_array().into_iter().flatten().enumerate() {
            let attachment = &content["attachment"];
            let Some(data) = attachment["data"].as_str() else {
                continue;
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| {
                    invalid(
                        &format!("{path}.content[{i}].attachment.data"),
                        format!("not base64: {e}"),
                    )
                })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                invalid(
                    &format!("{path}.content[{i}].attachment.data"),
                    "not UTF-8 text",
                )
            })?;
            notes.push(Note {
                kind: d["type"]["text"].as_str().unwrap_or("document").to_string(),
                text,
                hours: None,
            });
        }
    }
    for (_, c) in of("Composition") {
        for section in c["section"].as_array().into_iter().flatten() {
            if let Some(div) = section["text"]["div"].as_str() {
                notes.push(Note {
                    kind: section["title"]
                        .as_str()
                        .unwrap_or("composition")
                        .to_string(),
                    text: strip_tags(div),
                    hours: None,
                });
            }
        }
    }

    let record = PatientRecord {
        window_start: None,
        format_version: RECORD_FORMAT_VERSION,
        id,
        patient: patient_id,
        demographics,
        notes,
        observations,
        visits: vec![visit],
        labels: (!phenotypes.is_empty()).then(|| Labels {
            phenotypes: phenotypes
                .iter()
                .map(|&p| PHENOTYPES[p].name.to_string())
                .collect(),
            ..Labels::default()
        }),
    };
    record.validate()?;
    Ok(record)
}

/// The text of a FHIR narrative (`<div xmlns=…>…</div>`), tags removed.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
