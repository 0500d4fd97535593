//! Measurement: metrics of probabilities (metrics), of recommended drug sets (medrec_metrics) and
//! of text (text_metrics); the evaluation of a bundle on a cohort (eval) and of its stated lab
//! facts against what the model did not learn from (citations); calibration of the phenotype head
//! (calibration); speed (bench) and time and memory per step (usage); and the plots.

pub mod bench;
pub mod calibration;
pub mod citations;
pub mod eval;
pub mod medrec_metrics;
pub mod metrics;
pub mod plots;
pub mod text_metrics;
pub mod usage;
