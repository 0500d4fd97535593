//! `eval`: measures a clinical bundle on a labelled cohort and writes the report.

use crate::io::read_cohort;
use crate::{eval, synthetic, teach};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    /// Cohort JSONL with labels; without it, a built-in synthetic cohort (seed 2025, not a
    /// training seed) of --synthetic admissions.
    #[arg(long)]
    cohort: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    synthetic: usize,
    /// Teacher rationale JSONL to compare with; without it, the knowledge teacher's.
    #[arg(long)]
    rationales: Option<PathBuf>,
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    /// Directory for report.json, report.md, roc.png and calibration.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        bundle,
        cohort,
        synthetic,
        rationales,
        max_tokens,
        out,
    } = args;
    let records = match &cohort {
        Some(path) => read_cohort(path)?,
        None => synthetic::cohort(synthetic, 48, 2025),
    };
    let rationales = match &rationales {
        Some(path) => teach::read_jsonl(path)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
        None => std::collections::BTreeMap::new(),
    };
    let report = eval::evaluate(
        &bundle,
        &records,
        &rationales,
        max_tokens,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    print!("{}", report.markdown());
    if let Some(out) = out {
        report.write(&out)?;
    }
    Ok(())
}
