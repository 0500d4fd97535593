//! `tokenizer`: trains the text tokenizer on cohort notes, rationales and the knowledge base.

use crate::pipelines::tokenizer;
use crate::shared::io::{read_cohort, read_rationale_texts, write_atomic};
use crate::shared::synthetic;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cohort JSONL files; without any, a built-in synthetic cohort is used.
    #[arg(long)]
    cohort: Vec<PathBuf>,
    /// Teacher rationale JSONL files whose texts are learnt too.
    #[arg(long)]
    rationales: Vec<PathBuf>,
    /// Size of the built-in synthetic cohort.
    #[arg(long, default_value_t = 400)]
    synthetic: usize,
    #[arg(long, default_value_t = 8000)]
    vocab_size: usize,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        cohort,
        rationales,
        synthetic,
        vocab_size,
        out,
    } = args;
    let mut records = Vec::new();
    for path in &cohort {
        records.extend(read_cohort(path)?);
    }
    if cohort.is_empty() {
        records = synthetic::cohort(synthetic, 48, 7);
    }
    let mut extra = Vec::new();
    for path in &rationales {
        extra.extend(read_rationale_texts(path)?);
    }
    let json = tokenizer::train(tokenizer::corpus(&records, &extra), vocab_size)?;
    let check = bedside::tokenizer::TextTokenizer::from_bytes(json.as_bytes())?;
    write_atomic(&out, json.as_bytes())?;
    println!(
        "tokenizer: {} tokens from {} records and {} rationale texts → {}",
        check.vocab_size(),
        records.len(),
        extra.len(),
        out.display()
    );
    Ok(())
}
