//! `card`: writes a bundle's model card (`bedside::model_card`) into its manifest from a card
//! file (what the model was trained on, its intended use and limits) and the `eval` reports it
//! names; the out-of-range rule is the library's own. Only `manifest.json` changes.

use anyhow::{Context, Result};
use bedside::bundle::{MANIFEST_FILE, Manifest, WEIGHTS_FILE};
use bedside::model_card::{Evaluation, Measure, ModelCard, TrainingData, out_of_range_rule};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle directory whose manifest gets the card.
    #[arg(long)]
    bundle: PathBuf,
    /// The card file (TOML): `trained_on`, `intended_use`, `limits`, and `[[evaluations]]` each
    /// naming an `eval` report.json (paths relative to the card file), its cohort and its split.
    #[arg(long)]
    card: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    trained_on: Vec<TrainingData>,
    intended_use: String,
    limits: Vec<String>,
    evaluations: Vec<EvaluationFile>,
}

/// An evaluation: an `eval` report.json of this very bundle, or (`admissions` and `measures`)
/// figures measured by another command (the recommender's `medrec` report), with their source.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationFile {
    report: Option<PathBuf>,
    cohort: String,
    split: String,
    admissions: Option<usize>,
    measures: Option<std::collections::BTreeMap<String, Measure>>,
}

/// The figures of an `eval` report a card shows: the head's ranking and calibration, the written
/// diagnoses, the share abstained, and the stated facts against the generator's truth where the
/// report has them.
fn evaluation(report: &serde_json::Value, cohort: String, split: String) -> Result<Evaluation> {
    let value = |v: &serde_json::Value| v.as_f64().filter(|x| x.is_finite());
    let pair = |v: &serde_json::Value| Some((value(&v[0])?, value(&v[1])?));
    let mut measures = std::collections::BTreeMap::new();
    let mut put = |name: &str, v: &serde_json::Value, ci: &serde_json::Value| {
        if let Some(value) = value(v) {
            let ci95 = pair(ci);
            measures.insert(name.to_string(), Measure { value, ci95 });
        }
    };
    let head = &report["head"];
    put(
        "head: macro AUROC",
        &head["macro_auroc"],
        &head["macro_auroc_ci95"],
    );
    put(
        "head: macro AUPRC",
        &report["head_macro_auprc"],
        &serde_json::Value::Null,
    );
    put(
        "head: calibration error (ECE)",
        &head["ece"],
        &serde_json::Value::Null,
    );
    let written = &report["generated"];
    put(
        "written diagnoses: micro-F1",
        &written["micro_f1"],
        &written["micro_f1_ci95"],
    );
    put(
        "out of range (abstained)",
        &report["abstained"],
        &serde_json::Value::Null,
    );
    let citations = &report["citations"];
    for (name, key) in [
        ("stated lab facts: precision vs truth", "precision"),
        ("stated lab facts: recall of realised shifts", "recall"),
    ] {
        put(name, &citations[key]["value"], &citations[key]["ci95"]);
    }
    Ok(Evaluation {
        cohort,
        split,
        admissions: report["admissions"]
            .as_u64()
            .context("the report has no admissions")? as usize,
        measures,
    })
}

pub fn run(args: Args) -> Result<()> {
    let Args { bundle, card } = args;
    let text = std::fs::read_to_string(&card).with_context(|| card.display().to_string())?;
    let file: CardFile = toml::from_str(&text).with_context(|| card.display().to_string())?;
    let base = card.parent().unwrap_or(Path::new("."));
    let path = bundle.join(MANIFEST_FILE);
    let manifest_text =
        std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let weights = Manifest::from_json(&manifest_text)?
        .files
        .get(WEIGHTS_FILE)
        .map(|f| f.sha256.clone())
        .with_context(|| format!("{}: lists no {WEIGHTS_FILE}", path.display()))?;
    let mut evaluations = Vec::new();
    for e in file.evaluations {
        let evaluation = match (e.report, e.admissions, e.measures) {
            (Some(report), None, None) => {
                let report_path = base.join(&report);
                let report: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(&report_path)
                        .with_context(|| format!("{}: run `eval` first", report_path.display()))?,
                )
                .with_context(|| report_path.display().to_string())?;
                // the figures must be this bundle's, not a stale report's
                anyhow::ensure!(
                    report["weights_sha256"].as_str() == Some(weights.as_str()),
                    "{}: a report of other weights than {}'s; run `eval` on this bundle",
                    report_path.display(),
                    bundle.display()
                );
                evaluation(&report, e.cohort, e.split)
                    .with_context(|| report_path.display().to_string())?
            }
            (None, Some(admissions), Some(measures)) => Evaluation {
                cohort: e.cohort,
                split: e.split,
                admissions,
                measures,
            },
            _ => anyhow::bail!(
                "{}: an evaluation names either a report, or admissions and measures",
                card.display()
            ),
        };
        evaluations.push(evaluation);
    }
    let model_card = ModelCard {
        trained_on: file.trained_on,
        evaluations,
        out_of_range: out_of_range_rule(),
        intended_use: file.intended_use,
        limits: file.limits,
    };
    model_card
        .check()
        .map_err(|m| anyhow::anyhow!("{}: {m}", card.display()))?;
    // into the manifest, its other fields as the library writes them (in their order), checked
    // as a loader reads it before anything is written
    let mut manifest = Manifest::from_json(&manifest_text)?;
    manifest.model_card = Some(model_card.clone());
    let text = serde_json::to_string_pretty(&manifest)?;
    Manifest::from_json(&text)?;
    crate::shared::io::write_atomic(&path, format!("{text}\n").as_bytes())?;
    println!(
        "card: {} evaluations, {} training cohorts → {}",
        model_card.evaluations.len(),
        model_card.trained_on.len(),
        path.display()
    );
    Ok(())
}
