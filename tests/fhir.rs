//! FHIR R4 import on bundles written by the specification (tests/fixtures/fhir/).

use bedside::PatientRecord;
use bedside::record::Sex;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/fhir/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn a_bundle_becomes_a_patient_record() {
    let r = PatientRecord::from_json_or_fhir(&fixture("sepsis-bundle.json")).unwrap();
    assert_eq!(r.id, "example-1");
    assert_eq!(r.demographics.sex, Some(Sex::Female));
    assert_eq!(r.demographics.age, Some(73.0));
    assert_eq!(r.demographics.care_unit.as_deref(), Some("medical ICU"));
    let obs: Vec<(&str, f64, Option<&str>)> = r
        .observations
        .iter()
        .map(|o| (o.channel.as_str(), o.hours, o.unit.as_deref()))
        .collect();
    assert_eq!(
        obs,
        [
            // 07:00Z is 09:00+02:00, an hour after the encounter's 08:00+02:00
            ("lactate", 1.0, Some("mmol/L")),
            ("heart_rate", 1.5, Some("/min")),
            ("temperature", 2.0, Some("[degF]")),
            ("loinc:99999-9", 3.0, Some("1")),
            ("creatinine", 4.25, Some("umol/L")),
        ]
    );
    let visit = &r.visits[0];
    assert_eq!(visit.diagnoses, ["icd10:A419", "icd9:5849"]);
    assert_eq!(visit.procedures, ["snomed:40617009"]);
    assert_eq!(visit.medications, ["J01D", "rxnorm:860975"]);
    let labels = r.labels.as_ref().unwrap();
    assert_eq!(
        labels.phenotypes,
        [
            "Acute and unspecified renal failure",
            "Septicemia (except in labor)"
        ]
    );
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0].text.starts_with("Brief hospital course"));

    // units are converted on the grid: 102.9 °F ≈ 39.4 °C, 132.6 µmol/L creatinine = 1.5 mg/dL
    let grid = bedside::record::SeriesGrid::from_record(&r, 48);
    assert_eq!(grid.observed(), 4);
    let kinds: Vec<(&str, &str)> = grid
        .notices
        .iter()
        .map(|n| (n.path.as_str(), n.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("$.observations[2].unit", "unit_converted"),
            ("$.observations[3].channel", "unknown_channel"),
            ("$.observations[4].unit", "unit_converted"),
        ],
        "the conversions are recorded"
    );
    assert!(
        grid.notices[0]
            .message
            .contains("102.9 [degF] read as 39.3889 Cel"),
        "{}",
        grid.notices[0].message
    );
}

#[test]
fn bad_fhir_names_the_field() {
    let err = |text: &str| PatientRecord::from_json_or_fhir(text).unwrap_err();
    let e = err(r#"{"resourceType":"Bundle","entry":{}}"#);
    assert_eq!(e.code(), "RECORD_FHIR");
    assert!(e.to_string().contains("$.entry"), "{e}");
    // an Observation that cannot be placed in time is reported, not fatal
    let r = PatientRecord::from_json_or_fhir(
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":"yesterday"}}]}"#,
    )
    .unwrap();
    assert!(r.observations.is_empty());
    assert_eq!(r.skipped[0].path, "$.entry[0].resource");
    assert!(r.skipped[0].reason.contains("yesterday"), "{:?}", r.skipped);
    let e = err(r#"{"resourceType":"Patient","id":"p","gender":"robot"}"#);
    assert!(e.to_string().contains("$.gender"), "{e}");
    // a note that cannot be decoded is named, and the rest is read
    let r = PatientRecord::from_json_or_fhir(
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"DocumentReference","content":[{"attachment":{"data":"%%%"}}]}}]}"#,
    )
    .unwrap();
    assert!(r.notes.is_empty());
    assert!(
        r.skipped[0].reason.contains("attachment.data"),
        "{:?}",
        r.skipped
    );
    // a resource of a type bedside does not read is ignored, not an error
    let r = PatientRecord::from_json_or_fhir(
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Coverage","id":"c"}}]}"#,
    )
    .unwrap();
    assert!(r.observations.is_empty());
}

#[test]
fn rxnorm_codes_reach_atc3_where_the_ndc_tables_join_them() {
    let bundle = r#"{"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Patient", "id": "rx"}},
        {"resource": {"resourceType": "MedicationRequest", "status": "active", "authoredOn": "2024-01-02",
            "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "153095"}]}}},
        {"resource": {"resourceType": "MedicationStatement", "status": "active", "effectiveDateTime": "2024-01-02",
            "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999999"}]}}}
    ]}"#;
    let r = PatientRecord::from_json_or_fhir(bundle).unwrap();
    // 153095 → H04A by data/rxnorm_atc3.tsv; an unknown concept is kept with its system
    assert_eq!(r.visits[0].medications, ["H04A", "rxnorm:999999999"]);
}

