//! The bad-input catalogue (tests/catalogue/) through the `bedside-train` binary: every record
//! given to `predict`, every teacher JSONL file to `teach --teacher jsonl`. A refused input must
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
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bedside-train")).args(args).output().unwrap()
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
    let mut missing: Vec<String> = case["mentions"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|m| !stderr.contains(m)).map(String::from).collect();
    if let Some(prefix) = code_prefix {
        let code = format!("[{}]", case["code"].as_str().unwrap());
        if !stderr.starts_with(&format!("{prefix}{code}")) {
            missing.push(code);
        }
    }
    (!missing.is_empty() || stderr.trim().lines().count() != 1).then(|| format!("{stderr} (does not mention {missing:?}, or not one line)"))
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
        let output = run(&["predict", "--bundle", bundle.to_str().unwrap(), "--record", file.to_str().unwrap()]);
        // the message names the file, then the field
        let file_named = String::from_utf8_lossy(&output.stderr).contains(&format!("{i}.json"));
        let wrong = mismatch(case, &output, Some("bedside-train: "))
            .or_else(|| (case["ok"].is_null() && !file_named).then(|| "the file is not named".to_string()));
        failures.extend(wrong.map(|w| format!("{}: {w}", case["name"])));
    }
    eprintln!("CLI records: {} cases, {} as expected", all.len(), all.len() - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn teach_refuses_every_bad_teacher_file_naming_the_line() {
    let dir = tempdir("teacher");
    let cohort = dir.join("cohort.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_bedside-train"))
        .args(["cohort", "--source", "synthetic", "--n", "2", "--out", cohort.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let all = cases("teacher.jsonl");
    let mut failures = Vec::new();
    for (i, case) in all.iter().enumerate() {
        let input = dir.join(format!("teacher-{i}.jsonl"));
        let lines: Vec<&str> = case["lines"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let out = dir.join(format!("out-{i}.jsonl"));
        let output = run(&["teach", "--cohort", cohort.to_str().unwrap(), "--teacher", "jsonl", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let mut wrong = mismatch(case, &output, None);
        if wrong.is_none() && out.exists() {
            wrong = Some("an output was written for a refused file".into());
        }
        failures.extend(wrong.map(|w| format!("{}: {w}", case["name"])));
    }
    eprintln!("CLI teacher files: {} cases, {} as expected", all.len(), all.len() - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bedside-catalogue-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
