//! `bedside-train`: builds cohorts, trains and exports the bundles the browser loads, and
//! predicts natively. Every subcommand has `--help`; bad input ends with a non-zero exit and a
//! one-line reason.

fn main() {
    bedside_train::cli::main();
}
