//! bedside-train as a library: the pipelines that train and export bedside's bundles, the
//! teachers they distil from, how they are measured, and what they share. The `bedside-train`
//! binary (`main.rs`) only hands its arguments to [`cli`]; tests may call any of this directly.

pub mod cli;
pub mod measure;
pub mod pipelines;
pub mod shared;
pub mod teachers;
