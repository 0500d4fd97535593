//! `bedside-train export`: a finished distillation run (and a medication recommender run) as the
//! browser bundle.

use std::path::Path;

use anyhow::{Context, Result};
use bedside::model::ClinicalModelConfig;
use bedside::tokenizer::TextTokenizer;

use crate::pipelines::distill::{CALIBRATION_FILE, CHECKPOINT, Progress, RunConfig};
use bedside::bundle::WeightsDtype;

/// `bedside-train export`: the browser bundle of a finished run — `manifest.json`,
/// `model.safetensors` (f32 or f16) and `tokenizer.json`, each written atomically.
pub fn export(
    run: &Path,
    medrec: Option<&Path>,
    out: &Path,
    dtype: WeightsDtype,
) -> Result<bedside::bundle::Manifest> {
    use bedside::bundle::{MANIFEST_FILE, Manifest, ModelSpec, WEIGHTS_FILE, convert_weights};
    use bedside::recommend::MEDREC_FILE;
    use bedside::tokenizer::TOKENIZER_FILE;
    let read = |name: &str| {
        std::fs::read(run.join(name))
            .with_context(|| format!("cannot read {}", run.join(name).display()))
    };
    let config: ClinicalModelConfig =
        serde_json::from_slice(&read("model.json")?).context("model.json")?;
    let weights = convert_weights(&read("model.safetensors")?, dtype)?;
    let tokenizer = read("tokenizer.json")?;
    TextTokenizer::from_bytes(&tokenizer)?;
    let progress: Option<Progress> = std::fs::read(run.join(CHECKPOINT).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let medications = match medrec {
        Some(dir) => {
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .with_context(|| format!("cannot read {}", dir.join(name).display()))
            };
            let spec: bedside::recommend::MedicationSpec =
                serde_json::from_slice(&read("medrec.json")?).context("medrec.json")?;
            Some((spec, convert_weights(&read(MEDREC_FILE)?, dtype)?))
        }
        None => None,
    };
    let mut files: Vec<(&str, &[u8])> =
        vec![(WEIGHTS_FILE, &weights), (TOKENIZER_FILE, &tokenizer)];
    if let Some((_, bytes)) = &medications {
        files.push((MEDREC_FILE, bytes));
    }
    let mut manifest = Manifest::new(ModelSpec::Clinical(config), &files, dtype, 0.5);
    manifest.medications = medications.as_ref().map(|(spec, _)| spec.clone());
    // the prompt length the model was trained with (runs from before it was recorded: the default)
    let run_config: RunConfig = match std::fs::read_to_string(run.join("run.toml")) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| run.join("run.toml").display().to_string())?
        }
        Err(_) => RunConfig::default(),
    };
    manifest.max_prompt_tokens = Some(run_config.max_prompt_tokens);
    // the head's calibration (runs from before it was fitted: none)
    if let Ok(bytes) = std::fs::read(run.join(CALIBRATION_FILE)) {
        let calibration: crate::measure::calibration::Calibration =
            serde_json::from_slice(&bytes).context(CALIBRATION_FILE)?;
        manifest.calibration = Some(calibration.head_calibration());
    }
    manifest.training = progress
        .map(|p| serde_json::json!({ "wide_fit": p.wide_fit, "validation_history": p.history }));
    crate::pipelines::lab_phenotype::record_self_test(&mut manifest, &weights, Some(&tokenizer))?;
    let text = serde_json::to_string_pretty(&manifest)?;
    // check it as a loader would before anything is written
    Manifest::from_json(&text)?;
    files.push((MANIFEST_FILE, text.as_bytes()));
    crate::pipelines::lab_phenotype::write_bundle(out, &files)?;
    Ok(manifest)
}
