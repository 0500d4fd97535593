//! Note text through the demo bundle's tokenizer: any UTF-8 must encode without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static TOKENIZER: OnceLock<bedside::tokenizer::TextTokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let tokenizer = TOKENIZER.get_or_init(|| {
        bedside::tokenizer::TextTokenizer::from_bytes(include_bytes!("../../models/demo/tokenizer.json")).expect("the demo tokenizer loads")
    });
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tokenizer.encode(text);
    }
});
