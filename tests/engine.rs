//! Native tests of the engine: bundle round trip, refusal of bad bundles, and the wgpu path
//! (Vulkan; lavapipe on a CPU-only machine) giving the CPU's numbers.

use bedside::bundle::{
    Bundle, Manifest, ModelSpec, WEIGHTS_FILE, WeightsDtype, convert_weights, sha256_hex,
};
use bedside::calibration::{HeadCalibration, LogitMap};
use bedside::knowledge::{CHANNELS, PHENOTYPES};
use bedside::model::{LabPhenotypeModelConfig, SeriesEncoderConfig};
use bedside::record::{Observation, PatientRecord};
use bedside::{Backend, Engine};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

/// A randomly initialised model as bundle files (manifest JSON, weights).
fn random_bundle(seed: u64) -> (String, Vec<u8>) {
    let device = Device::flex();
    device.seed(seed);
    let config = LabPhenotypeModelConfig::new(
        SeriesEncoderConfig::new(CHANNELS.len())
            .with_d_model(32)
            .with_d_ff(64),
        PHENOTYPES.len(),
    );
    let model = config.init(&device);
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).unwrap();
    let weights = store.get_bytes().unwrap();
    let manifest = Manifest::new(ModelSpec::LabPhenotype(config), WeightsDtype::F32, 0.5);
    let bundle = Bundle::new(manifest, weights.clone(), None, None).unwrap();
    (serde_json::to_string(bundle.manifest()).unwrap(), weights)
}

/// An engine from a bundle's manifest and weights (lab-phenotype bundles: no other file).
async fn load(manifest: &str, weights: &[u8], backend: Backend) -> bedside::Result<Engine> {
    Engine::load(
        &Bundle::from_bytes(manifest, weights.to_vec(), None, None)?,
        backend,
    )
    .await
}

/// A record with a few hours of vitals and one lab panel, deterministic.
fn record(id: &str, fever: f64) -> PatientRecord {
    let mut observations = Vec::new();
    for h in 0..40 {
        let t = h as f64 + 0.5;
        for (channel, value) in [
            ("heart_rate", 80.0 + fever * 10.0 + (h % 5) as f64),
            ("temperature", 37.0 + fever),
            ("mean_bp", 85.0 - fever * 5.0),
            ("spo2", 97.0),
        ] {
            observations.push(Observation::new(channel, t, value));
        }
        if h % 8 == 1 {
            for (channel, value) in [
                ("wbc", 8.0 + 4.0 * fever),
                ("lactate", 1.0 + fever),
                ("creatinine", 1.0),
            ] {
                observations.push(Observation::new(channel, t, value));
            }
        }
    }
    let json = serde_json::json!({ "id": id, "observations": observations });
    PatientRecord::from_json(&json.to_string()).unwrap()
}

/// The largest difference between the phenotype probabilities of two lists of diagnoses, group by
/// group; infinite where a group or a diagnosis is missing on one side, or a value is NaN.
fn max_probability_diff(a: &[bedside::Diagnosis], b: &[bedside::Diagnosis]) -> f64 {
    let flat = |d: &[bedside::Diagnosis]| -> (Vec<&str>, Vec<f32>) {
        d.iter().flat_map(probabilities).unzip()
    };
    let ((names_a, a), (names_b, b)) = (flat(a), flat(b));
    if names_a != names_b {
        return f64::INFINITY;
    }
    bedside::compare::max_abs_diff(&a, &b)
}

fn probabilities(d: &bedside::Diagnosis) -> Vec<(&'static str, f32)> {
    let mut p: Vec<_> = d
        .phenotypes
        .iter()
        .map(|p| (p.name, p.probability))
        .collect();
    p.sort_by_key(|(n, _)| *n);
    p
}

