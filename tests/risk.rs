//! Native tests of `risk`, the mortality bundle's answer: the bundle kind loads and answers only
//! `risk`, its Platt scaling is applied, the findings' effects are faithful (taking the top
//! finding's channel out moves the risk by exactly its effect, in its direction), the
//! out-of-range rule holds, wgpu gives the CPU's numbers, and the committed bundle reads a shock
//! record as a physician would (the findings that raise the risk are the abnormal ones).

use bedside::bundle::{Bundle, Manifest, ModelSpec, WeightsDtype};
use bedside::calibration::{HeadCalibration, LogitMap};
use bedside::knowledge::CHANNELS;
use bedside::model::mortality::MORTALITY_LABEL;
use bedside::model::{LabPhenotypeModelConfig, MortalityModelConfig, SeriesEncoderConfig};
use bedside::record::{Observation, PatientRecord};
use bedside::risk::without_channel;
use bedside::{Backend, BedsideError, Engine};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

/// A randomly initialised mortality model as bundle files (manifest, weights), its linear part
/// given weights so that every input moves the risk.
fn random_bundle(seed: u64) -> (Manifest, Vec<u8>) {
    let device = Device::flex();
    device.seed(seed);
    let config = MortalityModelConfig::new(
        LabPhenotypeModelConfig::new(
            SeriesEncoderConfig::new(CHANNELS.len())
                .with_d_model(16)
                .with_d_ff(32),
            1,
        ),
        true,
    );
    let mut model = config.init(&device);
    let inputs = config.linear_inputs();
    model.linear.weight = model.linear.weight.map(|w| {
        let values: Vec<f32> = (0..inputs)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
            .collect();
        Tensor::<1>::from_floats(values.as_slice(), &w.device()).reshape([inputs, 1])
    });
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).unwrap();
    let weights = store.get_bytes().unwrap();
    let manifest = Manifest::new(ModelSpec::Mortality(config), WeightsDtype::F32, 0.5);
    let bundle = Bundle::new(manifest, weights.clone(), None, None).unwrap();
    (bundle.manifest().clone(), weights)
}

fn load(manifest: &Manifest, weights: &[u8], backend: Backend) -> bedside::Result<Engine> {
    let json = serde_json::to_string(manifest).unwrap();
    let bundle = Bundle::from_bytes(&json, weights.to_vec(), None, None)?;
    pollster::block_on(Engine::load(&bundle, backend))
}

/// An adult ICU stay: hourly vitals for 40 hours and labs every 8, with `shock` pushing lactate
/// up and blood pressure down (0: normal).
fn stay(id: &str, age: f64, shock: f64) -> PatientRecord {
    let mut observations = Vec::new();
    for h in 0..40 {
        let t = h as f64 + 0.5;
        let mut add =
            |channel: &str, value: f64| observations.push(Observation::new(channel, t, value));
        add("heart_rate", 80.0 + 25.0 * shock + (h % 5) as f64);
        add("mean_bp", 85.0 - 25.0 * shock);
        add("resp_rate", 16.0 + 8.0 * shock);
        add("temperature", 37.0);
        add("spo2", 97.0 - 4.0 * shock);
        if h % 8 == 1 {
            add("lactate", 1.0 + 4.0 * shock);
            add("creatinine", 1.0 + shock);
            add("wbc", 8.0 + 6.0 * shock);
            add("platelets", 250.0 - 120.0 * shock);
        }
    }
    let json = serde_json::json!({
        "id": id,
        "demographics": { "age": age, "sex": "male", "care_unit": "medical ICU" },
        "observations": observations,
    });
    PatientRecord::from_json(&json.to_string()).unwrap()
}

fn risk(engine: &Engine, record: &PatientRecord) -> bedside::risk::Risk {
    pollster::block_on(engine.risk(record)).unwrap()
}

