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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bedside::knowledge::{atc3_name, atc3_of};
use bedside::model::clinical::{length_mask, pad_ids};
use bedside::model::medrec::{MedRecBatch, MedRecConfig, MedRecModel, Patient};
use bedside::model::t5::{FeedForwardKind, T5, T5Config};
use bedside::recommend::MedicationSpec;
use bedside::record::{PatientRecord, Sex};
use bedside::tokenizer::TextTokenizer;
use burn::grad_clipping::GradientClippingConfig;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::activation::{log_softmax, sigmoid};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::io::{bar, write_atomic};
use crate::medrec_metrics::{MedicationMetrics, best_threshold, evaluate};
use crate::usage::{Meter, Usage};

/// The run configuration (`medrec.toml`); every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MedRecRunConfig {
    /// Cohort JSONL files (PatientRecords with visits and `labels.medications`); without any, the
    /// built-in synthetic cohort of `synthetic` admissions.
    pub cohorts: Vec<PathBuf>,
    pub synthetic: usize,
    /// MIMIC's `d_icd_diagnoses.csv.gz` / `d_icd_procedures.csv.gz`: code names for the
    /// teacher's prompt (codes are written bare without them).
    pub diagnosis_names: Option<PathBuf>,
    pub procedure_names: Option<PathBuf>,
    pub seed: u64,
    /// Shares of patients held out for validation (early stopping, threshold) and test.
    pub validation_fraction: f64,
    pub test_fraction: f64,
    /// Most codes of one type read per visit.
    pub max_codes: usize,
    /// Codes seen fewer times than this in the training split get no vocabulary entry.
    pub min_code_count: usize,
    pub student: StudentConfig,
    pub teacher: TeacherConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    /// Epochs without a better validation PRAUC before stopping.
    pub patience: usize,
    /// Weight of feature distillation (MSE of the projected mediator to the teacher's hidden state).
    pub alpha: f64,
    /// Weight of profile alignment (contrastive, profile ↔ prescribed drug set).
    pub beta: f64,
    /// Temperature of the contrastive loss.
    pub temperature: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudentConfig {
    /// E; the mediator layer is 2E wide.
    pub d_model: usize,
    pub heads: usize,
    pub visit_layers: usize,
    pub max_visits: usize,
    pub dropout: f64,
}

/// Where the LEADER teacher's features come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeacherMode {
    /// The teacher is trained here.
    Online,
    /// Read from `features` (an earlier online run's, or a language model's: `bedside-train
    /// features`).
    Offline,
    /// No distillation: the student alone, for ablations.
    None,
}

impl std::fmt::Display for TeacherMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::None => "none",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherConfig {
    pub mode: TeacherMode,
    /// Offline teacher features (safetensors, see the module documentation).
    pub features: Option<PathBuf>,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub d_ff: usize,
    pub vocab_size: usize,
    pub max_prompt_tokens: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub dropout: f64,
}

impl Default for MedRecRunConfig {
    fn default() -> Self {
        Self {
            cohorts: Vec::new(),
            synthetic: 400,
            diagnosis_names: None,
            procedure_names: None,
            seed: 7,
            validation_fraction: 0.1,
            test_fraction: 0.2,
            max_codes: 64,
            min_code_count: 1,
            student: StudentConfig::default(),
            teacher: TeacherConfig::default(),
            epochs: 40,
            batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            grad_clip: 1.0,
            patience: 8,
            alpha: 0.5,
            beta: 0.1,
            temperature: 0.1,
        }
    }
}

impl Default for StudentConfig {
    fn default() -> Self {
        Self {
            d_model: 64,
            heads: 4,
            visit_layers: 2,
            max_visits: 16,
            dropout: 0.1,
        }
    }
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            mode: TeacherMode::Online,
            features: None,
            d_model: 128,
            layers: 3,
            heads: 4,
            d_ff: 512,
            vocab_size: 3000,
            max_prompt_tokens: 384,
            epochs: 12,
            learning_rate: 1e-3,
            dropout: 0.1,
        }
    }
}

