//! bedside: a clinical small language model that runs where the patient data is — in the browser
//! on WebGPU or the CPU, or natively — and never sends it anywhere.
//!
//! This crate is the inference library; it builds natively and for `wasm32-unknown-unknown`
//! from the same source. Training lives in the `bedside-train` binary.

pub mod bundle;
pub mod calibration;
pub mod chart;
pub mod compare;
pub mod constrained;
pub mod engine;
pub mod error;
pub mod files;
pub mod findings;
pub mod generate;
pub mod grounded;
pub mod kernels;
pub mod knowledge;
pub mod model;
pub mod model_card;
pub mod out_of_range;
pub mod prompt;
pub mod recommend;
pub mod record;
pub mod risk;
pub mod self_test;
#[doc(hidden)]
#[cfg(not(target_family = "wasm"))]
pub mod test_layers;
pub mod tokenizer;
#[cfg(target_family = "wasm")]
pub mod web;

pub use engine::{Backend, Diagnosis, Engine};
pub use error::{BedsideError, Result};
pub use record::PatientRecord;
