//! `bedside-train`: builds cohorts, trains and exports the bundles the browser loads, and
//! predicts natively. Every subcommand has `--help`; bad input ends with a non-zero exit and a
//! one-line reason.

mod backend;
mod bench;
mod calibration;
mod citations;
mod cli;
mod distill;
mod endpoint;
mod eval;
mod export;
mod fit;
mod io;
mod logistic;
mod medrec;
mod medrec_metrics;
mod metrics;
mod mortality;
mod mortality_bundle;
mod plots;
mod split;
mod synthetic;
mod teach;
mod text_metrics;
mod tokenizer;
mod train;
mod usage;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bedside-train",
    version,
    about = "Train, export and run bedside models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a cohort of PatientRecords: JSONL, or one JSON array when --out ends in .json.
    Cohort(cli::cohort::Args),
    /// Train the lab-phenotype model and export a bundle (manifest.json + model.safetensors).
    Train(cli::train::Args),
    /// PhysioNet/CinC 2012 in-hospital mortality: fit a logistic regression over the static
    /// descriptors and channel summaries, train the time-series encoder with a one-output head on
    /// top of it on one set (early stopping and Platt scaling on a held-out fifth), test on
    /// another against SAPS-I.
    /// Writes report.json (with the Platt scaling), report.md, roc.csv, calibration.csv,
    /// model.safetensors (and model-seed-S.safetensors for each further seed) and the plots
    /// roc.png, calibration.png and training.png into --out.
    Mortality(cli::mortality::Args),
    /// Write the patient split of a cohort (the one `distill`, `medrec` and `eval --side` use):
    /// the admission ids of its training, validation and test patients.
    Split(cli::split::Args),
    /// Write teacher rationales (JSONL) for a cohort.
    Teach(cli::teach::Args),
    /// ClinRaGen's three-stage rationale distillation into the multimodal model.
    Distill(cli::distill::Args),
    /// LEADER: train the medication teacher, distil it into the student, measure both.
    Medrec(cli::medrec::Args),
    /// LEADER's teacher features from a language model: the pooled hidden state of each
    /// admission's visit prompt from an OpenAI-compatible embeddings endpoint.
    Features(cli::features::Args),
    /// Measure a clinical bundle on a labelled cohort: the phenotype head, the written diagnoses,
    /// and the rationales (BLEU-4, ROUGE-L, faithfulness).
    Eval(cli::eval::Args),
    /// Export a finished distillation run as a browser bundle.
    Export(cli::export::Args),
    /// Write a bundle's model card (training data, evaluations, out-of-range rule, use, limits)
    /// into its manifest.
    Card(cli::card::Args),
    /// Train the text tokenizer (tokenizer.json) on cohort notes, rationales and the knowledge base.
    Tokenizer(cli::tokenizer::Args),
    /// Print the token ids of texts: reads a JSON array of strings on stdin, writes an array of
    /// id arrays.
    Tokenize(cli::tokenize::Args),
    /// Diagnose one PatientRecord JSON (or FHIR R4 Bundle) file with a bundle; prints the result
    /// as JSON. Errors start with the library's stable code, e.g. `[RECORD_JSON]`.
    Predict(cli::predict::Args),
    /// Time a clinical bundle on one backend (inference, scaling, and on the CPU the training
    /// step of each distillation stage); writes the figures as JSON (see bench/ and BENCHMARKS.md).
    Bench(cli::bench::Args),
}

fn main() {
    // BEDSIDE_LOG takes tracing's filter syntax, e.g. BEDSIDE_LOG=debug or BEDSIDE_LOG=bedside_train=warn
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BEDSIDE_LOG")
                .unwrap_or_else(|_| "warn,bedside_train=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(error) = run(Cli::parse()) {
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        // the library's stable error code first, for scripts (the same codes as the JS API)
        let code = error
            .chain()
            .find_map(|e| e.downcast_ref::<bedside::BedsideError>())
            .map(|e| format!("[{}] ", e.code()));
        eprintln!(
            "bedside-train: {}{}",
            code.unwrap_or_default(),
            chain.join(": ")
        );
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Cohort(args) => cli::cohort::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Mortality(args) => cli::mortality::run(args),
        Command::Split(args) => cli::split::run(args),
        Command::Teach(args) => cli::teach::run(args),
        Command::Distill(args) => cli::distill::run(args),
        Command::Medrec(args) => cli::medrec::run(args),
        Command::Features(args) => cli::features::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Card(args) => cli::card::run(args),
        Command::Tokenizer(args) => cli::tokenizer::run(args),
        Command::Tokenize(args) => cli::tokenize::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Bench(args) => cli::bench::run(args),
    }
}
