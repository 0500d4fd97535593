//! The bad-input catalogue (tests/catalogue/) through the `bedside-train` binary: every record
//! given to `predict`, every teacher JSONL file to `teach --teacher jsonl`, every set of MIMIC
//! tables to `cohort`. A refused input must
//! end with exit status 1 (not a panic's 101, not a signal) and a one-line reason that carries
//! the stable code and names the field, file or line; an accepted record prints its diagnosis.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/catalogue").join(file)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bedside-train"))
        .args(args)
        .output()
        .unwrap()
}

/// What went wrong with a case, or `None`.
fn mismatch(case: &Value, output: &Output, code_prefix: Option<&str>) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = output.status.code();
    if case["ok"].as_bool() == Some(true) {
        return (status != Some(0)).then(|| format!("exit {status:?}: {stderr}"));
    }
    if status != Some(1) {
        return Some(format!("exit {status:?} (1 expected): {stderr}"));
    }
    let mut missing: Vec<String> = case["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|m| !stderr.contains(m))
        .map(String::from)
        .collect();
    if let Some(prefix) = code_prefix {
        let code = format!("[{}]", case["code"].as_str().unwrap());
        if !stderr.starts_with(&format!("{prefix}{code}")) {
            missing.push(code);
        }
    }
    (!missing.is_empty() || stderr.trim().lines().count() != 1)
        .then(|| format!("{stderr} (does not mention {missing:?}, or not one line)"))
}

#[test]
fn predict_refuses_every_bad_record_with_its_code() {
    let dir = tempdir("records");
    let bundle = root().join("models/demo");
    let all = cases("records.jsonl");
    let mut failures = Vec::new();
    for (i, case) in all.iter().enumerate() {
        let file = dir.join(format!("{i}.json"));
        std::fs::write(&file, case["input"].as_str().unwrap()).unwrap();
        let output = run(&[
            "predict",
            "--bundle",
            bundle.to_str().unwrap(),
            "--record",
            file.to_str().unwrap(),
        ]);
        // the message names the file, then the field
        let file_named = String::from_utf8_lossy(&output.stderr).contains(&format!("{i}.json"));
        let wrong = mismatch(case, &output, Some("bedside-train: ")).or_else(|| {
            (case["ok"].is_null() && !file_named).then(|| "the file is not named".to_string())
        });
        failures.extend(wrong.map(|w| format!("{}: {w}", case["name"])));
    }
    eprintln!(
        "CLI records: {} cases, {} as expected",
        all.len(),
        all.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn teach_refuses_every_bad_teacher_file_naming_the_line() {
    let dir = tempdir("teacher");
    let cohort = dir.join("cohort.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_bedside-train"))
        .args([
            "cohort",
            "--source",
            "synthetic",
            "--n",
            "2",
            "--out",
            cohort.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let all = cases("teacher.jsonl");
    let mut failures = Vec::new();
    for (i, case) in all.iter().enumerate() {
        let input = dir.join(format!("teacher-{i}.jsonl"));
        let lines: Vec<&str> = case["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let out = dir.join(format!("out-{i}.jsonl"));
        let output = run(&[
            "teach",
            "--cohort",
            cohort.to_str().unwrap(),
            "--teacher",
            "jsonl",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let mut wrong = mismatch(case, &output, None);
        if wrong.is_none() && out.exists() {
            wrong = Some("an output was written for a refused file".into());
        }
        failures.extend(wrong.map(|w| format!("{}: {w}", case["name"])));
    }
    eprintln!(
        "CLI teacher files: {} cases, {} as expected",
        all.len(),
        all.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cohort_reads_every_catalogued_mimic_table_or_names_what_is_wrong() {
    use base64::Engine as _;
    let dir = tempdir("mimic");
    let all = cases("mimic.jsonl");
    let mut base_observations = std::collections::HashMap::new();
    let mut failures = Vec::new();
    for (i, case) in all.iter().enumerate() {
        let source = case["source"].as_str().unwrap();
        let input = dir.join(format!("case-{i}"));
        let tables = if source == "mimic4" {
            input.join("hosp")
        } else {
            input.clone()
        };
        std::fs::create_dir_all(&tables).unwrap();
        for (name, file) in case["files"].as_object().unwrap() {
            let bytes = match file["text"].as_str() {
                Some(text) => text.as_bytes().to_vec(),
                None => base64::engine::general_purpose::STANDARD
                    .decode(file["base64"].as_str().unwrap())
                    .unwrap(),
            };
            std::fs::write(tables.join(name), bytes).unwrap();
        }
        let out = input.join("out.jsonl");
        let output = run(&[
            "cohort",
            "--source",
            source,
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let wrong = if let Some(mentions) = case["error"].as_array() {
            let missing: Vec<&str> = mentions
                .iter()
                .filter_map(Value::as_str)
                .filter(|m| !stderr.contains(m))
                .collect();
            if output.status.code() != Some(1)
                || !missing.is_empty()
                || stderr.trim().lines().count() != 1
                || out.exists()
            {
                Some(format!(
                    "exit {:?}, output written {}: {stderr} (does not mention {missing:?})",
                    output.status.code(),
                    out.exists()
                ))
            } else {
                None
            }
        } else if !output.status.success() {
            Some(format!("exit {:?}: {stderr}", output.status.code()))
        } else {
            let summary: Value = serde_json::from_str(
                &std::fs::read_to_string(input.join("out.summary.json")).unwrap(),
            )
            .unwrap();
            let written = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
            let observations = summary["observations"].as_u64().unwrap();
            if case["name"] == "untouched" {
                base_observations.insert(source, observations);
            }
            let expected_observations = case["more_observations"]
                .as_u64()
                .map(|more| base_observations[source] + more);
            let skip_named = case["skip"].as_str().is_none_or(|reason| {
                summary["skipped"][reason]["examples"]
                    .as_array()
                    .is_some_and(|e| {
                        e.iter()
                            .filter_map(Value::as_str)
                            .any(|e| e.starts_with(case["at"].as_str().unwrap()))
                    })
            });
            (written != case["records"].as_u64().unwrap()
                || expected_observations.is_some_and(|o| o != observations)
                || !skip_named)
                .then(|| {
                    format!(
                        "{written} records, {observations} observations, skipped {}",
                        summary["skipped"]
                    )
                })
        };
        failures.extend(wrong.map(|w| format!("{source} {}: {w}", case["name"])));
    }
    eprintln!(
        "CLI MIMIC tables: {} cases, {} as expected",
        all.len(),
        all.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bedside-catalogue-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
