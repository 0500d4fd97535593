//! manifest.json text → checked manifest → the model built from it and run once: the first byte
//! picks the model kind (even: the tiny lab-phenotype bundle; odd: the demo clinical bundle with
//! its tokenizer and medication recommender), whose files the manifest is re-listed to, so that
//! every number the fuzzer edits reaches module construction, weight loading and a forward pass.
//! Errors are fine; panics and huge allocations are not.
#![no_main]
use bedside::bundle::{Bundle, FileEntry, Manifest, WEIGHTS_FILE, sha256_hex};
use bedside::{Backend, BedsideError, Engine};
use libfuzzer_sys::fuzz_target;

const TINY_WEIGHTS: &[u8] = include_bytes!("../../tests/fixtures/tiny-bundle/model.safetensors");
const DEMO_WEIGHTS: &[u8] = include_bytes!("../../models/demo/model.safetensors");
const DEMO_TOKENIZER: &[u8] = include_bytes!("../../models/demo/tokenizer.json");
const DEMO_MEDREC: &[u8] = include_bytes!("../../models/demo/medrec.safetensors");

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(mut manifest) = Manifest::from_json(text) else {
        return;
    };
    let (weights, tokenizer, medrec) = if kind % 2 == 0 {
        (TINY_WEIGHTS, None, None)
    } else {
        (DEMO_WEIGHTS, Some(DEMO_TOKENIZER), Some(DEMO_MEDREC))
    };
    for (name, bytes) in [
        (WEIGHTS_FILE, Some(weights)),
        ("tokenizer.json", tokenizer),
        ("medrec.safetensors", medrec),
    ] {
        if let (Some(bytes), Some(entry)) = (bytes, manifest.files.get_mut(name)) {
            *entry = FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 };
        }
    }
    let Ok(json) = serde_json::to_string(&manifest) else {
        return;
    };
    let _ = pollster::block_on(async {
        let bundle = Bundle::from_bytes(
            &json,
            weights.to_vec(),
            tokenizer.map(<[u8]>::to_vec),
            medrec.map(<[u8]>::to_vec),
        )?;
        let engine = Engine::load(&bundle, Backend::Cpu).await?;
        engine.diagnose(&bedside::self_test::self_test_record()).await?;
        Ok::<_, BedsideError>(())
    });
});
