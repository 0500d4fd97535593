//! model.safetensors bytes under a manifest that lists them (so the hash check passes and the
//! safetensors reader and the shape checks see every input): errors are fine, panics are not.
#![no_main]
use bedside::bundle::{Bundle, FileEntry, Manifest, WEIGHTS_FILE, sha256_hex};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static MANIFEST: OnceLock<Manifest> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let manifest = MANIFEST.get_or_init(|| {
        Manifest::from_json(include_str!("../../tests/fixtures/tiny-bundle/manifest.json")).expect("the tiny bundle's manifest")
    });
    let mut manifest = manifest.clone();
    manifest.files.insert(WEIGHTS_FILE.to_string(), FileEntry { sha256: sha256_hex(data), bytes: data.len() as u64 });
    if let Ok(json) = serde_json::to_string(&manifest) {
        if let Ok(bundle) = Bundle::from_bytes(&json, data.to_vec(), None, None) {
            let _ = pollster::block_on(bedside::Engine::load(&bundle, bedside::Backend::Cpu));
        }
    }
});
