//! The bad-input catalogue (tests/catalogue/, written by generate.py) against the native library:
//! every record is parsed and diagnosed, every edited bundle loaded, each inside `catch_unwind`.
//! A refused input must give its stable code and a message naming the field or file at fault; an
//! accepted one must give a diagnosis carrying exactly the expected kinds of notice. Zero panics.

use bedside::bundle::{Bundle, MANIFEST_FILE, WEIGHTS_FILE, sha256_hex};
use bedside::recommend::MEDREC_FILE;
use bedside::tokenizer::TOKENIZER_FILE;
use bedside::{Backend, BedsideError, Engine, PatientRecord};
use serde_json::Value;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/catalogue").join(file)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

type Files = BTreeMap<String, Vec<u8>>;

fn demo_files() -> Files {
    [MANIFEST_FILE, WEIGHTS_FILE, TOKENIZER_FILE, MEDREC_FILE]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(root().join("models/demo").join(f)).unwrap(),
            )
        })
        .collect()
}

/// Loads a bundle from its files as the JS API does.
async fn load(files: &Files) -> Result<Engine, BedsideError> {
    let bundle = Bundle::from_bytes(
        &String::from_utf8_lossy(&files[MANIFEST_FILE]),
        files[WEIGHTS_FILE].clone(),
        Some(files[TOKENIZER_FILE].clone()),
        Some(files[MEDREC_FILE].clone()),
    )?;
    Engine::load(&bundle, Backend::Cpu).await
}

