//! `bedside-train medrec`: LEADER's medication recommendation (Liu et al., arXiv 2402.02803).
//!
//! 1. The teacher: a bedside T5 encoder reads LEADER's textualised visit prompt (the current
//!    visit's diagnoses and procedures, then the earlier visits with their drugs, profile first)
//!    and predicts the drug set through a classification layer over its pooled hidden state (BCE).
//! 2. The student ([`bedside::model::MedRecModel`]) is trained with BCE + α·MSE between a
//!    projection of its 2E-wide mediator layer and the teacher's pooled hidden state + β·a
//!    symmetric contrastive loss (in-batch negatives) between its profile embedding and the
//!    embedding of the prescribed drug set.
//!
//! The teacher runs *online* (trained here, its features computed for every admission) or
//! *offline* (`teacher.features`: safetensors with `hidden` [N, H] and `logits` [N, |M|] and the
//! admission ids as JSON in the metadata key `ids`, from any external LLM). An online run writes
//! its teacher's features in that same format. Admissions are split by patient.
//!
//! The run's steps are here; `config` (medrec.toml), `data` (the split by patient, vocabularies,
//! examples), `prompt` (the teacher's visit prompt), `teacher` (the teacher, its training and its
//! features), `student` (the student's training loop) and `report` (metrics by group,
//! report.json/.md, the curve) hold the rest.

mod config;
mod data;
mod prompt;
mod report;
mod student;
mod teacher;

pub use config::*;
pub use data::*;
pub use prompt::*;
pub use report::*;
pub use teacher::*;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use bedside::model::medrec::MedRecConfig;
use bedside::recommend::MedicationSpec;
use bedside::record::PatientRecord;
use bedside::tokenizer::TextTokenizer;
use burn::prelude::*;

use crate::measure::medrec_metrics::best_threshold;
use crate::measure::usage::{Meter, Usage};
use crate::shared::fit;
use crate::shared::io::write_atomic;

use student::{student_probs, train_student};

/// Runs LEADER end to end into `dir`: `medrec.json` (the bundle's medication spec),
/// `medrec.safetensors`, `teacher-features.safetensors` (online), `report.json`, `report.md`,
/// `training.png`.
pub fn run(
    config: &MedRecRunConfig,
    records: Vec<PatientRecord>,
    dir: &Path,
) -> Result<MedRecReport> {
    let started = std::time::Instant::now();
    config.check()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join("medrec.toml"),
        toml::to_string(config)?.as_bytes(),
    )?;
    let mut cohort = cohort(config, records)?;
    let (examples, unseen_test_drugs) = examples(config, &cohort, dir)?;
    let (mut history, mut usage) = (Vec::new(), Vec::new());

    // 1. the teacher (online: trained here; offline: read, and where the file has no logits, a
    // logistic regression on its hidden states is the teacher)
    let (features, teacher_parameters) =
        teacher(config, &cohort, &examples, dir, &mut history, &mut usage)?;

    // 2. the student
    let (meter, teacher_epochs) = (Meter::start(), history.len());
    let model = train_student(config, &cohort, &examples, features.as_ref(), &mut history)?;
    usage.push(meter.finish("student", history.len() - teacher_epochs));
    let probs = student_probs(&model, &examples, &cohort.validation, config)?;
    let validation = 0..cohort.validation.len();
    cohort.spec.threshold = best_threshold(
        &probs,
        &Cohort::truth(&examples, &cohort.validation),
        cohort.drugs(),
        &validation.collect::<Vec<_>>(),
    );
    let test_probs = student_probs(&model, &examples, &cohort.test, config)?;
    let student_metrics = score(&cohort, &examples, &test_probs, cohort.spec.threshold);
    let (baseline, _) = most_frequent(&cohort, &examples);
    let (teacher_metrics, teacher_threshold) = match &features {
        Some(f) if !f.logits.is_empty() => {
            let (metrics, threshold) = teacher_on_test(&cohort, &examples, f);
            (Some(metrics), Some(threshold))
        }
        _ => (None, None),
    };

    write_atomic(
        &dir.join("medrec.safetensors"),
        &fit::weights_bytes(&model, "the student")?,
    )?;
    let spec = &cohort.spec;
    write_atomic(
        &dir.join("medrec.json"),
        serde_json::to_string_pretty(spec)?.as_bytes(),
    )?;
    let patients_test = cohort
        .test
        .iter()
        .map(|&i| {
            let r = &cohort.records[i];
            r.patient.clone().unwrap_or_else(|| r.id.clone())
        })
        .collect::<BTreeSet<_>>()
        .len();
    let report = MedRecReport {
        admissions: [
            cohort.train.len(),
            cohort.validation.len(),
            cohort.test.len(),
        ],
        patients_test,
        vocabulary: [
            spec.diagnoses.len(),
            spec.procedures.len(),
            spec.medications.len(),
        ],
        unseen_test_drugs,
        teacher_mode: config.teacher.mode,
        threshold: spec.threshold,
        student: student_metrics,
        most_frequent: baseline,
        teacher: teacher_metrics,
        teacher_threshold,
        student_parameters: model.num_params(),
        teacher_parameters,
        history,
        usage,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&dir.join("report.md"), markdown(&report).as_bytes())?;
    plot_history(&report.history, &dir.join("training.png"))?;
    Ok(report)
}

