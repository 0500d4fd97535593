//! `bedside-train bench`: times a bundle's clinical model on one backend — encoder + phenotype
//! head per batch, the end-to-end `diagnose` and `explain` calls, greedy generation with and
//! without the key/value cache, growth with record length, note length and generated length, and
//! (on the CPU) one optimiser step of each ClinRaGen distillation stage — and writes the figures
//! as JSON for `bench/report.py`. With `--inputs` it also writes the exact tensors it timed (and
//! the probabilities it computed) so that the PyTorch reference `bench/reference.py` times the
//! same architecture on the same inputs and checks that it computes the same numbers.
//!
//! Every timing is the median over `repeats` runs after warm-up runs, with the 10th and 90th
//! percentiles as the spread; tensors are read back inside the timed region, as the API does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use bedside::bundle::ModelSpec;
use bedside::generate::{self, GenerateOptions};
use bedside::model::{ClinicalInput, ClinicalModel, Encoded, sequence_loss};
use bedside::record::{PatientRecord, SeriesGrid};
use bedside::{Backend, Engine};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, tensor::TensorView};
use serde::Serialize;
use serde_json::{Value, json};

use crate::pipelines::distill::{self, Example, RunConfig};
use crate::shared::fit;
use crate::shared::io::write_atomic;
use crate::shared::synthetic;

/// What `bench` measures.
pub struct BenchOptions {
    pub bundle: PathBuf,
    pub backend: Backend,
    pub repeats: usize,
    /// Tokens generated in the fixed-length generation runs.
    pub tokens: usize,
    /// The run configuration whose batch size and prompt/target lengths the training steps use.
    pub run_config: Option<PathBuf>,
    pub training: bool,
    pub inference: bool,
    pub inputs: Option<PathBuf>,
}

/// Median and spread of repeated timings, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub median_ms: f64,
    pub p10_ms: f64,
    pub p90_ms: f64,
    pub runs: usize,
}

impl Timing {
    fn from_samples(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            ms.get(((ms.len() - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Self {
            median_ms: at(0.5),
            p10_ms: at(0.1),
            p90_ms: at(0.9),
            runs: ms.len(),
        }
    }
}

/// Runs `f` `warmup` times untimed, then `repeats` times timed.
fn time<T>(warmup: usize, repeats: usize, mut f: impl FnMut() -> Result<T>) -> Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_samples(samples))
}

/// The tensors written for the PyTorch reference.
#[derive(Default)]
struct Inputs {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl Inputs {
    fn floats(&mut self, name: &str, tensor: Tensor<3>) -> Result<()> {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow!("{name}: {e:?}"))?;
        self.push(
            name,
            Dtype::F32,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        Ok(())
    }