impl MedRecRunConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: Self =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        // paths in the file are relative to it
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        config.cohorts = config.cohorts.iter().map(resolve).collect();
        config.diagnosis_names = config.diagnosis_names.as_ref().map(resolve);
        config.procedure_names = config.procedure_names.as_ref().map(resolve);
        config.teacher.features = config.teacher.features.as_ref().map(resolve);
        config.check()?;
        Ok(config)
    }

    pub fn check(&self) -> Result<()> {
        ensure!(
            self.teacher.mode != TeacherMode::Offline || self.teacher.features.is_some(),
            "teacher.mode = \"offline\" needs teacher.features"
        );
        ensure!(
            self.batch_size >= 2,
            "batch_size must be at least 2 (the contrastive loss needs in-batch negatives)"
        );
        ensure!(
            self.student.d_model.is_multiple_of(self.student.heads),
            "student.d_model must be divisible by student.heads"
        );
        ensure!(
            self.teacher.d_model.is_multiple_of(self.teacher.heads),
            "teacher.d_model must be divisible by teacher.heads"
        );
        ensure!(
            (0.0..0.9).contains(&(self.validation_fraction + self.test_fraction)),
            "validation_fraction + test_fraction must be below 0.9"
        );
        ensure!(
            self.max_codes > 0 && self.student.max_visits > 0 && self.teacher.max_prompt_tokens > 8,
            "max_codes, student.max_visits must be positive, teacher.max_prompt_tokens above 8"
        );
        Ok(())
    }
}

/// ICD code names keyed as records write codes (`icd9:4280`), from a MIMIC dictionary.
fn read_code_names(path: &Path) -> Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    let mut summary = bedside_cohort::Summary::new("icd names");
    bedside_cohort::table::for_each_row(
        path,
        &["icd_code", "icd_version", "long_title"],
        &mut summary,
        |row, _, _| {
            names.insert(format!("icd{}:{}", row[1], row[0]), row[2].to_string());
        },
    )?;
    Ok(names)
}

