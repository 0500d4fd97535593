//! `bedside-train export`: a finished distillation run (and a medication recommender run) as the
//! browser bundle.

use std::path::Path;

use anyhow::{Context, Result};
use bedside::model::ClinicalModelConfig;
use bedside::tokenizer::TextTokenizer;

use crate::pipelines::distill::{CALIBRATION_FILE, CHECKPOINT, Progress, RunConfig};
use bedside::bundle::{
    Bundle, MEDREC_FILE, Manifest, ModelSpec, TOKENIZER_FILE, WEIGHTS_FILE, WeightsDtype,
    convert_weights,
};
use bedside::recommend::MedicationSpec;

/// `bedside-train export`: the browser bundle of a finished run — `manifest.json`,
/// `model.safetensors` (f32 or f16) and `tokenizer.json`, each written atomically.
pub fn export(
    run: &Path,
    medrec: Option<&Path>,
    out: &Path,
    dtype: WeightsDtype,
) -> Result<Manifest> {
    let read = |dir: &Path, name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("cannot read {}", dir.join(name).display()))
    };
    let config: ClinicalModelConfig =
        serde_json::from_slice(&read(run, "model.json")?).context("model.json")?;
    let weights = convert_weights(&read(run, WEIGHTS_FILE)?, dtype)?;
    let tokenizer = read(run, TOKENIZER_FILE)?;
    TextTokenizer::from_bytes(&tokenizer)?;
    let progress: Option<Progress> = std::fs::read(run.join(CHECKPOINT).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut manifest = Manifest::new(ModelSpec::Clinical(config), dtype, 0.5);
    let medications = match medrec {
        Some(dir) => {
            let spec: MedicationSpec =
                serde_json::from_slice(&read(dir, "medrec.json")?).context("medrec.json")?;
            manifest.medications = Some(spec);
            Some(convert_weights(&read(dir, MEDREC_FILE)?, dtype)?)
        }
        None => None,
    };
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
    let mut bundle = Bundle::new(manifest, weights, Some(tokenizer), medications)?;
    record_self_test(&mut bundle)?;
    bundle.write_to(out)?;
    Ok(bundle.manifest().clone())
}

/// Records in the bundle's manifest the known answer every loaded engine checks its backend
/// against: the probabilities of [`bedside::self_test::self_test_record`] on the native CPU.
pub fn record_self_test(bundle: &mut Bundle) -> Result<()> {
    let answer = pollster::block_on(async {
        bedside::Engine::load(bundle, bedside::Backend::Cpu)
            .await?
            .self_test_answer()
            .await
    })?;
    bundle.set_self_test(answer);
    Ok(())
}
