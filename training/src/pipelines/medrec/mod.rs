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
//! The training loop of the student is here; `config` (medrec.toml), `data` (the split by patient,
//! vocabularies, examples), `prompt` (the teacher's visit prompt), `teacher` (the teacher, its
//! training and its features) and `report` (metrics by group, report.json/.md, the curve) hold
//! the rest.

mod config;
mod data;
mod prompt;
mod report;
mod teacher;

pub use config::*;
pub use data::*;
pub use prompt::*;
pub use report::*;
pub use teacher::*;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use bedside::model::medrec::{MedRecBatch, MedRecConfig, MedRecModel, Patient};
use bedside::recommend::MedicationSpec;
use bedside::record::PatientRecord;
use bedside::tokenizer::TextTokenizer;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::measure::medrec_metrics::{best_threshold, evaluate};
use crate::measure::usage::Meter;
use crate::shared::fit;
use crate::shared::io::{bar, write_atomic};

/// The student with the projection that feature distillation trains alongside it.
#[derive(Module, Debug)]
pub struct Student {
    pub model: MedRecModel,
    pub projection: Linear,
}

fn show_progress() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn floats_of(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("{e:?}"))
}

fn targets_tensor(examples: &[&Example], m: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = examples
        .iter()
        .flat_map(|e| e.target.iter().map(|&t| f32::from(u8::from(t))))
        .collect();
    Tensor::<1>::from_data(TensorData::new(values, [examples.len() * m]), device)
        .reshape([examples.len(), m])
}

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
    let (diagnoses, procedures, drugs) = vocabulary(&records, &train, config);
    let m = drugs.len();
    let student_config = MedRecConfig::new(diagnoses.len(), procedures.len(), m)
        .with_d_model(config.student.d_model)
        .with_heads(config.student.heads)
        .with_visit_layers(config.student.visit_layers)
        .with_max_visits(config.student.max_visits)
        .with_dropout(config.student.dropout);
    let mut spec = MedicationSpec {
        config: student_config.clone(),
        diagnoses,
        procedures,
        medications: drugs.clone(),
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
        m
    );

    // the teacher's prompts and tokenizer
    let prompts: Vec<String> = visit_prompts(config, &records)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let online = config.teacher.mode == TeacherMode::Online;
    let tokenizer = if online {
        let texts: Vec<String> = train.iter().map(|&i| prompts[i].clone()).collect();
        let json =
            crate::pipelines::tokenizer::train(texts.into_iter(), config.teacher.vocab_size)?;
        write_atomic(&dir.join("teacher-tokenizer.json"), json.as_bytes())?;
        Some(TextTokenizer::from_bytes(json.as_bytes())?)
    } else {
        None
    };
    let drug_index: HashMap<&str, usize> = drugs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let offset = student_config.offsets()[2] as u32;
    let mut unseen_test_drugs = 0;
    let mut examples = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let labels = drug_labels(r);
        let mut target = vec![false; m];
        let mut target_ids = Vec::new();
        for d in &labels {
            match drug_index.get(d.as_str()) {
                Some(&j) => {
                    target[j] = true;
                    target_ids.push(offset + j as u32);
                }
                None if test.contains(&i) => unseen_test_drugs += 1,
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
            patient: spec.patient(r).0,
            prompt,
            target,
            target_ids,
            multi_visit: r.visits.len() > 1,
        });
    }
    let (mut history, mut usage) = (Vec::new(), Vec::new());

    // 1. the teacher (online: trained here; offline: read, and where the file has no logits, a
    // logistic regression on its hidden states is the teacher)
    let (features, teacher_parameters) = match config.teacher.mode {
        TeacherMode::Online => {
            let meter = Meter::start();
            let (features, params) = train_teacher(
                config,
                &examples,
                &train,
                &validation,
                &drugs,
                dir,
                &mut history,
            )?;
            usage.push(meter.finish("teacher (training and features)", history.len()));
            (Some(features), Some(params))
        }
        TeacherMode::Offline => {
            let path = config
                .teacher
                .features
                .as_deref()
                .context("teacher.features")?;
            let mut features = read_features(path)?;
            let missing: Vec<&str> = train
                .iter()
                .chain(&validation)
                .chain(&test)
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
            let ids = |rows: &[usize]| -> Vec<String> {
                rows.iter().map(|&i| examples[i].id.clone()).collect()
            };
            // hidden states alone (a language model's, from `features`): standardised, and a
            // logistic regression on them is the teacher
            let parameters = if features.logits.is_empty() {
                features.standardise(&ids(&train));
                let meter = Meter::start();
                let targets = |rows: &[usize]| -> Vec<Vec<bool>> {
                    rows.iter().map(|&i| examples[i].target.clone()).collect()
                };
                let c = features.fit_head(
                    (&ids(&train), &targets(&train)),
                    (&ids(&validation), &targets(&validation)),
                    &drugs,
                )?;
                eprintln!("medrec: the teacher is a logistic regression on the features (C = {c})");
                usage.push(meter.finish("teacher (logistic regression on the features)", 0));
                Some((features.width + 1) * drugs.len())
            } else {
                None
            };
            (Some(features), parameters)
        }
        TeacherMode::None => (None, None),
    };

    // 2. the student
    let (meter, teacher_epochs) = (Meter::start(), history.len());
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let width = features.as_ref().map_or(1, |f| f.width);
    let mut student = Student {
        model: student_config.init(&device),
        projection: LinearConfig::new(2 * config.student.d_model, width).init(&device),
    };
    let mut optimizer = fit::adamw(config.weight_decay, config.grad_clip);
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let (mut best, mut best_prauc, mut stale) = (student.valid(), -1.0, 0);
    let per_epoch = train.len().div_ceil(config.batch_size);
    let total_steps = per_epoch * config.epochs;
    let mut step = 0;
    for epoch in 0..config.epochs {
        let mut order = train.clone();
        order.shuffle(&mut StdRng::seed_from_u64(config.seed ^ (epoch as u64 + 1)));
        let progress = bar(
            per_epoch,
            show_progress(),
            format!("student epoch {}/{}", epoch + 1, config.epochs),
        );
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(config.batch_size) {
            let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let patients: Vec<Patient> = batch.iter().map(|e| e.patient.clone()).collect();
            let input = MedRecBatch::new(
                &patients,
                config.student.max_visits,
                config.max_codes,
                &device,
            );
            let out = student.model.forward(&input);
            let targets = targets_tensor(&batch, m, &device);
            let mut loss = bce.forward(out.logits, targets.int());
            if let (Some(f), true) = (&features, config.alpha > 0.0) {
                let hidden: Vec<f32> = batch
                    .iter()
                    .flat_map(|e| {
                        f.hidden
                            .get(&e.id)
                            .cloned()
                            .unwrap_or_else(|| vec![0.0; f.width])
                    })
                    .collect();
                let hidden = Tensor::<1>::from_data(
                    TensorData::new(hidden, [batch.len() * f.width]),
                    &device,
                )
                .reshape([batch.len(), f.width]);
                let projected = student.projection.forward(out.mediator);
                loss = loss + (projected - hidden).powi_scalar(2).mean() * config.alpha;
            }
            if config.beta > 0.0 && batch.len() > 1 {
                loss = loss
                    + profile_alignment(
                        &student.model,
                        out.profile,
                        &batch,
                        config.temperature,
                        &device,
                    ) * config.beta;
            }
            let value = loss.clone().into_scalar::<f64>();
            ensure!(
                value.is_finite(),
                "student training diverged: loss {value} at epoch {}",
                epoch + 1
            );
            student = fit::descend(
                &mut optimizer,
                student,
                loss,
                cosine(config.learning_rate, step, total_steps),
            );
            step += 1;
            loss_sum += value;
            batches += 1;
            progress.inc(1);
        }
        progress.finish_and_clear();
        let probs = student_probs(&student.valid().model, &examples, &validation, config)?;
        let truth: Vec<bool> = validation
            .iter()
            .flat_map(|&i| examples[i].target.clone())
            .collect();
        let local: Vec<usize> = (0..validation.len()).collect();
        // threshold-free, so that early epochs with low probabilities are compared fairly
        let prauc = evaluate(&probs, &truth, &drugs, 0.5, &local).prauc;
        let train_loss = loss_sum / f64::from(batches.max(1));
        tracing::info!(
            "student epoch {}: train loss {train_loss:.4}, validation PRAUC {prauc:.3}",
            epoch + 1
        );
        history.push(EpochRecord {
            model: "student",
            epoch,
            train_loss,
            validation_prauc: prauc,
        });
        if fit::improved(prauc, &mut best_prauc, &mut stale) {
            best = student.valid();
        } else if stale >= config.patience {
            eprintln!("student: no better validation PRAUC for {stale} epochs; stopping");
            break;
        }
    }
    let model = best.model;
    usage.push(meter.finish("student", history.len() - teacher_epochs));
    let probs = student_probs(&model, &examples, &validation, config)?;
    let truth: Vec<bool> = validation
        .iter()
        .flat_map(|&i| examples[i].target.clone())
        .collect();
    spec.threshold = best_threshold(
        &probs,
        &truth,
        &drugs,
        &(0..validation.len()).collect::<Vec<_>>(),
    );
    let test_probs = student_probs(&model, &examples, &test, config)?;
    let test_truth: Vec<bool> = test
        .iter()
        .flat_map(|&i| examples[i].target.clone())
        .collect();
    let student_metrics = grouped(
        &test_probs,
        &test_truth,
        &drugs,
        spec.threshold,
        &examples,
        &test,
    );

    // the baseline a user tries first: every admission gets each drug's share of the training
    // admissions as its score (the most frequent drugs first), cut where validation says
    let frequency: Vec<f32> = (0..m)
        .map(|j| {
            let given = train.iter().filter(|&&i| examples[i].target[j]).count();
            given as f32 / train.len().max(1) as f32
        })
        .collect();
    let repeated = |rows: usize| -> Vec<f32> { frequency.repeat(rows) };
    let baseline_threshold = best_threshold(
        &repeated(validation.len()),
        &truth,
        &drugs,
        &(0..validation.len()).collect::<Vec<_>>(),
    );
    let baseline = grouped(
        &repeated(test.len()),
        &test_truth,
        &drugs,
        baseline_threshold,
        &examples,
        &test,
    );

    // the teacher on the same test admissions
    let (teacher_metrics, teacher_threshold) = match &features {
        Some(f) if !f.logits.is_empty() => {
            let logits_of = |rows: &[usize]| -> Vec<f32> {
                rows.iter()
                    .flat_map(|&i| {
                        let row = f.logits.get(&examples[i].id);
                        drugs.iter().map(move |d| {
                            row.and_then(|r| r.get(d))
                                .map_or(0.0, |x| 1.0 / (1.0 + (-x).exp()))
                        })
                    })
                    .collect()
            };
            let threshold = best_threshold(
                &logits_of(&validation),
                &truth,
                &drugs,
                &(0..validation.len()).collect::<Vec<_>>(),
            );
            (
                Some(grouped(
                    &logits_of(&test),
                    &test_truth,
                    &drugs,
                    threshold,
                    &examples,
                    &test,
                )),
                Some(threshold),
            )
        }
        _ => (None, None),
    };

    write_atomic(
        &dir.join("medrec.safetensors"),
        &fit::weights_bytes(&model, "the student")?,
    )?;
    write_atomic(
        &dir.join("medrec.json"),
        serde_json::to_string_pretty(&spec)?.as_bytes(),
    )?;
    let patients_test = test
        .iter()
        .map(|&i| {
            records[i]
                .patient
                .clone()
                .unwrap_or_else(|| records[i].id.clone())
        })
        .collect::<BTreeSet<_>>()
        .len();
    let report = MedRecReport {
        admissions: [train.len(), validation.len(), test.len()],
        patients_test,
        vocabulary: [spec.diagnoses.len(), spec.procedures.len(), m],
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

/// Symmetric InfoNCE between profile embeddings and the embeddings of the prescribed drug sets.
fn profile_alignment(
    model: &MedRecModel,
    profile: Tensor<2>,
    batch: &[&Example],
    temperature: f64,
    device: &Device,
) -> Tensor<1> {
    let width = batch
        .iter()
        .map(|e| e.target_ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let ids: Vec<i64> = batch
        .iter()
        .flat_map(|e| (0..width).map(move |k| e.target_ids.get(k).map_or(0, |&x| i64::from(x))))
        .collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch.len() * width]), device)
        .reshape([batch.len(), width]);
    let drugs = model.drug_set_embedding(ids);
    let normalise = |x: Tensor<2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-6);
        x / norm
    };
    let similarity = normalise(profile).matmul(normalise(drugs).transpose()) / temperature;
    let n = batch.len();
    let diagonal = Tensor::<1, Int>::arange(0..n as i64, device).reshape([n, 1]);
    let forward = -log_softmax(similarity.clone(), 1)
        .gather(1, diagonal.clone())
        .mean();
    let backward = -log_softmax(similarity.transpose(), 1)
        .gather(1, diagonal)
        .mean();
    (forward + backward) / 2.0
}

/// Warm-up over the first 5 % of the steps, then cosine decay.
fn cosine(peak: f64, step: usize, total: usize) -> f64 {
    fit::warmup_cosine(peak, step, (total / 20).max(1), total)
}

fn student_probs(
    model: &MedRecModel,
    examples: &[Example],
    rows: &[usize],
    config: &MedRecRunConfig,
) -> Result<Vec<f32>> {
    let device = Device::flex();
    let model = model.clone().to_device(&device);
    let mut out = Vec::new();
    for chunk in rows.chunks(64) {
        let patients: Vec<Patient> = chunk.iter().map(|&i| examples[i].patient.clone()).collect();
        let input = MedRecBatch::new(
            &patients,
            config.student.max_visits,
            config.max_codes,
            &device,
        );
        out.extend(floats_of(sigmoid(model.forward(&input).logits))?);
    }
    Ok(out)
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