/// Every admission's visit prompt under `config` (its code names and visit limit), with its id:
/// what the online teacher reads, and what `features` sends to a language model.
pub fn visit_prompts(
    config: &MedRecRunConfig,
    records: &[PatientRecord],
) -> Result<Vec<(String, String)>> {
    let names = |p: &Option<PathBuf>| {
        p.as_deref()
            .map(read_code_names)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let (dx_names, px_names) = (
        names(&config.diagnosis_names)?,
        names(&config.procedure_names)?,
    );
    Ok(records
        .iter()
        .map(|r| {
            let prompt = visit_prompt(r, &dx_names, &px_names, config.student.max_visits);
            (r.id.clone(), prompt)
        })
        .collect())
}

/// LEADER's textualised visit prompt. The current visit comes first so that cutting a long
/// history at the token limit drops the oldest visits, never the current one.
pub fn visit_prompt(
    record: &PatientRecord,
    diagnosis_names: &HashMap<String, String>,
    procedure_names: &HashMap<String, String>,
    max_visits: usize,
) -> String {
    let name = |names: &HashMap<String, String>, code: &String| {
        names.get(code).cloned().unwrap_or_else(|| code.clone())
    };
    let list = |codes: &[String], names: &HashMap<String, String>| {
        if codes.is_empty() {
            "none".to_string()
        } else {
            codes
                .iter()
                .map(|c| name(names, c))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let drugs = |codes: &[String]| {
        if codes.is_empty() {
            "none".to_string()
        } else {
            codes
                .iter()
                .map(|c| atc3_name(c).unwrap_or(c).to_string())
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let sex = match record.demographics.sex {
        Some(Sex::Female) => "female",
        Some(Sex::Male) => "male",
        _ => "unknown sex",
    };
    let age = record
        .demographics
        .age
        .filter(|a| a.is_finite())
        .map_or("unknown age".to_string(), |a| format!("age {}", a.round()));
    let mut text = format!("Patient: {sex}, {age}.");
    let visits = &record.visits[record.visits.len().saturating_sub(max_visits)..];
    if let Some((current, earlier)) = visits.split_last() {
        text.push_str(&format!(
            " Current visit: diagnoses: {}. procedures: {}.",
            list(&current.diagnoses, diagnosis_names),
            list(&current.procedures, procedure_names)
        ));
        for (i, v) in earlier.iter().rev().enumerate() {
            text.push_str(&format!(
                " Visit {} before: diagnoses: {}. procedures: {}. medications: {}.",
                i + 1,
                list(&v.diagnoses, diagnosis_names),
                list(&v.procedures, procedure_names),
                drugs(&v.medications)
            ));
        }
    }
    text.push_str(" Recommend the medications.");
    text
}

/// The teacher: the bedside language model's encoder with a classification layer.
#[derive(Module, Debug)]
pub struct Teacher {
    pub lm: T5,
    pub head: Linear,
}

impl Teacher {
    /// `(logits [b, |M|], pooled hidden state [b, H])`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> (Tensor<2>, Tensor<2>) {
        let [b, width] = ids.dims();
        let mask = length_mask(lengths, b, width, &ids.device());
        let hidden = self.lm.encode(ids, mask.clone());
        let keep = mask.unsqueeze_dim::<3>(2);
        let count = keep.clone().sum_dim(1).squeeze_dim::<2>(1).clamp_min(1.0);
        let pooled = (hidden * keep).sum_dim(1).squeeze_dim::<2>(1) / count;
        (self.head.forward(pooled.clone()), pooled)
    }
}

/// The student with the projection that feature distillation trains alongside it.
#[derive(Module, Debug)]
pub struct Student {
    pub model: MedRecModel,
    pub projection: Linear,
}

/// Teacher features: per admission id, the pooled hidden state and (optionally) the logits.
/// `write_features` leaves the logits out when `drugs` is empty (hidden states alone, as
/// `features` writes them).
pub struct TeacherFeatures {
    pub hidden: HashMap<String, Vec<f32>>,
    pub width: usize,
    /// Logit columns named by ATC-3 code (metadata `medications`), where the file says.
    pub logits: HashMap<String, HashMap<String, f32>>,
}

impl TeacherFeatures {
    /// Each hidden dimension standardised by its mean and spread over the admissions `rows`:
    /// the student's projection regresses onto it, and a language model's raw hidden states can
    /// be orders of magnitude apart between dimensions.
    pub fn standardise(&mut self, rows: &[String]) {
        let n = rows.len().max(1) as f64;
        let (mut mean, mut square) = (vec![0.0f64; self.width], vec![0.0f64; self.width]);
        for h in rows.iter().filter_map(|id| self.hidden.get(id)) {
            for (k, &x) in h.iter().enumerate() {
                mean[k] += f64::from(x) / n;
                square[k] += f64::from(x) * f64::from(x) / n;
            }
        }
        let spread: Vec<f64> = mean
            .iter()
            .zip(&square)
            .map(|(m, s)| (s - m * m).max(0.0).sqrt())
            .map(|s| if s < 1e-6 { 1.0 } else { s })
            .collect();
        for h in self.hidden.values_mut() {
            for (k, x) in h.iter_mut().enumerate() {
                *x = ((f64::from(*x) - mean[k]) / spread[k]) as f32;
            }
        }
    }

    /// The teacher of hidden states alone: one-vs-rest logistic regression from the (already
    /// standardised) hidden state to the drug set, C chosen on the validation admissions
    /// ([`crate::logistic`]); its logits for every admission become `logits`. Returns C.
    pub fn fit_head(
        &mut self,
        train: (&[String], &[Vec<bool>]),
        validation: (&[String], &[Vec<bool>]),
        drugs: &[String],
    ) -> Result<f64> {
        let device = Device::flex().autodiff();
        let matrix = |ids: &[String]| -> Tensor<2> {
            let flat: Vec<f32> = ids
                .iter()
                .flat_map(|id| self.hidden[id].iter().copied())
                .collect();
            Tensor::<1>::from_data(TensorData::new(flat, [ids.len() * self.width]), &device)
                .reshape([ids.len(), self.width])
        };
        let labels = |rows: &[Vec<bool>]| -> Tensor<2, Int> {
            let flat: Vec<i64> = rows.iter().flatten().map(|&t| i64::from(t)).collect();
            Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * drugs.len()]), &device)
                .reshape([rows.len(), drugs.len()])
        };
        let chosen = crate::logistic::regularisation_path(
            &matrix(train.0),
            &labels(train.1),
            &matrix(validation.0),
            &labels(validation.1),
        )?;
        let ids: Vec<String> = self.hidden.keys().cloned().collect();
        let logits: Vec<f32> = chosen
            .model
            .forward(matrix(&ids))
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        self.logits = ids
            .iter()
            .zip(logits.chunks_exact(drugs.len()))
            .map(|(id, row)| {
                (
                    id.clone(),
                    drugs.iter().cloned().zip(row.iter().copied()).collect(),
                )
            })
            .collect();
        Ok(chosen.c)
    }
}

pub fn write_features(
    path: &Path,
    ids: &[String],
    hidden: &[f32],
    width: usize,
    logits: &[f32],
    drugs: &[String],
) -> Result<()> {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (h, l) = (bytes(hidden), bytes(logits));
    let mut views = vec![(
        "hidden",
        TensorView::new(Dtype::F32, vec![ids.len(), width], &h)?,
    )];
    let mut metadata = HashMap::from([("ids".to_string(), serde_json::to_string(ids)?)]);
    if !drugs.is_empty() {
        views.push((
            "logits",
            TensorView::new(Dtype::F32, vec![ids.len(), drugs.len()], &l)?,
        ));
        metadata.insert("medications".to_string(), serde_json::to_string(drugs)?);
    }
    write_atomic(path, &safetensors::serialize(views, Some(metadata))?)
}

pub fn read_features(path: &Path) -> Result<TeacherFeatures> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let where_ = || path.display().to_string();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).with_context(where_)?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes).with_context(where_)?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let ids: Vec<String> = serde_json::from_str(meta.get("ids").ok_or_else(|| {
        anyhow!(
            "{}: metadata has no \"ids\" (a JSON array of admission ids)",
            where_()
        )
    })?)
    .with_context(|| format!("{}: metadata \"ids\"", where_()))?;
    let floats = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = tensors
            .tensor(name)
            .with_context(|| format!("{}: tensor {name:?}", where_()))?;
        ensure!(
            view.dtype() == safetensors::Dtype::F32,
            "{}: tensor {name:?} is {:?}, F32 expected",
            where_(),
            view.dtype()
        );
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((view.shape().to_vec(), values))
    };
    let (shape, hidden) = floats("hidden")?;
    ensure!(
        shape.len() == 2 && shape[0] == ids.len() && shape[1] > 0,
        "{}: hidden is {shape:?}, [{} ids, H] expected",
        where_(),
        ids.len()
    );
    let width = shape[1];
    ensure!(
        hidden.iter().all(|x| x.is_finite()),
        "{}: hidden holds NaN or infinite values",
        where_()
    );
    let mut logits = HashMap::new();
    if let Some(drugs) = meta.get("medications") {
        let drugs: Vec<String> = serde_json::from_str(drugs)
            .with_context(|| format!("{}: metadata \"medications\"", where_()))?;
        let (shape, values) = floats("logits")?;
        ensure!(
            shape == [ids.len(), drugs.len()],
            "{}: logits is {shape:?}, [{}, {}] expected",
            where_(),
            ids.len(),
            drugs.len()
        );
        for (i, id) in ids.iter().enumerate() {
            let row = &values[i * drugs.len()..(i + 1) * drugs.len()];
            logits.insert(
                id.clone(),
                drugs.iter().cloned().zip(row.iter().copied()).collect(),
            );
        }
    }
    let hidden = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), hidden[i * width..(i + 1) * width].to_vec()))
        .collect();
    Ok(TeacherFeatures {
        hidden,
        width,
        logits,
    })
}

