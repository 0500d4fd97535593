//! The subcommands of `bedside-train`, one module per subcommand: its arguments (`Args`, whose
//! field docs are the `--help` text) and what it does with them (`run`). `main.rs` only parses and
//! dispatches; the work itself lives in the crate's other modules.

pub mod bench;
pub mod card;
pub mod cohort;
pub mod distill;
pub mod eval;
pub mod export;
pub mod features;
pub mod medrec;
pub mod mortality;
pub mod predict;
pub mod split;
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

/// How to reach an OpenAI-compatible server (`teach --teacher endpoint`, `features`).
#[derive(clap::Args, Debug)]
pub struct EndpointArgs {
    /// The endpoint: …/v1/chat/completions (an instruction-tuned model) or …/v1/completions (a
    /// base model, few-shot prompt) for `teach`, …/v1/embeddings for `features`; an API key,
    /// where needed, is read from BEDSIDE_TEACHER_API_KEY.
    #[arg(long)]
    url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, default_value = "default")]
    model: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds one request may take, answer included.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Retries of a request after 429, 5xx, a transport error or an unreadable answer.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// First backoff in milliseconds, doubled on each retry.
    #[arg(long, default_value_t = 1000)]
    backoff_ms: u64,
    /// Answer cache [default: OUT with extension .cache]: a rerun asks only for what is missing.
    #[arg(long)]
    cache: Option<std::path::PathBuf>,
}

impl EndpointArgs {
    /// The client options, with the cache beside `out` unless set.
    fn options(self, out: &std::path::Path) -> anyhow::Result<crate::endpoint::EndpointOptions> {
        use anyhow::Context;
        Ok(crate::endpoint::EndpointOptions {
            url: self.url.context("--url is required to reach an endpoint")?,
            model: self.model,
            api_key: std::env::var("BEDSIDE_TEACHER_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            concurrency: self.concurrency,
            timeout: std::time::Duration::from_secs(self.timeout.max(1)),
            retries: self.retries,
            backoff: std::time::Duration::from_millis(self.backoff_ms),
            cache: self.cache.unwrap_or_else(|| out.with_extension("cache")),
        })
    }
}
