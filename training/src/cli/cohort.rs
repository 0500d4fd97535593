//! `cohort`: reads a source (synthetic, MIMIC-III, MIMIC-IV, PhysioNet 2012) into PatientRecords
//! and writes them with a summary.

use crate::shared::io::{write_atomic, write_atomic_with};
use crate::shared::synthetic;
use anyhow::{Context, Result};
use bedside::PatientRecord;
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
    /// Where a MIMIC cohort too large for memory spills while it is read (temporary files,
    /// removed at the end) [default: the directory of OUT].
    #[arg(long)]
    spill: Option<PathBuf>,
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
        spill,
        out,
    } = args;
    let input = || {
        input
            .clone()
            .context("--input DIR is required for this source")
    };
    let options = cohort::Options {
        atc,
        hours,
        notes,
        keep_diagnoses,
        spill: spill.or_else(|| out.parent().map(PathBuf::from)),
        ..cohort::Options::default()
    };
    // `.json`: one JSON array (what the demo page fetches); anything else: JSONL. Records are
    // written as they are read: a MIMIC cohort need not fit in memory.
    let array = out.extension().is_some_and(|e| e == "json");
    let mut written = 0usize;
    let summary = write_atomic_with(&out, |w| {
        let mut sink = |r: PatientRecord| -> Result<()> {
            if array {
                w.write_all(if written == 0 { b"[" } else { b"," })?;
            }
            serde_json::to_writer(&mut *w, &r)?;
            if !array {
                w.write_all(b"\n")?;
            }
            written += 1;
            Ok(())
        };
        let summary = match source {
            Source::Synthetic => {
                let records = synthetic::cohort(n, hours, seed);
                let mut summary = cohort::Summary::new("synthetic");
                summary.describe(&records, records.len());
                records.into_iter().try_for_each(&mut sink)?;
                summary
            }
            Source::Mimic3 => {
                let mut summary = cohort::Summary::new("mimic3");
                cohort::mimic3::stream(&input()?, &options, &mut summary, &mut sink)?;
                summary
            }
            Source::Mimic4 => {
                let mut summary = cohort::Summary::new("mimic4");
                cohort::mimic4::stream(&input()?, &options, &mut summary, &mut sink)?;
                summary
            }
            Source::Physionet2012 => {
                let mut summary = cohort::Summary::new("physionet2012");
                let records = cohort::physionet2012::read(&input()?, &mut summary)?;
                records.into_iter().try_for_each(&mut sink)?;
                summary
            }
        };
        if array {
            w.write_all(if written == 0 { b"[]" } else { b"]" })?;
        }
        Ok(summary)
    })?;
    let summary_path = summary_path.unwrap_or_else(|| out.with_extension("summary.json"));
    write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    eprint!("{}", summary.table());
    eprintln!(
        "wrote {written} admissions to {}, summary to {}",
        out.display(),
        summary_path.display()
    );
    Ok(())
}