    fn floats2(&mut self, name: &str, values: Vec<f32>, shape: Vec<usize>) {
        self.push(
            name,
            Dtype::F32,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
    }

    fn ints(&mut self, name: &str, tensor: Tensor<2, Int>) -> Result<()> {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| anyhow!("{name}: {e:?}"))?;
        self.push(
            name,
            Dtype::I64,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        Ok(())
    }

    fn lengths(&mut self, name: &str, lengths: &[usize]) {
        let bytes = lengths
            .iter()
            .flat_map(|l| (*l as i64).to_le_bytes())
            .collect();
        self.push(name, Dtype::I64, vec![lengths.len()], bytes);
    }

    fn push(&mut self, name: &str, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) {
        self.tensors.push((name.to_string(), dtype, shape, bytes));
    }

    /// The model input of `prefix`: text ids and lengths, lab values and observed mask.
    fn input(&mut self, prefix: &str, input: &ClinicalInput) -> Result<()> {
        if let Some((ids, lengths)) = &input.text {
            self.ints(&format!("{prefix}.text_ids"), ids.clone())?;
            self.lengths(&format!("{prefix}.text_lengths"), lengths);
        }
        if let Some((values, observed)) = &input.series {
            self.floats(&format!("{prefix}.values"), values.clone())?;
            self.floats(&format!("{prefix}.observed"), observed.clone())?;
        }
        Ok(())
    }

    fn write(
        &self,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let bytes = safetensors::serialize(views, Some(metadata))?;
        write_atomic(path, &bytes)
    }
}

/// Peak resident memory of this process so far (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Loaded {
    engine: Engine,
    run: RunConfig,
}

fn load(options: &BenchOptions) -> Result<Loaded> {
    let bundle = bedside::bundle::Bundle::from_dir(&options.bundle)?;
    let engine = pollster::block_on(Engine::load(&bundle, options.backend))?;
    let run = match &options.run_config {
        Some(path) => RunConfig::read(path)?,
        None => RunConfig::default(),
    };
    Ok(Loaded { engine, run })
}

/// Sigmoid probabilities of the phenotype head, read back.
fn probabilities(model: &ClinicalModel, input: &ClinicalInput) -> Result<Vec<f32>> {
    let logits = model.phenotype_logits(&model.encode(input));
    let data = pollster::block_on(burn::tensor::activation::sigmoid(logits).into_data_async())
        .map_err(|e| anyhow!("read back: {e:?}"))?;
    data.try_into_vec::<f32>()
        .map_err(|e| anyhow!("read back: {e:?}"))
}

/// Tokens per second of `tokens` tokens in `timing`.
fn rate(tokens: usize, timing: &Timing) -> f64 {
    tokens as f64 / (timing.median_ms / 1e3)
}

/// The threads burn-flex's kernels run on: one without the `threads` feature; with it, rayon's
/// global pool, sized by `RAYON_NUM_THREADS` or else the machine's cores (rayon's own rule).
fn cpu_threads() -> usize {
    if !cfg!(feature = "threads") {
        return 1;
    }
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `bedside-train bench`: returns the figures as JSON (and writes `--inputs` when asked).
pub fn run(options: &BenchOptions) -> Result<Value> {
    let Loaded { engine, run } = load(options)?;
    let (model, tokenizer, device) = engine
        .clinical_model()
        .ok_or_else(|| anyhow!("bench needs a clinical bundle"))?;
    let hours = engine.manifest().model.hours();
    let mut inputs = Inputs::default();
    let mut out = json!({
        "backend": options.backend.name(),
        "threads": cpu_threads(),
        "profile": if cfg!(debug_assertions) { "dev (dependencies at opt-level 2)" } else { "release" },
        "bundle": options.bundle.display().to_string(),
        "dtype": engine.manifest().dtype,
        "repeats": options.repeats,
    });
    out["bundle_bytes"] = bundle_bytes(&options.bundle)?;
    let records = synthetic::cohort(32, hours, 99);
    let grids: Vec<SeriesGrid> = records
        .iter()
        .map(|r| SeriesGrid::from_record(r, hours))
        .collect();
    let (warmup, repeats) = (2, options.repeats);

    if options.inference {
        let mut inference = serde_json::Map::new();
        for batch in [1usize, 32] {
            let input = engine.clinical_input(tokenizer, &records[..batch], &grids[..batch])?;
            let timing = time(warmup, repeats, || probabilities(model, &input))?;
            eprintln!("encoder + head, batch {batch}: {:.2} ms", timing.median_ms);
            inference.insert(
                format!("encode_head_b{batch}"),
                serde_json::to_value(timing)?,
            );
            if batch == 32 {
                inputs.input("infer", &input)?;
                let probs = probabilities(model, &input)?;
                let n = probs.len();
                inputs.floats2("infer.probabilities", probs, vec![batch, n / batch]);
            }
        }
        let record = &records[0];
        let timing = time(warmup, repeats, || {
            Ok(pollster::block_on(engine.diagnose(record))?)
        })?;
        eprintln!(
            "diagnose (record → phenotypes), batch 1: {:.2} ms",
            timing.median_ms
        );
        inference.insert("diagnose_b1".into(), serde_json::to_value(timing)?);

        let input = engine.clinical_input(tokenizer, &records[..1], &grids[..1])?;
        let encoded = model.encode(&input);
        let tokens = options.tokens;
        for (name, use_cache) in [("generate_cache", true), ("generate_no_cache", false)] {
            let timing = time(1, repeats.div_ceil(3).max(3), || {
                generate_exactly(model, &encoded, tokens, use_cache)
            })?;
            let per_s = rate(tokens, &timing);
            eprintln!(
                "greedy generation of {tokens} tokens, cache {use_cache}: {per_s:.1} tokens/s"
            );
            inference.insert(
                name.into(),
                json!({ "tokens": tokens, "timing": timing, "tokens_per_s": per_s }),
            );
        }

        // The API call the page makes: constrained, streamed, stops at the end token.
        let mut produced = 0;
        let timing = time(1, repeats.div_ceil(3).max(3), || {
            let e = pollster::block_on(engine.explain(
                record,
                &GenerateOptions::default(),
                &mut |_| true,
            ))?;
            produced = e.tokens;
            Ok(())
        })?;
        let per_s = rate(produced, &timing);
        eprintln!(
            "explain: {produced} tokens in {:.0} ms, {per_s:.1} tokens/s",
            timing.median_ms
        );
        inference.insert(
            "explain".into(),
            json!({ "tokens": produced, "timing": timing, "tokens_per_s": per_s }),
        );
        out["inference"] = Value::Object(inference);
        out["scaling"] = scaling(&engine, model, device, &encoded, &grids[0], repeats)?;
        out["peak_rss_mib_inference"] = json!(peak_rss_mib());
    }

    if options.training {
        if options.backend != Backend::Cpu {
            bail!(
                "the training steps are timed on the CPU only (the backend bedside-train trains on)"
            );
        }
        out["training"] = training(&engine, &run, &records, &mut inputs, repeats)?;
        out["training_config"] = json!({
            "batch_size": run.batch_size,
            "max_prompt_tokens": run.max_prompt_tokens,
            "max_target_tokens": run.max_target_tokens,
        });
        out["peak_rss_mib"] = json!(peak_rss_mib());
    }

    if let Some(path) = &options.inputs {
        let metadata = [
            ("tokens".to_string(), options.tokens.to_string()),
            ("batch_size".to_string(), run.batch_size.to_string()),
            ("learning_rate".to_string(), run.learning_rate.to_string()),
            ("weight_decay".to_string(), run.weight_decay.to_string()),
            ("grad_clip".to_string(), run.grad_clip.to_string()),
            (
                "phenotype_weight".to_string(),
                run.phenotype_weight.to_string(),
            ),
        ]
        .into_iter()
        .collect();
        inputs.write(path, metadata)?;
    }
    Ok(out)
}

/// The bundle's files in bytes, the weights as stored (f16 for the demo) and converted to f32.
fn bundle_bytes(bundle: &Path) -> Result<Value> {
    let mut sizes = serde_json::Map::new();
    let (mut stored, mut f32_total) = (0usize, 0usize);
    for entry in
        std::fs::read_dir(bundle).with_context(|| format!("cannot read {}", bundle.display()))?
    {
        let path = entry?.path();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let as_f32 = match name.ends_with(".safetensors") {
            true => bedside::bundle::convert_weights(&bytes, bedside::bundle::WeightsDtype::F32)
                .map_err(|e| anyhow!("{name}: {e}"))?
                .len(),
            false => bytes.len(),
        };
        stored += bytes.len();
        f32_total += as_f32;
        sizes.insert(name, json!({ "stored": bytes.len(), "f32": as_f32 }));
    }
    sizes.insert(
        "total".into(),
        json!({ "stored": stored, "f32": f32_total }),
    );
    Ok(Value::Object(sizes))
}

/// Greedy generation of exactly `tokens` tokens (an end token that never comes) from an encoded
/// record, as the reference does it: per-token cost with and without the key/value cache.
fn generate_exactly(
    model: &ClinicalModel,
    encoded: &Encoded,
    tokens: usize,
    use_cache: bool,
) -> Result<()> {
    let options = GenerateOptions {
        max_new_tokens: tokens,
        use_cache,
        ..Default::default()
    };
    let (hidden, mask) = (encoded.hidden.clone(), encoded.mask.clone());
    let out = pollster::block_on(generate::greedy(
        &model.lm,
        None,
        hidden,
        mask,
        model.lm.decoder_start(),
        u32::MAX,
        &options,
        None,
        &mut |_, _| true,
    ))?;
    match out.first().map(Vec::len) {
        Some(n) if n == tokens => Ok(()),
        other => bail!("generated {other:?} tokens, expected {tokens}"),
    }
}

/// Growth with the record's length (hours of hourly observations), the note's length (prompt
/// tokens, with `grid`'s labs) and the generated length (from `encoded`).
fn scaling(
    engine: &Engine,
    model: &ClinicalModel,
    device: &Device,
    encoded: &Encoded,
    grid: &SeriesGrid,
    repeats: usize,
) -> Result<Value> {
    let (warmup, repeats) = (1, repeats.div_ceil(2).max(3));
    let mut by_hours = Vec::new();
    for hours in [48usize, 96, 168] {
        let record = synthetic::cohort(1, hours, 5).remove(0);
        let observations = record.observations.len();
        let timing = time(warmup, repeats, || {
            Ok(pollster::block_on(engine.diagnose(&record))?)
        })?;
        eprintln!(
            "diagnose, {hours} h record ({observations} observations): {:.2} ms",
            timing.median_ms
        );
        by_hours.push(json!({ "hours": hours, "observations": observations, "timing": timing }));
    }

    // The encoder on prompts of a given length (random token ids; the engine itself cuts notes at
    // 512 tokens): the model's own growth.
    let vocab = model.lm.shared.weight.val().dims()[0] as u32;
    let mut rng = StdRng::seed_from_u64(3);
    let mut by_prompt = Vec::new();
    for len in [128usize, 256, 512, 1024, 1600] {
        let ids: Vec<u32> = (0..len).map(|_| rng.random_range(2..vocab)).collect();
        let input = ClinicalInput {
            text: Some(bedside::model::input::pad_ids(&[ids], device)),
            series: Some(SeriesGrid::tensors(&[grid], device)),
        };
        let timing = time(warmup, repeats, || probabilities(model, &input))?;
        eprintln!(
            "encoder + head, {len}-token prompt: {:.2} ms",
            timing.median_ms
        );
        by_prompt.push(json!({ "prompt_tokens": len, "timing": timing }));
    }

    let mut by_generated = Vec::new();
    for tokens in [16usize, 64, 256] {
        let timing = time(1, 3, || generate_exactly(model, encoded, tokens, true))?;
        let per_token = timing.median_ms / tokens as f64;
        eprintln!("generation of {tokens} tokens with the cache: {per_token:.2} ms per token");
        by_generated.push(
            json!({ "generated_tokens": tokens, "timing": timing, "ms_per_token": per_token }),
        );
    }
    Ok(
        json!({ "record_hours": by_hours, "prompt_tokens": by_prompt, "generated_tokens": by_generated }),
    )
}

/// One AdamW step of each distillation stage on a batch of `run.batch_size` synthetic examples,
/// with the stage's freezing, as `distill` takes it (loss: sequence CE + phenotype BCE).
fn training(
    engine: &Engine,
    run: &RunConfig,
    records: &[PatientRecord],
    inputs: &mut Inputs,
    repeats: usize,
) -> Result<Value> {
    let ModelSpec::Clinical(config) = &engine.manifest().model else {
        bail!("bench needs a clinical bundle");
    };
    let (_, tokenizer, _) = engine
        .clinical_model()
        .ok_or_else(|| anyhow!("bench needs a clinical bundle"))?;
    let device = Device::flex().autodiff();
    device.seed(7);
    let mut run = run.clone();
    run.hours = engine.manifest().model.hours();
    let examples: Vec<Example> = records
        .iter()
        .cycle()
        .take(run.batch_size)
        .map(|r| distill::example(r, None, tokenizer, &run))
        .collect::<Result<_>>()?;
    let refs: Vec<&Example> = examples.iter().collect();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let mut stages = serde_json::Map::new();
    for stage in 0..3 {
        let batch = distill::batch(&refs, stage, &device);
        let prefix = format!("stage{}", stage + 1);
        inputs.input(&prefix, &batch.input)?;
        inputs.ints(&format!("{prefix}.targets"), batch.targets.clone())?;
        inputs.floats(
            &format!("{prefix}.target_mask"),
            batch.target_mask.clone().unsqueeze_dim(0),
        )?;
        inputs.ints(&format!("{prefix}.phenotypes"), batch.phenotypes.clone())?;
        let mut model = distill::prepare_stage(config.init_empty(&device), stage);
        let mut optimizer = fit::adamw(run.weight_decay, run.grad_clip);
        let mut step = || -> Result<()> {
            let encoded = model.encode(&batch.input);
            let logits = model.target_logits(&encoded, batch.targets.clone());
            let seq = sequence_loss(logits, batch.targets.clone(), batch.target_mask.clone());
            let head = bce.forward(model.phenotype_logits(&encoded), batch.phenotypes.clone());
            let loss = seq + head * run.phenotype_weight;
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                bail!("loss {value} at stage {}", stage + 1);
            }
            model = fit::descend(&mut optimizer, model.clone(), loss, run.learning_rate);
            Ok(())
        };
        let timing = time(2, repeats.div_ceil(2).max(3), &mut step)?;
        let per_s = run.batch_size as f64 / (timing.median_ms / 1e3);
        eprintln!(
            "distillation stage {}: {:.0} ms per step of {}, {per_s:.1} examples/s",
            stage + 1,
            timing.median_ms,
            run.batch_size
        );
        stages.insert(
            prefix,
            json!({ "batch_size": run.batch_size, "timing": timing, "examples_per_s": per_s }),
        );
    }
    Ok(Value::Object(stages))
}
