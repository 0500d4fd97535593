//! `predict`: diagnoses one record with a bundle natively, optionally with the rationale and
//! the medication recommendation.

use anyhow::{Context, Result};
use bedside::{Engine, PatientRecord};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    record: PathBuf,
    /// "cpu" or "wgpu".
    #[arg(long, default_value = "cpu")]
    backend: bedside::Backend,
    /// Also generate the diagnoses and rationale (clinical bundles), streamed to stderr.
    #[arg(long)]
    explain: bool,
    /// Also recommend medications (bundles with a medication recommender).
    #[arg(long)]
    recommend: bool,
    /// Longest generated text, in tokens.
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        bundle,
        record,
        backend,
        explain,
        recommend,
        max_tokens,
    } = args;
    let bundle = bedside::bundle::Bundle::from_dir(&bundle)?;
    let text = std::fs::read_to_string(&record)
        .with_context(|| format!("cannot read {}", record.display()))?;
    let record =
        PatientRecord::from_json_or_fhir(&text).with_context(|| record.display().to_string())?;
    let engine = pollster::block_on(Engine::load(&bundle, backend))?;
    let mut stdout = std::io::stdout().lock();
    // a mortality bundle's one answer: the risk and the findings that moved it
    if let bedside::bundle::ModelSpec::Mortality(_) = engine.manifest().model {
        let risk = pollster::block_on(engine.risk(&record))?;
        serde_json::to_writer_pretty(&mut stdout, &risk)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let (diagnosis, explanation, recommendation) = pollster::block_on(async {
        let diagnosis = engine.diagnose(&record).await?;
        let explanation = match explain {
            true => {
                let options = bedside::generate::GenerateOptions {
                    max_new_tokens: max_tokens,
                    ..Default::default()
                };
                let mut stream = |piece: &str| {
                    eprint!("{piece}");
                    true
                };
                let e = engine.explain(&record, &options, &mut stream).await?;
                eprintln!();
                Some(e)
            }
            false => None,
        };
        let recommendation = match recommend {
            true => Some(engine.recommend(&record).await?),
            false => None,
        };
        Ok::<_, bedside::BedsideError>((diagnosis, explanation, recommendation))
    })?;
    match (explain, recommend) {
        (false, false) => serde_json::to_writer_pretty(&mut stdout, &diagnosis)?,
        _ => serde_json::to_writer_pretty(
            &mut stdout,
            &serde_json::json!({ "diagnosis": diagnosis, "explanation": explanation, "recommendation": recommendation }),
        )?,
    }
    writeln!(stdout)?;
    Ok(())
}