/// One admission, ready for both models.
struct Example {
    id: String,
    source: String,
    patient: Patient,
    prompt: Vec<u32>,
    /// Multi-hot over the drug vocabulary.
    target: Vec<bool>,
    /// Shared-vocabulary ids of the prescribed drugs (profile alignment).
    target_ids: Vec<u32>,
    multi_visit: bool,
}

/// The drug labels of a record at ATC level 3 (known classes only).
fn drug_labels(record: &PatientRecord) -> BTreeSet<String> {
    record
        .labels
        .iter()
        .flat_map(|l| &l.medications)
        .filter_map(|m| atc3_of(m))
        .map(str::to_string)
        .collect()
}

/// Patients split into train / validation / test by a seeded shuffle of their keys.
fn split(records: &[PatientRecord], config: &MedRecRunConfig) -> [Vec<usize>; 3] {
    let key = |r: &PatientRecord| r.patient.clone().unwrap_or_else(|| r.id.clone());
    let mut keys: Vec<String> = records
        .iter()
        .map(key)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    keys.shuffle(&mut StdRng::seed_from_u64(config.seed));
    let n = keys.len() as f64;
    let test = (n * config.test_fraction).round() as usize;
    let validation = (n * config.validation_fraction).round() as usize;
    let side: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.as_str(),
                if i < test {
                    2
                } else if i < test + validation {
                    1
                } else {
                    0
                },
            )
        })
        .collect();
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for (i, r) in records.iter().enumerate() {
        out[side.get(key(r).as_str()).copied().unwrap_or(0)].push(i);
    }
    out
}

