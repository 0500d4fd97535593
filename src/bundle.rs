//! Weight bundles: `manifest.json` + `model.safetensors`, the one artefact that travels from
//! `bedside-train export` to the browser. Loading checks, before any tensor is built, that the
//! manifest is of a format this library reads, that it was made against the same knowledge base,
//! and that every file hashes to the sha256 the manifest records.

use crate::error::{BedsideError, Result};
use crate::knowledge::{CHANNELS, PHENOTYPES, knowledge_hash};
use crate::model::LabPhenotypeModelConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const BUNDLE_FORMAT: &str = "bedside-bundle";
pub const BUNDLE_FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

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
    pub files: BTreeMap<String, FileEntry>,
    pub created_by: String,
    /// What training measured, as `bedside-train` wrote it (free-form, for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    pub kind: String,
    pub config: LabPhenotypeModelConfig,
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
    /// A manifest for a freshly trained model over the current knowledge base.
    pub fn new(config: LabPhenotypeModelConfig, weights: &[u8], threshold: f32) -> Self {
        let mut files = BTreeMap::new();
        files.insert(
            WEIGHTS_FILE.to_string(),
            FileEntry {
                sha256: sha256_hex(weights),
                bytes: weights.len() as u64,
            },
        );
        Self {
            format: BUNDLE_FORMAT.into(),
            format_version: BUNDLE_FORMAT_VERSION,
            model: ModelSpec {
                kind: "lab-phenotype".into(),
                config,
            },
            labels: PHENOTYPES.iter().map(|p| p.name.to_string()).collect(),
            channels: CHANNELS.iter().map(|c| c.name.to_string()).collect(),
            knowledge_hash: knowledge_hash(),
            dtype: "f32".into(),
            threshold,
            files,
            created_by: concat!("bedside ", env!("CARGO_PKG_VERSION")).into(),
            training: None,
        }
    }

    /// Parses and checks a manifest; nothing about the weights is looked at yet.
    pub fn from_json(text: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let manifest: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| BedsideError::bundle(MANIFEST_FILE, format!("at {}: {}", e.path(), e.inner())))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<()> {
        let incompatible = |message: String| BedsideError::Incompatible {
            file: MANIFEST_FILE.into(),
            message,
        };
        if self.format != BUNDLE_FORMAT {
            return Err(incompatible(format!("format is {:?}, not {BUNDLE_FORMAT:?}", self.format)));
        }
        if self.format_version > BUNDLE_FORMAT_VERSION || self.format_version == 0 {
            return Err(incompatible(format!(
                "format_version {} is not one this library reads (1..={BUNDLE_FORMAT_VERSION}); update bedside",
                self.format_version
            )));
        }
        if self.model.kind != "lab-phenotype" {
            return Err(incompatible(format!("model.kind {:?} is unknown", self.model.kind)));
        }
        if self.knowledge_hash != knowledge_hash() {
            return Err(incompatible(format!(
                "knowledge_hash {} differs from this library's knowledge base {}; re-export the bundle",
                self.knowledge_hash,
                knowledge_hash()
            )));
        }
        if self.dtype != "f32" {
            return Err(incompatible(format!("dtype {:?} is not supported (f32)", self.dtype)));
        }
        let config = &self.model.config;
        let expected = [
            ("labels", self.labels.len(), config.labels, PHENOTYPES.len()),
            ("channels", self.channels.len(), config.series.channels, CHANNELS.len()),
        ];
        for (field, listed, configured, known) in expected {
            if listed != configured || listed != known {
                return Err(BedsideError::bundle(
                    MANIFEST_FILE,
                    format!("{field}: {listed} listed, {configured} in model.config, {known} in the knowledge base"),
                ));
            }
        }
        if self.channels.iter().zip(CHANNELS).any(|(a, b)| a != b.name)
            || self.labels.iter().zip(PHENOTYPES).any(|(a, b)| a != b.name)
        {
            return Err(BedsideError::bundle(MANIFEST_FILE, "channels or labels are not in the knowledge base's order"));
        }
        let series = &config.series;
        if series.patches() == 0 || series.n_heads == 0 || series.d_model % series.n_heads != 0 {
            return Err(BedsideError::bundle(MANIFEST_FILE, "model.config.series: no patches fit, or d_model is not divisible by n_heads"));
        }
        // Bounds keep a hostile manifest from making the model allocate without limit.
        let sizes = [
            ("series.hours", series.hours, 24 * 31),
            ("series.d_model", series.d_model, 4096),
            ("series.d_ff", series.d_ff, 16384),
            ("series.n_layers", series.n_layers, 64),
            ("head_hidden", config.head_hidden, 16384),
        ];
        for (field, value, max) in sizes {
            if value == 0 || value > max {
                return Err(BedsideError::bundle(MANIFEST_FILE, format!("model.config.{field} = {value} is outside 1..={max}")));
            }
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(BedsideError::bundle(MANIFEST_FILE, "threshold must be within 0..=1"));
        }
        Ok(())
    }

    /// Checks a file's bytes against the manifest's size and sha256.
    pub fn verify(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let entry = self
            .files
            .get(file)
            .ok_or_else(|| BedsideError::bundle(MANIFEST_FILE, format!("files lists no {file:?}")))?;
        if entry.bytes != bytes.len() as u64 {
            return Err(BedsideError::bundle(
                file,
                format!("{} bytes, the manifest says {} (truncated download?)", bytes.len(), entry.bytes),
            ));
        }
        let actual = sha256_hex(bytes);
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
