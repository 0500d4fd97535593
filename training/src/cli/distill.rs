//! `distill`: runs ClinRaGen's three-stage rationale distillation into the multimodal model.

use crate::pipelines::distill;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run configuration (TOML; every field optional, see `--print-config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory: checkpoints, tokenizer, final weights.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the run directory's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start the language model from a HuggingFace T5 / Flan-T5 checkpoint directory
    /// (`config.json`, `model.safetensors`, `tokenizer.json`); overrides the config's `init_from`.
    #[arg(long, value_name = "DIR")]
    init_from: Option<PathBuf>,
    /// Print the default configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        config,
        out,
        resume,
        init_from,
        print_config,
    } = args;
    if print_config {
        print!("{}", toml::to_string(&distill::RunConfig::default())?);
        return Ok(());
    }
    let mut run = distill::Run::new(config.as_deref(), out.clone())?;
    if let Some(dir) = init_from {
        run.init_from(&dir)?;
    }
    let admissions = run.admissions()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        eprintln!("\nstopping after this batch; a checkpoint will be saved");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    })
    .context("installing the Ctrl-C handler")?;
    let started = std::time::Instant::now();
    let (_, progress, _) = run.execute(
        &admissions,
        resume,
        stop,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    let last = progress.history.last();
    println!(
        "distill: {} admissions, {} epochs in {:.0} s; last validation micro-F1 of the written diagnoses {} → {}",
        admissions.len(),
        progress.history.len(),
        started.elapsed().as_secs_f64(),
        last.map_or("n/a".into(), |h| format!("{:.3}", h.generated_micro_f1)),
        out.join("model.safetensors").display()
    );
    Ok(())
}