/// The code vocabularies of the training split.
fn vocabulary(
    records: &[PatientRecord],
    train: &[usize],
    config: &MedRecRunConfig,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut counts: [BTreeMap<String, usize>; 3] = Default::default();
    for &i in train {
        let r = &records[i];
        for v in &r.visits {
            for c in &v.diagnoses {
                *counts[0].entry(c.trim().to_string()).or_default() += 1;
            }
            for c in &v.procedures {
                *counts[1].entry(c.trim().to_string()).or_default() += 1;
            }
            for c in v.medications.iter().filter_map(|m| atc3_of(m)) {
                *counts[2].entry(c.to_string()).or_default() += 1;
            }
        }
        for c in drug_labels(r) {
            *counts[2].entry(c).or_default() += 1;
        }
    }
    let [d, p, m] = counts.map(|c| {
        c.into_iter()
            .filter(|(_, n)| *n >= config.min_code_count)
            .map(|(k, _)| k)
            .collect()
    });
    (d, p, m)
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

/// Metrics of one model on the test split: overall, single- and multi-visit, per source.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    pub overall: MedicationMetrics,
    pub single_visit: MedicationMetrics,
    pub multi_visit: MedicationMetrics,
    pub by_source: BTreeMap<String, MedicationMetrics>,
}

