//! A bundle's `manifest.json`: what model it holds, against which knowledge base, in which
//! dtype, and each file's size and sha256. Parsing checks, before any tensor is built, that the
//! manifest is of a format this library reads and that it was made against the same knowledge
//! base.

use crate::calibration::{HeadCalibration, LogitMap};
use crate::error::{BedsideError, Result};
use crate::knowledge::{CHANNELS, PHENOTYPES, knowledge_hash};
use crate::model::mortality::MORTALITY_LABEL;
use crate::model::{ClinicalModelConfig, LabPhenotypeModelConfig, MortalityModelConfig, bounds};
use crate::recommend::MedicationSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const BUNDLE_FORMAT: &str = "bedside-bundle";
pub const BUNDLE_FORMAT_VERSION: u32 = 1;
use crate::files::{MANIFEST_FILE, MEDREC_FILE, TOKENIZER_FILE};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub model: ModelSpec,
    /// Phenotype names, in the order of the model's outputs.
    pub labels: Vec<String>,
    /// Channel names, in the order of the model's input rows.
    pub channels: Vec<String>,
    pub knowledge_hash: String,
    pub dtype: String,
    /// Probability at or above which a phenotype is reported as diagnosed.
    pub threshold: f32,
    /// The head's temperature: logits are divided by it before the sigmoid. Bundles from before
    /// [`Manifest::calibration`] carry it; absent with it: 1. In [0.05, 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The head's calibration, fitted on validation records by `bedside-train distill`: a map
    /// of the logits for records with notes and one for records without (labs alone, as most
    /// real feeds are). It replaces `temperature` where both are present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<HeadCalibration>,
    pub files: BTreeMap<String, FileEntry>,
    pub created_by: String,
    /// The medication recommender (LEADER's student), where the bundle has one: its weights are
    /// `medrec.safetensors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medications: Option<MedicationSpec>,
    /// Clinical bundles: the prompt length (tokens) the model was trained with; prompts are cut
    /// there at inference too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<usize>,
    /// Phenotype probabilities of [`crate::self_test::self_test_record`] on the native CPU at export:
    /// the known answer a freshly loaded engine checks its backend against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_test: Option<Vec<f32>>,
    /// What training measured, as `bedside-train` wrote it (free-form, for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
    /// What the model was trained on and how it did on held-out data, for people
    /// ([`crate::model_card`]); a bundle without one loads, and the page says it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_card: Option<crate::model_card::ModelCard>,
}

/// The element type of a bundle's weights, as the manifest's `dtype` spells it ("f32", "f16").
/// The manifest keeps the spelling so that an unknown one is reported as incompatible by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsDtype {
    F32,
    F16,
}

impl WeightsDtype {
    /// The manifest's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }

    /// The dtype a manifest names; `None` for any other spelling.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::F32, Self::F16]
            .into_iter()
            .find(|d| d.name() == name)
    }

    pub(super) fn safetensors(self) -> safetensors::Dtype {
        match self {
            Self::F32 => safetensors::Dtype::F32,
            Self::F16 => safetensors::Dtype::F16,
        }
    }
}

impl std::fmt::Display for WeightsDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The model a bundle holds, tagged by `kind`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "config")]
pub enum ModelSpec {
    /// Time-series encoder + phenotype head (no text).
    #[serde(rename = "lab-phenotype")]
    LabPhenotype(LabPhenotypeModelConfig),
    /// The multimodal ClinRaGen model (T5 + time-series tokens + knowledge attention); its bundle
    /// also carries `tokenizer.json`.
    #[serde(rename = "clinical")]
    Clinical(ClinicalModelConfig),
    /// In-hospital mortality (PhysioNet 2012): the time-series encoder with one output and a
    /// linear part over the stay's statics and summaries; answers `risk`.
    #[serde(rename = "mortality")]
    Mortality(MortalityModelConfig),
}

