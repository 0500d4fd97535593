//! The inference engine: a loaded bundle on a compute device, answering `diagnose`.
//! The same code runs natively (CLI, tests) and in wasm (browser, Node); every tensor read-back
//! is asynchronous because synchronous read-back panics on wasm.

use crate::bundle::{MANIFEST_FILE, Manifest, WEIGHTS_FILE};
use crate::error::{BedsideError, Result};
use crate::knowledge::PHENOTYPES;
use crate::model::LabPhenotypeModel;
use crate::record::{GridNotice, PatientRecord, SeriesGrid};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::Serialize;
use std::sync::Mutex;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's flex backend: pure Rust, runs everywhere.
    Cpu,
    /// burn's wgpu backend: WebGPU in the browser, Vulkan/Metal/DX12 natively.
    Gpu,
}

impl Backend {
    /// The name the JS API reports: "cpu", "webgpu" (browser) or "wgpu" (native).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu if cfg!(target_family = "wasm") => "webgpu",
            Self::Gpu => "wgpu",
        }
    }

    /// The device for this backend. The wgpu runtime can be initialised once per process, so
    /// its device is kept and shared.
    pub async fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Gpu => {
                static GPU: Mutex<Option<Device>> = Mutex::new(None);
                if let Some(device) = GPU.lock().ok().and_then(|d| d.clone()) {
                    return Ok(device);
                }
                let device = Device::wgpu_options()
                    .init_async()
                    .await
                    .map_err(|e| BedsideError::backend(self.name(), e))?;
                if let Ok(mut slot) = GPU.lock() {
                    *slot = Some(device.clone());
                }
                Ok(device)
            }
        }
    }
}

/// One phenotype's probability.
#[derive(Debug, Clone, Serialize)]
pub struct PhenotypeScore {
    pub name: &'static str,
    pub short: &'static str,
    pub probability: f32,
}

/// What `diagnose` returns for one record.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub id: String,
    /// Every phenotype, most probable first.
    pub phenotypes: Vec<PhenotypeScore>,
    /// Names of the phenotypes at or above the bundle's threshold.
    pub diagnosed: Vec<&'static str>,
    /// Grid cells (channel × hour) that held a measurement.
    pub observed_cells: usize,
    /// Observations that could not be used, and why.
    pub notices: Vec<GridNotice>,
    pub backend: &'static str,
}

pub struct Engine {
    model: LabPhenotypeModel,
    manifest: Manifest,
    device: Device,
    backend: Backend,
}

impl Engine {
    /// Loads a bundle from its files' bytes onto `backend`.
    pub async fn load(manifest_json: &str, weights: &[u8], backend: Backend) -> Result<Self> {
        let manifest = Manifest::from_json(manifest_json)?;
        manifest.verify(WEIGHTS_FILE, weights)?;
        check_weights_header(weights)?;
        let device = backend.device().await?;
        let model = load_model(&manifest, weights, &device)?;
        Ok(Self {
            model,
            manifest,
            device,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub async fn diagnose(&self, record: &PatientRecord) -> Result<Diagnosis> {
        let mut out = self.diagnose_batch(std::slice::from_ref(record)).await?;
        out.pop()
            .ok_or_else(|| BedsideError::backend(self.backend.name(), "no output"))
    }

    /// Diagnoses several records in one forward pass.
    pub async fn diagnose_batch(&self, records: &[PatientRecord]) -> Result<Vec<Diagnosis>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let hours = self.manifest.model.config.series.hours;
        let grids: Vec<SeriesGrid> = records
            .iter()
            .map(|r| r.validate().map(|()| SeriesGrid::from_record(r, hours)))
            .collect::<Result<_>>()?;
        let probabilities = self.probabilities(&grids).await?;
        let labels = PHENOTYPES.len();
        Ok(records
            .iter()
            .zip(grids)
            .zip(probabilities.chunks(labels))
            .map(|((record, grid), probs)| self.describe(record, grid, probs))
            .collect())
    }

    async fn probabilities(&self, grids: &[SeriesGrid]) -> Result<Vec<f32>> {
        let grids: Vec<&SeriesGrid> = grids.iter().collect();
        let (values, mask) = SeriesGrid::tensors(&grids, &self.device);
        let probs = burn::tensor::activation::sigmoid(self.model.forward(values, mask));
        let data = probs
            .into_data_async()
            .await
            .map_err(|e| BedsideError::backend(self.backend.name(), format!("{e:?}")))?;
        let probs = data
            .try_to_vec::<f32>()
            .map_err(|e| BedsideError::backend(self.backend.name(), format!("{e:?}")))?;
        if probs.len() != grids.len() * PHENOTYPES.len() || probs.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped probabilities",
            ));
        }
        Ok(probs)
    }

    fn describe(&self, record: &PatientRecord, grid: SeriesGrid, probs: &[f32]) -> Diagnosis {
        let mut phenotypes: Vec<PhenotypeScore> = PHENOTYPES
            .iter()
            .zip(probs)
            .map(|(p, &probability)| PhenotypeScore {
                name: p.name,
                short: p.short,
                probability,
            })
            .collect();
        phenotypes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let diagnosed = phenotypes
            .iter()
            .filter(|p| p.probability >= self.manifest.threshold)
            .map(|p| p.name)
            .collect();
        Diagnosis {
            id: record.id.clone(),
            observed_cells: grid.observed(),
            notices: grid.notices,
            phenotypes,
            diagnosed,
            backend: self.backend.name(),
        }
    }
}

/// Refuses a weights file that is not a well-formed all-f32 safetensors file.
fn check_weights_header(weights: &[u8]) -> Result<()> {
    let tensors = safetensors::SafeTensors::deserialize(weights)
        .map_err(|e| BedsideError::bundle(WEIGHTS_FILE, e))?;
    for (name, view) in tensors.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(BedsideError::bundle(
                WEIGHTS_FILE,
                format!("tensor {name} is {:?}, the manifest says f32", view.dtype()),
            ));
        }
    }
    Ok(())
}

fn load_model(manifest: &Manifest, weights: &[u8], device: &Device) -> Result<LabPhenotypeModel> {
    let mut model = manifest.model.config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(weights.to_vec()));
    let applied = model
        .load_from(&mut store)
        .map_err(|e| BedsideError::bundle(WEIGHTS_FILE, e))?;
    if !applied.errors.is_empty() || !applied.missing.is_empty() {
        let missing: Vec<&str> = applied.missing.iter().map(|(p, _)| p.as_str()).collect();
        return Err(BedsideError::bundle(
            WEIGHTS_FILE,
            format!(
                "does not fit {}: missing {:?}, errors {:?}",
                MANIFEST_FILE, missing, applied.errors
            ),
        ));
    }
    Ok(model)
}
