//! `teach`: writes teacher rationales for a cohort (the knowledge teacher, an imported JSONL file
//! or an OpenAI-compatible endpoint). Rationales from outside bedside pass the grounding filter
//! ([`teachers::ground`]): what contradicts the record or cannot be tied to it is dropped, counted
//! and listed in `OUT` with extension `grounding.json`.

use crate::shared::io::{read_cohort, write_atomic};
use crate::teachers;
use crate::teachers::endpoint;
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    cohort: PathBuf,
    /// `knowledge` (built in), `jsonl` (import and validate --input) or `endpoint` (an
    /// OpenAI-compatible server at --url).
    #[arg(long, value_enum, default_value_t = TeacherArg::Knowledge)]
    teacher: TeacherArg,
    /// Rationale JSONL to import (teacher jsonl).
    #[arg(long)]
    input: Option<PathBuf>,
    #[command(flatten)]
    endpoint: super::EndpointArgs,
    /// Hours of each admission the model reads (the knowledge teacher cites only findings
    /// inside them; the run's `hours`).
    #[arg(long, default_value_t = 48)]
    hours: usize,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TeacherArg {
    Knowledge,
    Jsonl,
    Endpoint,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        cohort,
        teacher,
        input,
        endpoint,
        hours,
        out,
    } = args;
    let records = read_cohort(&cohort)?;
    let rationales = match teacher {
        TeacherArg::Knowledge => records
            .iter()
            .map(|r| teachers::knowledge_teacher(r, hours))
            .collect::<Vec<_>>(),
        TeacherArg::Jsonl => {
            let input = input.context("--input FILE is required with --teacher jsonl")?;
            let imported = teachers::read_jsonl(&input)?;
            let ids: std::collections::BTreeSet<&str> =
                records.iter().map(|r| r.id.as_str()).collect();
            let unknown = imported
                .iter()
                .filter(|r| !ids.contains(r.id.as_str()))
                .count();
            if unknown > 0 {
                eprintln!("teach: {unknown} rationales name admissions not in the cohort; kept");
            }
            grounded(&records, hours, imported, &out)?
        }
        TeacherArg::Endpoint => {
            let options = endpoint.options(&out)?;
            let started = std::time::Instant::now();
            let run = endpoint::teach(&records, &options, hours)?;
            run.report("teach", started);
            if run.answers.is_empty() && !records.is_empty() {
                bail!(
                    "the endpoint answered for no admission; first failure: {}",
                    run.failed.first().map_or("none", |f| f.1.as_str())
                );
            }
            let raw = run.answers.into_iter().map(|(_, r)| r).collect();
            grounded(&records, hours, raw, &out)?
        }
    };
    let mut text = String::new();
    for r in &rationales {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    write_atomic(&out, text.as_bytes())?;
    let with_labs = rationales
        .iter()
        .filter(|r| r.lab_rationale.contains(" was "))
        .count();
    println!(
        "teach: {} rationales ({} with lab findings) → {}",
        rationales.len(),
        with_labs,
        out.display()
    );
    Ok(())
}

/// The rationales through the grounding filter (those of admissions outside the cohort as they
/// are); the counts go to stderr and, with every dropped statement, to `OUT.grounding.json`.
fn grounded(
    records: &[bedside::PatientRecord],
    hours: usize,
    rationales: Vec<teachers::Rationale>,
    out: &std::path::Path,
) -> Result<Vec<teachers::Rationale>> {
    let by_id: std::collections::HashMap<&str, &bedside::PatientRecord> =
        records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut total = teachers::Grounding::default();
    let kept = rationales
        .into_iter()
        .map(|r| match by_id.get(r.id.as_str()) {
            Some(record) => {
                let (kept, counts) = teachers::ground(record, hours, &r);
                total.add(counts);
                kept
            }
            None => r,
        })
        .collect();
    eprintln!(
        "teach: grounding: {} statements, {} grounded, {} contradict the record and {} cannot be tied to it (both dropped)",
        total.statements, total.grounded, total.contradicts, total.unverifiable
    );
    write_atomic(
        &out.with_extension("grounding.json"),
        serde_json::to_string_pretty(&total)?.as_bytes(),
    )?;
    Ok(kept)
}
