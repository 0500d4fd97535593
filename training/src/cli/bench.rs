//! `bench`: times a clinical bundle on one backend and writes the figures as JSON.

use crate::measure::bench;
use crate::shared::io::write_atomic;
use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    /// "cpu" or "wgpu".
    #[arg(long, default_value = "cpu")]
    backend: bedside::Backend,
    /// Timed runs per figure (after warm-up runs); the median and the 10th/90th percentiles
    /// are reported.
    #[arg(long, default_value_t = 15)]
    repeats: usize,
    /// Tokens per fixed-length generation run.
    #[arg(long, default_value_t = 64)]
    tokens: usize,
    /// Run configuration whose batch size and prompt/target lengths the training steps use.
    #[arg(long)]
    config: Option<PathBuf>,
    /// What to time.
    #[arg(long, value_enum, default_value_t = BenchPart::All)]
    part: BenchPart,
    /// Also write the timed tensors (and the probabilities computed) for bench/reference.py.
    #[arg(long)]
    inputs: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchPart {
    All,
    Inference,
    Training,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        bundle,
        backend,
        repeats,
        tokens,
        config,
        part,
        inputs,
        out,
    } = args;
    let options = bench::BenchOptions {
        bundle,
        backend,
        repeats,
        tokens,
        run_config: config,
        inference: part != BenchPart::Training,
        training: part != BenchPart::Inference,
        inputs,
    };
    let figures = bench::run(&options)?;
    write_atomic(&out, serde_json::to_string_pretty(&figures)?.as_bytes())?;
    eprintln!("bench: figures written to {}", out.display());
    Ok(())
}