/// Read by hand so that an error inside `config` names its field (`config.t5.d_model`): serde's
/// derive for a tagged enum buffers the content and loses the path.
impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tagged {
            kind: String,
            config: serde_json::Value,
        }
        fn read<T: serde::de::DeserializeOwned>(
            config: serde_json::Value,
        ) -> std::result::Result<T, String> {
            serde_path_to_error::deserialize(config)
                .map_err(|e| format!("config.{}: {}", e.path(), e.inner()))
        }
        let tagged = Tagged::deserialize(deserializer)?;
        match tagged.kind.as_str() {
            "lab-phenotype" => read(tagged.config).map(Self::LabPhenotype),
            "clinical" => read(tagged.config).map(Self::Clinical),
            "mortality" => read(tagged.config).map(Self::Mortality),
            other => Err(format!(
                "kind {other:?} is not \"lab-phenotype\", \"clinical\" or \"mortality\""
            )),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl ModelSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LabPhenotype(_) => "lab-phenotype",
            Self::Clinical(_) => "clinical",
            Self::Mortality(_) => "mortality",
        }
    }

    /// What the model's outputs are, in order: the phenotypes, or the one outcome.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Self::Mortality(_) => vec![MORTALITY_LABEL.to_string()],
            _ => PHENOTYPES.iter().map(|p| p.name.to_string()).collect(),
        }
    }

    /// Hours of lab data the model reads.
    pub fn hours(&self) -> usize {
        match self {
            Self::LabPhenotype(c) => c.series.hours,
            Self::Clinical(c) => c.series.hours,
            Self::Mortality(c) => c.series.series.hours,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Manifest {
    /// The head's calibration as the engine applies it: [`Manifest::calibration`], else the
    /// older bundles' `temperature` for every record, else none.
    pub fn head_calibration(&self) -> Option<HeadCalibration> {
        self.calibration.clone().or_else(|| {
            self.temperature.map(|t| HeadCalibration {
                with_notes: LogitMap::temperature(t),
                without_notes: None,
            })
        })
    }

    /// A manifest for a freshly trained model over the current knowledge base, weights in
    /// `dtype`; [`crate::bundle::Bundle::new`] lists its files.
    pub fn new(model: ModelSpec, dtype: WeightsDtype, threshold: f32) -> Self {
        Self {
            format: BUNDLE_FORMAT.into(),
            format_version: BUNDLE_FORMAT_VERSION,
            labels: model.labels(),
            model,
            channels: CHANNELS.iter().map(|c| c.name.to_string()).collect(),
            knowledge_hash: knowledge_hash(),
            dtype: dtype.name().into(),
            threshold,
            temperature: None,
            calibration: None,
            files: BTreeMap::new(),
            created_by: concat!("bedside ", env!("CARGO_PKG_VERSION")).into(),
            medications: None,
            max_prompt_tokens: None,
            self_test: None,
            training: None,
            model_card: None,
        }
    }

    /// The weights' dtype; a spelling this library does not know is an incompatible bundle.
    pub fn weights_dtype(&self) -> Result<WeightsDtype> {
        WeightsDtype::parse(&self.dtype).ok_or_else(|| BedsideError::Incompatible {
            file: MANIFEST_FILE.into(),
            message: format!("dtype {:?} is not supported (f32 or f16)", self.dtype),
        })
    }

    /// Parses and checks a manifest; nothing about the weights is looked at yet.
    pub fn from_json(text: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let manifest: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            BedsideError::bundle(MANIFEST_FILE, format!("at {}: {}", e.path(), e.inner()))
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    pub(crate) fn check(&self) -> Result<()> {
        let incompatible = |message: String| BedsideError::Incompatible {
            file: MANIFEST_FILE.into(),
            message,
        };
        if self.format != BUNDLE_FORMAT {
            return Err(incompatible(format!(
                "format is {:?}, not {BUNDLE_FORMAT:?}",
                self.format
            )));
        }
        if self.format_version > BUNDLE_FORMAT_VERSION || self.format_version == 0 {
            return Err(incompatible(format!(
                "format_version {} is not one this library reads (1..={BUNDLE_FORMAT_VERSION}); update bedside",
                self.format_version
            )));
        }
        if self.knowledge_hash != knowledge_hash() {
            return Err(incompatible(format!(
                "knowledge_hash {} differs from this library's knowledge base {}; re-export the bundle",
                self.knowledge_hash,
                knowledge_hash()
            )));
        }
        self.weights_dtype()?;
        let (labels, series) = match &self.model {
            ModelSpec::LabPhenotype(c) => (c.labels, &c.series),
            ModelSpec::Clinical(c) => (c.phenotypes, &c.series),
            ModelSpec::Mortality(c) => (c.series.labels, &c.series.series),
        };
        let known_labels = self.model.labels();
        let expected = [
            ("labels", self.labels.len(), labels, known_labels.len()),
            (
                "channels",
                self.channels.len(),
                series.channels,
                CHANNELS.len(),
            ),
        ];
        for (field, listed, configured, known) in expected {
            if listed != configured || listed != known {
                return Err(BedsideError::bundle(
                    MANIFEST_FILE,
                    format!(
                        "{field}: {listed} listed, {configured} in model.config, {known} in the knowledge base"
                    ),
                ));
            }
        }
        if self.channels.iter().zip(CHANNELS).any(|(a, b)| a != b.name)
            || self.labels != known_labels
        {
            return Err(BedsideError::bundle(
                MANIFEST_FILE,
                "channels or labels are not in the knowledge base's order",
            ));
        }
        // every number bounded before anything divides by it or builds a module from it
        fn field(prefix: &'static str) -> impl Fn(String) -> BedsideError {
            move |m| BedsideError::bundle(MANIFEST_FILE, format!("model.config.{prefix}{m}"))
        }
        series.check().map_err(field("series."))?;
        match &self.model {
            ModelSpec::LabPhenotype(c) => {
                bounds::size("head_hidden", c.head_hidden, 16384).map_err(field(""))?
            }
            ModelSpec::Mortality(c) => {
                bounds::size("series.head_hidden", c.series.head_hidden, 16384)
                    .map_err(field(""))?;
                if c.series.wide == Some(true) {
                    return Err(BedsideError::bundle(
                        MANIFEST_FILE,
                        "model.config.series.wide: a mortality model's linear part is its own",
                    ));
                }
            }
            ModelSpec::Clinical(c) => {
                c.t5.check().map_err(field("t5."))?;
                bounds::size("knowledge_tokens", c.knowledge_tokens, 1 << 16).map_err(field(""))?;
                bounds::size("prototypes", c.prototypes, 4096).map_err(field(""))?;
                bounds::size("knowledge_heads", c.knowledge_heads, 128).map_err(field(""))?;
                bounds::heads(
                    "knowledge_heads",
                    c.knowledge_heads,
                    "t5.d_model",
                    c.t5.d_model,
                )
                .map_err(field(""))?;
                bounds::size("head_hidden", c.head_hidden, 16384).map_err(field(""))?;
                if !self.files.contains_key(TOKENIZER_FILE) {
                    return Err(BedsideError::bundle(
                        MANIFEST_FILE,
                        format!("a clinical bundle needs {TOKENIZER_FILE} in files"),
                    ));
                }
            }
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(BedsideError::bundle(
                MANIFEST_FILE,
                "threshold must be within 0..=1",
            ));
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.05..=20.0).contains(&t))
        {
            return Err(BedsideError::bundle(
                MANIFEST_FILE,
                format!("temperature = {t} is outside [0.05, 20]"),
            ));
        }
        if let Some(calibration) = &self.calibration {
            calibration
                .check(self.labels.len())
                .map_err(|m| BedsideError::bundle(MANIFEST_FILE, m))?;
        }
        if let Some(tokens) = self.max_prompt_tokens {
            // attention (and the wide head's repeat check) hold len × len values per row
            bounds::size("max_prompt_tokens", tokens, 4096)
                .map_err(|m| BedsideError::bundle(MANIFEST_FILE, m))?;
        }
        if let Some(card) = &self.model_card {
            card.check()
                .map_err(|m| BedsideError::bundle(MANIFEST_FILE, format!("model_card.{m}")))?;
        }
        if let Some(spec) = &self.medications {
            spec.check(MANIFEST_FILE)?;
            if !self.files.contains_key(MEDREC_FILE) {
                return Err(BedsideError::bundle(
                    MANIFEST_FILE,
                    format!("medications needs {MEDREC_FILE} in files"),
                ));
            }
        }
        Ok(())
    }

    /// Checks a file's bytes against the manifest's size and sha256.
    pub fn verify(&self, file: &str, bytes: &[u8]) -> Result<()> {
        self.verify_digest(file, bytes.len(), None, || sha256_hex(bytes))
    }

    /// Checks a file's size and sha256 against the manifest, where the caller already has the
    /// file's digest (`known`, hex: the JS package hashes with Web Crypto as it downloads); else
    /// `hash` computes it.
    pub fn verify_digest(
        &self,
        file: &str,
        len: usize,
        known: Option<&str>,
        hash: impl FnOnce() -> String,
    ) -> Result<()> {
        let entry = self.files.get(file).ok_or_else(|| {
            BedsideError::bundle(MANIFEST_FILE, format!("files lists no {file:?}"))
        })?;
        if entry.bytes != len as u64 {
            return Err(BedsideError::bundle(
                file,
                format!(
                    "{len} bytes, the manifest says {} (truncated download?)",
                    entry.bytes
                ),
            ));
        }
        let actual = known.map_or_else(hash, str::to_ascii_lowercase);
        if actual != entry.sha256 {
            return Err(BedsideError::HashMismatch {
                file: file.into(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}
