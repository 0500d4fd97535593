//! `features`: LEADER's teacher features from a language model — the pooled hidden state of each
//! admission's visit prompt (the prompts `medrec` builds from the same run configuration), asked
//! of an OpenAI-compatible embeddings endpoint and written as hidden-state-only teacher features.
//! A `medrec` run with `teacher.mode = "offline"` and `teacher.features` set to the file fits a
//! logistic regression on them as the teacher and distils the student from it.

use crate::pipelines::medrec;
use crate::shared::io::read_cohort;
use crate::teachers::endpoint;
use anyhow::{Result, bail, ensure};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The medrec run configuration (TOML) whose admissions and prompts to use: its cohorts,
    /// code names and `student.max_visits`.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    endpoint: super::EndpointArgs,
    /// The features (safetensors: `hidden` [N, H], the admission ids in the metadata key `ids`).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        config,
        endpoint,
        out,
    } = args;
    let config = medrec::MedRecRunConfig::read(&config)?;
    let records = medrec::records(&config, read_cohort)?;
    let prompts = medrec::visit_prompts(&config, &records)?;
    let options = endpoint.options(&out)?;
    let started = std::time::Instant::now();
    let run = endpoint::embed(&prompts, &options)?;
    run.report("features", started);
    if !run.failed.is_empty() {
        bail!(
            "{} of {} admissions have no features; rerun to ask for the rest (the answers so far are cached)",
            run.failed.len(),
            prompts.len()
        );
    }
    let width = run.answers.first().map_or(0, |(_, h)| h.len());
    ensure!(width > 0, "no admissions to describe");
    if let Some((id, h)) = run.answers.iter().find(|(_, h)| h.len() != width) {
        bail!(
            "admission {id}: the endpoint gave {} values where the others had {width}",
            h.len()
        );
    }
    let ids: Vec<String> = run.answers.iter().map(|(id, _)| id.clone()).collect();
    let hidden: Vec<f32> = run.answers.into_iter().flat_map(|(_, h)| h).collect();
    medrec::write_features(&out, &ids, &hidden, width, &[], &[])?;
    println!(
        "features: {} admissions × {width} → {}",
        ids.len(),
        out.display()
    );
    Ok(())
}
