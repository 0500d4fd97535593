//! burn model modules. Each is defined once, with a `#[derive(Config)]` config and an
//! `init(&device)`, and runs unchanged on the CPU (flex), on wgpu/WebGPU, and on autodiff in
//! `bedside-train`.

pub mod bounds;
pub mod clinical;
pub mod input;
pub mod knowledge_attention;
pub mod lab_phenotype;
pub mod medrec;
pub mod mortality;
pub mod phenotype_head;
pub mod series;
pub mod t5;
pub mod wide;

pub use clinical::{ClinicalModel, ClinicalModelConfig, Encoded, Part, sequence_loss};
pub use input::ClinicalInput;
pub use knowledge_attention::{KnowledgeAttention, KnowledgeAttentionConfig};
pub use lab_phenotype::{LabPhenotypeModel, LabPhenotypeModelConfig};
pub use medrec::{MedRecBatch, MedRecConfig, MedRecModel, MedRecOutput, Patient};
pub use mortality::{MortalityModel, MortalityModelConfig};
pub use phenotype_head::{PhenotypeHead, PhenotypeHeadConfig};
pub use series::{SeriesEncoder, SeriesEncoderConfig, patchify};
pub use wide::{WideHead, WideHeadConfig, lab_summaries};