fn grouped(
    probs: &[f32],
    targets: &[bool],
    drugs: &[String],
    threshold: f32,
    examples: &[Example],
    rows: &[usize],
) -> GroupMetrics {
    // `probs`/`targets` are over `rows` in order
    let local: Vec<usize> = (0..rows.len()).collect();
    let pick = |f: &dyn Fn(&Example) -> bool| {
        local
            .iter()
            .copied()
            .filter(|&i| f(&examples[rows[i]]))
            .collect::<Vec<_>>()
    };
    let sources: BTreeSet<&str> = rows.iter().map(|&r| examples[r].source.as_str()).collect();
    GroupMetrics {
        overall: evaluate(probs, targets, drugs, threshold, &local),
        single_visit: evaluate(probs, targets, drugs, threshold, &pick(&|e| !e.multi_visit)),
        multi_visit: evaluate(probs, targets, drugs, threshold, &pick(&|e| e.multi_visit)),
        by_source: sources
            .into_iter()
            .map(|s| {
                (
                    s.to_string(),
                    evaluate(probs, targets, drugs, threshold, &pick(&|e| e.source == s)),
                )
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub model: &'static str,
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_prauc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MedRecReport {
    pub admissions: [usize; 3],
    pub patients_test: usize,
    pub vocabulary: [usize; 3],
    /// Test-split drug labels outside the vocabulary (they count as misses).
    pub unseen_test_drugs: usize,
    pub teacher_mode: TeacherMode,
    pub threshold: f32,
    pub student: GroupMetrics,
    /// The teacher on the same test admissions, where it has logits over the same drugs.
    pub teacher: Option<GroupMetrics>,
    pub teacher_threshold: Option<f32>,
    pub student_parameters: usize,
    pub teacher_parameters: Option<usize>,
    pub history: Vec<EpochRecord>,
    /// Wall time and peak memory of the teacher and the student.
    pub usage: Vec<Usage>,
    pub seconds: f64,
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
    let [train, validation, test] = split(&records, config);
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
        let json = crate::tokenizer::train(texts.into_iter(), config.teacher.vocab_size)?;
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
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip as f32)))
        .init();
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
            let grads = GradientsParams::from_grads(loss.backward(), &student);
            student = optimizer.step(
                cosine(config.learning_rate, step, total_steps),
                student,
                grads,
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
        if prauc > best_prauc {
            (best, best_prauc, stale) = (student.valid(), prauc, 0);
        } else {
            stale += 1;
            if stale >= config.patience {
                eprintln!("student: no better validation PRAUC for {stale} epochs; stopping");
                break;
            }
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

    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow!("serialising the student: {e}"))?;
    write_atomic(
        &dir.join("medrec.safetensors"),
        &store
            .get_bytes()
            .map_err(|e| anyhow!("serialising the student: {e}"))?,
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
    crate::schedule::warmup_cosine(peak, step, (total / 20).max(1), total)
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

/// Trains the teacher (BCE), keeps its best validation epoch and returns its features for every
/// admission, also written to `teacher-features.safetensors`.
fn train_teacher(
    config: &MedRecRunConfig,
    examples: &[Example],
    train: &[usize],
    validation: &[usize],
    drugs: &[String],
    dir: &Path,
    history: &mut Vec<EpochRecord>,
) -> Result<(TeacherFeatures, usize)> {
    let t = &config.teacher;
    let m = drugs.len();
    let device = Device::flex().autodiff();
    device.seed(config.seed.wrapping_add(1));
    let lm_config = T5Config::new(t.vocab_size)
        .with_d_model(t.d_model)
        .with_d_kv(t.d_model / t.heads)
        .with_d_ff(t.d_ff)
        .with_num_layers(t.layers)
        .with_num_decoder_layers(0)
        .with_num_heads(t.heads)
        .with_feed_forward(FeedForwardKind::GatedGelu)
        .with_dropout_rate(t.dropout);
    let mut teacher = Teacher {
        lm: lm_config.init(&device),
        head: LinearConfig::new(t.d_model, m).init(&device),
    };
    let parameters = teacher.num_params();
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip as f32)))
        .init();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let per_epoch = train.len().div_ceil(config.batch_size);
    let (mut best, mut best_prauc, mut step) = (teacher.valid(), -1.0, 0);
    let truth: Vec<bool> = validation
        .iter()
        .flat_map(|&i| examples[i].target.clone())
        .collect();
    for epoch in 0..t.epochs {
        let mut order = train.to_vec();
        order.shuffle(&mut StdRng::seed_from_u64(
            config.seed.wrapping_add(7919) ^ epoch as u64,
        ));
        let progress = bar(
            per_epoch,
            show_progress(),
            format!("teacher epoch {}/{}", epoch + 1, t.epochs),
        );
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(config.batch_size) {
            let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let prompts: Vec<Vec<u32>> = batch.iter().map(|e| e.prompt.clone()).collect();
            let (ids, lengths) = pad_ids(&prompts, &device);
            let (logits, _) = teacher.forward(ids, &lengths);
            let loss = bce.forward(logits, targets_tensor(&batch, m, &device).int());
            let value = loss.clone().into_scalar::<f64>();
            ensure!(
                value.is_finite(),
                "teacher training diverged: loss {value} at epoch {}",
                epoch + 1
            );
            let grads = GradientsParams::from_grads(loss.backward(), &teacher);
            teacher = optimizer.step(
                cosine(t.learning_rate, step, per_epoch * t.epochs),
                teacher,
                grads,
            );
            step += 1;
            loss_sum += value;
            batches += 1;
            progress.inc(1);
        }
        progress.finish_and_clear();
        let (_, logits) = teacher_outputs(&teacher.valid(), examples, validation)?;
        let probs: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let prauc = evaluate(
            &probs,
            &truth,
            drugs,
            0.5,
            &(0..validation.len()).collect::<Vec<_>>(),
        )
        .prauc;
        let train_loss = loss_sum / f64::from(batches.max(1));
        tracing::info!(
            "teacher epoch {}: train loss {train_loss:.4}, validation PRAUC {prauc:.3}",
            epoch + 1
        );
        history.push(EpochRecord {
            model: "teacher",
            epoch,
            train_loss,
            validation_prauc: prauc,
        });
        if prauc > best_prauc {
            (best, best_prauc) = (teacher.valid(), prauc);
        }
    }
    let all: Vec<usize> = (0..examples.len()).collect();
    let (hidden, logits) = teacher_outputs(&best, examples, &all)?;
    let ids: Vec<String> = examples.iter().map(|e| e.id.clone()).collect();
    write_features(
        &dir.join("teacher-features.safetensors"),
        &ids,
        &hidden,
        t.d_model,
        &logits,
        drugs,
    )?;
    let features = TeacherFeatures {
        hidden: ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    hidden[i * t.d_model..(i + 1) * t.d_model].to_vec(),
                )
            })
            .collect(),
        width: t.d_model,
        logits: ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    drugs
                        .iter()
                        .cloned()
                        .zip(logits[i * m..(i + 1) * m].iter().copied())
                        .collect(),
                )
            })
            .collect(),
    };
    Ok((features, parameters))
}

