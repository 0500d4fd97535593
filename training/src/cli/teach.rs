//! `teach`: writes teacher rationales for a cohort (the knowledge teacher, an imported JSONL file
//! or an OpenAI-compatible endpoint).

use crate::io::{read_cohort, write_atomic};
use crate::{endpoint, teach};
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    cohort: PathBuf,
    /// `knowledge` (built in), `jsonl` (import and validate --input) or `endpoint` (an
    /// OpenAI-compatible chat-completions server at --url).
    #[arg(long, value_enum, default_value_t = TeacherArg::Knowledge)]
    teacher: TeacherArg,
    /// Rationale JSONL to import (teacher jsonl).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Chat-completions URL (teacher endpoint), e.g. http://127.0.0.1:8080/v1/chat/completions;
    /// an API key, where needed, is read from BEDSIDE_TEACHER_API_KEY.
    #[arg(long)]
    url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, default_value = "default")]
    model: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds one request may take, answer included.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Retries of a request after 429, 5xx, a transport error or an unreadable answer.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// First backoff in milliseconds, doubled on each retry.
    #[arg(long, default_value_t = 1000)]
    backoff_ms: u64,
    /// Answer cache [default: OUT with extension .cache]: a rerun asks only for what is missing.
    #[arg(long)]
    cache: Option<PathBuf>,
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
        url,
        model,
        concurrency,
        timeout,
        retries,
        backoff_ms,
        cache,
        hours,
        out,
    } = args;
    let records = read_cohort(&cohort)?;
    let rationales = match teacher {
        TeacherArg::Knowledge => records
            .iter()
            .map(|r| teach::knowledge_teacher(r, hours))
            .collect::<Vec<_>>(),
        TeacherArg::Jsonl => {
            let input = input.context("--input FILE is required with --teacher jsonl")?;
            let imported = teach::read_jsonl(&input)?;
            let ids: std::collections::BTreeSet<&str> =
                records.iter().map(|r| r.id.as_str()).collect();
            let unknown = imported
                .iter()
                .filter(|r| !ids.contains(r.id.as_str()))
                .count();
            if unknown > 0 {
                eprintln!("teach: {unknown} rationales name admissions not in the cohort; kept");
            }
            imported
        }
        TeacherArg::Endpoint => {
            let options = endpoint::EndpointOptions {
                url: url.context("--url is required with --teacher endpoint")?,
                model,
                api_key: std::env::var("BEDSIDE_TEACHER_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
                concurrency,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
                retries,
                backoff: std::time::Duration::from_millis(backoff_ms),
                cache: cache.unwrap_or_else(|| out.with_extension("cache")),
                hours,
            };
            let run = endpoint::teach(&records, &options)?;
            eprintln!(
                "teach: {} requests, {} answers from the cache, {} failed",
                run.requests,
                run.cached,
                run.failed.len()
            );
            for (id, why) in run.failed.iter().take(5) {
                eprintln!("  {id}: {why}");
            }
            if run.rationales.is_empty() && !records.is_empty() {
                bail!(
                    "the endpoint answered for no admission; first failure: {}",
                    run.failed.first().map_or("none", |f| f.1.as_str())
                );
            }
            run.rationales
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
