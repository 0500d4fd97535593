//! PatientRecord: the exchange format of bedside (one admission; JSONL for cohorts).
//!
//! Parsing never panics and never drops data silently: unknown channels and unusable values are
//! kept in the record and reported by [`PatientRecord::validate`] and by the hourly grid.

pub mod fhir;
mod grid;
mod units;

pub use grid::{GridNotice, Notice, SeriesGrid, UsedObservation, read_observation, record_notices};

use crate::error::{BedsideError, FieldProblem, Result};
use serde::{Deserialize, Serialize};

/// The record format this library writes; it reads this version and older ones.
pub const RECORD_FORMAT_VERSION: u32 = 1;

/// Bounds on one record. The model reads a fixed grid (channels × hours), at most
/// [`crate::engine::MAX_PROMPT_TOKENS`] of note text and the recommender's `max_visits`, so
/// memory is bounded by the parsed record itself; these bounds keep that below tens of MB
/// (10,000 observations and 100 visits are everyday and far inside them).
pub const MAX_OBSERVATIONS: usize = 200_000;
pub const MAX_VISITS: usize = 1_000;
pub const MAX_CODES_PER_VISIT: usize = 1_000;
pub const MAX_NOTE_CHARS: usize = 2_000_000;
/// Largest record text (PatientRecord or FHIR JSON) read, in bytes: checked before any parsing.
/// Room for the bounds above (2 MB of notes, 200,000 observations, 1,000 visits × 1,000 codes).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

fn default_version() -> u32 {
    RECORD_FORMAT_VERSION
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRecord {
    #[serde(default = "default_version")]
    pub format_version: u32,
    /// Admission id, unique within a cohort.
    pub id: String,
    /// Patient id where the source has one: a patient's admissions share it, so that training
    /// splits keep them on one side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default)]
    pub demographics: Demographics,
    /// What hour 0 of the observations is: the hospital admission where absent, or the ICU
    /// admission where the record is an ICU stay (the cohort readers say which they used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<WindowStart>,
    #[serde(default)]
    pub notes: Vec<Note>,
    #[serde(default)]
    pub observations: Vec<Observation>,
    /// Coded history, oldest first; the last visit is the current admission.
    #[serde(default)]
    pub visits: Vec<Visit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// What the source held that the reader could not place in this record (an Observation
    /// without a time, a note at a URL, ...): reported with every answer, never silently dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A part of the source a reader did not read into the record, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    /// Where it sits in the source (`$.entry[3].resource`).
    pub path: String,
    /// The FHIR resource (`Observation/123`), where it has an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub reason: String,
}

/// The moment a record's hours count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStart {
    HospitalAdmission,
    IcuAdmission,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// Care unit the admission starts in (e.g. "medical ICU"), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Note category, e.g. "discharge summary", "radiology", "nursing".
    #[serde(default)]
    pub kind: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<f64>,
    /// The resource the note came from (`DocumentReference/abc`), where the source names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// One time-stamped measurement. `value` may be null (charted but missing); such values are
/// kept and reported, never turned into numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Canonical channel name (see [`crate::knowledge::CHANNELS`]); aliases are accepted.
    pub channel: String,
    /// Hours since the window's start (`window_start`: the hospital or the ICU admission).
    pub hours: f64,
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The resource the value came from (`Observation/123`), where the source names one:
    /// evidence built on it carries the same reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Observation {
    /// A value in the channel's own unit, from no named source.
    pub fn new(channel: impl Into<String>, hours: f64, value: f64) -> Self {
        Self {
            channel: channel.into(),
            hours,
            value: Some(value),
            unit: None,
            reference: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    /// ICD-9-CM or ICD-10-CM codes.
    #[serde(default)]
    pub diagnoses: Vec<String>,
    #[serde(default)]
    pub procedures: Vec<String>,
    /// ATC level-3 codes.
    #[serde(default)]
    pub medications: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Phenotype names (see [`crate::knowledge::PHENOTYPES`]).
    #[serde(default)]
    pub phenotypes: Vec<String>,
    #[serde(default)]
    pub medications: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Outcomes>,
}

/// Outcomes of the admission where the source has them (PhysioNet 2012, MIMIC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_hospital_death: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_of_stay_days: Option<f64>,
    /// Days from admission to death, where the patient died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survival_days: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saps_i: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sofa: Option<f64>,
}

/// Where a PatientRecord has objects: serde would also read an object from a JSON array by
/// position (`"demographics": [67, "female"]`), which no one means; such input is refused.
struct Shape {
    fields: &'static [(&'static str, Shape)],
    /// The value is an array of objects of this shape (else an object).
    array: bool,
}

const LEAF: Shape = Shape {
    fields: &[],
    array: false,
};
const RECORD_SHAPE: Shape = Shape {
    fields: &[
        ("demographics", LEAF),
        (
            "notes",
            Shape {
                fields: &[],
                array: true,
            },
        ),
        (
            "observations",
            Shape {
                fields: &[],
                array: true,
            },
        ),
        (
            "visits",
            Shape {
                fields: &[],
                array: true,
            },
        ),
        (
            "labels",
            Shape {
                fields: &[("outcomes", LEAF)],
                array: false,
            },
        ),
        (
            "skipped",
            Shape {
                fields: &[],
                array: true,
            },
        ),
    ],
    array: false,
};

fn parse_json(text: &str) -> Result<serde_json::Value> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(BedsideError::RecordJson {
            path: "$".into(),
            message: format!(
                "{} bytes is more than the {MAX_RECORD_BYTES} a record may have; refused before parsing",
                text.len()
            ),
        });
    }
    serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(text)).map_err(|e| {
        BedsideError::RecordJson {
            path: "$".into(),
            message: e.to_string(),
        }
    })
}

