//! The inference engine: a loaded bundle on a compute device, answering `diagnose` and (clinical
//! bundles) `explain`.
//! The same code runs natively (CLI, tests) and in wasm (browser, Node); every tensor read-back
//! is asynchronous because synchronous read-back panics on wasm.

use crate::bundle::{
    MANIFEST_FILE, Manifest, ModelSpec, WEIGHTS_FILE, WeightsDtype, apply_weights,
    check_weights_header, convert_weights,
};
use crate::chart::{ChannelSeries, channel_series};
use crate::constrained::DiagnosisGrammar;
use crate::error::{BedsideError, Result};
use crate::findings::Findings;
use crate::generate::{self, GenerateOptions};
use crate::grounded::{Evidence, Fact, RationaleVocab, evidence};
use crate::knowledge::{CHANNELS, PHENOTYPES};
use crate::model::input::pad_ids;
use crate::model::{
    ClinicalInput, ClinicalModel, LabPhenotypeModel, MedRecBatch, MedRecModel, MortalityModel,
};
use crate::out_of_range::OutOfRange;
use crate::prompt::clinical_prompt;
use crate::recommend::{MEDREC_FILE, MedicationSpec, Recommendation};
use crate::record::{GridNotice, PatientRecord, SeriesGrid};
use crate::risk::Risk;
use crate::self_test::self_test_record;
use crate::tokenizer::{TOKENIZER_FILE, TextTokenizer};
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

/// About 10 ms for another task: natively a sleep (the caller's thread waits for another
/// thread), on wasm a turn of the event loop (the other task runs on the same thread).
async fn pause() {
    #[cfg(target_arch = "wasm32")]
    crate::generate::yield_to_host().await;
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(10));
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
    /// Names of the phenotypes at or above the bundle's threshold; none when the record is out
    /// of range.
    pub diagnosed: Vec<&'static str>,
    /// Grid cells (channel × hour) that held a measurement.
    pub observed_cells: usize,
    /// The record's findings that the knowledge base links to each diagnosed phenotype (see
    /// [`crate::grounded::Evidence`]).
    pub evidence: Vec<Evidence>,
    /// Observations that could not be used, and why.
    pub notices: Vec<GridNotice>,
    /// Why the record is outside the model's range, when it is (then nothing is diagnosed and
    /// no evidence given; the probabilities are still computed): [`crate::out_of_range`].
    pub out_of_range: Option<OutOfRange>,
    pub backend: &'static str,
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
    },
}

pub struct Engine {
    model: Loaded,
    /// The medication recommender, once [`Engine::load_medications`] has loaded it.
    medrec: Option<(MedRecModel, MedicationSpec)>,
    manifest: Manifest,
    device: Device,
    backend: Backend,
}

/// Longest prompt (notes) read, in tokens; longer notes are cut at the end.
pub const MAX_PROMPT_TOKENS: usize = 512;

