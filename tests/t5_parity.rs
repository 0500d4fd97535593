//! The burn T5 against HuggingFace transformers: tiny random checkpoints written by
//! `tools/t5_reference.py` (T5 v1.1 style — gated GELU, untied — and original style — ReLU, tied
//! and scaled), with transformers' encoder states, teacher-forced logits and greedy tokens, written
//! by transformers 4 and again by transformers 5 (`v5/`, whose config.json differs).
//! Tolerance: 1e-4 absolute on states and logits (float32 on both sides; observed ~1e-6).
//! Also: cached incremental decoding equals full decoding, padding never changes real positions,
//! beam search with one beam is greedy, and wgpu agrees with the CPU.

use std::path::PathBuf;

use bedside::generate::{self, GenerateOptions};
use bedside::model::t5::{DecoderCache, T5, T5Config, hf};
use burn::prelude::*;
use safetensors::SafeTensors;

const TOLERANCE: f64 = 1e-4;

struct Fixture {
    config: T5Config,
    model: T5,
    reference: Vec<u8>,
}

fn fixture(name: &str, device: &Device) -> Fixture {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/t5")
        .join(name);
    let config = std::fs::read_to_string(dir.join("config.json")).expect("fixture config");
    let weights = std::fs::read(dir.join("model.safetensors")).expect("fixture weights");
    let (config, model) = hf::load(&config, &weights, device).expect("checkpoint loads");
    let reference = std::fs::read(dir.join("reference.safetensors")).expect("fixture reference");
    Fixture {
        config,
        model,
        reference,
    }
}

impl Fixture {
    fn tensor(&self, name: &str) -> (Vec<usize>, Vec<u8>) {
        let st = SafeTensors::deserialize(&self.reference).expect("reference file");
        let view = st.tensor(name).expect(name);
        (view.shape().to_vec(), view.data().to_vec())
    }
    fn floats(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let (shape, bytes) = self.tensor(name);
        (
            shape,
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        )
    }
    fn ints(&self, name: &str) -> (Vec<usize>, Vec<i64>) {
        let (shape, bytes) = self.tensor(name);
        (
            shape,
            bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        )
    }
    fn int_tensor(&self, name: &str, device: &Device) -> Tensor<2, Int> {
        let (shape, values) = self.ints(name);
        Tensor::from_data(TensorData::new(values, [shape[0], shape[1]]), device)
    }
    fn mask(&self, device: &Device) -> Tensor<2> {
        self.int_tensor("attention_mask", device).float()
    }
}

/// The largest difference, NaN and a length mismatch counting as infinite (`bedside::compare`).
fn max_diff(actual: Tensor<3>, expected: &[f32]) -> f64 {
    let actual = actual.into_data().try_to_vec::<f32>().unwrap();
    bedside::compare::max_abs_diff(&actual, expected)
}

fn check_parity(name: &str, device: &Device) {
    let f = fixture(name, device);
    let ids = f.int_tensor("input_ids", device);
    let mask = f.mask(device);
    let encoder = f.model.encode(ids.clone(), mask.clone());
    let (shape, expected) = f.floats("encoder_hidden");
    assert_eq!(encoder.dims().to_vec(), shape);
    let diff = max_diff(encoder.clone(), &expected);
    assert!(diff < TOLERANCE, "{name}: encoder states differ by {diff}");

    let logits = f
        .model
        .forward(ids, mask, f.int_tensor("decoder_input_ids", device));
    let (_, expected) = f.floats("logits");
    let diff = max_diff(logits, &expected);
    assert!(diff < TOLERANCE, "{name}: logits differ by {diff}");
    eprintln!("{name}: logits within {diff:.2e} of transformers");
}

#[test]
fn t5_v1_1_matches_transformers() {
    check_parity("v1_1", &Device::flex());
}

#[test]
fn t5_original_matches_transformers() {
    check_parity("original", &Device::flex());
}

