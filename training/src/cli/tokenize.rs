//! `tokenize`: prints the token ids of the texts read on stdin.

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    tokenizer: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let Args { tokenizer } = args;
    let bytes = std::fs::read(&tokenizer)
        .with_context(|| format!("cannot read {}", tokenizer.display()))?;
    let tok = bedside::tokenizer::TextTokenizer::from_bytes(&bytes)?;
    let texts: Vec<String> = serde_json::from_reader(std::io::stdin())
        .context("stdin: a JSON array of strings expected")?;
    let ids = texts
        .iter()
        .map(|t| tok.encode(t))
        .collect::<bedside::Result<Vec<_>>>()?;
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
