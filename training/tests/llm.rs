//! Both language-model paths against a real model: Gemma 3 270M served by llama-cpp-python
//! (`tools/llm-server.sh run`, which `make test` wraps around the native tests and which sets
//! BEDSIDE_LLM_URL). Without a server the tests say so and pass, unless the layer is required
//! (`bedside::test_layers`: under CI, or with BEDSIDE_REQUIRE_LLM=1).
//!
//! - `teach --teacher endpoint` on the completions API (the few-shot prompt for a base model)
//!   writes a rationale per admission; what the grounding filter keeps passes the filter again
//!   untouched (nothing kept contradicts the record); a second run asks nothing (the cache).
//! - `features` on the embeddings API writes one pooled hidden state per admission, and `medrec`
//!   with `teacher.mode = "offline"` fits a logistic-regression teacher on them and distils the
//!   student from it.

mod common;
use common::{bin, scratch};

fn server() -> Option<String> {
    match std::env::var("BEDSIDE_LLM_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            bedside::test_layers::unavailable(
                "llm",
                "no language-model server (BEDSIDE_LLM_URL unset; tools/llm-server.sh run sets it)",
            );
            None
        }
    }
}

fn run(args: &[&str], dir: &std::path::Path) -> String {
    let out = bin().args(args).current_dir(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {stderr}");
    stderr
}

fn grounding(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_base_model_teaches_through_the_grounding_filter() {
    let Some(url) = server() else { return };
    let dir = scratch("llm-teach");
    let n = 4;
    run(
        &[
            "cohort",
            "--source",
            "synthetic",
            "--n",
            &n.to_string(),
            "--seed",
            "31",
            "--out",
            "cohort.jsonl",
        ],
        &dir,
    );
    let url = format!("{url}/completions");
    let teach = [
        "teach",
        "--teacher",
        "endpoint",
        "--url",
        &url,
        "--model",
        "gemma-3-270m",
        "--timeout",
        "600",
        "--concurrency",
        "1",
        "--cohort",
        "cohort.jsonl",
        "--out",
        "llm.jsonl",
    ];
    run(&teach, &dir);
    let text = std::fs::read_to_string(dir.join("llm.jsonl")).unwrap();
    assert_eq!(text.lines().count(), n, "{text}");
    let counts = grounding(&dir.join("llm.grounding.json"));
    let grounded = counts["grounded"].as_u64().unwrap();
    assert!(
        grounded > 0,
        "the model stated nothing the record has: {counts}"
    );
    assert_eq!(
        counts["statements"].as_u64().unwrap(),
        grounded
            + counts["contradicts"].as_u64().unwrap()
            + counts["unverifiable"].as_u64().unwrap()
    );
    // what the filter kept passes it again, whole
    run(
        &[
            "teach",
            "--teacher",
            "jsonl",
            "--input",
            "llm.jsonl",
            "--cohort",
            "cohort.jsonl",
            "--out",
            "again.jsonl",
        ],
        &dir,
    );
    let again = grounding(&dir.join("again.grounding.json"));
    assert_eq!(again["grounded"], counts["grounded"], "{again}");
    assert_eq!(again["statements"], counts["grounded"], "{again}");
    assert_eq!(
        std::fs::read_to_string(dir.join("again.jsonl")).unwrap(),
        text
    );
    // the answers are cached
    let stderr = run(&teach, &dir);
    assert!(
        stderr.contains(&format!("0 requests, {n} answers from the cache")),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn llm_features_teach_the_medication_student() {
    let Some(url) = server() else { return };
    let dir = scratch("llm-features");
    run(
        &[
            "cohort",
            "--source",
            "synthetic",
            "--n",
            "24",
            "--seed",
            "32",
            "--out",
            "cohort.jsonl",
        ],
        &dir,
    );
    std::fs::write(
        dir.join("medrec.toml"),
        "cohorts = [\"cohort.jsonl\"]\nepochs = 2\n[teacher]\nmode = \"offline\"\nfeatures = \"features.safetensors\"\n",
    )
    .unwrap();
    let url = format!("{url}/embeddings");
    run(
        &[
            "features",
            "--config",
            "medrec.toml",
            "--url",
            &url,
            "--model",
            "gemma-3-270m",
            "--timeout",
            "600",
            "--concurrency",
            "1",
            "--out",
            "features.safetensors",
        ],
        &dir,
    );
    let bytes = std::fs::read(dir.join("features.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let hidden = tensors.tensor("hidden").unwrap();
    assert_eq!(hidden.shape()[0], 24);
    assert_eq!(hidden.shape()[1], 640, "Gemma 3 270M's hidden width");
    let stderr = run(&["medrec", "--config", "medrec.toml", "--out", "run"], &dir);
    assert!(
        stderr.contains("the teacher is a logistic regression on the features"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["teacher_mode"], "offline");
    // the teacher measured is that regression: 640 weights and a bias per drug
    let drugs = report["vocabulary"][2].as_u64().unwrap();
    assert_eq!(report["teacher_parameters"], 641 * drugs, "{report}");
    let teacher = &report["teacher"]["overall"];
    eprintln!(
        "LLM-feature teacher: {teacher}; student: {}",
        report["student"]["overall"]
    );
    // the regression on Gemma's features ranks the 5 test admissions' drugs at PRAUC 0.53
    // (measured); a random ranking scores about the share of the vocabulary given (~0.17)
    let prauc = teacher["prauc"].as_f64().unwrap_or(f64::NAN);
    assert!(prauc > 0.35, "teacher PRAUC {prauc}: {report}");
    let jaccard = report["student"]["overall"]["jaccard"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!((0.0..=1.0).contains(&jaccard), "student Jaccard {jaccard}");
    std::fs::remove_dir_all(dir).ok();
}
