//! Grounded rationales on the committed demo bundle (models/demo), over 500 varied records:
//! every lab statement the model writes is true of the record and every note quote is the
//! record's text at the evidence's span (faithfulness and exactness 1.000, checked by `eval`
//! independently of how the text was made); records without observations get no lab statement,
//! records without notes no quote; a FHIR Bundle with no observations gets no lab statement and
//! notices that say what the model cannot read well in it.

mod common;

use common::{bin, scratch};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo")
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn eval(dir: &Path, name: &str, records: &[Value]) -> Value {
    let cohort = dir.join(format!("{name}.jsonl"));
    std::fs::write(
        &cohort,
        records.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.join(name);
    run(bin()
        .args(["eval", "--max-tokens", "48", "--bundle"])
        .arg(demo())
        .arg("--cohort")
        .arg(&cohort)
        .arg("--out")
        .arg(&out));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// Hostile but valid input: extreme values, a unit to convert, observations outside the window,
/// several in one hour, and notes with decimals, other scripts and a lab claim of their own.
fn hostile(mut r: Value, i: usize) -> Value {
    let observations = r["observations"].as_array_mut().unwrap();
    observations.push(json!({"channel": "lactate", "hours": 2.25, "value": 29.5}));
    observations.push(json!({"channel": "lactate", "hours": 2.75, "value": 0.3}));
    observations.push(json!({"channel": "glucose", "hours": 5.0, "value": 25.0, "unit": "mmol/L"}));
    observations.push(json!({"channel": "creatinine", "hours": 70.0 + i as f64, "value": 19.0}));
    observations.push(json!({"channel": "heart_rate", "hours": -3.0, "value": 250.0}));
    observations.push(json!({"channel": "sodium", "hours": 47.99, "value": 181.0}));
    r["notes"] = json!([{"kind": "nursing", "text": format!(
        "Pt febrile 39.4 C; Lactate was high at 99 mmol/L per outside report. Renal failure with creatinine 1.5 → 3.2. \
         Ärztin: Sepsis vermutet 🙂. Patient {i} has acute kidney injury and shock!  Septic shock; pneumonia on imaging."
    )}]);
    r
}

#[test]
fn rationales_are_true_of_500_varied_records() {
    let dir = scratch("grounded");
    let cohort = dir.join("synthetic.jsonl");
    run(bin()
        .args([
            "cohort",
            "--source",
            "synthetic",
            "--n",
            "300",
            "--seed",
            "4242",
            "--out",
        ])
        .arg(&cohort));
    let synthetic: Vec<Value> = std::fs::read_to_string(&cohort)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut records: Vec<Value> = synthetic[..200].to_vec();
    let mut notes_only: Vec<Value> = Vec::new();
    for (i, r) in synthetic[200..].iter().enumerate() {
        let mut labs_only = r.clone();
        labs_only["id"] = json!(format!("labs-only-{i}"));
        labs_only["notes"] = json!([]);
        records.push(labs_only);
        let mut notes = r.clone();
        notes["id"] = json!(format!("notes-only-{i}"));
        notes["observations"] = json!([]);
        notes_only.push(notes);
        let mut h = hostile(r.clone(), i);
        h["id"] = json!(format!("hostile-{i}"));
        records.push(h);
    }
    // nothing at all: no observations, no notes
    for (i, record) in synthetic.iter().take(50).enumerate() {
        let mut empty = record.clone();
        empty["id"] = json!(format!("empty-{i}"));
        empty["observations"] = json!([]);
        empty["notes"] = json!([]);
        notes_only.push(empty);
    }
    records.extend(notes_only.iter().cloned());
    assert!(records.len() >= 500, "{}", records.len());

    let report = eval(&dir, "all", &records);
    let r = &report["rationale"];
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    assert!(r["lab_statements"].as_u64().unwrap() >= 200, "{r}");
    assert_eq!(r["faithfulness"].as_f64(), Some(1.0), "{r}");
    assert!(r["note_quotes"].as_u64().unwrap() >= 50, "{r}");
    assert_eq!(r["quote_exactness"].as_f64(), Some(1.0), "{r}");

    // without observations no lab statement; without notes no quote
    let none = eval(&dir, "notes-only", &notes_only);
    assert_eq!(
        none["rationale"]["lab_statements"].as_u64(),
        Some(0),
        "{}",
        none["rationale"]
    );
    let labs_only: Vec<Value> = records
        .iter()
        .filter(|r| r["id"].as_str().unwrap().starts_with("labs-only"))
        .cloned()
        .collect();
    let labs = eval(&dir, "labs-only", &labs_only);
    assert_eq!(
        labs["rationale"]["note_quotes"].as_u64(),
        Some(0),
        "{}",
        labs["rationale"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A FHIR R4 Bundle of an outpatient child with a sore throat and no observations, as Synthea
/// exports one: the answer states no lab value, and every evidence item is a quote or nothing.
#[test]
fn a_fhir_bundle_without_observations_gets_no_lab_statement() {
    let dir = scratch("grounded-fhir");
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "child", "gender": "female", "birthDate": "2023-05-01"}},
            {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
                          "period": {"start": "2026-05-01T10:00:00Z", "end": "2026-05-01T10:30:00Z"}}},
            {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/child"},
                          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195662009", "display": "Acute viral pharyngitis"}]}}}
        ]
    });
    let file = dir.join("child.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let out = run(bin()
        .args(["predict", "--explain", "--max-tokens", "48", "--bundle"])
        .arg(demo())
        .arg("--record")
        .arg(&file));
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let explanation = answer.get("explanation").unwrap_or(&answer);
    let rationale = explanation["rationale"].as_str().unwrap();
    assert!(
        !rationale.contains(" was high at ") && !rationale.contains(" was low at "),
        "{rationale}"
    );
    assert!(
        explanation["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] != "observation"),
        "{explanation}"
    );
    assert!(
        !explanation["text"].as_str().unwrap().contains("###"),
        "{explanation}"
    );
    // and the answer says first what the model cannot read well here
    let kinds: Vec<&str> = answer["diagnosis"]["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "no_observations",
            "no_notes",
            "age_outside_training",
            "setting_outside_training"
        ],
        "{answer}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
