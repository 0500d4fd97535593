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
    let e = err(
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":"yesterday"}}]}"#,
    );
    assert!(
        e.to_string()
            .contains("$.entry[0].resource.effectiveDateTime"),
        "{e}"
    );
    let e = err(r#"{"resourceType":"Patient","id":"p","gender":"robot"}"#);
    assert!(e.to_string().contains("$.gender"), "{e}");
    let e = err(
        r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"DocumentReference","content":[{"attachment":{"data":"%%%"}}]}}]}"#,
    );
    assert!(e.to_string().contains("attachment.data"), "{e}");
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
        {"resource": {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "153095"}]}}},
        {"resource": {"resourceType": "MedicationStatement", "medicationCodeableConcept": {"coding": [
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