#[test]
fn a_mortality_bundle_answers_risk_and_only_risk() {
    let (manifest, weights) = random_bundle(1);
    assert_eq!(manifest.labels, [MORTALITY_LABEL]);
    let engine = load(&manifest, &weights, Backend::Cpu).unwrap();
    let answer = risk(&engine, &stay("a", 70.0, 1.0));
    assert_eq!(answer.outcome, MORTALITY_LABEL);
    assert!((0.0..=1.0).contains(&answer.probability));
    assert!(answer.out_of_range.is_none());
    assert!(!answer.findings.is_empty() && !answer.series.is_empty());
    // what it reads unlike its training stays is said: hours from the hospital admission here,
    // not an unknown care unit (a medical ICU), and not the notes it never reads
    let kinds =
        |r: &bedside::risk::Risk| -> Vec<&str> { r.notices.iter().map(|n| n.kind).collect() };
    assert!(
        kinds(&answer).contains(&"window_start"),
        "{:?}",
        answer.notices
    );
    assert!(
        !kinds(&answer)
            .iter()
            .any(|k| ["care_unit", "no_notes"].contains(k))
    );
    let mut icu = stay("a", 70.0, 1.0);
    icu.window_start = Some(bedside::record::WindowStart::IcuAdmission);
    icu.demographics.care_unit = Some("Medical Intensive Care Unit (MICU)".into());
    let icu = risk(&engine, &icu);
    assert_eq!(kinds(&icu), ["care_unit"], "{:?}", icu.notices);
    // ordered by the size of their effect
    let sizes: Vec<f32> = answer.findings.iter().map(|f| f.effect.abs()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    // diagnose is not this bundle's answer, nor risk another kind's
    let wrong = pollster::block_on(engine.diagnose(&stay("a", 70.0, 1.0)));
    assert!(
        matches!(&wrong, Err(BedsideError::Incompatible { message, .. }) if message.contains("risk")),
        "{wrong:?}"
    );
    let self_test = pollster::block_on(engine.self_test_answer()).unwrap();
    assert_eq!(self_test.len(), 1);
    // the manifest is bounded: labels other than the one outcome are refused, named
    let mut bad = manifest.clone();
    bad.labels = vec!["Sepsis".into()];
    let message = load(&bad, &weights, Backend::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("labels"), "{message}");
}

/// The effect of a finding is the risk less the risk without its channel: asking for the risk
/// of the record without the top finding's channel gives exactly that, and moves it the stated
/// way.
#[test]
fn the_top_finding_moves_the_risk_as_stated() {
    let (manifest, weights) = random_bundle(2);
    let engine = load(&manifest, &weights, Backend::Cpu).unwrap();
    let record = stay("b", 70.0, 1.0);
    let answer = risk(&engine, &record);
    let top = &answer.findings[0];
    assert!(top.effect.abs() > 1e-4, "{:?}", answer.findings);
    let channel = CHANNELS
        .iter()
        .position(|c| Some(c.name) == top.evidence.channel)
        .unwrap();
    let hours = manifest.model.hours();
    let without = risk(&engine, &without_channel(&record, channel, hours));
    assert!(
        (answer.probability - without.probability - top.effect).abs() < 1e-6,
        "risk {} without {:?} {} vs effect {}",
        answer.probability,
        top.evidence.channel,
        without.probability,
        top.effect
    );
    assert_eq!(
        without.probability < answer.probability,
        top.effect > 0.0,
        "the risk moved against the stated direction"
    );
    // the finding names its observation in the record
    let at = top.evidence.observation.unwrap();
    assert_eq!(
        Some(record.observations[at].channel.as_str()),
        top.evidence.channel
    );
}

#[test]
fn platt_scaling_is_applied() {
    let (plain, weights) = random_bundle(3);
    let map = LogitMap {
        scale: 0.5,
        shift: -1.0,
        label_shifts: Vec::new(),
    };
    let mut scaled = plain.clone();
    scaled.calibration = Some(HeadCalibration {
        with_notes: map.clone(),
        without_notes: None,
    });
    let record = stay("c", 60.0, 0.5);
    let p = risk(&load(&plain, &weights, Backend::Cpu).unwrap(), &record).probability;
    let q = risk(&load(&scaled, &weights, Backend::Cpu).unwrap(), &record).probability;
    let want = map.probability((p / (1.0 - p)).ln(), 0);
    assert!((q - want).abs() < 1e-5, "{q} vs {want} (from {p})");
}

#[test]
fn a_child_gets_the_risk_with_the_reasons_and_no_findings() {
    let (manifest, weights) = random_bundle(4);
    let engine = load(&manifest, &weights, Backend::Cpu).unwrap();
    let answer = risk(&engine, &stay("d", 5.0, 1.0));
    let out = answer.out_of_range.expect("a child is out of range");
    assert!(!out.reasons.is_empty());
    assert!(answer.findings.is_empty());
    assert!(answer.probability.is_finite());
}

#[test]
fn wgpu_gives_the_cpu_risk() {
    let (manifest, weights) = random_bundle(5);
    let Some(gpu) = bedside::test_layers::on_wgpu(load(&manifest, &weights, Backend::Gpu)) else {
        return;
    };
    let cpu = load(&manifest, &weights, Backend::Cpu).unwrap();
    let record = stay("e", 70.0, 1.0);
    let (g, c) = (risk(&gpu, &record), risk(&cpu, &record));
    assert_eq!(g.backend, "wgpu");
    let effects = |r: &bedside::risk::Risk| -> Vec<f32> {
        std::iter::once(r.probability)
            .chain(r.findings.iter().map(|f| f.effect))
            .collect()
    };
    let worst = bedside::compare::max_abs_diff(&effects(&g), &effects(&c));
    // the tolerance of the engine's other wgpu test (tests/engine.rs)
    assert!(worst < 2e-6, "wgpu and CPU differ by {worst}");
}

/// The committed bundle (models/mortality), trained on PhysioNet 2012: a stay in shock carries a
/// far higher risk than the same patient stable, and its findings that raise the risk most are
/// the shock's (lactate, blood pressure, heart rate, ...), each raising it.
#[test]
fn the_committed_bundle_reads_shock_as_a_higher_risk() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/models/mortality");
    let bundle = Bundle::from_dir(std::path::Path::new(dir)).unwrap();
    let engine = pollster::block_on(Engine::load(&bundle, Backend::Cpu)).unwrap();
    assert!(
        pollster::block_on(engine.self_test(1e-5))
            .unwrap()
            .is_some()
    );
    let stable = risk(&engine, &stay("stable", 70.0, 0.0));
    let shock = risk(&engine, &stay("shock", 70.0, 1.0));
    assert!(
        shock.probability > 2.0 * stable.probability,
        "shock {} vs stable {}",
        shock.probability,
        stable.probability
    );
    let top = &shock.findings[0];
    assert!(top.effect > 0.0, "{:?}", shock.findings);
    let card = engine.manifest().model_card.as_ref().unwrap();
    assert_eq!(card.evaluations[0].admissions, 4000);
}
