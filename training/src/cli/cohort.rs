//! `cohort`: reads a source (synthetic, MIMIC-III, MIMIC-IV, PhysioNet 2012) into PatientRecords
//! and writes them with a summary.

use crate::io::write_atomic;
use crate::synthetic;
use anyhow::{Context, Result};
use bedside_cohort as cohort;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_enum)]
    source: Source,
    /// Directory of the source data (all sources but synthetic).
    #[arg(long)]
    input: Option<PathBuf>,
    /// GSN/NDC → ATC table (`gsn_atc_ndc_mapping.csv.gz`) for MIMIC-III/IV prescriptions.
    #[arg(long)]
    atc: Option<PathBuf>,
    /// Where to write the summary as JSON [default: OUT with extension .summary.json].
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Number of admissions (synthetic source).
    #[arg(long, default_value_t = 400)]
    n: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value_t = 48)]
    hours: usize,
    /// MIMIC-IV-Note's `note/` directory (discharge, radiology) [default: `note/` beside `hosp/`].
    #[arg(long)]
    notes: Option<PathBuf>,
    /// Keep the discharge summaries' sections that list diagnoses (MIMIC-IV): they name the
    /// labels, so a model trained on them learns to read the answer.
    #[arg(long)]
    keep_diagnoses: bool,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Source {
    Synthetic,
    Mimic3,
    Physionet2012,
    Mimic4,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        source,
        input,
        atc,
        summary: summary_path,
        n,
        seed,
        hours,
        notes,
        keep_diagnoses,
        out,
    } = args;
    let input = || {
        input
            .clone()
            .context("--input DIR is required for this source")
    };
    let (records, summary) = match source {
        Source::Synthetic => {
            let records = synthetic::cohort(n, hours, seed);
            let mut summary = cohort::Summary::new("synthetic");
            summary.describe(&records, records.len());
            (records, summary)
        }
        Source::Mimic3 => {
            let mut summary = cohort::Summary::new("mimic3");
            (
                cohort::mimic3::read(&input()?, atc.as_deref(), hours, &mut summary)?,
                summary,
            )
        }
        Source::Mimic4 => {
            let mut summary = cohort::Summary::new("mimic4");
            let options = cohort::mimic4::Options {
                atc: atc.clone(),
                hours,
                notes: notes.clone(),
                keep_diagnoses,
            };
            (
                cohort::mimic4::read_with(&input()?, &options, &mut summary)?,
                summary,
            )
        }
        Source::Physionet2012 => {
            let mut summary = cohort::Summary::new("physionet2012");
            (
                cohort::physionet2012::read(&input()?, &mut summary)?,
                summary,
            )
        }
    };
    // `.json`: one JSON array (what the demo page fetches); anything else: JSONL
    let text = if out.extension().is_some_and(|e| e == "json") {
        serde_json::to_string(&records)?
    } else {
        records
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?
            .join("\n")
            + "\n"
    };
    write_atomic(&out, text.as_bytes())?;
    let summary_path = summary_path.unwrap_or_else(|| out.with_extension("summary.json"));
    write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    eprint!("{}", summary.table());
    eprintln!(
        "wrote {} admissions to {}, summary to {}",
        records.len(),
        out.display(),
        summary_path.display()
    );
    Ok(())
}