/// The teacher's pooled hidden states and logits for `rows`, row-major.
fn teacher_outputs(
    teacher: &Teacher,
    examples: &[Example],
    rows: &[usize],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let device = Device::flex();
    let teacher = teacher.clone().to_device(&device);
    let (mut hidden, mut logits) = (Vec::new(), Vec::new());
    for chunk in rows.chunks(32) {
        let prompts: Vec<Vec<u32>> = chunk.iter().map(|&i| examples[i].prompt.clone()).collect();
        let (ids, lengths) = pad_ids(&prompts, &device);
        let (l, h) = teacher.forward(ids, &lengths);
        hidden.extend(floats_of(h)?);
        logits.extend(floats_of(l)?);
    }
    Ok((hidden, logits))
}

/// training.png: each model's training loss and validation PRAUC by epoch.
fn plot_history(history: &[EpochRecord], path: &Path) -> Result<()> {
    use crate::plots::{Axis, Line, line_chart, padded};
    let mut lines = Vec::new();
    for model in ["teacher", "student"] {
        let epochs: Vec<&EpochRecord> = history.iter().filter(|e| e.model == model).collect();
        if !epochs.is_empty() {
            lines.push(Line::new(
                format!("{model}: training loss"),
                epochs
                    .iter()
                    .map(|e| ((e.epoch + 1) as f64, e.train_loss))
                    .collect(),
            ));
            lines.push(Line::new(
                format!("{model}: validation PRAUC"),
                epochs
                    .iter()
                    .map(|e| ((e.epoch + 1) as f64, e.validation_prauc))
                    .collect(),
            ));
        }
    }
    let x = Axis {
        label: "epoch",
        range: padded(history.iter().map(|e| (e.epoch + 1) as f64)),
    };
    let y = Axis {
        label: "",
        range: padded(
            lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .chain([0.0]),
        ),
    };
    line_chart(
        path,
        "Medication recommendation: training and validation",
        x,
        y,
        &lines,
        false,
    )
}