/// What `explain` returns: the answer as text for people, its diagnoses, the rationale rendered
/// from the record's findings with its evidence, and the knowledge attention.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub id: String,
    /// The diagnoses and the rationale as the stream wrote them: "A; B." then one sentence per
    /// stated fact.
    pub text: String,
    /// The phenotype names the decoder wrote: exactly those the phenotype head puts at or above
    /// the bundle's threshold (`diagnose`'s `diagnosed`), in the decoder's order.
    pub diagnoses: Vec<String>,
    /// The stated facts, rendered from the record (empty for a bundle without grounded rationales).
    pub rationale: String,
    /// One entry per (diagnosis, stated fact) the knowledge base links.
    pub evidence: Vec<Evidence>,
    pub tokens: usize,
    /// Channel names, in the rows of `knowledge_attention`.
    pub channels: Vec<&'static str>,
    /// `[channel][prototype]` attention weights of the knowledge attention, averaged over heads.
    pub knowledge_attention: Vec<Vec<f32>>,
    /// The observed lab and vital channels as the model read them, with where in time it looked.
    pub series: Vec<ChannelSeries>,
    /// Why the record is outside the model's range, when it is: then nothing is written but the
    /// reasons ([`crate::out_of_range`]).
    pub out_of_range: Option<OutOfRange>,
    pub backend: &'static str,
}

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

    /// Loads a bundle without a tokenizer (lab-phenotype models) onto `backend`.
    pub async fn load(manifest_json: &str, weights: &[u8], backend: Backend) -> Result<Self> {
        Self::load_bundle(manifest_json, weights, None, backend).await
    }

    /// Loads a bundle from its files' bytes onto `backend`; `tokenizer` is `tokenizer.json`,
    /// required by clinical bundles.
    pub async fn load_bundle(
        manifest_json: &str,
        weights: &[u8],
        tokenizer: Option<&[u8]>,
        backend: Backend,
    ) -> Result<Self> {
        let manifest = Manifest::from_json(manifest_json)?;
        manifest.verify(WEIGHTS_FILE, weights)?;
        let dtype = manifest.weights_dtype()?;
        check_weights_header(weights, dtype, WEIGHTS_FILE)?;
        let tokenizer = match (&manifest.model, tokenizer) {
            (ModelSpec::Clinical(config), Some(bytes)) => {
                manifest.verify(TOKENIZER_FILE, bytes)?;
                let t5 = &config.t5;
                Some(TextTokenizer::from_bytes(bytes)?.bound_to(
                    t5.vocab_size,
                    t5.pad_token_id,
                    t5.eos_token_id,
                )?)
            }
            (ModelSpec::Clinical(_), None) => {
                return Err(BedsideError::bundle(
                    TOKENIZER_FILE,
                    "missing: a clinical bundle needs its tokenizer",
                ));
            }
            (ModelSpec::LabPhenotype(_) | ModelSpec::Mortality(_), _) => None,
        };
        let weights = match dtype {
            WeightsDtype::F32 => weights.to_vec(),
            other => convert_weights(weights, WeightsDtype::F32)
                .map_err(|e| BedsideError::bundle(WEIGHTS_FILE, format!("{other} → f32: {e}")))?,
        };
        let device = backend.device().await?;
        let model = match (&manifest.model, tokenizer) {
            (ModelSpec::LabPhenotype(config), _) => {
                let mut model = config.init(&device);
                apply_weights(&mut model, weights, WEIGHTS_FILE)?;
                Loaded::LabPhenotype(model)
            }
            (ModelSpec::Mortality(config), _) => {
                let mut model = config.init(&device);
                apply_weights(&mut model, weights, WEIGHTS_FILE)?;
                Loaded::Mortality(model)
            }
            (ModelSpec::Clinical(config), Some(tokenizer)) => {
                let mut model = config.init_empty(&device);
                apply_weights(&mut model, weights, WEIGHTS_FILE)?;
                let labels: Vec<&str> = PHENOTYPES.iter().map(|p| p.name).collect();
                let grammar = DiagnosisGrammar::new(&tokenizer, &labels);
                let vocab = RationaleVocab::new(&tokenizer);
                Loaded::Clinical {
                    model,
                    tokenizer,
                    grammar,
                    vocab,
                }
            }
            (ModelSpec::Clinical(_), None) => {
                return Err(BedsideError::bundle(
                    TOKENIZER_FILE,
                    "missing: a clinical bundle needs its tokenizer",
                ));
            }
        };
        Ok(Self {
            model,
            medrec: None,
            manifest,
            device,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Loads the bundle's medication recommender from the bytes of `medrec.safetensors`.
    pub fn load_medications(&mut self, weights: &[u8]) -> Result<()> {
        let Some(spec) = self.manifest.medications.clone() else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: "this bundle has no medication recommender".into(),
            });
        };
        self.manifest.verify(MEDREC_FILE, weights)?;
        let dtype = self.manifest.weights_dtype()?;
        check_weights_header(weights, dtype, MEDREC_FILE)?;
        let weights = convert_weights(weights, WeightsDtype::F32)
            .map_err(|e| BedsideError::bundle(MEDREC_FILE, format!("{dtype} → f32: {e}")))?;
        let mut model = spec.config.init(&self.device);
        apply_weights(&mut model, weights, MEDREC_FILE)?;
        self.medrec = Some((model, spec));
        Ok(())
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

    /// Recommends ATC-3 drugs for a record's current visit from its coded history, with the
    /// drug–drug interactions among them and with what the patient already takes.
    pub async fn recommend(&self, record: &PatientRecord) -> Result<Recommendation> {
        let Some((model, spec)) = &self.medrec else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: "this bundle has no medication recommender (manifest.medications)".into(),
            });
        };
        let (patient, unknown_codes) = spec.input(record)?;
        let batch = MedRecBatch::new(
            std::slice::from_ref(&patient),
            spec.config.max_visits,
            spec.max_codes,
            &self.device,
        );
        let probs = burn::tensor::activation::sigmoid(model.forward(&batch).logits);
        let probs = self.read_back(probs).await?;
        if probs.len() != spec.medications.len() || probs.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the recommender returned non-finite or mis-shaped probabilities",
            ));
        }
        let mut recommendation = spec.rank(record, probs, unknown_codes, self.backend.name());
        // out of range: the scores stay, nothing is recommended
        if let Some(out) = OutOfRange::for_recommender(record) {
            recommendation.medications.clear();
            recommendation.ddi_warnings.clear();
            recommendation.out_of_range = Some(out);
        }
        Ok(recommendation)
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
        let hours = self.manifest.model.hours();
        let grids: Vec<SeriesGrid> = records
            .iter()
            .map(|r| r.validate().map(|()| SeriesGrid::from_record(r, hours)))
            .collect::<Result<_>>()?;
        let probabilities = self.probabilities(records, &grids).await?;
        let labels = PHENOTYPES.len();
        Ok(records
            .iter()
            .zip(grids)
            .zip(probabilities.chunks(labels))
            .map(|((record, grid), probs)| self.describe(record, grid, probs))
            .collect())
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

    /// The calibrated risk of a mortality bundle's outcome for `record`, with the record's
    /// findings ordered by how much each moved it (occlusion: [`crate::risk`]). Out of range
    /// (the clinical model's rule, [`crate::out_of_range`]): the risk is still computed, and
    /// given with the reasons and no findings.
    pub async fn risk(&self, record: &PatientRecord) -> Result<Risk> {
        let Loaded::Mortality(model) = &self.model else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: format!(
                    "a {} bundle does not answer risk: load a mortality bundle",
                    self.manifest.model.kind()
                ),
            });
        };
        record.validate()?;
        let hours = self.manifest.model.hours();
        let grid = SeriesGrid::from_record(record, hours);
        let out_of_range = OutOfRange::of(record, &grid);
        let findings = match out_of_range {
            None => Findings::of(record, hours),
            Some(_) => Findings::default(),
        };
        let records = crate::risk::occlusions(record, &findings, hours);
        let grids: Vec<SeriesGrid> = records
            .iter()
            .map(|r| SeriesGrid::from_record(r, hours))
            .collect();
        let (values, mask) = SeriesGrid::tensors(&grids.iter().collect::<Vec<_>>(), &self.device);
        let statics =
            MortalityModel::statics_tensor(&records.iter().collect::<Vec<_>>(), &self.device);
        let logits = model.forward(values, mask, statics);
        let risks = self.read_back(self.calibrated(logits, &records)).await?;
        if risks.len() != records.len() || risks.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped risks",
            ));
        }
        // the model reads no notes; what it does read unlike its training stays is said
        let mut notices = crate::record::record_notices(record);
        notices.retain(|n| n.kind != "no_notes");
        notices.extend(crate::risk::unlike_training(record));
        let observed_cells = grid.observed();
        let series = channel_series(&grid, &[], &[]);
        notices.extend(grid.notices);
        Ok(Risk {
            id: record.id.clone(),
            outcome: self.manifest.labels.first().cloned().unwrap_or_default(),
            probability: risks[0],
            findings: crate::risk::ranked_findings(record, &findings, &risks),
            observed_cells,
            notices,
            out_of_range,
            series,
            backend: self.backend.name(),
        })
    }

    /// A record's prompt ids, cut at the length the model was trained with (the manifest's
    /// `max_prompt_tokens`; [`MAX_PROMPT_TOKENS`] for bundles that do not say).
    fn prompt_ids(
        &self,
        tokenizer: &TextTokenizer,
        record: &PatientRecord,
        findings: &Findings,
    ) -> Result<Vec<u32>> {
        let limit = self.manifest.max_prompt_tokens.unwrap_or(MAX_PROMPT_TOKENS);
        tokenizer.encode_at_most(&clinical_prompt(record, findings, true, true), limit)
    }

    /// A clinical bundle's prompt ids for `record`, as `explain` encodes it.
    pub fn prompt(&self, record: &PatientRecord) -> Result<Vec<u32>> {
        let Loaded::Clinical { tokenizer, .. } = &self.model else {
            return Ok(Vec::new());
        };
        self.prompt_ids(
            tokenizer,
            record,
            &Findings::of(record, self.manifest.model.hours()),
        )
    }

    /// The clinical model's input for records: notes prompt ids (at most [`MAX_PROMPT_TOKENS`])
    /// and the lab grids.
    pub fn clinical_input(
        &self,
        tokenizer: &TextTokenizer,
        records: &[PatientRecord],
        grids: &[SeriesGrid],
    ) -> Result<ClinicalInput> {
        let hours = self.manifest.model.hours();
        let prompts = records
            .iter()
            .map(|r| self.prompt_ids(tokenizer, r, &Findings::of(r, hours)))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.input_of(&prompts, grids))
    }

    /// The clinical model's input from prompt ids and grids.
    fn input_of(&self, prompts: &[Vec<u32>], grids: &[SeriesGrid]) -> ClinicalInput {
        let grids: Vec<&SeriesGrid> = grids.iter().collect();
        ClinicalInput {
            text: Some(pad_ids(prompts, &self.device)),
            series: Some(SeriesGrid::tensors(&grids, &self.device)),
        }
    }

    async fn probabilities(
        &self,
        records: &[PatientRecord],
        grids: &[SeriesGrid],
    ) -> Result<Vec<f32>> {
        let logits = match &self.model {
            Loaded::LabPhenotype(model) => {
                let grids: Vec<&SeriesGrid> = grids.iter().collect();
                let (values, mask) = SeriesGrid::tensors(&grids, &self.device);
                model.forward(values, mask)
            }
            Loaded::Clinical {
                model, tokenizer, ..
            } => {
                let input = self.clinical_input(tokenizer, records, grids)?;
                model.phenotype_logits(&model.encode(&input))
            }
            Loaded::Mortality(_) => {
                return Err(BedsideError::Incompatible {
                    file: MANIFEST_FILE.into(),
                    message: "a mortality bundle answers risk, not diagnose".into(),
                });
            }
        };
        let probs = self.read_back(self.calibrated(logits, records)).await?;
        if probs.len() != grids.len() * PHENOTYPES.len() || probs.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped probabilities",
            ));
        }
        Ok(probs)
    }

    /// The head's probabilities of its logits: the sigmoid after the bundle's calibration, the
    /// map fitted on records like each row's (with notes, or labs alone:
    /// [`crate::calibration::HeadCalibration`]), for the whole batch in two operations.
    fn calibrated(&self, logits: Tensor<2>, records: &[PatientRecord]) -> Tensor<2> {
        let Some(calibration) = self.manifest.head_calibration() else {
            return burn::tensor::activation::sigmoid(logits);
        };
        let [rows, labels] = logits.dims();
        let maps: Vec<_> = records
            .iter()
            .map(|r| calibration.for_record(!r.notes.is_empty()))
            .collect();
        let scales: Vec<f32> = maps.iter().map(|m| m.scale).collect();
        let shifts: Vec<f32> = maps
            .iter()
            .flat_map(|m| (0..labels).map(|label| m.shift_of(label)))
            .collect();
        let scales = Tensor::<1>::from_floats(scales.as_slice(), &self.device).reshape([rows, 1]);
        let shifts =
            Tensor::<1>::from_floats(shifts.as_slice(), &self.device).reshape([rows, labels]);
        burn::tensor::activation::sigmoid(logits * scales + shifts)
    }

    /// Generates the diagnoses and rationale for a record (greedy; the diagnosis list constrained
    /// to the names the phenotype head selects, the rationale to the record's findings), calling
    /// `on_piece` with each new piece of text as it is decoded. `on_piece` returns whether to go
    /// on: `false` stops decoding after that token, and the call ends with
    /// [`BedsideError::Aborted`].
    pub async fn explain(
        &self,
        record: &PatientRecord,
        options: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Explanation> {
        let Loaded::Clinical {
            model,
            tokenizer,
            grammar,
            vocab,
        } = &self.model
        else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: "this bundle's model (lab-phenotype) cannot write rationales; use a clinical bundle".into(),
            });
        };
        let Some(grammar) = grammar else {
            return Err(BedsideError::Incompatible {
                file: TOKENIZER_FILE.into(),
                message:
                    "the tokenizer does not write the diagnosis template as the grammar expects"
                        .into(),
            });
        };
        record.validate()?;
        let hours = self.manifest.model.hours();
        let grid = SeriesGrid::from_record(record, hours);
        if let Some(out) = OutOfRange::of(record, &grid) {
            let text = out.text();
            if !on_piece(&text) {
                return Err(BedsideError::Aborted("explain"));
            }
            return Ok(Explanation {
                id: record.id.clone(),
                text,
                diagnoses: Vec::new(),
                rationale: String::new(),
                evidence: Vec::new(),
                tokens: 0,
                channels: CHANNELS.iter().map(|c| c.name).collect(),
                knowledge_attention: Vec::new(),
                series: Vec::new(),
                out_of_range: Some(out),
                backend: self.backend.name(),
            });
        }
        let findings = Findings::of(record, hours);
        let prompt = self.prompt_ids(tokenizer, record, &findings)?;
        let input = self.input_of(std::slice::from_ref(&prompt), std::slice::from_ref(&grid));
        let encoded = model.encode(&input);
        // one answer: the list is exactly the head's selection, in the order the decoder writes it
        let probabilities = self
            .read_back(self.calibrated(
                model.phenotype_logits(&encoded),
                std::slice::from_ref(record),
            ))
            .await?;
        if probabilities.len() != PHENOTYPES.len() || probabilities.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped probabilities",
            ));
        }
        let selected: Vec<bool> = probabilities
            .iter()
            .map(|p| *p >= self.manifest.threshold)
            .collect();
        // the rationale: each of the record's findings at most once (none without the vocabulary)
        let choices = vocab
            .as_ref()
            .map(|v| v.choices(&findings, &prompt))
            .unwrap_or_default();
        let eos = tokenizer.eos_id();
        let constraint = |prefix: &[u32]| match grammar.split(prefix) {
            Some((_, rationale)) => Some(RationaleVocab::allowed(&choices, rationale, eos)),
            None => grammar.allowed_among(prefix, Some(&selected)),
        };
        let answer = Answer {
            record,
            findings: &findings,
            grammar,
            vocab: vocab.as_ref(),
        };
        let mut ids: Vec<u32> = Vec::new();
        let mut shown = String::new();
        let mut go_on = true;
        let mut stream = |_: usize, token: u32| {
            ids.push(token);
            if let Ok(read) = answer.read(&ids, false) {
                if let Some(piece) = read.text.strip_prefix(shown.as_str())
                    && !piece.is_empty()
                {
                    go_on = on_piece(piece);
                }
                shown = read.text;
            }
            go_on
        };
        let t5 = &model.lm;
        let generated = generate::greedy(
            t5,
            encoded.hidden.clone(),
            encoded.mask.clone(),
            t5.decoder_start(),
            eos,
            options,
            Some(&constraint),
            &mut stream,
        )
        .await?;
        if !go_on {
            return Err(BedsideError::Aborted("explain"));
        }
        let tokens = generated.first().cloned().unwrap_or_default();
        let read = answer.read(&tokens, true)?;
        // what only the final reading adds (a last label where generation stopped in the list)
        if let Some(rest) = read
            .text
            .strip_prefix(shown.as_str())
            .filter(|r| !r.is_empty())
        {
            on_piece(rest);
        }
        let series = match &input.series {
            Some((values, observed)) => {
                let weights = model
                    .series
                    .patch_attention(values.clone(), observed.clone());
                let weights = self.read_back(weights).await?;
                channel_series(&grid, &weights, &model.series.patch_hours(grid.hours))
            }
            None => Vec::new(),
        };
        let knowledge_attention = match encoded.knowledge_weights {
            Some(weights) => {
                let [_, _, channels, prototypes] = weights.dims();
                let mean = weights.mean_dim(1).reshape([channels, prototypes]);
                let values = self.read_back(mean).await?;
                values
                    .chunks(prototypes.max(1))
                    .map(<[f32]>::to_vec)
                    .collect()
            }
            None => Vec::new(),
        };
        let diagnoses: Vec<&str> = read.diagnoses.iter().map(|d| d.name).collect();
        Ok(Explanation {
            id: record.id.clone(),
            evidence: evidence(record, &read.facts, &diagnoses),
            diagnoses: diagnoses.iter().map(|d| d.to_string()).collect(),
            rationale: read
                .facts
                .iter()
                .map(|f| f.render(record))
                .collect::<Vec<_>>()
                .join(" "),
            tokens: tokens.len(),
            text: read.text,
            channels: CHANNELS.iter().map(|c| c.name).collect(),
            knowledge_attention,
            series,
            out_of_range: None,
            backend: self.backend.name(),
        })
    }

    fn describe(&self, record: &PatientRecord, grid: SeriesGrid, probs: &[f32]) -> Diagnosis {
        let findings = Findings::of(record, grid.hours);
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
        let out_of_range = OutOfRange::of(record, &grid);
        let diagnosed: Vec<&'static str> = phenotypes
            .iter()
            .filter(|p| out_of_range.is_none() && p.probability >= self.manifest.threshold)
            .map(|p| p.name)
            .collect();
        let facts: Vec<Fact> = findings
            .labs
            .iter()
            .map(Fact::Lab)
            .chain(
                findings
                    .sentences
                    .iter()
                    .take(crate::grounded::MAX_QUOTED_SENTENCES)
                    .map(Fact::Note),
            )
            .collect();
        let mut evidence = evidence(record, &facts, &diagnosed);
        evidence.retain(|e| e.diagnosis.is_some());
        let observed_cells = grid.observed();
        let mut notices = crate::record::record_notices(record);
        notices.extend(grid.notices);
        Diagnosis {
            id: record.id.clone(),
            evidence,
            observed_cells,
            notices,
            phenotypes,
            diagnosed,
            out_of_range,
            backend: self.backend.name(),
        }
    }
}

