//! Wall time and peak resident memory of one step of a run (a distillation stage, the LEADER
//! teacher or student), for the reports. Linux resets the peak with `/proc/self/clear_refs` and
//! reports it as `VmHWM`; elsewhere the memory is left out.

use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Usage {
    pub step: String,
    pub epochs: usize,
    pub seconds: f64,
    /// The process's peak resident memory during the step, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
}

/// Started at the beginning of a step.
pub struct Meter {
    started: Instant,
}

impl Meter {
    pub fn start() -> Self {
        // "5" resets the peak resident set size to the current one (Linux ≥ 4.0)
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Self {
            started: Instant::now(),
        }
    }

    pub fn finish(&self, step: impl Into<String>, epochs: usize) -> Usage {
        let usage = Usage {
            step: step.into(),
            epochs,
            seconds: self.started.elapsed().as_secs_f64(),
            peak_rss_mib: peak_rss_mib(),
        };
        tracing::info!(
            "{}: {} epochs in {:.1} s, peak memory {}",
            usage.step,
            epochs,
            usage.seconds,
            usage
                .peak_rss_mib
                .map_or("unknown".into(), |m| format!("{m:.0} MiB"))
        );
        usage
    }
}

/// A Markdown table of the steps.
pub fn markdown(steps: &[Usage]) -> String {
    let mut text =
        String::from("\n| step | epochs | seconds | peak memory (MiB) |\n|---|---|---|---|\n");
    for s in steps {
        let memory = s
            .peak_rss_mib
            .map_or("–".to_string(), |m| format!("{m:.0}"));
        text += &format!(
            "| {} | {} | {:.1} | {memory} |\n",
            s.step, s.epochs, s.seconds
        );
    }
    text
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_sees_the_memory_it_touches() {
        let meter = Meter::start();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let usage = meter.finish("test", 0);
        if let Some(mib) = usage.peak_rss_mib {
            assert!(mib >= 64.0, "peak {mib} MiB after touching 64 MiB");
        }
        assert!(usage.seconds >= 0.0);
    }
}