fn require_objects(value: &serde_json::Value, path: &str, shape: &Shape) -> Result<()> {
    use serde_json::Value;
    let object = |value: &Value, path: &str| match value {
        Value::Array(_) => Err(BedsideError::RecordJson {
            path: path.to_string(),
            message: "invalid type: array, expected an object".into(),
        }),
        _ => Ok(()),
    };
    match (shape.array, value) {
        (true, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                object(item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (true, _) => Ok(()), // serde reports any other kind with its path
        (false, _) => {
            object(value, path)?;
            for (name, inner) in shape.fields {
                if let Some(field) = value.get(name) {
                    require_objects(field, &format!("{path}.{name}"), inner)?;
                }
            }
            Ok(())
        }
    }
}

impl PatientRecord {
    /// The record's phenotype labels as one flag per phenotype, in the order of
    /// [`crate::knowledge::PHENOTYPES`] (all false without labels): what training and
    /// evaluation compare the model's outputs with.
    pub fn phenotype_truth(&self) -> Vec<bool> {
        let labels = self.labels.as_ref().map_or(&[][..], |l| &l.phenotypes[..]);
        crate::knowledge::PHENOTYPES
            .iter()
            .map(|p| labels.iter().any(|l| l == p.name))
            .collect()
    }

    /// Parses one record from JSON; an error names the JSON path of the field at fault. A leading
    /// byte-order mark (Windows editors write one) is skipped.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_parsed(text, &parse_json(text)?)
    }

    /// `text` read as a record, `value` being that text already parsed (for the shape check).
    fn from_parsed(text: &str, value: &serde_json::Value) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        require_objects(value, "$", &RECORD_SHAPE)?;
        // typed from the text, not from the value: a value keeps the last of two equal keys, the
        // typed parse refuses them
        let de = &mut serde_json::Deserializer::from_str(text);
        let record: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            BedsideError::RecordJson {
                path: if path == "." {
                    "$".into()
                } else {
                    format!("$.{path}")
                },
                message: e.into_inner().to_string(),
            }
        })?;
        record.validate()?;
        Ok(record)
    }

    /// Parses JSON that is either a PatientRecord or a FHIR R4 resource (a `Bundle`, usually):
    /// what `diagnose` accepts.
    pub fn from_json_or_fhir(text: &str) -> Result<Self> {
        Self::from_json_or_fhir_with(text, &fhir::FhirOptions::default())
    }

    /// [`Self::from_json_or_fhir`], a FHIR chart read as `options` say (the encounter a SMART
    /// launch names); a PatientRecord is one admission already and ignores them.
    pub fn from_json_or_fhir_with(text: &str, options: &fhir::FhirOptions) -> Result<Self> {
        let value = parse_json(text)?;
        if value.get("resourceType").is_some() {
            fhir::from_fhir_with(&value, options)
        } else {
            Self::from_parsed(text, &value)
        }
    }

    /// Checks the rules serde cannot: every problem is returned, each with its field path.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        let mut bad = |path: String, message: &str| {
            problems.push(FieldProblem {
                path,
                message: message.to_string(),
            })
        };
        if self.format_version == 0 || self.format_version > RECORD_FORMAT_VERSION {
            bad(
                "$.format_version".into(),
                &format!("unsupported version (this library reads 1..={RECORD_FORMAT_VERSION})"),
            );
        }
        if self.id.trim().is_empty() {
            bad("$.id".into(), "must not be empty");
        }
        if let Some(age) = self.demographics.age
            && !(0.0..=130.0).contains(&age)
        {
            bad(
                "$.demographics.age".into(),
                "must be between 0 and 130 years",
            );
        }
        let too_many = |what: &str, n: usize, max: usize| {
            format!("{n} {what}, more than the {max} a record may have")
        };
        if self.observations.len() > MAX_OBSERVATIONS {
            bad(
                "$.observations".into(),
                &too_many("observations", self.observations.len(), MAX_OBSERVATIONS),
            );
        }
        if self.skipped.len() > MAX_OBSERVATIONS {
            bad(
                "$.skipped".into(),
                &too_many("skipped items", self.skipped.len(), MAX_OBSERVATIONS),
            );
        }
        if self.visits.len() > MAX_VISITS {
            bad(
                "$.visits".into(),
                &too_many("visits", self.visits.len(), MAX_VISITS),
            );
        }
        for (i, v) in self.visits.iter().enumerate() {
            for (field, codes) in [
                ("diagnoses", &v.diagnoses),
                ("procedures", &v.procedures),
                ("medications", &v.medications),
            ] {
                if codes.len() > MAX_CODES_PER_VISIT {
                    bad(
                        format!("$.visits[{i}].{field}"),
                        &too_many("codes", codes.len(), MAX_CODES_PER_VISIT),
                    );
                }
            }
        }
        let note_chars: usize = self.notes.iter().map(|n| n.text.len()).sum();
        if note_chars > MAX_NOTE_CHARS {
            bad(
                "$.notes".into(),
                &too_many("bytes of note text", note_chars, MAX_NOTE_CHARS),
            );
        }
        for (i, o) in self.observations.iter().take(MAX_OBSERVATIONS).enumerate() {
            if !o.hours.is_finite() {
                bad(
                    format!("$.observations[{i}].hours"),
                    "must be a finite number",
                );
            }
            if o.channel.trim().is_empty() {
                bad(format!("$.observations[{i}].channel"), "must not be empty");
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BedsideError::InvalidRecord(problems))
        }
    }
}
