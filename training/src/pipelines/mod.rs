//! The training pipelines, each from a cohort to a bundle the browser loads: the lab-phenotype
//! model (lab_phenotype), ClinRaGen's rationale distillation (distill) and its export, LEADER's
//! medication recommender (medrec), PhysioNet 2012 mortality (mortality), and the tokenizer they
//! share (tokenizer).

pub mod distill;
pub mod export;
pub mod lab_phenotype;
pub mod medrec;
pub mod mortality;
pub mod tokenizer;
