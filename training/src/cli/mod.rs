//! The subcommands of `bedside-train`, one module per subcommand: its arguments (`Args`, whose
//! field docs are the `--help` text) and what it does with them (`run`); [`main`] parses and
//! dispatches. The work itself lives in the crate's other modules.

pub mod bench;
pub mod card;
pub mod cohort;
pub mod distill;
pub mod eval;
pub mod export;
pub mod features;
pub mod medrec;
pub mod mortality;
pub mod predict;
pub mod split;
pub mod teach;
pub mod tokenize;
pub mod tokenizer;
pub mod train;

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
    Cohort(cohort::Args),
    /// Train the lab-phenotype model and export a bundle (manifest.json + model.safetensors).
    Train(train::Args),
    /// PhysioNet/CinC 2012 in-hospital mortality: fit a logistic regression over the static
    /// descriptors and channel summaries, train the time-series encoder with a one-output head on
    /// top of it on one set (early stopping and Platt scaling on a held-out fifth), test on
    /// another against SAPS-I.
    /// Writes report.json (with the Platt scaling), report.md, roc.csv, calibration.csv,
    /// model.safetensors (and model-seed-S.safetensors for each further seed) and the plots
    /// roc.png, calibration.png and training.png into --out.
    Mortality(mortality::Args),
    /// Write the patient split of a cohort (the one `distill`, `medrec` and `eval --side` use):
    /// the admission ids of its training, validation and test patients.
    Split(split::Args),
    /// Write teacher rationales (JSONL) for a cohort.
    Teach(teach::Args),
    /// ClinRaGen's three-stage rationale distillation into the multimodal model.
    Distill(distill::Args),
    /// LEADER: train the medication teacher, distil it into the student, measure both.
    Medrec(medrec::Args),
    /// LEADER's teacher features from a language model: the pooled hidden state of each
    /// admission's visit prompt from an OpenAI-compatible embeddings endpoint.
    Features(features::Args),
    /// Measure a clinical bundle on a labelled cohort: the phenotype head, the written diagnoses,
    /// and the rationales (BLEU-4, ROUGE-L, faithfulness).
    Eval(eval::Args),
    /// Export a finished distillation run as a browser bundle.
    Export(export::Args),
    /// Write a bundle's model card (training data, evaluations, out-of-range rule, use, limits)
    /// into its manifest.
    Card(card::Args),
    /// Train the text tokenizer (tokenizer.json) on cohort notes, rationales and the knowledge base.
    #[command(alias = "tokenizer")]
    TrainTokenizer(tokenizer::Args),
    /// Print the token ids of texts: reads a JSON array of strings on stdin, writes an array of
    /// id arrays.
    Tokenize(tokenize::Args),
    /// Diagnose one PatientRecord JSON (or FHIR R4 Bundle) file with a bundle; prints the result
    /// as JSON. Errors start with the library's stable code, e.g. `[RECORD_JSON]`.
    Predict(predict::Args),
    /// Time a clinical bundle on one backend (inference, scaling, and on the CPU the training
    /// step of each distillation stage); writes the figures as JSON (see bench/ and BENCHMARKS.md).
    Bench(bench::Args),
}

/// Parses the command line, runs the subcommand, and turns an error into one line on stderr and
/// exit status 1.
pub fn main() {
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
        Command::Cohort(args) => cohort::run(args),
        Command::Train(args) => train::run(args),
        Command::Mortality(args) => mortality::run(args),
        Command::Split(args) => split::run(args),
        Command::Teach(args) => teach::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Medrec(args) => medrec::run(args),
        Command::Features(args) => features::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Card(args) => card::run(args),
        Command::TrainTokenizer(args) => tokenizer::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// How to reach an OpenAI-compatible server (`teach --teacher endpoint`, `features`).
#[derive(clap::Args, Debug)]
pub struct EndpointArgs {
    /// The endpoint: …/v1/chat/completions (an instruction-tuned model) or …/v1/completions (a
    /// base model, few-shot prompt) for `teach`, …/v1/embeddings for `features`; an API key,
    /// where needed, is read from BEDSIDE_TEACHER_API_KEY.
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
    cache: Option<std::path::PathBuf>,
}

impl EndpointArgs {
    /// The client options, with the cache beside `out` unless set.
    fn options(
        self,
        out: &std::path::Path,
    ) -> anyhow::Result<crate::teachers::endpoint::EndpointOptions> {
        use anyhow::Context;
        Ok(crate::teachers::endpoint::EndpointOptions {
            url: self.url.context("--url is required to reach an endpoint")?,
            model: self.model,
            api_key: std::env::var("BEDSIDE_TEACHER_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            concurrency: self.concurrency,
            timeout: std::time::Duration::from_secs(self.timeout.max(1)),
            retries: self.retries,
            backoff: std::time::Duration::from_millis(self.backoff_ms),
            cache: self.cache.unwrap_or_else(|| out.with_extension("cache")),
        })
    }
}