/// The same two configs written by transformers 5, which ties every T5's output projection and
/// writes `scale_decoder_outputs` instead (`tools/t5_reference.py`).
#[test]
fn t5_v1_1_matches_transformers_5() {
    let f = fixture("v5/v1_1", &Device::flex());
    assert!(f.config.tie_word_embeddings && !f.config.scales_decoder_outputs());
    check_parity("v5/v1_1", &Device::flex());
}

#[test]
fn t5_original_matches_transformers_5() {
    let f = fixture("v5/original", &Device::flex());
    assert!(f.config.tie_word_embeddings && f.config.scales_decoder_outputs());
    check_parity("v5/original", &Device::flex());
}

/// A checkpoint whose tokenizer gained tokens (`distill --init-from`): the grown model computes
/// exactly what transformers computes over the ids the tokenizer uses, and every row after them
/// starts at their mean — the padding rows a tokenizer smaller than `vocab_size` never produces
/// (as T5's 32,100 of 32,128) as well as the new ones. Untied (v1.1) and tied (original) layouts.
#[test]
fn a_grown_vocabulary_keeps_the_checkpoint_s_numbers() {
    let device = Device::flex();
    for name in ["v1_1", "original"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/t5")
            .join(name);
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        let f = fixture(name, &device);
        let stored = f.config.vocab_size;
        for used in [stored, stored - 6] {
            let added = hf::AddedTokens { used, added: 7 };
            let (grown_config, grown) =
                hf::load_with_vocab(&config, &weights, Some(added), &device).unwrap();
            assert_eq!(grown_config.vocab_size, used + 7);
            let ids = f.int_tensor("input_ids", &device);
            let mask = f.mask(&device);
            let logits = grown.forward(ids, mask, f.int_tensor("decoder_input_ids", &device));
            let [b, t, v] = logits.dims();
            assert_eq!(v, used + 7);
            if used == stored {
                let (_, expected) = f.floats("logits");
                let diff = max_diff(logits.clone().slice([0..b, 0..t, 0..stored]), &expected);
                assert!(diff < TOLERANCE, "{name}: logits differ by {diff}");
            }
            // every row from `used` on is the mean output row, so its logit is the mean logit
            let mean = logits.clone().slice([0..b, 0..t, 0..used]).mean_dim(2);
            for row in used..v {
                let new = logits.clone().slice([0..b, 0..t, row..row + 1]);
                let diff = (new - mean.clone()).abs().max().into_scalar::<f32>();
                assert!(
                    f64::from(diff) < TOLERANCE,
                    "{name}: row {row} is off by {diff}"
                );
            }
        }
        let err = hf::load_with_vocab(
            &config,
            &weights,
            Some(hf::AddedTokens {
                used: stored + 1,
                added: 7,
            }),
            &device,
        )
        .expect_err("a tokenizer past the rows is refused")
        .to_string();
        assert!(err.contains("vocab_size"), "{err}");
    }
}

#[test]
fn configs_read_from_json() {
    let f = fixture("v1_1", &Device::flex());
    assert_eq!(f.config.num_decoder_layers, 3);
    assert!(!f.config.tie_word_embeddings);
    assert_eq!(
        f.config.num_params(),
        burn::module::Module::num_params(&f.model)
    );
    let o = fixture("original", &Device::flex());
    assert_eq!(
        o.config.num_params(),
        burn::module::Module::num_params(&o.model)
    );
}

fn greedy(f: &Fixture, device: &Device, use_cache: bool) -> Vec<Vec<u32>> {
    let mask = f.mask(device);
    let encoder = f
        .model
        .encode(f.int_tensor("input_ids", device), mask.clone());
    let options = GenerateOptions {
        max_new_tokens: 11,
        use_cache,
        ..Default::default()
    };
    // eos = an id the fixtures never emit, so every row runs the full length like the reference
    pollster::block_on(generate::greedy(
        &f.model,
        None,
        encoder,
        mask,
        f.model.decoder_start(),
        10_000,
        &options,
        None,
        &mut |_, _| true,
    ))
    .unwrap()
}

