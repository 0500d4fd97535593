//! The inference engine: a loaded bundle on a compute device, answering `diagnose` and (clinical
//! bundles) `explain`.
//! The same code runs natively (CLI, tests) and in wasm (browser, Node); every tensor read-back
//! is asynchronous because synchronous read-back panics on wasm.

mod answers;
mod diagnose;
mod explain;
mod parts;

pub use diagnose::{Diagnosis, PhenotypeScore};
pub use explain::Explanation;

use crate::bundle::{
    Bundle, MANIFEST_FILE, MEDREC_FILE, Manifest, ModelSpec, TOKENIZER_FILE, WEIGHTS_FILE, Weights,
};
use crate::constrained::DiagnosisGrammar;
use crate::error::{BedsideError, Result};
use crate::grounded::RationaleVocab;
use crate::knowledge::PHENOTYPES;
use crate::model::t5::HostDecoder;
use crate::model::{ClinicalModel, LabPhenotypeModel, MedRecModel, MortalityModel};
use crate::recommend::MedicationSpec;
use crate::self_test::self_test_record;
use crate::tokenizer::TextTokenizer;
use burn::prelude::*;
use burn::tensor::wgpu::WgpuInitError;
use serde::Serialize;
use std::sync::Mutex;

/// Kernels recorded before wgpu submits them (cubecl's default is 32). A decoding step is about
/// 60 kernels and ends in a read-back, which submits anyway, so a step goes to the GPU in one
/// submit instead of two or more; queue submits cost tens of microseconds each in a browser.
/// Natively it also overrides cubecl's `CUBECL_WGPU_MAX_TASKS` environment variable.
const GPU_TASKS_PER_SUBMIT: usize = 256;

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
    /// its device is kept and shared. Two first calls at once (two threads, or two loads a page
    /// starts together) both initialise; the one that registers the runtime second is refused
    /// and waits, a second at most, for the first one's device.
    pub async fn device(self) -> Result<Device> {
        static GPU: Mutex<Option<Device>> = Mutex::new(None);
        let shared = || GPU.lock().ok().and_then(|d| d.clone());
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Gpu => {
                if let Some(device) = shared() {
                    return Ok(device);
                }
                let refusal = match Device::wgpu_options()
                    .tasks_max(GPU_TASKS_PER_SUBMIT)
                    .init_async()
                    .await
                {
                    Ok(device) => {
                        if let Ok(mut slot) = GPU.lock() {
                            *slot = Some(device.clone());
                        }
                        return Ok(device);
                    }
                    Err(e @ WgpuInitError::Registration { .. }) => e,
                    Err(e) => return Err(BedsideError::backend(self.name(), e)),
                };
                for _ in 0..100 {
                    if let Some(device) = shared() {
                        return Ok(device);
                    }
                    pause().await;
                }
                Err(BedsideError::backend(self.name(), refusal))
            }
        }
    }
}

/// A backend by any of its names: "cpu"; "wgpu", "webgpu" or "gpu" (the JS API, the CLI).
impl std::str::FromStr for Backend {
    type Err = BedsideError;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(Self::Cpu),
            "wgpu" | "webgpu" | "gpu" => Ok(Self::Gpu),
            other => Err(BedsideError::backend(
                other,
                "unknown backend; use \"cpu\" or \"webgpu\" (natively also \"wgpu\")",
            )),
        }
    }
}

/// About 10 ms for another task: natively a sleep (the caller's thread waits for another
/// thread), on wasm a turn of the event loop (the other task runs on the same thread).
async fn pause() {
    #[cfg(target_arch = "wasm32")]
    crate::generate::yield_to_host().await;
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(10));
}

/// The loaded model of either kind.
#[expect(
    clippy::large_enum_variant,
    reason = "one per engine, built once and never moved in a loop"
)]
enum Loaded {
    LabPhenotype(LabPhenotypeModel),
    Mortality(MortalityModel),
    Clinical {
        model: ClinicalModel,
        tokenizer: TextTokenizer,
        grammar: Option<DiagnosisGrammar>,
        /// The rationale's reserved tokens; `None` for bundles trained before grounded rationales.
        vocab: Option<RationaleVocab>,
        /// The T5 decoder packed for bedside-cpu's step, once, where the model is on the CPU.
        host: Option<HostDecoder>,
    },
}

pub struct Engine {
    model: Loaded,
    /// The medication recommender, where the bundle has one.
    medrec: Option<(MedRecModel, MedicationSpec)>,
    manifest: Manifest,
    device: Device,
    backend: Backend,
}

/// Longest prompt (notes) read, in tokens; longer notes are cut at the end.
pub const MAX_PROMPT_TOKENS: usize = 512;

fn read_back_error<E: std::fmt::Debug>(backend: Backend) -> impl Fn(E) -> BedsideError {
    move |e| BedsideError::backend(backend.name(), format!("{e:?}"))
}

impl Engine {
    /// A tensor's values on the host: the one read-back of every answer, asynchronous because
    /// wasm cannot block on a GPU (a failed map is this backend's error).
    async fn read_back<const D: usize>(&self, tensor: Tensor<D>) -> Result<Vec<f32>> {
        tensor
            .into_data_async()
            .await
            .map_err(read_back_error(self.backend))?
            .try_to_vec::<f32>()
            .map_err(read_back_error(self.backend))
    }

