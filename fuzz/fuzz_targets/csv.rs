//! MIMIC-IV tables through the reader: the first byte picks the table that the rest of the input
//! replaces (the others are the catalogue's untouched tables, written once); errors and skipped
//! rows are fine, panics and records that do not validate are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const TABLES: [&str; 5] = ["patients.csv", "admissions.csv", "labevents.csv", "diagnoses_icd.csv", "procedures_icd.csv"];
static DIR: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&pick, table)) = data.split_first() else { return };
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bedside-fuzz-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    });
    for (i, name) in TABLES.iter().enumerate() {
        let text = if i == pick as usize % TABLES.len() { table } else { default_table(name) };
        std::fs::write(dir.join(name), text).expect("a table");
    }
    let mut summary = bedside_cohort::Summary::new("mimic4");
    if let Ok(records) = bedside_cohort::mimic4::read(dir, None, 48, &mut summary) {
        for r in records {
            assert!(r.validate().is_ok(), "record {} does not validate", r.id);
        }
    }
});

/// The untouched MIMIC-IV tables of the catalogue (tests/catalogue/mimic.jsonl, first line).
fn default_table(name: &str) -> &'static [u8] {
    static UNTOUCHED: OnceLock<serde_json::Value> = OnceLock::new();
    let case = UNTOUCHED.get_or_init(|| {
        let first = include_str!("../../tests/catalogue/mimic.jsonl").lines().next().unwrap_or("{}");
        serde_json::from_str(first).expect("the catalogue's first case")
    });
    case["files"][name]["text"].as_str().unwrap_or("").as_bytes()
}
