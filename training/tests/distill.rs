//! End to end through the `bedside-train` binary on a tiny configuration: teach → distill (three
//! stages) and medrec (LEADER teacher → student, online and offline) → export (f32 and f16) → the
//! library loads the bundle, diagnoses, explains and recommends; and a run killed with SIGKILL
//! several times and resumed ends with the numbers of an uninterrupted run.

mod common;

use common::{bin, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bedside::generate::GenerateOptions;
use bedside::knowledge::PHENOTYPES;
use bedside::{Backend, Engine};

/// f16 against f32 weights, the largest difference of a phenotype or drug probability: 1.7e-4
/// measured on this test's bundle, about 10× that allowed.
const F16_TOLERANCE: f64 = 2e-3;

const TINY: &str = r#"
synthetic = 40
vocab_size = 700
max_prompt_tokens = 96
max_target_tokens = 64
batch_size = 8
epochs = [2, 2, 2]
warmup_steps = 4
learning_rate = 3e-3
[model]
d_model = 32
d_kv = 16
d_ff = 64
encoder_layers = 1
decoder_layers = 1
heads = 2
series_d_model = 16
series_layers = 1
prototypes = 4
knowledge_heads = 2
"#;

const TINY_MEDREC: &str = r#"
synthetic = 60
epochs = 3
batch_size = 8
[student]
d_model = 16
heads = 2
visit_layers = 1
[teacher]
d_model = 32
layers = 1
heads = 2
d_ff = 64
vocab_size = 400
max_prompt_tokens = 96
epochs = 1
"#;

fn distill(dir: &Path, resume: bool) -> std::process::Child {
    distill_with(dir, TINY, resume)
}

fn distill_with(dir: &Path, config: &str, resume: bool) -> std::process::Child {
    std::fs::write(dir.join("run.toml.in"), config).unwrap();
    let mut command = bin();
    command
        .args(["distill", "--config"])
        .arg(dir.join("run.toml.in"))
        .arg("--out")
        .arg(dir.join("run"));
    if resume {
        command.arg("--resume");
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn history(dir: &Path) -> String {
    let state = std::fs::read_to_string(dir.join("run/checkpoint/state.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&state).unwrap();
    value["history"].to_string()
}

/// `n` synthetic admissions of seed `seed`, written by `bedside-train cohort` to `out` (one JSON
/// array when it ends in `.json`, else JSONL).
fn synthetic_cohort(out: &Path, n: usize, seed: u64) {
    let (n, seed) = (n.to_string(), seed.to_string());
    let status = bin()
        .args([
            "cohort",
            "--source",
            "synthetic",
            "--n",
            &n,
            "--seed",
            &seed,
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap()
        .status;
    assert!(status.success(), "bedside-train cohort");
}

fn load(bundle: &Path) -> Engine {
    let bundle = bedside::bundle::Bundle::from_dir(bundle).unwrap();
    pollster::block_on(Engine::load(&bundle, Backend::Cpu)).unwrap()
}

fn medrec(dir: &Path, name: &str, config: &str) -> serde_json::Value {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let status = bin()
        .args(["medrec", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(status.success(), "medrec {name}");
    assert!(
        std::fs::read_to_string(dir.join(name).join("report.md"))
            .unwrap()
            .contains("| student |"),
        "medrec {name}: the student's time and memory"
    );
    assert!(
        std::fs::read(dir.join(name).join("training.png"))
            .unwrap()
            .starts_with(b"\x89PNG"),
        "medrec {name}: the training curves"
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join(name).join("report.json")).unwrap())
        .unwrap()
}

/// A "real" cohort beside the synthetic one: 24 admissions of 12 patients without notes (labs
/// alone, as the MIMIC-IV demo's), and the ids of its training and validation patients
/// (`bedside-train split`, the split `distill` cuts it by).
fn real_cohort(dir: &Path) -> usize {
    let path = dir.join("real.jsonl");
    synthetic_cohort(&path, 24, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut r: serde_json::Value = serde_json::from_str(line).unwrap();
            r["id"] = format!("real-{i}").into();
            r["patient"] = format!("p{}", i / 2).into();
            r["notes"] = serde_json::json!([]);
            r.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = bin()
        .args(["split", "--cohort"])
        .arg(&path)
        .arg("--out")
        .arg(dir.join("split.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("split.json")).unwrap()).unwrap();
    let count = |side: &str| split[side].as_array().unwrap().len();
    assert_eq!(count("train") + count("validation") + count("test"), 24);
    assert!(count("test") > 0 && count("validation") > 0, "{split}");
    count("train") + count("validation")
}

#[test]
fn distill_export_and_explain() {
    let dir = scratch("distill");
    let real = real_cohort(&dir);
    let config = format!("cohorts = [\"real.jsonl\"]\nnote_dropout = 0.5\n{TINY}");
    assert!(distill_with(&dir, &config, false).wait().unwrap().success());
    assert!(
        std::fs::read(dir.join("run/training.png"))
            .unwrap()
            .starts_with(b"\x89PNG"),
        "the training curves"
    );
    let usage: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/usage.json")).unwrap())
            .unwrap();
    let steps: Vec<&str> = usage
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["stage 0 (wide head)", "stage 1", "stage 2", "stage 3"],
        "time and memory of each stage"
    );
    // stage 0 fitted the wide half: its validation loss is below the zero start's ln 2 (weights left
    // at zero fail it)
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run/checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    let wide_loss = state["wide_fit"]["validation_loss"].as_f64().unwrap();
    assert!(
        wide_loss < 0.9 * std::f64::consts::LN_2,
        "{}",
        state["wide_fit"]
    );
    // C chosen on the validation patients among the 9 tried, then refitted on every admission
    // but the real cohort's test patients
    assert_eq!(state["wide_fit"]["tried"].as_array().unwrap().len(), 9);
    assert_eq!(
        state["wide_fit"]["rows"],
        40 + real,
        "{}",
        state["wide_fit"]
    );
    // the head's calibration, fitted on the validation split with notes and without (the real
    // validation patients); export must carry both maps, below
    let calibration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/calibration.json")).unwrap())
            .unwrap();
    let with_notes = calibration["map"].clone();
    let without_notes = calibration["without_notes"]["map"].clone();
    assert!(with_notes["scale"].as_f64().unwrap() > 0.0, "{with_notes}");
    assert!(
        without_notes["scale"].as_f64().unwrap() > 0.0,
        "{without_notes}"
    );
    assert!(calibration["without_notes"]["pairs"].as_u64().unwrap() > 0);
    // LEADER: the online teacher writes its features; a student distilled offline from that file
    // is the same student, number for number
    let online = medrec(&dir, "medrec", TINY_MEDREC);
    let features = dir.join("medrec/teacher-features.safetensors");
    let offline_config = TINY_MEDREC.replace(
        "[teacher]",
        &format!(
            "[teacher]\nmode = \"offline\"\nfeatures = {:?}",
            features.display().to_string()
        ),
    );
    let offline = medrec(&dir, "medrec-offline", &offline_config);
    assert_eq!(
        online["student"], offline["student"],
        "offline distillation from the online teacher's features"
    );
    assert!(
        online["teacher"]["overall"]["jaccard"].as_f64().is_some(),
        "the teacher is measured too: {}",
        online["teacher"]
    );
    let n = online["student"]["overall"]["n"].as_u64().unwrap();
    assert_eq!(n, online["admissions"][2].as_u64().unwrap());
    // the most-frequent-drugs baseline, on the same admissions
    let baseline = &online["most_frequent"]["overall"];
    eprintln!(
        "most-frequent baseline: {baseline}; student: {}",
        online["student"]["overall"]
    );
    assert_eq!(baseline["n"].as_u64(), Some(n));
    let jaccard = baseline["jaccard"].as_f64().unwrap_or(f64::NAN);
    assert!(
        jaccard > 0.05 && jaccard < 1.0,
        "baseline Jaccard {jaccard}"
    );
    for dtype in ["f32", "f16"] {
        let status = bin()
            .args(["export", "--run"])
            .arg(dir.join("run"))
            .arg("--medrec")
            .arg(dir.join("medrec"))
            .arg("--out")
            .arg(dir.join(dtype))
            .args(["--dtype", dtype])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // a failed export (here: the tokenizer cannot be written, as on a full disk) leaves the
    // previous bundle as it was, and an output under a file is a clear error
    let export_again = |out: &Path| {
        bin()
            .args(["export", "--run"])
            .arg(dir.join("run"))
            .arg("--medrec")
            .arg(dir.join("medrec"))
            .arg("--out")
            .arg(out)
            .args(["--dtype", "f16"])
            .output()
            .unwrap()
    };
    let before: Vec<Vec<u8>> = ["manifest.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| std::fs::read(dir.join("f16").join(f)).unwrap())
        .collect();
    std::fs::create_dir(dir.join("f16/tokenizer.json.tmp")).unwrap();
    let failed = export_again(&dir.join("f16"));
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("tokenizer.json") && stderr.contains("unchanged"),
        "{stderr}"
    );
    let after: Vec<Vec<u8>> = ["manifest.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| std::fs::read(dir.join("f16").join(f)).unwrap())
        .collect();
    assert!(before == after, "the previous export changed");
    assert!(
        !dir.join("f16/model.safetensors.tmp").exists(),
        "a temporary file was left behind"
    );
    std::fs::remove_dir(dir.join("f16/tokenizer.json.tmp")).unwrap();
    std::fs::write(dir.join("blocker"), "a file, not a directory").unwrap();
    let under_file = export_again(&dir.join("blocker/bundle"));
    assert_eq!(under_file.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&under_file.stderr).contains("blocker/bundle"),
        "{}",
        String::from_utf8_lossy(&under_file.stderr)
    );
    full_disk_keeps_the_previous_export(&dir, &export_again);
    let f32_engine = load(&dir.join("f32"));
    let f16_engine = load(&dir.join("f16"));
    // the known answer recorded at export holds on a fresh engine, and a wrong one is caught
    assert!(
        pollster::block_on(f32_engine.self_test(1e-6))
            .unwrap()
            .is_some_and(|d| d <= 1e-6)
    );
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("f32/manifest.json")).unwrap())
            .unwrap();
    // export carries the run's two maps into the manifest
    assert_eq!(manifest["calibration"]["with_notes"], with_notes);
    assert_eq!(manifest["calibration"]["without_notes"], without_notes);
    manifest["self_test"][0] = serde_json::json!(manifest["self_test"][0].as_f64().unwrap() + 0.1);
    let weights = std::fs::read(dir.join("f32/model.safetensors")).unwrap();
    let tokenizer = std::fs::read(dir.join("f32/tokenizer.json")).unwrap();
    let medrec = std::fs::read(dir.join("f32/medrec.safetensors")).ok();
    let tampered = bedside::bundle::Bundle::from_bytes(
        &manifest.to_string(),
        weights,
        Some(tokenizer),
        medrec,
    )
    .unwrap();
    let tampered = pollster::block_on(Engine::load(&tampered, Backend::Cpu)).unwrap();
    let error = pollster::block_on(tampered.self_test(1e-3)).unwrap_err();
    assert_eq!(error.code(), "BACKEND_FAILED");
    assert!(error.to_string().contains("self-test"), "{error}");
    let f32_size = std::fs::metadata(dir.join("f32/model.safetensors"))
        .unwrap()
        .len();
    let f16_size = std::fs::metadata(dir.join("f16/model.safetensors"))
        .unwrap()
        .len();
    assert!(
        f16_size * 10 < f32_size * 6,
        "f16 {f16_size} vs f32 {f32_size} bytes"
    );

    let out = dir.join("records.json");
    synthetic_cohort(&out, 3, 99);
    let records: Vec<bedside::PatientRecord> =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    // every probability of both bundles, in the same order (`bedside::compare` counts NaN as
    // infinitely far)
    let (mut full, mut half) = (Vec::new(), Vec::new());
    for record in &records {
        let a = pollster::block_on(f32_engine.diagnose(record)).unwrap();
        let b = pollster::block_on(f16_engine.diagnose(record)).unwrap();
        for pa in &a.phenotypes {
            let pb = b.phenotypes.iter().find(|p| p.name == pa.name).unwrap();
            full.push(pa.probability);
            half.push(pb.probability);
        }
        let (ra, rb) = (
            pollster::block_on(f32_engine.recommend(record)).unwrap(),
            pollster::block_on(f16_engine.recommend(record)).unwrap(),
        );
        assert_eq!(
            ra.scores.len(),
            f32_engine
                .manifest()
                .medications
                .as_ref()
                .unwrap()
                .medications
                .len()
        );
        for da in &ra.scores {
            let db = rb.scores.iter().find(|d| d.code == da.code).unwrap();
            full.push(da.probability);
            half.push(db.probability);
        }
        let threshold = f32_engine
            .manifest()
            .medications
            .as_ref()
            .unwrap()
            .threshold;
        assert!(ra.medications.iter().all(|d| d.probability >= threshold));
        assert_eq!(
            ra.medications.len(),
            ra.scores
                .iter()
                .filter(|d| d.probability >= threshold)
                .count()
        );
        let mut streamed = String::new();
        let options = GenerateOptions {
            max_new_tokens: 200,
            ..Default::default()
        };
        let e = pollster::block_on(f32_engine.explain(record, &options, &mut |piece| {
            streamed.push_str(piece);
            true
        }))
        .unwrap();
        assert_eq!(streamed, e.text, "the streamed pieces add up to the text");
        // a caller that stops after the first piece gets no more, and the call says so
        let mut pieces = 0;
        let stopped = pollster::block_on(f32_engine.explain(record, &options, &mut |_| {
            pieces += 1;
            false
        }));
        assert_eq!(
            pieces, 1,
            "decoding stops at the first piece its caller refuses"
        );
        assert_eq!(stopped.map(|_| ()).map_err(|e| e.code()), Err("ABORTED"));
        assert!(
            !e.text.contains("###") && !e.text.contains("<lab:"),
            "no target markup: {}",
            e.text
        );
        // every stated fact is rendered from the record, and the text ends with the rationale
        assert!(e.text.ends_with(&e.rationale), "{e:?}");
        for d in &e.diagnoses {
            assert!(
                PHENOTYPES.iter().any(|p| p.name == d),
                "constrained decoding wrote {d:?}"
            );
        }
        assert_eq!(e.knowledge_attention.len(), e.channels.len());
        assert!(
            e.knowledge_attention
                .iter()
                .all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-4)
        );
    }
    let worst = bedside::compare::max_abs_diff(&full, &half);
    eprintln!("f16 vs f32 bundle: max |Δ probability| = {worst:.2e}");
    assert!(
        worst < F16_TOLERANCE,
        "f16 and f32 bundles differ by {worst}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_killed_run_resumes_to_the_same_numbers() {
    let straight = scratch("straight");
    assert!(distill(&straight, false).wait().unwrap().success());
    let expected = history(&straight);

    let killed = scratch("killed");
    let mut child = distill(&killed, false);
    let state = killed.join("run/checkpoint/state.json");
    let epochs_done = || {
        std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["history"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let mut kills = 0;
    // three times: wait for a new epoch checkpoint, let the next epoch run a little, SIGKILL
    for extra_ms in [150u64, 40, 260] {
        let seen = epochs_done();
        let started = std::time::Instant::now();
        while epochs_done() == seen
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(300)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(extra_ms));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        child = distill(&killed, true);
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        kills, 3,
        "the run finished before it could be killed three times"
    );
    assert_eq!(history(&killed), expected, "after {kills} kills");
    // the same tensors, bit for bit (the header's key order may differ between processes)
    let (a, b) = (
        std::fs::read(killed.join("run/model.safetensors")).unwrap(),
        std::fs::read(straight.join("run/model.safetensors")).unwrap(),
    );
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (name, view) in a.tensors() {
        assert_eq!(
            view.data(),
            b.tensor(&name).unwrap().data(),
            "{name} differs after {kills} kills"
        );
    }
    eprintln!("resumed after {kills} SIGKILLs: same history and weights");
    std::fs::remove_dir_all(&straight).ok();
    std::fs::remove_dir_all(&killed).ok();
}

#[test]
fn a_run_trains_on_wgpu() {
    // two epochs of stage 1 on each backend, the same data and seed, without dropout (a GPU
    // draws other dropout masks): the initial weights come from the CPU on every backend, so
    // wgpu must follow the CPU's losses (measured: within 1.5e-4 relative under parallel tests,
    // float sums in another order compounding over the steps; a wrong kernel or gradient is off
    // by percents)
    let run = |name: &str, backend: &str| {
        let dir = scratch(name);
        let config = TINY
            .replace(
                "epochs = [2, 2, 2]",
                &format!("epochs = [2, 0, 0]\nbackend = {backend:?}"),
            )
            .replace("[model]", "[model]\ndropout = 0.0");
        std::fs::write(dir.join("run.toml.in"), config).unwrap();
        let output = bin()
            .args(["distill", "--config"])
            .arg(dir.join("run.toml.in"))
            .arg("--out")
            .arg(dir.join("run"))
            .output()
            .unwrap();
        (dir, output)
    };
    // only a machine without an adapter skips; a run that fails on one is a failure
    let adapter = pollster::block_on(bedside::Backend::Gpu.device());
    if bedside::test_layers::on_wgpu(adapter).is_none() {
        return;
    }
    let (gpu_dir, gpu) = run("distill-wgpu", "wgpu");
    assert!(
        gpu.status.success(),
        "training on wgpu failed: {}",
        String::from_utf8_lossy(&gpu.stderr)
    );
    let (cpu_dir, cpu) = run("distill-cpu", "cpu");
    assert!(
        cpu.status.success(),
        "{}",
        String::from_utf8_lossy(&cpu.stderr)
    );
    let losses = |dir: &Path| -> Vec<f64> {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("run/checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        state["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["train_loss"].as_f64().unwrap())
            .collect()
    };
    let (on_gpu, on_cpu) = (losses(&gpu_dir), losses(&cpu_dir));
    eprintln!("stage 1 training loss per epoch: wgpu {on_gpu:?}, CPU {on_cpu:?}");
    assert_eq!(on_gpu.len(), 2);
    assert!(
        on_gpu.iter().all(|l| l.is_finite()) && on_gpu[1] < on_gpu[0],
        "wgpu does not learn: {on_gpu:?}"
    );
    for (g, c) in on_gpu.iter().zip(&on_cpu) {
        assert!(
            (g - c).abs() < 1e-3 * c,
            "wgpu {on_gpu:?} vs CPU {on_cpu:?}"
        );
    }
    std::fs::remove_dir_all(&gpu_dir).ok();
    std::fs::remove_dir_all(&cpu_dir).ok();
}

/// `eval` on the demo bundle: the report in JSON and Markdown, the head's ROC curve from (0, 0)
/// to (1, 1) and its calibration, drawn as 720×480 PNGs.
#[test]
fn eval_writes_its_report_and_plots() {
    let out = scratch("eval");
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let output = bin()
        .args([
            "eval",
            "--synthetic",
            "12",
            "--max-tokens",
            "40",
            "--bundle",
        ])
        .arg(&bundle)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["admissions"], 12);
    // it says which split it scored, and scores the cited evidence against the generator's truth
    let split = report["split"].as_str().unwrap();
    assert!(
        split.contains("development") && split.contains("2025"),
        "{split}"
    );
    let citations = &report["citations"];
    for part in ["precision", "recall", "supported"] {
        let share = &citations[part];
        let value = share["value"].as_f64().unwrap();
        assert!(
            share["of"].as_u64().unwrap() > 0 && (0.0..=1.0).contains(&value),
            "{part}: {share}"
        );
    }
    assert_eq!(citations["criteria"].as_array().unwrap().len(), 2);
    let roc = report["head_roc"].as_array().unwrap();
    assert_eq!(
        (roc[0][0].as_f64(), roc[0][1].as_f64()),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(
        (
            roc[roc.len() - 1][0].as_f64(),
            roc[roc.len() - 1][1].as_f64()
        ),
        (Some(1.0), Some(1.0))
    );
    let bins = report["head_calibration"].as_array().unwrap();
    assert_eq!(
        bins.iter().map(|b| b["n"].as_u64().unwrap()).sum::<u64>(),
        12 * 25,
        "every admission × phenotype pair in a bin"
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("micro AUROC"));
    // every group's support is the admissions that have it in the truth
    let positives = report["generated"]["per_label_positives"]
        .as_object()
        .unwrap();
    assert_eq!(positives.len(), 25);
    let labelled: u64 = positives.values().map(|v| v.as_u64().unwrap()).sum();
    // the same 12 admissions eval draws (seed 2025), their labels counted here
    let cohort = out.join("cohort.jsonl");
    synthetic_cohort(&cohort, 12, 2025);
    let truth: usize = std::fs::read_to_string(&cohort)
        .unwrap()
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            record["labels"]["phenotypes"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(
        labelled as usize, truth,
        "supports add up to the labels of the cohort"
    );
    assert!(markdown.contains("| weakest groups |"), "{markdown}");
    for plot in ["roc.png", "calibration.png"] {
        let image = image::open(out.join(plot)).unwrap_or_else(|e| panic!("{plot}: {e}"));
        assert_eq!((image.width(), image.height()), (720, 480), "{plot}");
    }

    // `card` writes the model card from that report into a copy of the bundle, which still loads
    let copy = out.join("bundle");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&bundle).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let card = |extra: &str| {
        let text = format!(
            "intended_use = \"research\"\nlimits = [\"not a medical device\"]\n{extra}\n\
             [[trained_on]]\npart = \"clinical\"\ncohort = \"synthetic\"\nadmissions = 1200\n\
             licence = \"generated\"\n[[evaluations]]\nreport = \"report.json\"\n\
             cohort = \"synthetic, seed 2025\"\nsplit = \"development\"\n"
        );
        std::fs::write(out.join("card.toml"), text).unwrap();
        bin()
            .args(["card", "--bundle"])
            .arg(&copy)
            .arg("--card")
            .arg(out.join("card.toml"))
            .output()
            .unwrap()
    };
    let written = card("");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("manifest.json")).unwrap()).unwrap();
    let evaluation = &manifest["model_card"]["evaluations"][0];
    assert_eq!(evaluation["admissions"], 12);
    assert_eq!(
        evaluation["measures"]["head: macro AUROC"]["value"], report["head"]["macro_auroc"],
        "the card's figure is the report's"
    );
    assert!(load(&copy).manifest().model_card.is_some());
    // a card file with a field it does not know is refused, naming the file; the bundle stays
    let before = std::fs::read(copy.join("manifest.json")).unwrap();
    let refused = card("typo = 1");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("card.toml"));
    assert_eq!(std::fs::read(copy.join("manifest.json")).unwrap(), before);
    // so is a report of other weights (a stale one)
    let mut stale = report.clone();
    stale["weights_sha256"] = "0".repeat(64).into();
    std::fs::write(out.join("report.json"), stale.to_string()).unwrap();
    let refused = card("");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("other weights"));
    assert_eq!(std::fs::read(copy.join("manifest.json")).unwrap(), before);
}

/// An export onto a full disk: a tmpfs with room for the previous bundle and half of it again,
/// so the new files run out of space half way. The error names the disk's complaint, the previous
/// bundle stays as it was, no temporary file is left. Needs `mount` (root, Linux); skipped with
/// a message elsewhere.
fn full_disk_keeps_the_previous_export(dir: &Path, export: &dyn Fn(&Path) -> std::process::Output) {
    struct Mount(PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let files: Vec<PathBuf> = std::fs::read_dir(dir.join("f16"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let bytes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    let disk = dir.join("small-disk");
    std::fs::create_dir_all(&disk).unwrap();
    let size = format!("size={}k", (bytes * 3 / 2).div_ceil(4096) * 4 + 8);
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
        .arg(&disk)
        .stderr(std::process::Stdio::null())
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        bedside::test_layers::unavailable(
            "root",
            "the full-disk export: cannot mount a small tmpfs here (needs root on Linux)",
        );
        return;
    }
    let _mount = Mount(disk.clone());
    let bundle = disk.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    for f in &files {
        std::fs::copy(f, bundle.join(f.file_name().unwrap())).unwrap();
    }
    let before: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::read(bundle.join(f.file_name().unwrap())).unwrap(),
            )
        })
        .collect();
    let failed = export(&bundle);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left") && stderr.contains("unchanged"),
        "{stderr}"
    );
    for (f, bytes) in &before {
        assert!(
            std::fs::read(bundle.join(f.file_name().unwrap())).unwrap() == *bytes,
            "{} changed on a full disk",
            f.display()
        );
    }
    let left: Vec<_> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        left.is_empty(),
        "temporary files left on the full disk: {left:?}"
    );
}

/// `distill --init-from` a HuggingFace T5 (the tiny v1.1 fixture with its SentencePiece
/// tokenizer): with no epochs the exported language model is the checkpoint, its 96 rows
/// unchanged and the 112 reserved tokens' rows at their mean; with epochs it trains from there,
/// and either bundle loads and explains.
#[test]
fn a_run_starts_from_a_huggingface_t5() {
    let dir = scratch("init-from");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/t5/v1_1");
    let tokenizer = fixture.join("../tokenizer.json");
    let checkpoint = dir.join("flan");
    std::fs::create_dir_all(&checkpoint).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(name), checkpoint.join(name)).unwrap();
    }
    std::fs::copy(&tokenizer, checkpoint.join("tokenizer.json")).unwrap();
    let stored = std::fs::read(checkpoint.join("model.safetensors")).unwrap();
    let stored = safetensors::SafeTensors::deserialize(&stored).unwrap();
    let floats = |view: safetensors::tensor::TensorView| -> Vec<f32> {
        view.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let shared = floats(stored.tensor("shared.weight").unwrap());
    let cohort = dir.join("records.json");
    synthetic_cohort(&cohort, 2, 99);
    let records: Vec<bedside::PatientRecord> =
        serde_json::from_str(&std::fs::read_to_string(cohort).unwrap()).unwrap();
    for (name, epochs) in [("untrained", "[0, 0, 0]"), ("trained", "[1, 1, 1]")] {
        let config = dir.join(format!("{name}.toml"));
        // the model table's T5 fields (d_model 64 …) lose to the checkpoint's (32)
        let tiny = TINY
            .replace("epochs = [2, 2, 2]", &format!("epochs = {epochs}"))
            .replace("d_model = 32", "d_model = 64");
        std::fs::write(&config, tiny).unwrap();
        let run = dir.join(name);
        let status = bin()
            .args(["distill", "--config"])
            .arg(&config)
            .arg("--init-from")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&run)
            .status()
            .unwrap();
        assert!(status.success(), "{name}: distill --init-from");
        let bundle = dir.join(format!("{name}-bundle"));
        let status = bin()
            .args(["export", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(&bundle)
            .args(["--dtype", "f32"])
            .status()
            .unwrap();
        assert!(status.success(), "{name}: export");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
                .unwrap();
        let t5 = &manifest["model"]["config"]["t5"];
        assert_eq!(
            (&t5["d_model"], &t5["vocab_size"], &t5["num_decoder_layers"]),
            (&32.into(), &(96 + 112).into(), &3.into()),
            "{name}: the checkpoint's shape, its vocabulary grown by the reserved tokens: {t5}"
        );
        let weights = std::fs::read(bundle.join("model.safetensors")).unwrap();
        let weights = safetensors::SafeTensors::deserialize(&weights).unwrap();
        let exported = floats(weights.tensor("lm.shared.weight").unwrap());
        assert_eq!(exported.len(), (96 + 112) * 32);
        let untouched = exported[..96 * 32] == shared[..];
        assert_eq!(
            untouched,
            name == "untrained",
            "{name}: the checkpoint's embeddings, trained only when epochs train the LM"
        );
        if name == "untrained" {
            let mean: Vec<f32> = (0..32)
                .map(|j| shared.iter().skip(j).step_by(32).sum::<f32>() / 96.0)
                .collect();
            for row in exported[96 * 32..].chunks_exact(32) {
                let diff = bedside::compare::max_abs_diff(row, &mean);
                assert!(diff < 1e-6, "a new row at the mean: {diff}");
            }
        }
        let engine = load(&bundle);
        for record in &records {
            let diagnosed = pollster::block_on(engine.diagnose(record)).unwrap();
            assert_eq!(diagnosed.phenotypes.len(), PHENOTYPES.len(), "{name}");
            let explained = pollster::block_on(engine.explain(
                record,
                &GenerateOptions::default(),
                &mut |_| true,
            ))
            .unwrap();
            let mut written = explained.diagnoses.clone();
            let mut selected: Vec<String> =
                diagnosed.diagnosed.iter().map(|d| d.to_string()).collect();
            written.sort();
            selected.sort();
            assert_eq!(written, selected, "{name}: one answer");
        }
    }
}
