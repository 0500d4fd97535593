//! Weight bundles: `manifest.json` + `model.safetensors` (+ `tokenizer.json`, `medrec.safetensors`),
//! the one artefact that travels from `bedside-train export` to the browser. A [`Bundle`] is
//! consistent by construction: [`Bundle::new`] lists its files in the manifest as it is made,
//! [`Bundle::from_bytes`] (and [`Bundle::from_dir`]) check every file against the manifest's size
//! and sha256 before anything is built from it.

mod manifest;
mod weights;

pub use manifest::*;
pub use weights::{Weights, convert_weights};

use crate::error::{BedsideError, Result};
pub use crate::files::{MANIFEST_FILE, MEDREC_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use std::collections::BTreeMap;

/// A bundle's manifest and files, checked against each other.
#[derive(Debug, Clone)]
pub struct Bundle {
    manifest: Manifest,
    weights: Vec<u8>,
    tokenizer: Option<Vec<u8>>,
    medications: Option<Vec<u8>>,
}

impl Bundle {
    /// A freshly exported bundle: `manifest` (with no files yet) lists each file's size and
    /// sha256, and is then checked as a loader checks it (its bounds, the files its model
    /// needs). `tokenizer` for clinical models, `medications` where the manifest has a
    /// recommender.
    pub fn new(
        manifest: Manifest,
        weights: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        medications: Option<Vec<u8>>,
    ) -> Result<Self> {
        let mut bundle = Self {
            manifest,
            weights,
            tokenizer,
            medications,
        };
        bundle.manifest.files = bundle
            .files()
            .into_iter()
            .map(|(name, bytes)| {
                let entry = FileEntry {
                    sha256: sha256_hex(bytes),
                    bytes: bytes.len() as u64,
                };
                (name.to_string(), entry)
            })
            .collect();
        bundle.manifest.check()?;
        Ok(bundle)
    }

    /// A bundle from its files' bytes, as a fetch or a test holds them: the manifest parsed and
    /// checked, every file checked against it, the tokenizer present for a clinical model and
    /// the recommender's weights where the manifest lists one (a file the model does not read
    /// is dropped).
    pub fn from_bytes(
        manifest_json: &str,
        weights: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        medications: Option<Vec<u8>>,
    ) -> Result<Self> {
        Self::from_hashed_bytes(
            manifest_json,
            weights,
            tokenizer,
            medications,
            &BTreeMap::new(),
        )
    }

    /// As [`Bundle::from_bytes`], where the caller has already hashed some of the files:
    /// `digests` maps a file name to its hex sha256 (the JS package hashes each file with Web
    /// Crypto as it arrives, natively and several times faster than sha2 in wasm), and those
    /// files are checked by their size and that digest instead of being hashed again.
    pub fn from_hashed_bytes(
        manifest_json: &str,
        weights: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        medications: Option<Vec<u8>>,
        digests: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let manifest = Manifest::from_json(manifest_json)?;
        // a file the model does not read is left out (the wasm façade always did; natively a
        // recommender's weights beside a manifest without one were refused)
        let clinical = matches!(manifest.model, ModelSpec::Clinical(_));
        let recommends = manifest.medications.is_some();
        let bundle = Self {
            manifest,
            weights,
            tokenizer: tokenizer.filter(|_| clinical),
            medications: medications.filter(|_| recommends),
        };
        if clinical && bundle.tokenizer.is_none() {
            return Err(BedsideError::bundle(
                TOKENIZER_FILE,
                "missing: a clinical bundle needs its tokenizer",
            ));
        }
        if recommends && bundle.medications.is_none() {
            return Err(BedsideError::bundle(
                MEDREC_FILE,
                "missing: the manifest lists a medication recommender",
            ));
        }
        for (name, bytes) in bundle.files() {
            let known = digests.get(name).map(String::as_str);
            bundle
                .manifest
                .verify_digest(name, bytes.len(), known, || sha256_hex(bytes))?;
        }
        Ok(bundle)
    }

    /// Reads a bundle directory: the manifest and the weights, and the tokenizer and the
    /// recommender where they are there; checked as [`Bundle::from_bytes`] checks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                BedsideError::bundle(name, format!("cannot read {}: {e}", dir.display()))
            })
        };
        let optional = |name: &str| match dir.join(name).exists() {
            true => read(name).map(Some),
            false => Ok(None),
        };
        let manifest = String::from_utf8(read(MANIFEST_FILE)?)
            .map_err(|_| BedsideError::bundle(MANIFEST_FILE, "not UTF-8"))?;
        Self::from_bytes(
            &manifest,
            read(WEIGHTS_FILE)?,
            optional(TOKENIZER_FILE)?,
            optional(MEDREC_FILE)?,
        )
    }

    /// Writes the bundle into `dir` so that a failure (a full disk, an unwritable directory)
    /// leaves the previous bundle there as it was: every file goes to a temporary name first,
    /// and only when all are written are they renamed into place, the manifest last. The
    /// manifest is checked as a loader would before anything is written.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_to(&self, dir: &std::path::Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|e| BedsideError::bundle(MANIFEST_FILE, e))?;
        Manifest::from_json(&text)?;
        let mut files = self.files();
        files.push((MANIFEST_FILE, text.as_bytes()));
        std::fs::create_dir_all(dir).map_err(io_error(
            MANIFEST_FILE,
            format!("cannot create {}", dir.display()),
        ))?;
        let staged: Vec<_> = files
            .iter()
            .map(|(name, _)| (dir.join(format!("{name}.tmp")), dir.join(name)))
            .collect();
        for ((name, bytes), (tmp, _)) in files.iter().zip(&staged) {
            if let Err(e) = std::fs::write(tmp, bytes) {
                for (tmp, _) in &staged {
                    std::fs::remove_file(tmp).ok();
                }
                return Err(io_error(
                    name,
                    format!(
                        "cannot write it into {} (the bundle there is unchanged)",
                        dir.display()
                    ),
                )(e));
            }
        }
        for ((name, _), (tmp, path)) in files.iter().zip(&staged) {
            std::fs::rename(tmp, path).map_err(io_error(
                name,
                format!("cannot move it into {}", dir.display()),
            ))?;
        }
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Records the known answer every loaded engine checks its backend against (it is not a
    /// file, so the file list stands).
    pub fn set_self_test(&mut self, answer: Vec<f32>) {
        self.manifest.self_test = Some(answer);
    }

    pub fn weights(&self) -> &[u8] {
        &self.weights
    }

    pub fn tokenizer(&self) -> Option<&[u8]> {
        self.tokenizer.as_deref()
    }

    pub fn medications(&self) -> Option<&[u8]> {
        self.medications.as_deref()
    }

    /// Every file but the manifest, by name.
    pub fn files(&self) -> Vec<(&'static str, &[u8])> {
        let mut files = vec![(WEIGHTS_FILE, self.weights.as_slice())];
        files.extend(self.tokenizer.as_deref().map(|b| (TOKENIZER_FILE, b)));
        files.extend(self.medications.as_deref().map(|b| (MEDREC_FILE, b)));
        files
    }
}

/// An I/O failure on one of a bundle's files, as the error that names it.
#[cfg(not(target_arch = "wasm32"))]
fn io_error(name: &str, what: String) -> impl FnOnce(std::io::Error) -> BedsideError + '_ {
    move |e| BedsideError::bundle(name, format!("{what}: {e}"))
}