/// What a case expects, checked against what happened; `None` when it matches.
fn mismatch(case: &Value, outcome: Result<Vec<String>, BedsideError>) -> Option<String> {
    match (case["ok"].as_bool() == Some(true), outcome) {
        (true, Ok(notices)) => {
            // exactly the expected kinds (cases of other files expect none)
            let expected: std::collections::BTreeSet<&str> = case["notices"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let got: std::collections::BTreeSet<&str> =
                notices.iter().map(String::as_str).collect();
            (got != expected)
                .then(|| format!("accepted with notices {got:?}, expected {expected:?}"))
        }
        (true, Err(e)) => Some(format!("refused: {} {e}", e.code())),
        (false, Ok(_)) => Some("accepted".into()),
        (false, Err(e)) => {
            let message = e.to_string();
            let missing: Vec<&str> = case["mentions"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|m| !message.contains(m))
                .collect();
            (e.code() != case["code"] || !missing.is_empty())
                .then(|| format!("{}: {message} (does not mention {missing:?})", e.code()))
        }
    }
}

fn report(layer: &str, total: usize, failures: Vec<String>) {
    eprintln!(
        "{layer}: {total} cases, {} as expected",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} {layer} cases went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_bad_record_is_refused_or_reported_without_a_panic() {
    let engine = pollster::block_on(load(&demo_files())).unwrap();
    let cases = cases("records.jsonl");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let run = || {
            pollster::block_on(async {
                let record = PatientRecord::from_json_or_fhir(input)?;
                let diagnosis = engine.diagnose(&record).await?;
                if !record.visits.is_empty() {
                    engine.recommend(&record).await?; // it needs the current visit's codes
                }
                Ok(diagnosis
                    .notices
                    .iter()
                    .map(|n| n.kind.to_string())
                    .collect())
            })
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Err(_) => failures.push(format!("{name}: PANIC")),
            Ok(outcome) => failures.extend(mismatch(case, outcome).map(|m| format!("{name}: {m}"))),
        }
    }
    report("record", cases.len(), failures);
}

/// Records unlike what the model was trained on get the reasons, not an answer: the shape of a
/// real Synthea chart of a healthy five-year-old at a well-child visit (ambulatory, no
/// observation, a note of headings and boilerplate; `tests/fixtures/fhir/healthy-child-bundle.json`),
/// and an adult ICU record whose observations cover too few channels. An adult record with labs
/// stays in range. The probabilities are still computed.
#[test]
fn out_of_range_records_get_reasons_not_answers() {
    let engine = pollster::block_on(load(&demo_files())).unwrap();
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/fhir/healthy-child-bundle.json"))
            .unwrap();
    let child = PatientRecord::from_json_or_fhir(&text).unwrap();
    // an ambulatory encounter stays outpatient when it names its place (Synthea's do)
    let mut fhir: Value = serde_json::from_str(&text).unwrap();
    fhir["entry"][1]["resource"]["location"] =
        serde_json::json!([{"location": {"display": "NEWMAN MEMORIAL COUNTY HOSPITAL"}}]);
    let named = PatientRecord::from_json_or_fhir(&fhir.to_string()).unwrap();
    let unit = named.demographics.care_unit.as_deref().unwrap_or("");
    assert!(
        unit.starts_with("outpatient") && unit.ends_with("HOSPITAL"),
        "{unit}"
    );
    let adult: PatientRecord = serde_json::from_value(serde_json::json!({
        "id": "adult",
        "demographics": {"age": 67, "sex": "male", "care_unit": "MICU"},
        "observations": [
            {"channel": "creatinine", "hours": 2, "value": 2.9},
            {"channel": "lactate", "hours": 3, "value": 4.4},
            {"channel": "mean_bp", "hours": 3, "value": 58},
            {"channel": "heart_rate", "hours": 3, "value": 124}
        ],
        "visits": [{"diagnoses": ["icd9:038.9"]}]
    }))
    .unwrap();
    let mut sparse = adult.clone();
    sparse.id = "sparse".into();
    sparse.observations.truncate(2);
    let explain = |r: &PatientRecord| {
        pollster::block_on(engine.explain(r, &Default::default(), &mut |_| true)).unwrap()
    };
    for (record, kinds) in [
        (
            &child,
            vec![
                "no_observations",
                "age_outside_training",
                "setting_outside_training",
            ],
        ),
        (&sparse, vec!["few_channels"]),
    ] {
        let d = pollster::block_on(engine.diagnose(record)).unwrap();
        let out = d
            .out_of_range
            .as_ref()
            .unwrap_or_else(|| panic!("{} in range", record.id));
        let said: Vec<&str> = out.reasons.iter().map(|r| r.kind).collect();
        assert_eq!(said, kinds, "{}", record.id);
        assert!(
            d.diagnosed.is_empty() && d.evidence.is_empty(),
            "{}: {d:?}",
            record.id
        );
        assert_eq!(
            d.phenotypes.len(),
            25,
            "the probabilities are still computed"
        );
        let e = explain(record);
        assert!(e.diagnoses.is_empty() && e.evidence.is_empty() && e.rationale.is_empty());
        assert!(e.text.starts_with("Out of the model's range"), "{}", e.text);
        assert_eq!(e.out_of_range.as_ref(), Some(out));
        // the recommender reads the coded visits: it abstains for a child or a setting only
        let r = pollster::block_on(engine.recommend(record)).unwrap();
        assert!(!r.scores.is_empty(), "the scores are still computed");
        let setting: Vec<&str> = said
            .iter()
            .copied()
            .filter(|k| *k == "age_outside_training" || *k == "setting_outside_training")
            .collect();
        let kinds: Vec<&str> = r
            .out_of_range
            .iter()
            .flat_map(|o| o.reasons.iter().map(|r| r.kind))
            .collect();
        assert_eq!(kinds, setting, "{}", record.id);
        if r.out_of_range.is_some() {
            assert!(r.medications.is_empty() && r.ddi_warnings.is_empty());
        }
    }
    // the note's headings, date and boilerplate are no facts to quote
    let findings = bedside::findings::Findings::of(&child, 48);
    let quoted: Vec<&str> = findings.sentences.iter().map(|s| s.text(&child)).collect();
    assert!(
        quoted
            .iter()
            .all(|s| !s.starts_with('#') && *s != "No complaints."),
        "{quoted:?}"
    );
    assert!(
        quoted.iter().any(|s| s.contains("well-child visit")),
        "{quoted:?}"
    );
    // in range: four channels, an adult in an ICU
    let d = pollster::block_on(engine.diagnose(&adult)).unwrap();
    assert_eq!(d.out_of_range, None);
    assert!(explain(&adult).out_of_range.is_none());
}

#[test]
fn every_damaged_bundle_is_refused_before_use_without_a_panic() {
    let demo = demo_files();
    let cases = cases("bundles.jsonl");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let mut files = demo.clone();
        for edit in case["edits"].as_array().unwrap() {
            apply(&mut files, edit);
        }
        match catch_unwind(AssertUnwindSafe(|| {
            pollster::block_on(load(&files)).map(|_| Vec::new())
        })) {
            Err(_) => failures.push(format!("{name}: PANIC")),
            Ok(outcome) => failures.extend(mismatch(case, outcome).map(|m| format!("{name}: {m}"))),
        }
    }
    report("bundle", cases.len(), failures);
}

// --- the edits of bundles.jsonl (the same in tests/node/catalogue.mjs) --------------------------