#[test]
fn a_lone_resource_of_another_type_is_refused() {
    let e =
        PatientRecord::from_json_or_fhir(r#"{"resourceType":"Observation","id":"x"}"#).unwrap_err();
    assert_eq!(e.code(), "RECORD_FHIR");
    assert!(
        e.to_string().contains("$.resourceType") && e.to_string().contains("Observation"),
        "{e}"
    );
}

/// `real-chart-bundle.json` is a chart as an EHR's FHIR search returns it: three encounters over
/// five years, a US Core blood-pressure panel, resources of other encounters, an Observation
/// without a time, medications by reference, stopped, draft and undated, notes in HTML and at a
/// URL (invented patient).
#[test]
fn a_real_chart_is_read_around_its_latest_inpatient_encounter() {
    let r = PatientRecord::from_json_or_fhir(&fixture("real-chart-bundle.json")).unwrap();
    // the 2024 admission, not the later clinic visit nor the 2019 admission
    assert_eq!(r.demographics.care_unit.as_deref(), Some("medical ICU"));
    assert_eq!(r.demographics.age, Some(73.0));
    let obs: Vec<(&str, f64, Option<f64>, Option<&str>)> = r
        .observations
        .iter()
        .map(|o| (o.channel.as_str(), o.hours, o.value, o.reference.as_deref()))
        .collect();
    assert_eq!(
        obs,
        [
            ("heart_rate", 1.5, Some(124.0), Some("Observation/hr-1")),
            ("systolic_bp", 2.0, Some(84.0), Some("Observation/bp-1")),
            ("diastolic_bp", 2.0, Some(46.0), Some("Observation/bp-1")),
            ("lactate", 3.0, Some(4.6), Some("Observation/lac-1")),
        ],
        "the panel's components; not the 2019 heart rate, the untimed creatinine or the \
         entered-in-error value"
    );
    let [history, earlier, current] = r.visits.as_slice() else {
        panic!("{:?}", r.visits)
    };
    assert_eq!(history.diagnoses, ["icd10:E119"], "the 2015 problem");
    assert_eq!(earlier.diagnoses, ["icd10:I509"]);
    assert_eq!(earlier.medications, ["C03C"], "stopped in 2019");
    assert_eq!(
        current.diagnoses,
        ["icd10:A419"],
        "not the refuted pneumonia"
    );
    assert_eq!(
        current.medications,
        ["C07A", "J01D"],
        "by reference (contained, in the Bundle); not the draft nor the undated one"
    );
    assert_eq!(
        r.labels.as_ref().unwrap().phenotypes,
        ["Septicemia (except in labor)"],
        "only this admission's conditions are labels"
    );
    let [note] = r.notes.as_slice() else {
        panic!("{:?}", r.notes)
    };
    assert_eq!(note.text, "Febrile and hypotensive on arrival.");
    assert_eq!(note.reference.as_deref(), Some("DocumentReference/note-1"));
    assert_eq!(note.hours, Some(1.75));
    let skipped: Vec<(Option<&str>, &str)> = r
        .skipped
        .iter()
        .map(|s| (s.reference.as_deref(), s.reason.as_str()))
        .collect();
    for (reference, reason) in [
        (Some("Observation/untimed"), "cannot be placed in time"),
        (Some("Observation/wrong"), "entered-in-error"),
        (None, "1 observations outside the encounter"),
        (Some("MedicationRequest/mr-undated"), "undated"),
        (Some("DocumentReference/note-2019"), "another encounter"),
        (Some("DocumentReference/note-url"), "URL"),
    ] {
        assert!(
            skipped
                .iter()
                .any(|(r, why)| *r == reference && why.contains(reason)),
            "{reference:?} {reason} not in {skipped:?}"
        );
    }
    // every skipped item is said with the answer
    let notices = bedside::record::record_notices(&r);
    assert_eq!(
        notices
            .iter()
            .filter(|n| n.kind == "resource_skipped")
            .count(),
        r.skipped.len()
    );

    // the encounter a SMART launch names
    let value: serde_json::Value =
        serde_json::from_str(&fixture("real-chart-bundle.json")).unwrap();
    let options = bedside::record::fhir::FhirOptions {
        encounter: Some("Encounter/e-2019".into()),
    };
    let r2019 = bedside::record::fhir::from_fhir_with(&value, &options).unwrap();
    assert_eq!(r2019.demographics.care_unit.as_deref(), Some("cardiac ICU"));
    assert_eq!(r2019.observations.len(), 1);
    assert_eq!(r2019.visits.last().unwrap().diagnoses, ["icd10:I509"]);
    let missing = bedside::record::fhir::FhirOptions {
        encounter: Some("Encounter/nope".into()),
    };
    let e = bedside::record::fhir::from_fhir_with(&value, &missing).unwrap_err();
    assert!(e.to_string().contains("Encounter/nope"), "{e}");
}
