//! bedside: a clinical small language model that runs where the patient data is — in the browser
//! on WebGPU or the CPU, or natively — and never sends it anywhere.
//!
//! This crate is the inference library; it builds natively and for `wasm32-unknown-unknown`
//! from the same source. Training lives in the `bedside-train` binary.

// The API a user of the crate needs: load a bundle and ask it.
pub mod bundle;
pub mod engine;
pub mod error;
pub mod model_card;
pub mod record;

pub use chart::ChannelSeries;
pub use engine::{Backend, Diagnosis, Engine, Explanation, PhenotypeScore};
pub use error::{BedsideError, Result};
pub use record::PatientRecord;

// Internal: the model and the answer's parts, public because `bedside-train` (the same model
// code trains and serves), the benchmarks and the tests use them; they may change without notice.
pub mod calibration;
pub mod compare;
pub mod constrained;
pub mod findings;
pub mod generate;
pub mod grounded;
pub mod kernels;
pub mod knowledge;
pub mod model;
pub mod out_of_range;
pub mod prompt;
pub mod recommend;
pub mod risk;
pub mod self_test;
#[doc(hidden)]
#[cfg(not(target_family = "wasm"))]
pub mod test_layers;
pub mod tokenizer;

mod chart;
mod files;
#[cfg(target_family = "wasm")]
mod web;
