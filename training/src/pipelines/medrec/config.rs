//! The run configuration (`medrec.toml`): the split, the student, the teacher and training,
//! every field with a default.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};

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
    /// Most codes of one type read per visit.
    pub max_codes: usize,
    /// Codes seen fewer times than this in the training split get no vocabulary entry.
    pub min_code_count: usize,
    /// The patient split, the one `distill` uses: validation patients (early stopping, the
    /// threshold) and test patients, the same MIMIC-IV patients as the clinical model's.
    pub split: crate::shared::split::PatientSplit,
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
            max_codes: 64,
            min_code_count: 1,
            split: Default::default(),
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
        self.split.check()?;
        ensure!(
            self.max_codes > 0 && self.student.max_visits > 0 && self.teacher.max_prompt_tokens > 8,
            "max_codes, student.max_visits must be positive, teacher.max_prompt_tokens above 8"
        );
        Ok(())
    }
}

/// `bedside-train medrec --print-config`.
pub fn default_config_toml() -> Result<String> {
    Ok(toml::to_string(&MedRecRunConfig::default())?)
}

/// Progress bars where stderr is a terminal.
pub(super) fn show_progress() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Warm-up over the first 5 % of the steps, then cosine decay.
pub(super) fn cosine(peak: f64, step: usize, total: usize) -> f64 {
    crate::shared::fit::warmup_cosine(peak, step, (total / 20).max(1), total)
}
