//! The wasm-bindgen API under the npm package's JS wrapper (`pkg-config/bedside.js`), which does
//! the fetching and backend choice. Every failure becomes a JS `Error` with a stable `code`;
//! nothing here may panic, since a panic kills the wasm instance.

use crate::bundle::Bundle;
use crate::engine::{Backend, Engine};
use crate::error::BedsideError;
use crate::record::PatientRecord;
use serde::Serialize;
use wasm_bindgen::prelude::*;

fn js_error(error: BedsideError) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    let _ = js_sys::Reflect::set(&js, &"code".into(), &error.code().into());
    js.into()
}

/// The record a call reads: a PatientRecord, or a FHIR chart around `encounter` (`Encounter/123`,
/// as a SMART launch names it; absent: the chart's latest inpatient encounter).
fn read_record(record_json: &str, encounter: Option<String>) -> Result<PatientRecord, JsValue> {
    let options = crate::record::fhir::FhirOptions { encounter };
    PatientRecord::from_json_or_fhir_with(record_json, &options).map_err(js_error)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(BedsideError::backend("wasm", e)))
}

unsafe extern "C" {
    /// Synthesised by wasm-ld: runs the static constructors (burn's GPU compiler, cubecl,
    /// registers its IR dialects with `inventory`).
    fn __wasm_call_ctors();
}