#[test]
fn greedy_decoding_matches_transformers_with_and_without_cache() {
    let device = Device::flex();
    for name in ["v1_1", "original", "v5/v1_1", "v5/original"] {
        let f = fixture(name, &device);
        let (shape, expected) = f.ints("greedy");
        let expected: Vec<Vec<u32>> = expected
            .chunks_exact(shape[1])
            .map(|r| r[1..].iter().map(|t| *t as u32).collect())
            .collect();
        assert_eq!(greedy(&f, &device, true), expected, "{name} with cache");
        assert_eq!(greedy(&f, &device, false), expected, "{name} without cache");
    }
}

#[test]
fn cached_incremental_logits_equal_full_decoding() {
    let device = Device::flex();
    let f = fixture("v1_1", &device);
    let mask = f.mask(&device);
    let encoder = f
        .model
        .encode(f.int_tensor("input_ids", &device), mask.clone());
    let targets = f.int_tensor("decoder_input_ids", &device);
    let full = f.model.decode(
        targets.clone(),
        &encoder,
        &mask,
        &mut DecoderCache::default(),
    );
    let mut cache = DecoderCache::default();
    let len = targets.dims()[1];
    let steps: Vec<Tensor<3>> = (0..len)
        .map(|t| {
            f.model
                .decode(targets.clone().narrow(1, t, 1), &encoder, &mask, &mut cache)
        })
        .collect();
    let stepped = Tensor::cat(steps, 1);
    let diff = max_diff(stepped, &full.into_data().try_to_vec::<f32>().unwrap());
    assert!(diff < 1e-5, "incremental decoding differs by {diff}");
}

#[test]
fn padding_never_changes_real_positions() {
    let device = Device::flex();
    let f = fixture("v1_1", &device);
    let ids = f.int_tensor("input_ids", &device);
    let mask = f.mask(&device);
    let padded = f.model.encode(ids.clone(), mask.clone());
    // row 1 has 15 real tokens: encode them alone, unpadded
    let row = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64], [1]), &device);
    let alone = f.model.encode(
        ids.select(0, row.clone()).narrow(1, 0, 15),
        mask.select(0, row.clone()).narrow(1, 0, 15),
    );
    let expected = alone.into_data().try_to_vec::<f32>().unwrap();
    let diff = max_diff(padded.select(0, row).narrow(1, 0, 15), &expected);
    assert!(diff < 1e-5, "padding changed real positions by {diff}");
}

#[test]
fn one_beam_is_greedy_and_more_beams_score_no_worse() {
    let device = Device::flex();
    let f = fixture("v1_1", &device);
    let mask = f.mask(&device);
    let encoder = f
        .model
        .encode(f.int_tensor("input_ids", &device), mask.clone());
    let options = GenerateOptions {
        max_new_tokens: 8,
        length_penalty: 0.0,
        ..Default::default()
    };
    let (one, one_score) = pollster::block_on(generate::beam_search(
        &f.model,
        encoder.clone(),
        mask.clone(),
        f.model.decoder_start(),
        1,
        &options,
        None,
    ))
    .unwrap();
    let greedy = pollster::block_on(generate::greedy(
        &f.model,
        None,
        encoder.clone().narrow(0, 0, 1),
        mask.clone().narrow(0, 0, 1),
        f.model.decoder_start(),
        1,
        &options,
        None,
        &mut |_, _| true,
    ))
    .unwrap();
    assert_eq!(one, greedy[0]);
    let four = GenerateOptions {
        beams: 4,
        ..options.clone()
    };
    let (_, four_score) = pollster::block_on(generate::beam_search(
        &f.model,
        encoder,
        mask,
        f.model.decoder_start(),
        1,
        &four,
        None,
    ))
    .unwrap();
    assert!(
        four_score >= one_score - 1e-5,
        "4 beams {four_score} < 1 beam {one_score}"
    );
    let uncached = GenerateOptions {
        use_cache: false,
        ..four
    };
    let (_, again) = pollster::block_on(generate::beam_search(
        &f.model,
        f.model
            .encode(f.int_tensor("input_ids", &device), f.mask(&device)),
        f.mask(&device),
        f.model.decoder_start(),
        1,
        &uncached,
        None,
    ))
    .unwrap();
    assert!(
        (again - four_score).abs() < 1e-4,
        "beam search with and without cache: {again} vs {four_score}"
    );
}