/// The admissions with visits and drug labels, split by patient, and the medication spec of the
/// training side's vocabularies.
fn cohort(config: &MedRecRunConfig, records: Vec<PatientRecord>) -> Result<Cohort> {
    let total = records.len();
    let records: Vec<PatientRecord> = records
        .into_iter()
        .filter(|r| !r.visits.is_empty() && !drug_labels(r).is_empty())
        .collect();
    ensure!(
        records.len() >= 10,
        "only {} of {total} admissions have visits and ATC-3 drug labels; at least 10 are needed",
        records.len()
    );
    if records.len() < total {
        eprintln!(
            "medrec: {} of {total} admissions have no visits or no ATC-3 drug labels; left out",
            total - records.len()
        );
    }
    let [train, validation, test] = config.split.sides(&records);
    ensure!(
        !train.is_empty() && !validation.is_empty() && !test.is_empty(),
        "too few patients to split into train, validation and test"
    );
    let (diagnoses, procedures, medications) = vocabulary(&records, &train, config);
    let student_config = MedRecConfig::new(diagnoses.len(), procedures.len(), medications.len())
        .with_d_model(config.student.d_model)
        .with_heads(config.student.heads)
        .with_visit_layers(config.student.visit_layers)
        .with_max_visits(config.student.max_visits)
        .with_dropout(config.student.dropout);
    let spec = MedicationSpec {
        config: student_config,
        diagnoses,
        procedures,
        medications,
        threshold: 0.5,
        max_codes: config.max_codes,
    };
    spec.check("medrec.json").map_err(|e| anyhow!("{e}"))?;
    eprintln!(
        "medrec: {} / {} / {} admissions (train / validation / test, split by patient); vocabulary {} diagnoses, {} procedures, {} drugs",
        train.len(),
        validation.len(),
        test.len(),
        spec.diagnoses.len(),
        spec.procedures.len(),
        spec.medications.len()
    );
    Ok(Cohort {
        records,
        train,
        validation,
        test,
        spec,
    })
}

