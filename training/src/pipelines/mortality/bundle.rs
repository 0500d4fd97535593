//! A `mortality` run as a browser bundle (`"mortality"` kind): the model's weights, its Platt
//! scaling as the manifest's calibration, the known answer every engine checks, and a model card
//! built from the run's own report (the data and its licence, the held-out set's figures with
//! their intervals, the out-of-range rule, intended use and limits).

use std::path::Path;

use anyhow::Result;
use bedside::bundle::{Bundle, Manifest, ModelSpec, WEIGHTS_FILE, WeightsDtype, convert_weights};
use bedside::calibration::{HeadCalibration, LogitMap};
use bedside::model::MortalityModel;
use bedside::model::MortalityModelConfig;
use bedside::model_card::{Evaluation, Measure, ModelCard, TrainingData, out_of_range_rule};

use crate::pipelines::mortality::MortalityReport;

/// What the bundle says of where its data came from.
pub struct Provenance<'a> {
    pub train_set: &'a str,
    pub test_set: &'a str,
    /// Where the bundle's model was refitted by the same procedure on both sets (`--refit`):
    /// the stays it trained on and those it held out for its choices.
    pub refit: Option<(usize, usize)>,
}

/// Writes the bundle of `model` (configured by `config`, its logits recalibrated by
/// `(scale, shift)`; the procedure tested as `report` says) into `dir` at `dtype`; returns its
/// manifest.
pub fn write(
    dir: &Path,
    model: &MortalityModel,
    config: &MortalityModelConfig,
    (scale, shift): (f32, f32),
    report: &MortalityReport,
    provenance: &Provenance,
    dtype: WeightsDtype,
) -> Result<Manifest> {
    let weights = convert_weights(
        &crate::shared::fit::weights_bytes(model, WEIGHTS_FILE)?,
        dtype,
    )?;
    let mut manifest = Manifest::new(ModelSpec::Mortality(config.clone()), dtype, 0.5);
    manifest.calibration = Some(HeadCalibration {
        with_notes: LogitMap {
            scale,
            shift,
            label_shifts: Vec::new(),
        },
        without_notes: None,
    });
    manifest.model_card = Some(card(report, provenance));
    let mut bundle = Bundle::new(manifest, weights, None, None)?;
    crate::pipelines::export::record_self_test(&mut bundle)?;
    bundle.write_to(dir)?;
    Ok(bundle.manifest().clone())
}

fn card(report: &MortalityReport, p: &Provenance) -> ModelCard {
    let measure = |value: f64, ci95: Option<(f64, f64)>| Measure { value, ci95 };
    let test = &report.test;
    let measures = [
        ("AUROC", measure(test.auroc, Some(test.auroc_ci95))),
        ("AUPRC", measure(test.auprc, Some(test.auprc_ci95))),
        (
            "Hosmer–Lemeshow H",
            measure(report.test_hosmer_lemeshow, None),
        ),
        ("Brier", measure(report.test_brier, None)),
        ("Event 1, min(Se, +P)", measure(report.test_event1, None)),
        ("deaths", measure(test.positives as f64, None)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (sets, admissions, split) = match p.refit {
        None => (
            p.train_set.to_string(),
            report.train_stays + report.validation_stays,
            "final test (scored once for this model)".to_string(),
        ),
        Some((trained, held)) => (
            format!("{} and {}", p.train_set, p.test_set),
            trained + held,
            format!(
                "final test of the procedure: the same procedure trained on {} alone, scored \
                 once; this model then learned from {} too",
                p.train_set, p.test_set
            ),
        ),
    };
    ModelCard {
        trained_on: vec![TrainingData {
            part: "mortality model (time-series encoder + linear part, Platt scaling)".into(),
            cohort: format!(
                "PhysioNet/CinC Challenge 2012 {sets}: ICU stays, first 48 hours, the 37 labs \
                 and vitals the challenge records with age, sex and ICU type; four fifths for \
                 training, one fifth for C, early stopping and Platt scaling"
            ),
            admissions,
            licence: "PhysioNet open access: Open Data Commons Attribution License (ODC-By) 1.0"
                .into(),
        }],
        evaluations: vec![Evaluation {
            cohort: match p.refit {
                None => format!(
                    "PhysioNet/CinC Challenge 2012 {}: ICU stays from the same hospitals, never \
                     trained on",
                    p.test_set
                ),
                Some(_) => format!(
                    "PhysioNet/CinC Challenge 2012 {}: ICU stays from the same hospitals, held \
                     out from the model the procedure fitted on {} alone",
                    p.test_set, p.train_set
                ),
            },
            split,
            admissions: test.n,
            measures,
        }],
        out_of_range: out_of_range_rule(),
        intended_use: "Research and demonstration: how a wide-and-deep model over the first 48 \
                       hours of an ICU stay estimates the risk of death in hospital, and which \
                       findings move it, on the user's own device. Not for triage, prognosis or \
                       any decision about a patient."
            .into(),
        limits: vec![
            format!(
                "Learned from {admissions} stays of the 2012 challenge (US ICUs, 2001–2008): risk \
                 in another population, era or practice is not measured here."
            ),
            "The effect of a finding is what removing that channel's observations does to this \
             model's risk: it explains the model, not the patient's physiology."
                .into(),
            "A record with only a few of the 37 variables the challenge records reads the rest \
             as unmeasured, which the training stays rarely were."
                .into(),
            "Research software, not a medical device.".into(),
        ],
    }
}
