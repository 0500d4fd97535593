//! The file names of a bundle, in one place: the manifest, the weights, a clinical bundle's
//! tokenizer and a recommender's weights (the JS package fetches the same names).

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The text tokenizer of a clinical bundle (HuggingFace `tokenizer.json`).
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The medication recommender's weights, where a bundle has one.
pub const MEDREC_FILE: &str = "medrec.safetensors";