/// Every admission ready for both models (the teacher's prompt tokenised by a tokenizer trained
/// here when the teacher runs online), and the count of test drugs outside the vocabulary.
fn examples(
    config: &MedRecRunConfig,
    cohort: &Cohort,
    dir: &Path,
) -> Result<(Vec<Example>, usize)> {
    let prompts: Vec<String> = visit_prompts(config, &cohort.records)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let tokenizer = if config.teacher.mode == TeacherMode::Online {
        let texts: Vec<String> = cohort.train.iter().map(|&i| prompts[i].clone()).collect();
        let json =
            crate::pipelines::tokenizer::train(texts.into_iter(), config.teacher.vocab_size)?;
        write_atomic(&dir.join("teacher-tokenizer.json"), json.as_bytes())?;
        Some(TextTokenizer::from_bytes(json.as_bytes())?)
    } else {
        None
    };
    let drugs = cohort.drugs();
    let drug_index: HashMap<&str, usize> = drugs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let offset = cohort.spec.config.offsets()[2] as u32;
    let mut unseen_test_drugs = 0;
    let mut examples = Vec::with_capacity(cohort.records.len());
    for (i, r) in cohort.records.iter().enumerate() {
        let mut target = vec![false; drugs.len()];
        let mut target_ids = Vec::new();
        for d in &drug_labels(r) {
            match drug_index.get(d.as_str()) {
                Some(&j) => {
                    target[j] = true;
                    target_ids.push(offset + j as u32);
                }
                None if cohort.test.contains(&i) => unseen_test_drugs += 1,
                None => {}
            }
        }
        let prompt = match &tokenizer {
            Some(t) => t.encode_at_most(&prompts[i], config.teacher.max_prompt_tokens)?,
            None => Vec::new(),
        };
        examples.push(Example {
            id: r.id.clone(),
            source: r.id.split('-').next().unwrap_or("unknown").to_string(),
            patient: cohort.spec.patient(r).0,
            prompt,
            target,
            target_ids,
            multi_visit: r.visits.len() > 1,
        });
    }
    Ok((examples, unseen_test_drugs))
}

/// The teacher's features and its parameter count: trained here (online), read from a file
/// (offline), or none.
fn teacher(
    config: &MedRecRunConfig,
    cohort: &Cohort,
    examples: &[Example],
    dir: &Path,
    history: &mut Vec<EpochRecord>,
    usage: &mut Vec<Usage>,
) -> Result<(Option<TeacherFeatures>, Option<usize>)> {
    match config.teacher.mode {
        TeacherMode::Online => {
            let meter = Meter::start();
            let (features, params) = train_teacher(
                config,
                examples,
                &cohort.train,
                &cohort.validation,
                cohort.drugs(),
                dir,
                history,
            )?;
            usage.push(meter.finish("teacher (training and features)", history.len()));
            Ok((Some(features), Some(params)))
        }
        TeacherMode::Offline => {
            let (features, parameters) = offline_teacher(config, cohort, examples, usage)?;
            Ok((Some(features), parameters))
        }
        TeacherMode::None => Ok((None, None)),
    }
}

/// An external teacher's features, read; where they hold hidden states alone (a language
/// model's, from `features`), standardised, and a logistic regression on them is the teacher.
fn offline_teacher(
    config: &MedRecRunConfig,
    cohort: &Cohort,
    examples: &[Example],
    usage: &mut Vec<Usage>,
) -> Result<(TeacherFeatures, Option<usize>)> {
    let path = config
        .teacher
        .features
        .as_deref()
        .context("teacher.features")?;
    let mut features = read_features(path)?;
    let missing: Vec<&str> = cohort
        .train
        .iter()
        .chain(&cohort.validation)
        .chain(&cohort.test)
        .map(|&i| examples[i].id.as_str())
        .filter(|id| !features.hidden.contains_key(*id))
        .collect();
    ensure!(
        missing.is_empty(),
        "{}: no teacher features for {} admissions, e.g. {}",
        path.display(),
        missing.len(),
        missing[0]
    );
    if !features.logits.is_empty() {
        return Ok((features, None));
    }
    let ids =
        |rows: &[usize]| -> Vec<String> { rows.iter().map(|&i| examples[i].id.clone()).collect() };
    let targets = |rows: &[usize]| -> Vec<Vec<bool>> {
        rows.iter().map(|&i| examples[i].target.clone()).collect()
    };
    features.standardise(&ids(&cohort.train));
    let meter = Meter::start();
    let c = features.fit_head(
        (&ids(&cohort.train), &targets(&cohort.train)),
        (&ids(&cohort.validation), &targets(&cohort.validation)),
        cohort.drugs(),
    )?;
    eprintln!("medrec: the teacher is a logistic regression on the features (C = {c})");
    usage.push(meter.finish("teacher (logistic regression on the features)", 0));
    let parameters = (features.width + 1) * cohort.drugs().len();
    Ok((features, Some(parameters)))
}