    /// Loads a bundle onto `backend`: its weights parsed once and widened to f32, the
    /// tokenizer bound to the model's vocabulary, the recommender where the bundle has one.
    pub async fn load(bundle: &Bundle, backend: Backend) -> Result<Self> {
        let manifest = bundle.manifest().clone();
        let dtype = manifest.weights_dtype()?;
        let weights = Weights::read(bundle.weights(), dtype, WEIGHTS_FILE)?;
        let medications = match (&manifest.medications, bundle.medications()) {
            (Some(spec), Some(bytes)) => {
                Some((spec.clone(), Weights::read(bytes, dtype, MEDREC_FILE)?))
            }
            _ => None,
        };
        let device = backend.device().await?;
        let model = match &manifest.model {
            ModelSpec::LabPhenotype(config) => {
                let mut model = config.init(&device);
                weights.apply_to(&mut model)?;
                Loaded::LabPhenotype(model)
            }
            ModelSpec::Mortality(config) => {
                let mut model = config.init(&device);
                weights.apply_to(&mut model)?;
                Loaded::Mortality(model)
            }
            ModelSpec::Clinical(config) => {
                let bytes = bundle.tokenizer().ok_or_else(|| {
                    BedsideError::bundle(
                        TOKENIZER_FILE,
                        "missing: a clinical bundle needs its tokenizer",
                    )
                })?;
                let t5 = &config.t5;
                let tokenizer = TextTokenizer::from_bytes(bytes)?.bound_to(
                    t5.vocab_size,
                    t5.pad_token_id,
                    t5.eos_token_id,
                )?;
                let mut model = config.init_empty(&device);
                weights.apply_to(&mut model)?;
                let labels: Vec<&str> = PHENOTYPES.iter().map(|p| p.name).collect();
                let grammar = DiagnosisGrammar::new(&tokenizer, &labels);
                let vocab = RationaleVocab::new(&tokenizer);
                let host = HostDecoder::new(&model.lm).transpose()?;
                Loaded::Clinical {
                    model,
                    tokenizer,
                    grammar,
                    vocab,
                    host,
                }
            }
        };
        let medrec = match medications {
            Some((spec, weights)) => {
                let mut model = spec.config.init(&device);
                weights.apply_to(&mut model)?;
                Some((model, spec))
            }
            None => None,
        };
        Ok(Self {
            model,
            medrec,
            manifest,
            device,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The known answer of this bundle's model: the probabilities of [`self_test_record`], in the
    /// order of the manifest's `labels` (the phenotypes, or the one risk of a mortality bundle).
    /// `export` records it; [`Engine::self_test`] checks it.
    pub async fn self_test_answer(&self) -> Result<Vec<f32>> {
        let record = self_test_record();
        if let Loaded::Mortality(_) = &self.model {
            return Ok(vec![self.risk(&record).await?.probability]);
        }
        let diagnosis = self.diagnose(&record).await?;
        Ok(PHENOTYPES
            .iter()
            .map(|p| {
                diagnosis
                    .phenotypes
                    .iter()
                    .find(|s| s.name == p.name)
                    .map_or(f32::NAN, |s| s.probability)
            })
            .collect())
    }

    /// Runs the known-answer self-test: [`Engine::self_test_answer`] must match the answer the
    /// manifest recorded at export within `tolerance`. On wasm a shader that
    /// fails WebGPU validation can silently return wrong numbers; this catches it. Returns the
    /// largest difference, or `None` when the bundle records no answer (the test was not run).
    pub async fn self_test(&self, tolerance: f32) -> Result<Option<f32>> {
        let Some(expected) = &self.manifest.self_test else {
            return Ok(None);
        };
        let actual = self.self_test_answer().await?;
        if actual.len() != expected.len() {
            return Err(BedsideError::bundle(
                MANIFEST_FILE,
                format!(
                    "self_test lists {} probabilities, not {}",
                    expected.len(),
                    actual.len()
                ),
            ));
        }
        // NaN anywhere (an infinite difference), or a NaN tolerance, fails the test
        let worst = crate::compare::max_abs_diff(&actual, expected) as f32;
        if !worst.is_finite() || tolerance.is_nan() || worst > tolerance {
            return Err(BedsideError::backend(
                self.backend.name(),
                format!(
                    "self-test failed: probabilities differ from the recorded answer by {worst} (tolerance {tolerance})"
                ),
            ));
        }
        Ok(Some(worst))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The clinical model with its tokenizer and device, for tools that time or inspect the
    /// model's parts apart from the record handling (`bedside-train bench`).
    pub fn clinical_model(&self) -> Option<(&ClinicalModel, &TextTokenizer, &Device)> {
        match &self.model {
            Loaded::Clinical {
                model, tokenizer, ..
            } => Some((model, tokenizer, &self.device)),
            Loaded::LabPhenotype(_) | Loaded::Mortality(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four first calls at once get the one runtime's device, none of them an error: the unit
    /// tests' process has no GPU device before this test (no other unit test makes one), and the
    /// threads start together while finding an adapter takes far longer. Needs a wgpu adapter;
    /// without one it passes, saying so, unless the layer is required (`bedside::test_layers`).
    #[test]
    fn first_gpu_calls_at_once_share_one_device() {
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    pollster::block_on(Backend::Gpu.device()).map_err(|e| e.to_string())
                })
            })
            .collect();
        let results: Vec<_> = calls
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect();
        if results.iter().all(Result::is_err) {
            crate::test_layers::unavailable("wgpu", &format!("no wgpu adapter ({:?})", results[0]));
            return;
        }
        for result in &results {
            assert!(result.is_ok(), "{result:?}");
        }
    }
}
