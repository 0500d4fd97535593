//! The known-answer self-test's fixed record: its phenotype probabilities are recorded in the
//! manifest at export, and every load checks that this backend computes them again.

use crate::record::PatientRecord;

/// The record of the known-answer self-test: a few hours of vitals and labs of a septic patient,
/// a short note and one earlier visit; fixed, so that its probabilities can be recorded at export.
pub fn self_test_record() -> PatientRecord {
    use crate::record::{Demographics, Note, Observation, Sex, Visit};
    let mut observations = Vec::new();
    for h in 0..12 {
        let t = f64::from(h) + 0.5;
        for (channel, value) in [
            ("heart_rate", 118.0 - f64::from(h)),
            ("temperature", 38.9 - 0.05 * f64::from(h)),
            ("mean_bp", 58.0 + f64::from(h)),
            ("resp_rate", 26.0),
            ("spo2", 93.0),
        ] {
            observations.push(Observation::new(channel, t, value));
        }
    }
    for (channel, value) in [
        ("lactate", 4.2),
        ("wbc", 17.5),
        ("creatinine", 2.1),
        ("platelets", 98.0),
    ] {
        observations.push(Observation::new(channel, 1.0, value));
    }
    PatientRecord { skipped: Vec::new(),
        window_start: None,
        format_version: crate::record::RECORD_FORMAT_VERSION,
        id: "bedside-self-test".into(),
        patient: None,
        demographics: Demographics { age: Some(67.0), sex: Some(Sex::Female), care_unit: None },
        notes: vec![Note { reference: None,
            kind: "discharge summary".into(),
            text: "Admitted with fever, hypotension and a rising lactate; treated for sepsis from a urinary source.".into(),
            hours: None,
        }],
        observations,
        visits: vec![
            Visit { diagnoses: vec!["icd9:4280".into(), "icd9:25000".into()], procedures: Vec::new(), medications: vec!["C03C".into(), "A10B".into()] },
            Visit { diagnoses: vec!["icd9:99591".into(), "icd9:5990".into()], procedures: Vec::new(), medications: Vec::new() },
        ],
        labels: None,
    }
}