/// Test metrics by group of `test_probs` (the test admissions' scores) cut at `threshold`.
fn score(
    cohort: &Cohort,
    examples: &[Example],
    test_probs: &[f32],
    threshold: f32,
) -> GroupMetrics {
    grouped(
        test_probs,
        &Cohort::truth(examples, &cohort.test),
        cohort.drugs(),
        threshold,
        examples,
        &cohort.test,
    )
}

/// Scores on validation and test admissions, a threshold chosen on validation, test metrics.
fn validated(
    cohort: &Cohort,
    examples: &[Example],
    scores: impl Fn(&[usize]) -> Vec<f32>,
) -> (GroupMetrics, f32) {
    let threshold = best_threshold(
        &scores(&cohort.validation),
        &Cohort::truth(examples, &cohort.validation),
        cohort.drugs(),
        &(0..cohort.validation.len()).collect::<Vec<_>>(),
    );
    (
        score(cohort, examples, &scores(&cohort.test), threshold),
        threshold,
    )
}

/// The baseline a user tries first: every admission gets each drug's share of the training
/// admissions as its score (the most frequent drugs first), cut where validation says.
fn most_frequent(cohort: &Cohort, examples: &[Example]) -> (GroupMetrics, f32) {
    let frequency: Vec<f32> = (0..cohort.drugs().len())
        .map(|j| {
            let given = cohort
                .train
                .iter()
                .filter(|&&i| examples[i].target[j])
                .count();
            given as f32 / cohort.train.len().max(1) as f32
        })
        .collect();
    validated(cohort, examples, |rows| frequency.repeat(rows.len()))
}

/// The teacher's own logits on the same test admissions.
fn teacher_on_test(
    cohort: &Cohort,
    examples: &[Example],
    features: &TeacherFeatures,
) -> (GroupMetrics, f32) {
    validated(cohort, examples, |rows| {
        rows.iter()
            .flat_map(|&i| {
                let row = features.logits.get(&examples[i].id);
                cohort.drugs().iter().map(move |d| {
                    row.and_then(|r| r.get(d))
                        .map_or(0.0, |x| 1.0 / (1.0 + (-x).exp()))
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_puts_the_current_visit_first_and_hides_its_drugs() {
        let mut r = crate::shared::synthetic::cohort(3, 48, 1).remove(0);
        r.visits = vec![
            bedside::record::Visit {
                diagnoses: vec!["icd9:4280".into()],
                procedures: vec![],
                medications: vec!["C03C".into()],
            },
            bedside::record::Visit {
                diagnoses: vec!["icd9:5849".into()],
                procedures: vec![],
                medications: vec!["B01A".into()],
            },
        ];
        let names = HashMap::from([(
            "icd9:4280".to_string(),
            "Congestive heart failure, unspecified".to_string(),
        )]);
        let text = visit_prompt(&r, &names, &HashMap::new(), 16);
        let current = text.find("Current visit: diagnoses: icd9:5849").unwrap();
        let earlier = text
            .find("Visit 1 before: diagnoses: Congestive heart failure, unspecified")
            .unwrap();
        assert!(current < earlier, "{text}");
        assert!(
            text.contains("HIGH-CEILING DIURETICS") || text.to_lowercase().contains("diuretics"),
            "{text}"
        );
        assert!(
            !text.to_lowercase().contains("antithrombotic"),
            "the current visit's drugs are the answer: {text}"
        );
    }

    #[test]
    fn teacher_features_round_trip() {
        let dir = std::env::temp_dir().join(format!("bedside-features-{}", std::process::id()));
        let path = dir.join("f.safetensors");
        let drugs = vec!["B01A".to_string(), "C03C".to_string()];
        write_features(
            &path,
            &["a".into(), "b".into()],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            3,
            &[0.5, -0.5, 1.0, 2.0],
            &drugs,
        )
        .unwrap();
        let f = read_features(&path).unwrap();
        assert_eq!(f.width, 3);
        assert_eq!(f.hidden["b"], [4.0, 5.0, 6.0]);
        assert_eq!(f.logits["a"]["C03C"], -0.5);
        std::fs::remove_dir_all(dir).ok();
    }
}