#[test]
fn constrained_decoding_emits_only_allowed_tokens() {
    let device = Device::flex();
    let f = fixture("v1_1", &device);
    let mask = f.mask(&device);
    let encoder = f
        .model
        .encode(f.int_tensor("input_ids", &device), mask.clone());
    let allowed = |prefix: &[u32]| {
        Some(if prefix.len() < 3 {
            vec![5, 6, 7]
        } else {
            vec![1]
        })
    };
    let options = GenerateOptions {
        max_new_tokens: 10,
        ..Default::default()
    };
    let out = pollster::block_on(generate::greedy(
        &f.model,
        None,
        encoder,
        mask,
        f.model.decoder_start(),
        1,
        &options,
        Some(&allowed),
        &mut |_, _| true,
    ))
    .unwrap();
    for row in out {
        assert_eq!(row.len(), 4);
        assert!(row[..3].iter().all(|t| (5..=7).contains(t)));
        assert_eq!(row[3], 1);
    }
}

/// The wgpu device, or `None` (the test then passes, saying so) where there is no adapter and
/// the layer is not required (`bedside::test_layers`).
fn wgpu() -> Option<Device> {
    bedside::test_layers::on_wgpu(pollster::block_on(bedside::Backend::Gpu.device()))
}

#[test]
fn wgpu_matches_cpu() {
    let Some(gpu) = wgpu() else { return };
    for name in ["v1_1", "original", "v5/v1_1", "v5/original"] {
        check_parity(name, &gpu);
    }
}

/// The fused GPU kernels give what burn's own operations give on the same device: rows shorter
/// and longer than a workgroup's 64 threads, more rows than one launch axis holds (65,535), every
/// broadcast of the attention bias the model uses, masked keys, and GELU inputs far out in both
/// tails (where tanh saturates).
#[test]
fn fused_kernels_match_burns_operations() {
    let Some(gpu) = wgpu() else { return };
    check_kernels(&gpu);
}

/// The same for bedside-cpu's kernels on burn's CPU backend (vectorised `exp` and `tanh`).
#[test]
fn cpu_kernels_match_burns_operations() {
    check_kernels(&Device::flex());
}

