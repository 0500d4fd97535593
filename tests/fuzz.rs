//! The short fuzz pass of `make test` (stable Rust, deterministic): the seeds of the cargo-fuzz
//! targets (fuzz/) — the catalogue's inputs, FHIR fixtures, the demo manifest, a tiny bundle's
//! weights (tests/fixtures/tiny-bundle), note text — mutated byte-wise many thousand times and fed
//! to the same entry points, each call inside `catch_unwind`. Errors are expected; a panic fails the test and prints the
//! input (add it to tests/catalogue/). `make fuzz` runs libFuzzer on the same targets for longer.

use bedside::bundle::{Bundle, FileEntry, Manifest, WEIGHTS_FILE, sha256_hex};
use bedside::record::SeriesGrid;
use bedside::{Backend, Engine, PatientRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

// The least share of each pass's inputs that must be accepted: about half the measured share (the
// mutations are seeded, so these move only when the code or the seeds change). Measured: records
// 1,791 of 200,000; manifests 1,714 of 20,000; weights 363 of 3,000; tokenizer every input;
// model construction 8 of 300 and 13 of 600 edited manifests.
const MIN_RECORD: f64 = 0.004;
const MIN_MANIFEST: f64 = 0.04;
const MIN_WEIGHTS: f64 = 0.06;
const MIN_TOKENIZER: f64 = 0.5;
const MIN_MODEL_CONSTRUCTION: f64 = 0.01;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One to four byte-level mutations, splicing in pieces of other seeds (as libFuzzer does).
fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\0\xff\"{}[],:-.e09\\ntu";
    let mut data = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..6) {
            0 if len > 0 => data[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => data[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 if len > 0 => {
                let end = (at + rng.random_range(1..=16)).min(len);
                data.drain(at..end);
            }
            3 if len > 0 => {
                let end = (at + rng.random_range(1..=16)).min(len);
                let piece = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
            4 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let end = (from + rng.random_range(1..=64)).min(other.len());
                    data.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => data.truncate(at),
        }
    }
    data
}

/// Runs `target` (true where it accepted the input) on `runs` inputs, the seeds first; panics
/// with the first input that panicked, and when fewer than `min_accepted` of the inputs were
/// accepted: a pass that refuses (nearly) everything never reaches the code behind the checks.
fn fuzz(
    name: &str,
    seeds: Vec<Vec<u8>>,
    runs: usize,
    min_accepted: f64,
    mut target: impl FnMut(&[u8]) -> bool,
) {
    let mut rng = StdRng::seed_from_u64(0x6265_6473);
    let mut accepted = 0;
    for i in 0..runs {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            mutate(&mut rng, &seeds)
        };
        match catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(ok) => accepted += ok as usize,
            Err(_) => panic!(
                "fuzz {name}: input {i} panicked: {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    eprintln!("fuzz {name}: {runs} inputs ({accepted} accepted), no panic");
    let share = accepted as f64 / runs.max(1) as f64;
    assert!(
        share >= min_accepted,
        "fuzz {name}: only {share:.4} of the inputs accepted (at least {min_accepted} expected)"
    );
}

fn catalogue_inputs(file: &str, field: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(root().join("tests/catalogue").join(file)).unwrap();
    text.lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?[field]
                .as_str()
                .map(|s| s.as_bytes().to_vec())
        })
        .collect()
}

#[test]
fn records_and_fhir() {
    let mut seeds = catalogue_inputs("records.jsonl", "input");
    for fixture in ["mimic3-1001-bundle.json", "sepsis-bundle.json"] {
        seeds.push(std::fs::read(root().join("tests/fixtures/fhir").join(fixture)).unwrap());
    }
    fuzz(
        "record",
        seeds,
        200_000,
        MIN_RECORD,
        |data| match PatientRecord::from_json_or_fhir(&String::from_utf8_lossy(data)) {
            Ok(record) => SeriesGrid::from_record(&record, 48).hours == 48,
            Err(_) => false,
        },
    );
}

#[test]
fn manifests() {
    let manifest = std::fs::read(root().join("models/demo/manifest.json")).unwrap();
    // the long lists (self-test answers, training history) are cut so mutations hit the structure
    let mut json: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    json.as_object_mut().unwrap().remove("training");
    let seeds = vec![
        serde_json::to_vec(&json).unwrap(),
        serde_json::to_vec_pretty(&json).unwrap(),
    ];
    fuzz("manifest", seeds, 20_000, MIN_MANIFEST, |data| {
        Manifest::from_json(&String::from_utf8_lossy(data)).is_ok()
    });
}