/// Runs once when the module is instantiated. Calling the constructors explicitly here also tells
/// wasm-ld not to wrap every export in a call to them — which it otherwise does, and which re-ran
/// all of cubecl's registrations on each of the thousands of small JS ↔ wasm calls that turn a
/// result into a JS object (about 2 s per `explain` in Node).
#[wasm_bindgen(start)]
fn start() {
    // SAFETY: the linker's constructor function, called once, before any other of our code.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

/// A loaded model. Construct it with `BedsideEngine.load`.
#[wasm_bindgen]
pub struct BedsideEngine {
    engine: Engine,
    /// The model's input and encoding kept between the benchmark calls (`prepareParts`,
    /// `encodeParts`, `decodeParts`).
    parts: std::cell::RefCell<Parts>,
}

/// See [`BedsideEngine::prepare_parts`].
#[derive(Default)]
struct Parts {
    input: Option<crate::model::ClinicalInput>,
    encoded: Option<crate::model::Encoded>,
}

/// A benchmark call before the one it follows.
fn out_of_order(call: &str, first: &str) -> JsValue {
    js_error(BedsideError::backend(
        "wasm",
        format!("{call} before {first}"),
    ))
}

#[wasm_bindgen]
impl BedsideEngine {
    /// `backend` is "cpu" or "webgpu"; the JS wrapper only asks for "webgpu" where
    /// `navigator.gpu` exists (wgpu panics without it). `tokenizer`: `tokenizer.json`, for
    /// clinical bundles; `medrec`: `medrec.safetensors`, for bundles with a medication recommender;
    /// `digests`: `{ file: hex sha256 }` of files the caller hashed already (or undefined).
    pub async fn load(
        manifest: String,
        weights: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        medrec: Option<Vec<u8>>,
        backend: String,
        digests: JsValue,
    ) -> Result<BedsideEngine, JsValue> {
        let backend: Backend = backend.parse().map_err(js_error)?;
        // `{ file: sha256 }` the package computed with Web Crypto; undefined: the engine hashes
        let digests: std::collections::BTreeMap<String, String> =
            if digests.is_undefined() || digests.is_null() {
                Default::default()
            } else {
                serde_wasm_bindgen::from_value(digests).map_err(|e| {
                    js_error(BedsideError::bundle(
                        crate::bundle::MANIFEST_FILE,
                        format!("digests: {e}"),
                    ))
                })?
            };
        let bundle = Bundle::from_hashed_bytes(&manifest, weights, tokenizer, medrec, &digests)
            .map_err(js_error)?;
        let engine = Engine::load(&bundle, backend).await.map_err(js_error)?;
        Ok(Self {
            engine,
            parts: Default::default(),
        })
    }

    /// For benchmarks against runtimes that start from tensors (bench/measure.js): the clinical
    /// model's input from prompt `ids` and a lab grid (`values`, `observed`: channels × hours),
    /// kept for [`Self::encode_parts`].
    #[wasm_bindgen(js_name = prepareParts)]
    pub fn prepare_parts(
        &self,
        ids: Vec<u32>,
        values: Vec<f32>,
        observed: Vec<f32>,
    ) -> Result<(), JsValue> {
        let input = self
            .engine
            .model_input(&ids, &values, &observed)
            .map_err(js_error)?;
        *self.parts.borrow_mut() = Parts {
            input: Some(input),
            encoded: None,
        };
        Ok(())
    }

    /// The encoder and phenotype head on the prepared input, kept for [`Self::decode_parts`];
    /// resolves to the probabilities (before calibration).
    #[wasm_bindgen(js_name = encodeParts)]
    pub async fn encode_parts(&self) -> Result<Vec<f32>, JsValue> {
        let input = self.parts.borrow().input.clone();
        let input = input.ok_or_else(|| out_of_order("encodeParts", "prepareParts"))?;
        let (encoded, probabilities) = self
            .engine
            .encode_with_head(&input)
            .await
            .map_err(js_error)?;
        self.parts.borrow_mut().encoded = Some(encoded);
        Ok(probabilities)
    }

    /// Greedy decoding of exactly `tokens` tokens after the last encoding, without a constraint;
    /// resolves to the token ids.
    #[wasm_bindgen(js_name = decodeParts)]
    pub async fn decode_parts(&self, tokens: usize) -> Result<Vec<u32>, JsValue> {
        let encoded = self.parts.borrow().encoded.clone();
        let encoded = encoded.ok_or_else(|| out_of_order("decodeParts", "encodeParts"))?;
        self.engine
            .greedy_tokens(&encoded, tokens.clamp(1, 1024))
            .await
            .map_err(js_error)
    }

    /// Runs the known-answer self-test; throws `BACKEND_FAILED` when this backend's numbers are
    /// off by more than `tolerance`; returns the largest difference.
    #[wasm_bindgen(js_name = selfTest)]
    pub async fn self_test(&self, tolerance: f32) -> Result<Option<f32>, JsValue> {
        self.engine.self_test(tolerance).await.map_err(js_error)
    }

    /// "cpu" or "webgpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.backend().name().to_string()
    }

    /// The bundle's manifest as a plain object.
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        to_js(self.engine.manifest())
    }

    /// `record_json`: a PatientRecord or a FHIR R4 Bundle as JSON text; `encounter`: the FHIR
    /// encounter to read (every call takes it).
    pub async fn diagnose(
        &self,
        record_json: String,
        encounter: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let record = read_record(&record_json, encounter)?;
        let diagnosis = self.engine.diagnose(&record).await.map_err(js_error)?;
        to_js(&diagnosis)
    }

    /// The calibrated risk with the findings behind it (mortality bundles).
    pub async fn risk(
        &self,
        record_json: String,
        encounter: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let record = read_record(&record_json, encounter)?;
        let risk = self.engine.risk(&record).await.map_err(js_error)?;
        to_js(&risk)
    }

    /// Recommended ATC-3 drugs with DDI warnings (bundles with a medication recommender).
    pub async fn recommend(
        &self,
        record_json: String,
        encounter: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let record = read_record(&record_json, encounter)?;
        let recommendation = self.engine.recommend(&record).await.map_err(js_error)?;
        to_js(&recommendation)
    }

    /// Generates diagnoses and rationale; `on_piece(text)` is called with each new piece of text
    /// and returns `false` to stop decoding (the call then fails with `ABORTED`).
    pub async fn explain(
        &self,
        record_json: String,
        on_piece: js_sys::Function,
        max_tokens: usize,
        encounter: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let record = read_record(&record_json, encounter)?;
        let options = crate::generate::GenerateOptions {
            max_new_tokens: max_tokens.clamp(1, 1024),
            ..Default::default()
        };
        let mut forward = |piece: &str| {
            // a throwing callback must not unwind through wasm: its error is dropped, and only
            // `false` stops decoding
            on_piece
                .call1(&JsValue::NULL, &JsValue::from_str(piece))
                .map_or(true, |go_on| go_on.as_bool() != Some(false))
        };
        let explanation = self
            .engine
            .explain(&record, &options, &mut forward)
            .await
            .map_err(js_error)?;
        to_js(&explanation)
    }
}

/// A `tokenizer.json` loaded in wasm: the same ids as natively (tested in `tests/node/`).
#[wasm_bindgen]
pub struct BedsideTokenizer {
    inner: crate::tokenizer::TextTokenizer,
}

#[wasm_bindgen]
impl BedsideTokenizer {
    /// `json`: the bytes of a HuggingFace `tokenizer.json`.
    #[wasm_bindgen(constructor)]
    pub fn new(json: &[u8]) -> Result<BedsideTokenizer, JsValue> {
        let inner = crate::tokenizer::TextTokenizer::from_bytes(json).map_err(js_error)?;
        Ok(Self { inner })
    }

    /// Token ids of `text`, `</s>` last.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        self.inner.encode(text).map_err(js_error)
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, JsValue> {
        self.inner.decode(ids).map_err(js_error)
    }

    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}