fn check_kernels(device: &Device) {
    use bedside::kernels;
    use burn::tensor::Distribution;
    device.seed(11);
    let normal = |shape: [usize; 4], std: f64| {
        Tensor::<4>::random(shape, Distribution::Normal(0.0, std), device)
    };
    // NaN anywhere (an element never written) counts as the largest difference
    let diff = |a: Tensor<4>, b: Tensor<4>| -> f32 {
        let d = (a - b).abs();
        match d.clone().is_nan().any().into_scalar() {
            true => f32::INFINITY,
            false => d.max().into_scalar(),
        }
    };

    for width in [24, 150] {
        let x = normal([2, 3, 5, width], 2.0);
        let mut norm = burn::nn::RmsNormConfig::new(width)
            .with_epsilon(1e-6)
            .init(device);
        norm.gamma = burn::module::Param::from_tensor(Tensor::random(
            [width],
            Distribution::Normal(1.0, 0.5),
            device,
        ));
        let d = diff(kernels::rms_norm(&norm, x.clone()), norm.forward(x));
        assert!(d < 1e-5, "rms norm of {width} differs by {d}");
    }

    for keys in [7, 150] {
        let scores = normal([2, 3, 4, keys], 3.0);
        let masked = normal([2, 1, 1, keys], 1.0).greater_elem(1.0).float() * -1e9;
        for bias in [
            normal([1, 3, 4, keys], 1.0),
            normal([2, 1, 1, keys], 1.0) + masked,
            normal([1, 3, 1, keys], 1.0),
            normal([2, 3, 4, keys], 1.0),
        ] {
            let shape = bias.dims();
            let expected = burn::tensor::activation::softmax(scores.clone() + bias.clone(), 3);
            let d = diff(kernels::softmax_with_bias(scores.clone(), bias), expected);
            assert!(d < 1e-6, "softmax with a {shape:?} bias differs by {d}");
        }
    }
    let (scores, bias) = (normal([1, 1, 70_000, 3], 3.0), normal([1, 1, 1, 3], 1.0));
    let expected = burn::tensor::activation::softmax(scores.clone() + bias.clone(), 3);
    let d = diff(kernels::softmax_with_bias(scores, bias), expected);
    assert!(d < 1e-6, "softmax of 70,000 rows differs by {d}");

    let gate = normal([2, 3, 5, 8], 6.0);
    let linear = normal([2, 3, 5, 8], 1.0);
    let expected = kernels::gelu_new(gate.clone()) * linear.clone();
    let d = diff(kernels::gated_gelu(gate, linear), expected);
    assert!(d < 1e-5, "gated GELU differs by {d}");
}

/// bedside-cpu's attention (no score matrix) gives what burn's operations give, for every
/// broadcast of the bias the model uses, masked keys, one query and many, on the CPU, where the
/// score matrix would leave the cache (2^21 scores); it declines for a smaller one and on a GPU,
/// where burn's operations and the fused softmax run.
#[test]
fn cpu_attention_matches_burns_operations() {
    use bedside::kernels;
    use burn::tensor::Distribution;
    let device = Device::flex();
    device.seed(5);
    let normal = |shape: [usize; 4], std: f64| {
        Tensor::<4>::random(shape, Distribution::Normal(0.0, std), &device)
    };
    for (queries, keys) in [(600, 600), (1, 360_000)] {
        let (batch, heads, d_kv) = (2, 3, 4);
        let q = normal([batch, heads, queries, d_kv], 1.0);
        // the keys as the model keeps them: a permuted view
        let keys_t = normal([batch, keys, heads, d_kv], 1.0).permute([0, 2, 3, 1]);
        let values = normal([batch, heads, keys, d_kv], 1.0);
        let masked = normal([batch, 1, 1, keys], 1.0).greater_elem(1.0).float() * -1e9;
        for bias in [
            normal([1, heads, queries, keys], 1.0),
            normal([batch, 1, 1, keys], 1.0) + masked.clone(),
            normal([1, heads, 1, keys], 1.0),
        ] {
            let expected =
                kernels::softmax_with_bias(q.clone().matmul(keys_t.clone()), bias.clone())
                    .matmul(values.clone())
                    .swap_dims(1, 2)
                    .reshape([batch, queries, heads * d_kv]);
            let ours = kernels::attention(&q, &keys_t, &values, &bias).expect("applies on the CPU");
            let values =
                |t: Tensor<3>| -> Vec<f32> { t.into_data().try_to_vec().unwrap_or_default() };
            // NaN anywhere counts as the largest difference
            let d = bedside::compare::max_abs_diff(&values(ours), &values(expected));
            assert!(
                d < 1e-5,
                "attention of {queries}×{keys} with a {:?} bias differs by {d}",
                bias.dims()
            );
        }
    }
    if let Some(gpu) = wgpu() {
        let t = Tensor::<4>::zeros([1, 1, 2, 2], &gpu);
        assert!(
            kernels::attention(&t, &t, &t, &t).is_none(),
            "burn's operations on a GPU"
        );
    }
}
