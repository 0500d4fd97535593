//! `medrec`: LEADER, the medication teacher distilled into the student, both measured.

use crate::pipelines::medrec;
use crate::shared::io::read_cohort;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run configuration (TOML; every field optional, see `--print-config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory: medrec.json, medrec.safetensors, teacher features, report.
    #[arg(long)]
    out: PathBuf,
    /// Print the default configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        config,
        out,
        print_config,
    } = args;
    if print_config {
        print!("{}", medrec::default_config_toml()?);
        return Ok(());
    }
    let config = match &config {
        Some(path) => medrec::MedRecRunConfig::read(path)?,
        None => medrec::MedRecRunConfig::default(),
    };
    let records = medrec::records(&config, read_cohort)?;
    let report = medrec::run(&config, records, &out)?;
    let s = &report.student.overall;
    println!(
        "medrec: student Jaccard {:.3} (95% CI {:.3}–{:.3}), PRAUC {:.3}, F1 {:.3}, DDI rate {:.3} on {} test admissions; {:.0} s → {}",
        s.jaccard,
        s.jaccard_ci95.0,
        s.jaccard_ci95.1,
        s.prauc,
        s.f1,
        s.ddi_rate,
        s.n,
        report.seconds,
        out.display()
    );
    if let Some(t) = &report.teacher {
        println!(
            "medrec: teacher Jaccard {:.3}, PRAUC {:.3}, F1 {:.3}",
            t.overall.jaccard, t.overall.prauc, t.overall.f1
        );
    }
    Ok(())
}