fn apply(files: &mut Files, edit: &Value) {
    let file = edit["file"].as_str().unwrap().to_string();
    if let Some(target) = edit["rehash"].as_str() {
        let bytes = files[target].clone();
        let mut manifest: Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
        manifest["files"][target] =
            serde_json::json!({ "sha256": sha256_hex(&bytes), "bytes": bytes.len() });
        files.insert(MANIFEST_FILE.into(), serde_json::to_vec(&manifest).unwrap());
        return;
    }
    let bytes = files.get_mut(&file).unwrap();
    let at = |n: i64, len: usize| {
        if n < 0 {
            (len as i64 + n) as usize
        } else {
            n as usize
        }
    };
    if let Some(n) = edit["truncate"].as_i64() {
        bytes.truncate(at(n, bytes.len()));
    } else if let Some(f) = edit["truncate_fraction"].as_f64() {
        bytes.truncate((bytes.len() as f64 * f) as usize);
    } else if let Some(n) = edit["append"].as_u64() {
        bytes.extend(std::iter::repeat_n(0u8, n as usize));
    } else if let Some(n) = edit["flip"].as_i64() {
        let i = at(n, bytes.len());
        bytes[i] ^= 1;
    } else if let Some(text) = edit["text"].as_str() {
        *bytes = text.as_bytes().to_vec();
    } else if edit.get("json_remove").is_some()
        || edit.get("json_set").is_some()
        || edit.get("json_pop").is_some()
        || edit.get("json_reverse").is_some()
    {
        let mut json: Value = serde_json::from_slice(bytes).unwrap();
        let (path, value) = match &edit["json_set"] {
            Value::Array(pair) => (pair[0].clone(), Some(pair[1].clone())),
            _ => (
                edit.get("json_remove")
                    .or(edit.get("json_pop"))
                    .or(edit.get("json_reverse"))
                    .unwrap()
                    .clone(),
                None,
            ),
        };
        let keys: Vec<&str> = path
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let (last, parents) = keys.split_last().unwrap();
        let parent = parents.iter().fold(&mut json, |node, key| &mut node[*key]);
        if let Some(value) = value {
            parent[*last] = value;
        } else if edit.get("json_remove").is_some() {
            parent.as_object_mut().unwrap().remove(*last);
        } else if edit.get("json_pop").is_some() {
            parent[*last].as_array_mut().unwrap().pop();
        } else {
            parent[*last].as_array_mut().unwrap().reverse();
        }
        *bytes = serde_json::to_vec(&json).unwrap();
    } else {
        edit_header(bytes, edit);
    }
}

/// Edits of a safetensors file's header (8-byte little-endian length, then JSON).
fn edit_header(bytes: &mut Vec<u8>, edit: &Value) {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    if let Some(n) = edit["header_length"].as_u64() {
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        return;
    }
    if let Some(n) = edit["header_length_add"].as_u64() {
        let data = bytes.len() - 8;
        bytes[..8].copy_from_slice(&(data as u64 + n).to_le_bytes());
        return;
    }
    let mut header = String::from_utf8(bytes[8..8 + length].to_vec()).unwrap();
    if let Some(pair) = edit["header_replace"].as_array() {
        header = header.replacen(pair[0].as_str().unwrap(), pair[1].as_str().unwrap(), 1);
    } else {
        let mut json: serde_json::Map<String, Value> = serde_json::from_str(&header).unwrap();
        let mut names: Vec<String> = json
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        names.sort();
        if let Some(dtype) = edit["header_dtype"].as_str() {
            json[&names[0]]["dtype"] = dtype.into();
        } else if edit.get("header_shape_swap").is_some() {
            let name = names.iter().find(|n| matches!(json[*n]["shape"].as_array(), Some(s) if s.len() == 2 && s[0] != s[1])).unwrap();
            json[name]["shape"].as_array_mut().unwrap().reverse();
        } else if edit.get("header_rename").is_some() {
            let tensor = json.remove(&names[0]).unwrap();
            json.insert(format!("{}_renamed", names[0]), tensor);
        } else if edit.get("header_offsets_overlap").is_some() {
            let first = json[&names[0]]["data_offsets"].clone();
            json[&names[1]]["data_offsets"] = first;
        } else {
            panic!("unknown edit {edit}");
        }
        header = serde_json::to_string(&json).unwrap();
    }
    let data = bytes[8 + length..].to_vec();
    *bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
}

/// The committed JSONL files are exactly what generate.py writes: a case edited by hand, or a
/// generator change that was not regenerated, fails here.
#[test]
fn the_catalogue_is_what_its_generator_writes() {
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/catalogue/generate.py"))
        .arg("--check")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
