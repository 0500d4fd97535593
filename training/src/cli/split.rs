//! `split`: writes the patient split of a cohort (the admission ids on each side), for tools
//! outside bedside that must train and test on the same patients (`experiments/baselines.py`).

use crate::shared::io::{read_cohort, write_atomic};
use crate::shared::split::PatientSplit;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cohort JSONL (or JSON array).
    #[arg(long)]
    cohort: PathBuf,
    /// The split.json to write: {"train": [ids], "validation": [ids], "test": [ids]}.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let records = read_cohort(&args.cohort)?;
    let sides = PatientSplit::default().sides(&records);
    let ids =
        |side: &Vec<usize>| -> Vec<&str> { side.iter().map(|&i| records[i].id.as_str()).collect() };
    let json = serde_json::json!({
        "train": ids(&sides[0]),
        "validation": ids(&sides[1]),
        "test": ids(&sides[2]),
    });
    write_atomic(&args.out, serde_json::to_string(&json)?.as_bytes())?;
    println!(
        "split: {} / {} / {} admissions (train / validation / test) → {}",
        sides[0].len(),
        sides[1].len(),
        sides[2].len(),
        args.out.display()
    );
    Ok(())
}
