//! The catalogue's MIMIC tables (tests/catalogue/mimic.jsonl) through the readers: each bad row is
//! counted with its reason and `file:line` and the other rows are still read; a table that cannot
//! be read at all is an error naming the file and column. Then 3,000 byte-level mutations of the
//! same tables must give a result or an error, never a panic.

use base64::Engine as _;
use bedside_cohort::{Summary, mimic3, mimic4};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Files = BTreeMap<String, Vec<u8>>;

fn cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/catalogue/mimic.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a catalogue line"))
        .collect()
}

fn files(case: &Value) -> Files {
    let files = case["files"].as_object().expect("files");
    files
        .iter()
        .map(|(name, f)| {
            let bytes = match (f["text"].as_str(), f["base64"].as_str()) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (_, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64"),
                _ => panic!("{name}: neither text nor base64"),
            };
            (name.clone(), bytes)
        })
        .collect()
}

/// The tables written into a fresh directory (`hosp/` for MIMIC-IV, as in the real layout).
fn write(files: &Files, source: &str, dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let tables = if source == "mimic4" {
        dir.join("hosp")
    } else {
        dir.to_path_buf()
    };
    std::fs::create_dir_all(&tables).expect("a temporary directory");
    for (name, bytes) in files {
        std::fs::write(tables.join(name), bytes).expect("a table");
    }
    dir.to_path_buf()
}

fn read(source: &str, dir: &Path) -> (anyhow::Result<Vec<bedside::PatientRecord>>, Summary) {
    let mut summary = Summary::new(source);
    let records = match source {
        "mimic4" => mimic4::read(dir, None, 48, &mut summary),
        _ => mimic3::read(dir, None, 48, &mut summary),
    };
    (records, summary)
}

fn observations(records: &[bedside::PatientRecord]) -> usize {
    records.iter().map(|r| r.observations.len()).sum()
}

#[test]
fn catalogued_mimic_tables() {
    let tmp = std::env::temp_dir().join(format!("bedside-mimic-catalogue-{}", std::process::id()));
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    // the untouched tables of each source: what every case is compared with
    let mut base: BTreeMap<String, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let (name, source) = (
            case["name"].as_str().unwrap_or("?"),
            case["source"].as_str().unwrap_or("?"),
        );
        let dir = write(&files(case), source, &tmp.join("case"));
        let (result, summary) = read(source, &dir);
        let skipped: BTreeMap<String, usize> = summary
            .skipped
            .iter()
            .map(|(k, v)| (k.clone(), v.count))
            .collect();
        if let Some(mentions) = case["error"].as_array() {
            match result {
                Ok(records) => failures.push(format!(
                    "{source} {name}: read {} records, expected an error",
                    records.len()
                )),
                Err(e) => {
                    let message = format!("{e:#}");
                    for m in mentions.iter().filter_map(Value::as_str) {
                        if !message.contains(m) {
                            failures.push(format!(
                                "{source} {name}: the error does not name {m:?}: {message}"
                            ));
                        }
                    }
                }
            }
            continue;
        }
        let records = match result {
            Ok(records) => records,
            Err(e) => {
                failures.push(format!("{source} {name}: {e:#}"));
                continue;
            }
        };
        for r in &records {
            if let Err(e) = r.validate() {
                failures.push(format!(
                    "{source} {name}: record {} does not validate: {e}",
                    r.id
                ));
            }
        }
        if name == "untouched" {
            base.insert(
                source.to_string(),
                (observations(&records), skipped.clone()),
            );
        }
        let Some((base_observations, base_skipped)) = base.get(source) else {
            panic!("the catalogue lists the untouched {source} tables after a case");
        };
        if records.len() as u64 != case["records"].as_u64().unwrap_or(u64::MAX) {
            failures.push(format!(
                "{source} {name}: {} records, expected {}",
                records.len(),
                case["records"]
            ));
        }
        if let Some(more) = case["more_observations"].as_u64()
            && observations(&records) != base_observations + more as usize
        {
            failures.push(format!(
                "{source} {name}: {} observations, expected {base_observations} + {more}",
                observations(&records)
            ));
        }
        match case["skip"].as_str() {
            None if skipped
                .iter()
                .any(|(reason, n)| base_skipped.get(reason).is_none_or(|b| n > b)) =>
            {
                failures.push(format!(
                    "{source} {name}: skipped {skipped:?}, expected no more than {base_skipped:?}"
                ))
            }
            None => {}
            Some(reason) => {
                let at = case["at"].as_str().unwrap_or("");
                let examples = summary
                    .skipped
                    .get(reason)
                    .map(|s| s.examples.clone())
                    .unwrap_or_default();
                if !examples.iter().any(|e| e.starts_with(at)) {
                    failures.push(format!(
                        "{source} {name}: no {reason:?} at {at}; skipped {:?}",
                        summary.skipped
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Byte-level mutations (inserted separators, quotes and newlines, deleted bytes, truncation) of
/// one table of a catalogue case at a time: an error or records, never a panic.
#[test]
fn mutated_mimic_tables_never_panic() {
    let tmp = std::env::temp_dir().join(format!("bedside-mimic-fuzz-{}", std::process::id()));
    let cases = cases();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    for i in 0..3_000 {
        let case = &cases[rng.random_range(0..cases.len())];
        let source = case["source"].as_str().unwrap_or("mimic4");
        let mut files = files(case);
        let names: Vec<String> = files.keys().cloned().collect();
        let name = &names[rng.random_range(0..names.len())];
        let data = files.get_mut(name).expect("a table");
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..=data.len());
            match rng.random_range(0..3) {
                0 => {
                    const BYTES: &[u8] = b",\"\n\r-:.0e9x\xff";
                    data.insert(at, BYTES[rng.random_range(0..BYTES.len())]);
                }
                1 if at < data.len() => {
                    data.remove(at);
                }
                _ => data.truncate(at),
            }
        }
        let dir = write(&files, source, &tmp.join("case"));
        let run = std::panic::catch_unwind(|| {
            read(source, &dir)
                .0
                .map(|records| records.iter().all(|r| r.validate().is_ok()))
        });
        match run {
            Err(_) => panic!("mutation {i} of {:?} ({name}) panicked", case["name"]),
            Ok(Ok(false)) => panic!(
                "mutation {i} of {:?} ({name}) gave a record that does not validate",
                case["name"]
            ),
            Ok(_) => {}
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
