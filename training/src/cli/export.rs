//! `export`: turns a finished distillation run (and optionally a medrec run) into a browser bundle.

use anyhow::Result;
use bedside::bundle::WeightsDtype;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run directory of `distill`.
    #[arg(long)]
    run: PathBuf,
    /// Bundle directory to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = DtypeArg::F16)]
    dtype: DtypeArg,
    /// The run directory of `medrec`: adds its medication recommender to the bundle.
    #[arg(long)]
    medrec: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DtypeArg {
    F32,
    F16,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        run,
        out,
        dtype,
        medrec,
    } = args;
    let dtype = match dtype {
        DtypeArg::F32 => WeightsDtype::F32,
        DtypeArg::F16 => WeightsDtype::F16,
    };
    let manifest = crate::pipelines::export::export(&run, medrec.as_deref(), &out, dtype)?;
    let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
    println!(
        "export: {} bundle ({dtype}), {:.1} MB → {}",
        manifest.model.kind(),
        bytes as f64 / 1e6,
        out.display()
    );
    Ok(())
}
