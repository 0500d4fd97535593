//! manifest.json text → checked manifest: errors are fine, panics and huge allocations are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bedside::bundle::Manifest::from_json(text);
    }
});