#[test]
fn weights() {
    // the seed the cargo-fuzz target starts from: a tiny bundle's weights under its manifest
    let bundle = root().join("tests/fixtures/tiny-bundle");
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    let seeds = vec![std::fs::read(bundle.join(WEIGHTS_FILE)).unwrap()];
    // the manifest lists the mutated bytes, so the safetensors reader and the checks behind the
    // hash see every input
    fuzz("weights", seeds, 3_000, MIN_WEIGHTS, |data| {
        let mut manifest = manifest.clone();
        manifest.files.insert(
            WEIGHTS_FILE.to_string(),
            FileEntry {
                sha256: sha256_hex(data),
                bytes: data.len() as u64,
            },
        );
        let json = serde_json::to_string(&manifest).unwrap();
        Bundle::from_bytes(&json, data.to_vec(), None, None)
            .and_then(|bundle| pollster::block_on(Engine::load(&bundle, Backend::Cpu)))
            .is_ok()
    });
}

#[test]
fn tokenizer_input() {
    let tokenizer = bedside::tokenizer::TextTokenizer::from_bytes(
        &std::fs::read(root().join("models/demo/tokenizer.json")).unwrap(),
    )
    .unwrap();
    let seeds = vec![
        "Fever, hypotension and rising lactate. Started on vancomycin."
            .as_bytes()
            .to_vec(),
        "発熱と低血圧。乳酸値上昇。🩺 ".as_bytes().to_vec(),
        vec![b' '; 300],
    ];
    fuzz("tokenizer", seeds, 20_000, MIN_TOKENIZER, |data| {
        tokenizer.encode(&String::from_utf8_lossy(data)).is_ok()
    });
}

/// Every numeric leaf of `value` under `path` (JSON pointer segments).
fn numeric_paths(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Number(_) => out.push(path.clone()),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                numeric_paths(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Model construction from edited numbers: one to three numbers of a bundle's model config (and
/// medication recommender) set to values that break modules (0, negative, 1.0 as a dropout rate,
/// huge, out of vocabulary), the manifest re-listed, and the bundle loaded — through the config
/// checks into module construction and weight loading. Done for every model kind: the demo
/// clinical bundle with its recommender, and the tiny lab-phenotype bundle.
#[test]
fn manifest_numbers_through_model_construction() {
    const VALUES: &[f64] = &[
        0.0,
        1.0,
        -1.0,
        0.5,
        0.999,
        1.5,
        2.0,
        3.0,
        7.0,
        -1e-9,
        1e-300,
        1e300,
        4096.0,
        99999.0,
        2147483648.0,
        1099511627776.0,
    ];
    for (dir, runs) in [("models/demo", 300), ("tests/fixtures/tiny-bundle", 600)] {
        let bundle = root().join(dir);
        let read = |name: &str| std::fs::read(bundle.join(name)).ok();
        let manifest: serde_json::Value =
            serde_json::from_slice(&read("manifest.json").unwrap()).unwrap();
        let (weights, tokenizer, medrec) = (
            read(WEIGHTS_FILE).unwrap(),
            read("tokenizer.json"),
            read("medrec.safetensors"),
        );
        let mut paths = Vec::new();
        numeric_paths(
            &manifest["model"]["config"],
            &mut vec!["model".into(), "config".into()],
            &mut paths,
        );
        numeric_paths(
            &manifest["medications"]["config"],
            &mut vec!["medications".into(), "config".into()],
            &mut paths,
        );
        let mut rng = StdRng::seed_from_u64(17);
        let (mut accepted, mut panicked) = (0, Vec::new());
        for _ in 0..runs {
            let mut edited = manifest.clone();
            let mut edits = Vec::new();
            for _ in 0..rng.random_range(1..=3) {
                let path = &paths[rng.random_range(0..paths.len())];
                let value = VALUES[rng.random_range(0..VALUES.len())];
                let slot = path.iter().fold(&mut edited, |v, k| &mut v[k.as_str()]);
                // whole numbers as JSON integers, so that integer fields read them
                *slot = if value.fract() == 0.0 && value.abs() < 1e15 {
                    serde_json::json!(value as i64)
                } else {
                    serde_json::json!(value)
                };
                edits.push(format!("{} = {value}", path.join(".")));
            }
            let text = serde_json::to_string(&edited).unwrap();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                pollster::block_on(async {
                    let bundle = Bundle::from_bytes(
                        &text,
                        weights.clone(),
                        tokenizer.clone(),
                        medrec.clone(),
                    )?;
                    Engine::load(&bundle, Backend::Cpu)
                        .await?
                        .diagnose(&bedside::self_test::self_test_record())
                        .await?;
                    Ok::<_, bedside::BedsideError>(())
                })
            }));
            match outcome {
                Ok(result) => accepted += result.is_ok() as usize,
                Err(_) => panicked.push(edits),
            }
        }
        eprintln!(
            "fuzz model construction {dir}: {runs} edited manifests ({accepted} loaded), {} panics",
            panicked.len()
        );
        assert!(
            panicked.is_empty(),
            "{dir}: edits that panicked: {panicked:?}"
        );
        assert!(
            accepted as f64 / runs as f64 >= MIN_MODEL_CONSTRUCTION,
            "{dir}: only {accepted} of {runs} edited manifests loaded"
        );
    }
}
