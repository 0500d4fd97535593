//! `bedside-train`: builds cohorts, trains and exports the bundles the browser loads, and
//! predicts natively. Every subcommand has `--help`; bad input ends with a non-zero exit and a
//! one-line reason.

mod backend;
mod bench;
mod calibration;
mod distill;
mod endpoint;
mod eval;
mod leader;
mod logistic;
mod medication_metrics;
mod metrics;
mod mortality;
mod plots;
mod schedule;
mod synthetic;
mod teach;
mod text_metrics;
mod tokenizer;
mod train;
mod usage;
mod wide_fit;

use anyhow::{Context, Result, bail};
use bedside::bundle::{MANIFEST_FILE, WEIGHTS_FILE};
use bedside::{Backend, Engine, PatientRecord};
use bedside_cohort as cohort;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

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
    Cohort {
        #[arg(long, value_enum)]
        source: Source,
        /// Directory of the source data (all sources but synthetic).
        #[arg(long)]
        input: Option<PathBuf>,
        /// GSN/NDC → ATC table (`gsn_atc_ndc_mapping.csv.gz`) for MIMIC-III/IV prescriptions.
        #[arg(long)]
        atc: Option<PathBuf>,
        /// Where to write the summary as JSON [default: OUT with extension .summary.json].
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Number of admissions (synthetic source).
        #[arg(long, default_value_t = 400)]
        n: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 48)]
        hours: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train the lab-phenotype model and export a bundle (manifest.json + model.safetensors).
    Train {
        /// Cohort JSONL with labels; without it, a built-in synthetic cohort is generated.
        #[arg(long)]
        cohort: Option<PathBuf>,
        /// Size of the built-in synthetic cohort.
        #[arg(long, default_value_t = 400)]
        synthetic: usize,
        #[arg(long, default_value_t = 12)]
        epochs: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 2e-3)]
        learning_rate: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 48)]
        hours: usize,
        #[arg(long, default_value_t = 64)]
        d_model: usize,
        #[arg(long, default_value_t = 2)]
        layers: usize,
        /// A linear model over the channels' summaries beside the head (`--wide true`). Off by
        /// default: on the MIMIC-IV demo's five splits it lowered macro AUROC (0.663 vs 0.681).
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        wide: bool,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// PhysioNet/CinC 2012 in-hospital mortality: fit a logistic regression over the static
    /// descriptors and channel summaries, train the time-series encoder with a one-output head on
    /// top of it on one set (early stopping and Platt scaling on a held-out fifth), test on
    /// another against SAPS-I.
    /// Writes report.json (with the Platt scaling), report.md, roc.csv, calibration.csv,
    /// model.safetensors (and model-seed-S.safetensors for each further seed) and the plots
    /// roc.png, calibration.png and training.png into --out.
    Mortality {
        /// Directory with set-*.tar.gz and Outcomes-*.txt (../shared/data/physionet2012).
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value = "set-a")]
        train_set: String,
        #[arg(long, default_value = "set-b")]
        test_set: String,
        #[arg(long, default_value_t = 30)]
        epochs: usize,
        /// Epochs without a better validation AUROC before stopping.
        #[arg(long, default_value_t = 5)]
        patience: usize,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value_t = 1e-3)]
        learning_rate: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 32)]
        d_model: usize,
        #[arg(long, default_value_t = 1)]
        layers: usize,
        /// The linear part (fitted first, then frozen) reads the channels' summaries beside the
        /// static descriptors (`--wide false`: the statics alone).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        wide: bool,
        /// Encoders trained with seeds --seed, --seed + 1, …; the model averages their logits.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
        /// Bootstrap resamples for the 95% intervals.
        #[arg(long, default_value_t = 1000)]
        resamples: usize,
        /// Train on the CPU, on a GPU through wgpu (Vulkan, Metal, DX12), or through CUDA (a
        /// build with `--features bedside-train/cuda`).
        #[arg(long, value_enum, default_value_t = backend::TrainingBackend::Cpu)]
        backend: backend::TrainingBackend,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write teacher rationales (JSONL) for a cohort.
    Teach {
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
    },
    /// ClinRaGen's three-stage rationale distillation into the multimodal model.
    Distill {
        /// Run configuration (TOML; every field optional, see `--print-config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run directory: checkpoints, tokenizer, final weights.
        #[arg(long)]
        out: PathBuf,
        /// Continue from the run directory's last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Print the default configuration as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// LEADER: train the medication teacher, distil it into the student, measure both.
    Medrec {
        /// Run configuration (TOML; every field optional, see `--print-config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run directory: medrec.json, medrec.safetensors, teacher features, report.
        #[arg(long)]
        out: PathBuf,
        /// Print the default configuration as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Measure a clinical bundle on a labelled cohort: the phenotype head, the written diagnoses,
    /// and the rationales (BLEU-4, ROUGE-L, faithfulness).
    Eval {
        #[arg(long)]
        bundle: PathBuf,
        /// Cohort JSONL with labels; without it, a built-in synthetic cohort (seed 2025, not a
        /// training seed) of --synthetic admissions.
        #[arg(long)]
        cohort: Option<PathBuf>,
        #[arg(long, default_value_t = 100)]
        synthetic: usize,
        /// Teacher rationale JSONL to compare with; without it, the knowledge teacher's.
        #[arg(long)]
        rationales: Option<PathBuf>,
        #[arg(long, default_value_t = 160)]
        max_tokens: usize,
        /// Directory for report.json, report.md, roc.png and calibration.png.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export a finished distillation run as a browser bundle.
    Export {
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
    },
    /// Train the text tokenizer (tokenizer.json) on cohort notes, rationales and the knowledge base.
    Tokenizer {
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
    },
    /// Print the token ids of texts: reads a JSON array of strings on stdin, writes an array of
    /// id arrays.
    Tokenize {
        #[arg(long)]
        tokenizer: PathBuf,
    },
    /// Diagnose one PatientRecord JSON (or FHIR R4 Bundle) file with a bundle; prints the result
    /// as JSON. Errors start with the library's stable code, e.g. `[RECORD_JSON]`.
    Predict {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        record: PathBuf,
        #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
        backend: BackendArg,
        /// Also generate the diagnoses and rationale (clinical bundles), streamed to stderr.
        #[arg(long)]
        explain: bool,
        /// Also recommend medications (bundles with a medication recommender).
        #[arg(long)]
        recommend: bool,
        /// Longest generated text, in tokens.
        #[arg(long, default_value_t = 160)]
        max_tokens: usize,
    },
    /// Time a clinical bundle on one backend (inference, scaling, and on the CPU the training
    /// step of each distillation stage); writes the figures as JSON (see bench/ and BENCHMARKS.md).
    Bench {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
        backend: BackendArg,
        /// Timed runs per figure (after warm-up runs); the median and the 10th/90th percentiles
        /// are reported.
        #[arg(long, default_value_t = 15)]
        repeats: usize,
        /// Tokens per fixed-length generation run.
        #[arg(long, default_value_t = 64)]
        tokens: usize,
        /// Run configuration whose batch size and prompt/target lengths the training steps use.
        #[arg(long)]
        config: Option<PathBuf>,
        /// What to time.
        #[arg(long, value_enum, default_value_t = BenchPart::All)]
        part: BenchPart,
        /// Also write the timed tensors (and the probabilities computed) for bench/reference.py.
        #[arg(long)]
        inputs: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchPart {
    All,
    Inference,
    Training,
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
    Synthetic,
    Mimic3,
    Physionet2012,
    Mimic4,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F32,
    F16,
}

#[derive(Clone, Copy, ValueEnum)]
enum TeacherArg {
    Knowledge,
    Jsonl,
    Endpoint,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Cpu,
    Wgpu,
}

impl From<BackendArg> for Backend {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Wgpu => Backend::Gpu,
        }
    }
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

fn read_cohort(path: &PathBuf) -> Result<Vec<PatientRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            PatientRecord::from_json(line).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// The rationale texts of a teacher JSONL file (`note_rationale`, `lab_rationale`).
fn read_rationale_texts(path: &PathBuf) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        for field in ["note_rationale", "lab_rationale"] {
            if let Some(s) = value.get(field).and_then(|v| v.as_str()) {
                out.push(s.to_string());
            }
        }
    }
    Ok(out)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Cohort {
            source,
            input,
            atc,
            summary: summary_path,
            n,
            seed,
            hours,
            out,
        } => {
            let input = || {
                input
                    .clone()
                    .context("--input DIR is required for this source")
            };
            let (records, summary) = match source {
                Source::Synthetic => {
                    let records = synthetic::cohort(n, hours, seed);
                    let mut summary = cohort::Summary::new("synthetic");
                    summary.describe(&records, records.len());
                    (records, summary)
                }
                Source::Mimic3 => {
                    let mut summary = cohort::Summary::new("mimic3");
                    (
                        cohort::mimic3::read(&input()?, atc.as_deref(), hours, &mut summary)?,
                        summary,
                    )
                }
                Source::Mimic4 => {
                    let mut summary = cohort::Summary::new("mimic4");
                    (
                        cohort::mimic4::read(&input()?, atc.as_deref(), hours, &mut summary)?,
                        summary,
                    )
                }
                Source::Physionet2012 => {
                    let mut summary = cohort::Summary::new("physionet2012");
                    (
                        cohort::physionet2012::read(&input()?, &mut summary)?,
                        summary,
                    )
                }
            };
            // `.json`: one JSON array (what the demo page fetches); anything else: JSONL
            let text = if out.extension().is_some_and(|e| e == "json") {
                serde_json::to_string(&records)?
            } else {
                records
                    .iter()
                    .map(serde_json::to_string)
                    .collect::<Result<Vec<_>, _>>()?
                    .join("\n")
                    + "\n"
            };
            train::write_atomic(&out, text.as_bytes())?;
            let summary_path = summary_path.unwrap_or_else(|| out.with_extension("summary.json"));
            train::write_atomic(
                &summary_path,
                serde_json::to_string_pretty(&summary)?.as_bytes(),
            )?;
            eprint!("{}", summary.table());
            eprintln!(
                "wrote {} admissions to {}, summary to {}",
                records.len(),
                out.display(),
                summary_path.display()
            );
        }
        Command::Train {
            cohort,
            synthetic,
            epochs,
            batch_size,
            learning_rate,
            seed,
            hours,
            d_model,
            layers,
            wide,
            out,
        } => {
            let records = match &cohort {
                Some(path) => read_cohort(path)?,
                None => synthetic::cohort(synthetic, hours, seed),
            };
            if batch_size == 0 || epochs == 0 {
                bail!("--batch-size and --epochs must be at least 1");
            }
            let options = train::TrainOptions {
                epochs,
                batch_size,
                learning_rate,
                seed,
                hours,
                d_model,
                layers,
                wide,
                progress: true,
            };
            let (model, report) = train::train(&records, &options)?;
            train::export(&model, train::model_config(&options), &report, &out)?;
            let t = &report.test;
            eprintln!(
                "trained on {} admissions, tested on {}: macro AUROC {:.3} (95% CI {:.3}–{:.3}), micro F1 {:.3}; bundle in {}",
                report.train_admissions,
                report.test_admissions,
                t.macro_auroc,
                t.macro_auroc_ci95.0,
                t.macro_auroc_ci95.1,
                t.micro_f1,
                out.display()
            );
        }
        Command::Distill {
            config,
            out,
            resume,
            print_config,
        } => {
            if print_config {
                print!("{}", toml::to_string(&distill::RunConfig::default())?);
                return Ok(());
            }
            let run = distill::Run::new(config.as_deref(), out.clone())?;
            let records = match run.resolve(&run.config.cohort) {
                Some(path) => read_cohort(&path)?,
                None => synthetic::cohort(run.config.synthetic, run.config.hours, run.config.seed),
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || {
                eprintln!("\nstopping after this batch; a checkpoint will be saved");
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .context("installing the Ctrl-C handler")?;
            let started = std::time::Instant::now();
            let (_, progress, _) = run.execute(
                &records,
                resume,
                stop,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            let last = progress.history.last();
            println!(
                "distill: {} admissions, {} epochs in {:.0} s; last validation micro-F1 of the written diagnoses {} → {}",
                records.len(),
                progress.history.len(),
                started.elapsed().as_secs_f64(),
                last.map_or("n/a".into(), |h| format!("{:.3}", h.generated_micro_f1)),
                out.join("model.safetensors").display()
            );
        }
        Command::Medrec {
            config,
            out,
            print_config,
        } => {
            if print_config {
                print!("{}", leader::default_config_toml()?);
                return Ok(());
            }
            let config = match &config {
                Some(path) => leader::MedRecRunConfig::read(path)?,
                None => leader::MedRecRunConfig::default(),
            };
            let records = leader::records(&config, read_cohort)?;
            let report = leader::run(&config, records, &out)?;
            let s = &report.student.overall;
            println!(
                "medrec: student Jaccard {:.3} (95% CI {:.3}–{:.3}), PRAUC {:.3}, F1 {:.3}, DDI rate {:.3} on {} test admissions; {:.0} s → {}",
                s.jaccard,
                s.jaccard_ci95.0,
                s.jaccard_ci95.1,
                s.prauc,
                s.f1,
                s.ddi_rate,
                s.n,
                report.seconds,
                out.display()
            );
            if let Some(t) = &report.teacher {
                println!(
                    "medrec: teacher Jaccard {:.3}, PRAUC {:.3}, F1 {:.3}",
                    t.overall.jaccard, t.overall.prauc, t.overall.f1
                );
            }
        }
        Command::Mortality {
            input,
            train_set,
            test_set,
            epochs,
            patience,
            batch_size,
            learning_rate,
            seed,
            d_model,
            layers,
            wide,
            seeds,
            resamples,
            backend,
            out,
        } => {
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
            let options = mortality::MortalityOptions {
                epochs,
                patience,
                batch_size,
                learning_rate,
                seed,
                d_model,
                layers,
                wide,
                seeds,
                resamples,
                backend,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let (members, report) = mortality::run(&train_records, &test_records, &options)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            // the first seed's weights in model.safetensors, the others' in model-seed-S
            for (k, (model, member)) in members.iter().zip(&report.members).enumerate() {
                let name = if k == 0 {
                    WEIGHTS_FILE.to_string()
                } else {
                    format!("model-seed-{}.safetensors", member.seed)
                };
                distill::save_weights(model, &out.join(name))?;
            }
            train::write_atomic(
                &out.join("report.json"),
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            train::write_atomic(&out.join("report.md"), report.markdown().as_bytes())?;
            report.split.write(&out)?;
            let roc: String = report
                .roc
                .iter()
                .map(|(x, y)| format!("{x},{y}\n"))
                .collect();
            train::write_atomic(
                &out.join("roc.csv"),
                format!("false_positive_rate,true_positive_rate\n{roc}").as_bytes(),
            )?;
            let calibration: String = report
                .calibration
                .iter()
                .map(|b| format!("{},{},{}\n", b.n, b.mean_predicted, b.observed))
                .collect();
            train::write_atomic(
                &out.join("calibration.csv"),
                format!("stays,mean_predicted,observed\n{calibration}").as_bytes(),
            )?;
            report.plot(&out)?;
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
        }
        Command::Eval {
            bundle,
            cohort,
            synthetic,
            rationales,
            max_tokens,
            out,
        } => {
            let records = match &cohort {
                Some(path) => read_cohort(path)?,
                None => synthetic::cohort(synthetic, 48, 2025),
            };
            let rationales = match &rationales {
                Some(path) => teach::read_jsonl(path)?
                    .into_iter()
                    .map(|r| (r.id.clone(), r))
                    .collect(),
                None => std::collections::BTreeMap::new(),
            };
            let report = eval::evaluate(
                &bundle,
                &records,
                &rationales,
                max_tokens,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            print!("{}", report.markdown());
            if let Some(out) = out {
                report.write(&out)?;
            }
        }
        Command::Export {
            run,
            out,
            dtype,
            medrec,
        } => {
            let dtype = match dtype {
                DtypeArg::F32 => "f32",
                DtypeArg::F16 => "f16",
            };
            let manifest = distill::export(&run, medrec.as_deref(), &out, dtype)?;
            let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
            println!(
                "export: {} bundle ({dtype}), {:.1} MB → {}",
                manifest.model.kind(),
                bytes as f64 / 1e6,
                out.display()
            );
        }
        Command::Teach {
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
        } => {
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
                        eprintln!(
                            "teach: {unknown} rationales name admissions not in the cohort; kept"
                        );
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
            train::write_atomic(&out, text.as_bytes())?;
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
        }
        Command::Tokenizer {
            cohort,
            rationales,
            synthetic,
            vocab_size,
            out,
        } => {
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
            train::write_atomic(&out, json.as_bytes())?;
            println!(
                "tokenizer: {} tokens from {} records and {} rationale texts → {}",
                check.vocab_size(),
                records.len(),
                extra.len(),
                out.display()
            );
        }
        Command::Tokenize { tokenizer } => {
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
        }
        Command::Bench {
            bundle,
            backend,
            repeats,
            tokens,
            config,
            part,
            inputs,
            out,
        } => {
            let options = bench::BenchOptions {
                bundle,
                backend: backend.into(),
                repeats,
                tokens,
                run_config: config,
                inference: part != BenchPart::Training,
                training: part != BenchPart::Inference,
                inputs,
            };
            let figures = bench::run(&options)?;
            train::write_atomic(&out, serde_json::to_string_pretty(&figures)?.as_bytes())?;
            eprintln!("bench: figures written to {}", out.display());
        }
        Command::Predict {
            bundle,
            record,
            backend,
            explain,
            recommend,
            max_tokens,
        } => {
            let read = |name: &str| {
                let path = bundle.join(name);
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
            };
            let manifest =
                String::from_utf8(read(MANIFEST_FILE)?).context("manifest.json is not UTF-8")?;
            let weights = read(WEIGHTS_FILE)?;
            let text = std::fs::read_to_string(&record)
                .with_context(|| format!("cannot read {}", record.display()))?;
            let record = PatientRecord::from_json_or_fhir(&text)
                .with_context(|| record.display().to_string())?;
            let backend = backend.into();
            let tokenizer = std::fs::read(bundle.join(bedside::tokenizer::TOKENIZER_FILE)).ok();
            let medrec = match recommend {
                true => Some(read(bedside::recommend::MEDREC_FILE)?),
                false => None,
            };
            let (diagnosis, explanation, recommendation) = pollster::block_on(async {
                let mut engine =
                    Engine::load_bundle(&manifest, &weights, tokenizer.as_deref(), backend).await?;
                if let Some(bytes) = &medrec {
                    engine.load_medications(bytes)?;
                }
                let diagnosis = engine.diagnose(&record).await?;
                let explanation = match explain {
                    true => {
                        let options = bedside::generate::GenerateOptions {
                            max_new_tokens: max_tokens,
                            ..Default::default()
                        };
                        let mut stream = |piece: &str| eprint!("{piece}");
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
            let mut stdout = std::io::stdout().lock();
            match (explain, recommend) {
                (false, false) => serde_json::to_writer_pretty(&mut stdout, &diagnosis)?,
                _ => serde_json::to_writer_pretty(
                    &mut stdout,
                    &serde_json::json!({ "diagnosis": diagnosis, "explanation": explanation, "recommendation": recommendation }),
                )?,
            }
            writeln!(stdout)?;
        }
    }
    Ok(())
}
