//! `mortality`: PhysioNet/CinC 2012 in-hospital mortality, trained on one set and tested on
//! another; writes the report, the weights and the plots.

use crate::pipelines::mortality;
use crate::shared::io::write_atomic;
use anyhow::{Context, Result};
use bedside::bundle::WEIGHTS_FILE;
use bedside_cohort as cohort;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory with set-*.tar.gz and Outcomes-*.txt (../shared/data/physionet2012).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "set-a")]
    train_set: String,
    #[arg(long, default_value = "set-b")]
    test_set: String,
    #[command(flatten)]
    options: mortality::MortalityOptions,
    #[arg(long)]
    out: PathBuf,
    /// Also write the model as a browser bundle (kind "mortality", f16) into this directory:
    /// weights, Platt scaling, self-test and a model card from this run's report (one seed).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// With --bundle: once the test set is scored, fit the bundle's model again by the same
    /// procedure on the training and test sets together (a fifth of them held out for C, early
    /// stopping and Platt scaling); the card gives the test figures as the procedure's.
    #[arg(long, requires = "bundle")]
    refit: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        input,
        train_set,
        test_set,
        options,
        out,
        bundle,
        refit,
    } = args;
    if bundle.is_some() && options.seeds != 1 {
        anyhow::bail!(
            "--bundle holds one model: train it with --seeds 1 (not {})",
            options.seeds
        );
    }
    let mut summary = cohort::Summary::new("physionet2012");
    let mut sets = cohort::physionet2012::read_sets(&input, &mut summary)?;
    let mut take = |name: &str| {
        let at = sets.iter().position(|(n, _)| n == name);
        let known: Vec<String> = sets.iter().map(|(n, _)| n.clone()).collect();
        at.map(|i| sets.swap_remove(i).1).with_context(|| {
            format!(
                "no {name}.tar.gz in {} (found: {})",
                input.display(),
                known.join(", ")
            )
        })
    };
    let (train_records, test_records) = (take(&train_set)?, take(&test_set)?);
    let (members, report) = mortality::run(&train_records, &test_records, &options)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // the first seed's weights in model.safetensors, the others' in model-seed-S
    for (k, (model, member)) in members.iter().zip(&report.members).enumerate() {
        let name = if k == 0 {
            WEIGHTS_FILE.to_string()
        } else {
            format!("model-seed-{}.safetensors", member.seed)
        };
        crate::shared::fit::save_weights(model, &out.join(name))?;
    }
    write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&out.join("report.md"), report.markdown().as_bytes())?;
    report.split.write(&out)?;
    let roc: String = report
        .roc
        .iter()
        .map(|(x, y)| format!("{x},{y}\n"))
        .collect();
    write_atomic(
        &out.join("roc.csv"),
        format!("false_positive_rate,true_positive_rate\n{roc}").as_bytes(),
    )?;
    let calibration: String = report
        .calibration
        .iter()
        .map(|b| format!("{},{},{}\n", b.n, b.mean_predicted, b.observed))
        .collect();
    write_atomic(
        &out.join("calibration.csv"),
        format!("stays,mean_predicted,observed\n{calibration}").as_bytes(),
    )?;
    report.plot(&out)?;
    if let Some(dir) = &bundle {
        let refitted = match refit {
            true => {
                let both = [train_records.as_slice(), test_records.as_slice()].concat();
                let fitted = mortality::fit(&both, &options)?;
                let log = &fitted.logs[0];
                eprintln!(
                    "mortality: refitted on {train_set} + {test_set}: {} stays, {} held out; C {}, \
                     best epoch {} of {} (validation AUROC {:.3}), Platt {:.3} / {:+.3}, {:.0} s",
                    fitted.stays().0,
                    fitted.stays().1,
                    fitted.linear_c,
                    log.best_epoch,
                    log.epochs.len(),
                    log.best_validation_auroc,
                    fitted.recalibration.0,
                    fitted.recalibration.1,
                    fitted.train_seconds
                );
                Some(fitted)
            }
            false => None,
        };
        let (model, recalibration) = match &refitted {
            Some(f) => (f.members.first(), f.recalibration),
            None => (members.first(), report.recalibration),
        };
        let model = model.context("no model was trained")?;
        let manifest = crate::pipelines::mortality::bundle::write(
            dir,
            model,
            &mortality::model_config(&options),
            recalibration,
            &report,
            &crate::pipelines::mortality::bundle::Provenance {
                train_set: &train_set,
                test_set: &test_set,
                refit: refitted.as_ref().map(|f| f.stays()),
            },
            bedside::bundle::WeightsDtype::F16,
        )?;
        let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
        eprintln!(
            "mortality: bundle ({:.2} MB) → {}",
            bytes as f64 / 1e6,
            dir.display()
        );
    }
    print!("{}", report.markdown());
    eprintln!(
        "mortality: trained on {} stays of {train_set}, tested on {} of {test_set}: AUROC {:.3} ({:.3}–{:.3}); report in {}",
        report.train_stays,
        report.test_stays,
        report.test.auroc,
        report.test.auroc_ci95.0,
        report.test.auroc_ci95.1,
        out.display()
    );
    Ok(())
}