/// A generated target read back: the complete label names written, the facts the rationale
/// picked, and the text for people ("A; B." and a sentence per fact).
struct Read<'a> {
    diagnoses: Vec<&'static crate::knowledge::Phenotype>,
    facts: Vec<Fact<'a>>,
    text: String,
}

/// What reads a generated target back for one record.
struct Answer<'a> {
    record: &'a PatientRecord,
    findings: &'a Findings,
    grammar: &'a DiagnosisGrammar,
    vocab: Option<&'a RationaleVocab>,
}

impl<'a> Answer<'a> {
    /// Reads `tokens`: the labels the grammar says were written (no text parsed back), the
    /// rationale's picks, and the text for people. `finished`: generation has ended (it can stop
    /// inside the list).
    fn read(&self, tokens: &[u32], finished: bool) -> Result<Read<'a>> {
        let (list, rationale) = self
            .grammar
            .split(tokens)
            .map_or((tokens, None), |(l, r)| (l, Some(r)));
        let written = self.grammar.written(list);
        let mut labels = written.closed;
        // while decoding a label is shown once the next one or the end begins, so that the text
        // only ever grows; at the end a last complete label counts too
        if finished {
            labels.extend(written.pending);
        }
        let diagnoses: Vec<&'static crate::knowledge::Phenotype> =
            labels.iter().filter_map(|&i| PHENOTYPES.get(i)).collect();
        // every pick must be a fact of the record: the constraint allows no other, so one that is
        // not is a fault to report, never a sentence to drop quietly
        let picks = match (rationale, self.vocab) {
            (Some(r), Some(vocab)) => r.iter().filter_map(|t| vocab.pick(*t)).collect(),
            _ => Vec::new(),
        };
        let facts = picks
            .into_iter()
            .map(|p| {
                Fact::of(p, self.findings).ok_or_else(|| {
                    BedsideError::backend(
                        "explain",
                        format!(
                            "the decoder picked {}, which the record does not have",
                            p.token()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<Fact<'a>>>>()?;
        // short names: the full group names hold semicolons ("Pleurisy; pneumothorax; ...")
        let mut text = diagnoses
            .iter()
            .map(|p| p.short)
            .collect::<Vec<_>>()
            .join("; ");
        if rationale.is_some() {
            text.push_str(if diagnoses.is_empty() {
                "No diagnosis."
            } else {
                "."
            });
            for fact in &facts {
                text.push(' ');
                text.push_str(&fact.render(self.record));
            }
        }
        Ok(Read {
            diagnoses,
            facts,
            text,
        })
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
