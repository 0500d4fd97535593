//! `eval`: measures a clinical bundle on a labelled cohort and writes the report.

use crate::measure::eval;
use crate::shared::io::read_cohort;
use crate::shared::split::{PatientSplit, Side, patient_key};
use crate::shared::synthetic;
use crate::teachers;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    /// Cohort JSONL with labels; without it, --synthetic admissions of the synthetic split
    /// --split names.
    #[arg(long)]
    cohort: Option<PathBuf>,
    /// Only the admissions of the cohort's patients on this side of the patient split (the one
    /// `distill` and `medrec` train by): `test` scores a real cohort's test patients.
    #[arg(long, value_enum, requires = "cohort")]
    side: Option<Side>,
    #[arg(long, default_value_t = 100)]
    synthetic: usize,
    /// Which synthetic split to score: `development` (every choice is made on it) or
    /// `final-test` (scored once per committed model; RESULTS.md, "How the figures are made").
    #[arg(long, value_enum, default_value_t = Split::Development, conflicts_with = "cohort")]
    split: Split,
    /// Teacher rationale JSONL to compare with; without it, the knowledge teacher's.
    #[arg(long)]
    rationales: Option<PathBuf>,
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    /// Directory for report.json, report.md, roc.png and calibration.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The synthetic splits of the protocol; neither seed trains a committed model.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Split {
    Development,
    FinalTest,
}

impl Split {
    pub fn seed(self) -> u64 {
        match self {
            Split::Development => synthetic::DEVELOPMENT_SEED,
            Split::FinalTest => synthetic::FINAL_TEST_SEED,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Development => "development",
            Split::FinalTest => "final test",
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        bundle,
        cohort,
        side,
        synthetic,
        split,
        rationales,
        max_tokens,
        out,
    } = args;
    let (records, split) = match &cohort {
        Some(path) => match side {
            Some(side) => {
                let split = PatientSplit::default();
                let records: Vec<_> = read_cohort(path)?
                    .into_iter()
                    .filter(|r| split.side(patient_key(r)) == side)
                    .collect();
                let side = format!("{side:?}").to_lowercase();
                let name = format!("the {side} patients of {}", path.display());
                (records, name)
            }
            None => (
                read_cohort(path)?,
                format!(
                    "the cohort file {} (its split is what made it)",
                    path.display()
                ),
            ),
        },
        None => (
            synthetic::cohort(synthetic, 48, split.seed()),
            format!(
                "synthetic {} split (seed {}, {synthetic} admissions)",
                split.name(),
                split.seed()
            ),
        ),
    };
    eprintln!("eval: scoring {split}");
    let rationales = match &rationales {
        Some(path) => teachers::read_jsonl(path)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
        None => std::collections::BTreeMap::new(),
    };
    let report = eval::evaluate(
        &bundle,
        &split,
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
