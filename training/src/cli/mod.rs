//! The subcommands of `bedside-train`, one module per subcommand: its arguments (`Args`, whose
//! field docs are the `--help` text) and what it does with them (`run`). `main.rs` only parses and
//! dispatches; the work itself lives in the crate's other modules.

pub mod bench;
pub mod cohort;
pub mod distill;
pub mod eval;
pub mod export;
pub mod medrec;
pub mod mortality;
pub mod predict;
pub mod teach;
pub mod tokenize;
pub mod tokenizer;
pub mod train;

use bedside::Backend;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, ValueEnum)]
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
