//! `train`: trains the lab-phenotype model and exports it as a bundle.

use crate::pipelines::lab_phenotype;
use crate::shared::io::read_cohort;
use crate::shared::synthetic;
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cohort JSONL with labels; without it, a built-in synthetic cohort is generated.
    #[arg(long)]
    cohort: Option<PathBuf>,
    /// Size of the built-in synthetic cohort.
    #[arg(long, default_value_t = 400)]
    synthetic: usize,
    #[command(flatten)]
    options: lab_phenotype::TrainOptions,
    /// Bundle directory to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        cohort,
        synthetic,
        options,
        out,
    } = args;
    let records = match &cohort {
        Some(path) => read_cohort(path)?,
        None => synthetic::cohort(synthetic, options.hours, options.seed),
    };
    if options.batch_size == 0 || options.epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    let (model, report) = lab_phenotype::train(&records, &options)?;
    lab_phenotype::export(&model, lab_phenotype::model_config(&options), &report, &out)?;
    let t = &report.test;
    eprintln!(
        "trained on {} admissions, tested on {}: macro AUROC {:.3} (95% CI {:.3}–{:.3}), micro F1 {:.3}; bundle in {}",
        report.train_admissions,
        report.test_admissions,
        t.macro_auroc,
        t.macro_auroc_ci95.0,
        t.macro_auroc_ci95.1,
        t.micro_f1,
        out.display()
    );
    Ok(())
}