#[test]
fn a_bundle_round_trips_and_batches_agree_with_single_records() {
    let (manifest, weights) = random_bundle(1);
    let engine = pollster::block_on(load(&manifest, &weights, Backend::Cpu)).unwrap();
    let records = [record("a", 0.0), record("b", 2.0)];
    let batch = pollster::block_on(engine.diagnose_batch(&records)).unwrap();
    assert_eq!(batch.len(), 2);
    for (r, b) in records.iter().zip(&batch) {
        let single = pollster::block_on(engine.diagnose(r)).unwrap();
        for ((n1, p1), (n2, p2)) in probabilities(&single).iter().zip(probabilities(b)) {
            assert_eq!(*n1, n2);
            assert!((p1 - p2).abs() < 1e-6, "{n1}: batch {p2} vs single {p1}");
        }
        assert_eq!(b.phenotypes.len(), PHENOTYPES.len());
        assert!(
            b.phenotypes
                .windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
    }
    assert_ne!(
        probabilities(&batch[0]),
        probabilities(&batch[1]),
        "different inputs, same output"
    );
}

/// The manifest's calibration maps the logits: p' = σ(a·logit(p) + b + c_label), the order
/// kept; a record without notes takes the map `without_notes` where the bundle has one, in the
/// same batch as a record with notes that keeps `with_notes`. Older bundles' `temperature`
/// divides the logits.
#[test]
fn the_calibration_maps_the_logits() {
    let (manifest, weights) = random_bundle(3);
    let mut hot: Manifest = serde_json::from_str(&manifest).unwrap();
    let (names, labels) = (hot.labels.clone(), hot.labels.len());
    hot.temperature = Some(2.5);
    let plain = pollster::block_on(load(&manifest, &weights, Backend::Cpu)).unwrap();
    let load = |m: &Manifest| {
        let m = serde_json::to_string(m).unwrap();
        pollster::block_on(load(&m, &weights, Backend::Cpu)).unwrap()
    };
    let scaled = load(&hot);
    let with_notes = LogitMap {
        scale: 0.4,
        shift: -0.3,
        label_shifts: (0..labels).map(|i| 0.1 * i as f32 - 0.5).collect(),
    };
    let without_notes = LogitMap {
        scale: 0.25,
        shift: 0.5,
        label_shifts: (0..labels).map(|i| 0.4 - 0.07 * i as f32).collect(),
    };
    hot.calibration = Some(HeadCalibration {
        with_notes: with_notes.clone(),
        without_notes: Some(without_notes.clone()),
    });
    let grouped = load(&hot);
    let bare = record("t", 1.5);
    let mut noted = bare.clone();
    noted.notes = vec![serde_json::from_value(serde_json::json!({ "text": "Febrile." })).unwrap()];
    let check = |engine: &Engine, r: &PatientRecord, map: &LogitMap| {
        let a = probabilities(&pollster::block_on(plain.diagnose(r)).unwrap());
        let b = probabilities(&pollster::block_on(engine.diagnose(r)).unwrap());
        let batch = pollster::block_on(engine.diagnose_batch(&[bare.clone(), noted.clone()]));
        let in_batch = probabilities(&batch.unwrap()[usize::from(!r.notes.is_empty())]);
        assert_eq!(a.len(), labels);
        for (((name, p), (_, q)), (_, q_batch)) in a.iter().zip(&b).zip(&in_batch) {
            let label = names.iter().position(|n| n == name).unwrap();
            let want = map.probability((p / (1.0 - p)).ln(), label);
            assert!(
                (q - want).abs() < 1e-5,
                "{name}: {q} vs {want} ({map:?}, from {p})"
            );
            assert!(
                (q_batch - want).abs() < 1e-5,
                "{name} in a batch: {q_batch} vs {want}"
            );
        }
    };
    let temperature = LogitMap::temperature(2.5);
    check(&scaled, &bare, &temperature);
    check(&scaled, &noted, &temperature);
    check(&grouped, &bare, &without_notes);
    check(&grouped, &noted, &with_notes);
    // out of its bounds, named
    hot.calibration.as_mut().unwrap().without_notes = Some(LogitMap {
        scale: 0.0,
        ..without_notes
    });
    let message = pollster::block_on(self::load(
        &serde_json::to_string(&hot).unwrap(),
        &weights,
        Backend::Cpu,
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        message.contains("calibration.without_notes.scale"),
        "{message}"
    );
}

#[test]
fn bad_bundles_are_refused_with_the_file_named() {
    let (manifest, weights) = random_bundle(2);
    let load = |m: &str, w: &[u8]| {
        pollster::block_on(load(m, w, Backend::Cpu))
            .err()
            .map(|e| (e.code(), e.to_string()))
    };

    let (code, message) = load(&manifest, &weights[..weights.len() / 2]).unwrap();
    assert_eq!(code, "BUNDLE_INVALID");
    assert!(
        message.contains(WEIGHTS_FILE) && message.contains("truncated"),
        "{message}"
    );

    let mut flipped = weights.clone();
    flipped[weights.len() - 1] ^= 0xff;
    assert_eq!(load(&manifest, &flipped).unwrap().0, "BUNDLE_HASH_MISMATCH");
    // a digest the caller computed stands for the hash: the file's own is accepted, another is a
    // mismatch, and the size is still checked
    let digests =
        |digest: String| std::collections::BTreeMap::from([(WEIGHTS_FILE.to_string(), digest)]);
    let hashed = |w: &[u8], digest: String| {
        Bundle::from_hashed_bytes(&manifest, w.to_vec(), None, None, &digests(digest))
            .err()
            .map(|e| e.code())
    };
    assert_eq!(hashed(&weights, sha256_hex(&weights).to_uppercase()), None);
    assert_eq!(
        hashed(&weights, sha256_hex(&flipped)),
        Some("BUNDLE_HASH_MISMATCH")
    );
    assert_eq!(
        hashed(&weights[1..], sha256_hex(&weights)),
        Some("BUNDLE_INVALID")
    );

    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["format_version"] = 2.into();
    assert_eq!(
        load(&m.to_string(), &weights).unwrap().0,
        "BUNDLE_INCOMPATIBLE"
    );

    // weights of another architecture, with a manifest that hashes them correctly
    let mut other: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    other["model"]["config"]["series"]["d_model"] = 16.into();
    other["model"]["config"]["series"]["d_ff"] = 32.into();
    let (code, message) = load(&other.to_string(), &weights).unwrap();
    assert_eq!(code, "BUNDLE_INVALID", "{message}");

    let (code, message) = load("{\"format\": 1}", &weights).unwrap();
    assert_eq!(code, "BUNDLE_INVALID");
    assert!(message.contains("manifest.json"), "{message}");

    // an unknown model kind, and a clinical manifest that lists no tokenizer
    let mut unknown: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    unknown["model"]["kind"] = "gpt".into();
    let (code, message) = load(&unknown.to_string(), &weights).unwrap();
    assert_eq!(code, "BUNDLE_INVALID");
    assert!(
        message.contains("model") && message.contains("gpt"),
        "{message}"
    );

    // f16 weights under a manifest that says f32
    let f16 = convert_weights(&weights, WeightsDtype::F16).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["files"][WEIGHTS_FILE]["sha256"] = sha256_hex(&f16).into();
    m["files"][WEIGHTS_FILE]["bytes"] = f16.len().into();
    let (code, message) = load(&m.to_string(), &f16).unwrap();
    assert_eq!(code, "BUNDLE_INVALID");
    assert!(
        message.contains("F16") && message.contains("f32"),
        "{message}"
    );
}

/// A bundle directory reads as one set of files: the committed demo loads with its tokenizer and
/// recommender and answers; a directory without weights is an error naming the file.
#[test]
fn a_bundle_directory_loads_as_one_set_of_files() {
    use bedside::bundle::MEDREC_FILE;
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
    let bundle = Bundle::from_dir(&demo).unwrap();
    assert!(bundle.tokenizer().is_some() && bundle.medications().is_some());
    let engine = pollster::block_on(Engine::load(&bundle, Backend::Cpu)).unwrap();
    let mut r = record("demo", 1.0);
    r.visits = vec![bedside::record::Visit {
        diagnoses: vec!["icd9:5849".into()],
        ..Default::default()
    }];
    let recommended = pollster::block_on(engine.recommend(&r)).unwrap();
    assert!(!recommended.scores.is_empty(), "the recommender was loaded");
    let empty = std::env::temp_dir().join(format!("bedside-empty-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(demo.join("manifest.json"), empty.join("manifest.json")).unwrap();
    let e = Bundle::from_dir(&empty).unwrap_err();
    assert!(e.to_string().contains(WEIGHTS_FILE), "{e}");
    // a directory whose manifest lists a recommender needs its weights
    for name in [WEIGHTS_FILE, "tokenizer.json"] {
        std::fs::copy(demo.join(name), empty.join(name)).unwrap();
    }
    let e = Bundle::from_dir(&empty).unwrap_err();
    assert!(e.to_string().contains(MEDREC_FILE), "{e}");
    std::fs::remove_dir_all(&empty).ok();
}

/// f32 → f16 gives numpy's bytes exactly (tools/f16_reference.py): rounding to nearest even,
/// overflow to infinity, subnormals, signed zeros; and a tensor's shape survives.
#[test]
fn f16_conversion_matches_numpy_byte_for_byte() {
    use safetensors::SafeTensors;
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/f16/reference.safetensors"
    ))
    .unwrap();
    let reference = SafeTensors::deserialize(&fixture).unwrap();
    for name in ["f32", "matrix_f32"] {
        let input = reference.tensor(name).unwrap();
        let expected = reference.tensor(&name.replace("f32", "f16")).unwrap();
        let single = safetensors::serialize([(name, input.clone())], None).unwrap();
        let converted = convert_weights(&single, WeightsDtype::F16).unwrap();
        let converted = SafeTensors::deserialize(&converted).unwrap();
        let ours = converted.tensor(name).unwrap();
        assert_eq!(ours.dtype(), safetensors::Dtype::F16);
        assert_eq!(ours.shape(), expected.shape(), "{name}");
        let differing: Vec<usize> = (0..ours.data().len() / 2)
            .filter(|i| ours.data()[2 * i..2 * i + 2] != expected.data()[2 * i..2 * i + 2])
            .collect();
        assert!(
            differing.is_empty(),
            "{name}: values {differing:?} differ from numpy's"
        );
    }
}

#[test]
fn an_f16_bundle_round_trips_within_tolerance() {
    let (manifest, weights) = random_bundle(5);
    let f16 = convert_weights(&weights, WeightsDtype::F16).unwrap();
    assert!(f16.len() * 10 < weights.len() * 6);
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["dtype"] = "f16".into();
    m["files"][WEIGHTS_FILE]["sha256"] = sha256_hex(&f16).into();
    m["files"][WEIGHTS_FILE]["bytes"] = f16.len().into();
    let half = pollster::block_on(load(&m.to_string(), &f16, Backend::Cpu)).unwrap();
    let full = pollster::block_on(load(&manifest, &weights, Backend::Cpu)).unwrap();
    let records = [record("a", 0.5), record("b", 2.5)];
    let worst = max_probability_diff(
        &pollster::block_on(half.diagnose_batch(&records)).unwrap(),
        &pollster::block_on(full.diagnose_batch(&records)).unwrap(),
    );
    eprintln!("f16 vs f32: max |Δ probability| = {worst:e}");
    // f16 keeps about 3 significant digits of each weight: 5.2e-5 measured, 10× that allowed
    assert!(worst < 5e-4, "{worst}");
    // and back: f16 → f32 → f16 is lossless
    assert_eq!(
        convert_weights(
            &convert_weights(&f16, WeightsDtype::F32).unwrap(),
            WeightsDtype::F16
        )
        .unwrap()
        .len(),
        f16.len()
    );
}

/// wgpu natively (Vulkan; lavapipe here) must give the CPU's numbers. Without a Vulkan driver the
/// test says so and passes, unless the layer is required (`bedside::test_layers`).
#[test]
fn wgpu_gives_the_cpu_numbers() {
    let (manifest, weights) = random_bundle(4);
    let loaded = pollster::block_on(load(&manifest, &weights, Backend::Gpu));
    let Some(gpu) = bedside::test_layers::on_wgpu(loaded) else {
        return;
    };
    let cpu = pollster::block_on(load(&manifest, &weights, Backend::Cpu)).unwrap();
    let records = [record("a", 0.0), record("b", 1.5), record("c", 3.0)];
    let on_gpu = pollster::block_on(gpu.diagnose_batch(&records)).unwrap();
    let on_cpu = pollster::block_on(cpu.diagnose_batch(&records)).unwrap();
    assert!(on_gpu.iter().all(|g| g.backend == "wgpu"));
    let worst = max_probability_diff(&on_gpu, &on_cpu);
    eprintln!("max |wgpu - cpu| probability difference: {worst:e}");
    // GPU reductions sum in another order: 1.8e-7 measured on lavapipe, about 10× that allowed
    assert!(worst < 2e-6, "wgpu and CPU differ by {worst}");
}