fn markdown(report: &MedRecReport) -> String {
    let row = |name: &str, m: &MedicationMetrics| {
        format!(
            "| {name} | {} | {:.3} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.3} | {:.2} |\n",
            m.n,
            m.jaccard,
            m.jaccard_ci95.0,
            m.jaccard_ci95.1,
            m.prauc,
            m.f1,
            m.ddi_rate,
            m.mean_drugs
        )
    };
    let mut text = format!(
        "Medication recommendation (LEADER), test split: {} admissions of {} patients; teacher {}; threshold {:.2}\n\n\
         | model / group | n | Jaccard (95% CI) | PRAUC | F1 | DDI rate | drugs |\n|---|---|---|---|---|---|---|\n",
        report.admissions[2], report.patients_test, report.teacher_mode, report.threshold
    );
    let mut groups = |model: &str, g: &GroupMetrics| {
        text.push_str(&row(&format!("{model} overall"), &g.overall));
        text.push_str(&row(&format!("{model} single-visit"), &g.single_visit));
        text.push_str(&row(&format!("{model} multi-visit"), &g.multi_visit));
        for (source, m) in &g.by_source {
            text.push_str(&row(&format!("{model} {source}"), m));
        }
    };
    groups("student", &report.student);
    if let Some(t) = &report.teacher {
        groups("teacher", t);
    }
    text + &crate::usage::markdown(&report.usage)
}

/// `bedside-train medrec --print-config`.
pub fn default_config_toml() -> Result<String> {
    Ok(toml::to_string(&MedRecRunConfig::default())?)
}

/// Reads the records of a run's cohorts (or the synthetic cohort).
pub fn records(
    config: &MedRecRunConfig,
    read: impl Fn(&PathBuf) -> Result<Vec<PatientRecord>>,
) -> Result<Vec<PatientRecord>> {
    if config.cohorts.is_empty() {
        return Ok(crate::synthetic::cohort(config.synthetic, 48, config.seed));
    }
    let mut out = Vec::new();
    for path in &config.cohorts {
        out.extend(read(path)?);
    }
    if out.is_empty() {
        bail!("the cohorts hold no admissions");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_puts_the_current_visit_first_and_hides_its_drugs() {
        let mut r = crate::synthetic::cohort(3, 48, 1).remove(0);
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

    #[test]
    fn the_split_keeps_a_patients_admissions_together() {
        let mut records = crate::synthetic::cohort(40, 48, 3);
        for (i, r) in records.iter_mut().enumerate() {
            r.patient = Some(format!("p{}", i / 4));
        }
        let config = MedRecRunConfig::default();
        let [train, validation, test] = split(&records, &config);
        let side = |rows: &[usize]| {
            rows.iter()
                .map(|&i| records[i].patient.clone().unwrap())
                .collect::<BTreeSet<_>>()
        };
        let (a, b, c) = (side(&train), side(&validation), side(&test));
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
        assert_eq!(train.len() + validation.len() + test.len(), 40);
        assert_eq!(c.len(), 2, "20% of 10 patients");
    }
}
