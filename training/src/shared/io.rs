//! The files every subcommand reads and writes, in one place: cohort JSONL, teacher rationale
//! JSONL, atomic writes (a crash leaves the old file, never half a new one), and the progress bar.

use anyhow::{Context, Result};
use bedside::PatientRecord;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn read_cohort(path: &PathBuf) -> Result<Vec<PatientRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            PatientRecord::from_json(line).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// The rationale texts of a teacher JSONL file (`note_rationale`, `lab_rationale`).
pub fn read_rationale_texts(path: &PathBuf) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        for field in ["note_rationale", "lab_rationale"] {
            if let Some(s) = value.get(field).and_then(|v| v.as_str()) {
                out.push(s.to_string());
            }
        }
    }
    Ok(out)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// [`write_atomic`] for output written piece by piece: `write` fills the file; where it fails,
/// the old file stays and the partial one is removed.
pub fn write_atomic_with<T>(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let written = std::fs::File::create(&tmp)
        .map(std::io::BufWriter::new)
        .map_err(anyhow::Error::from)
        .and_then(|mut file| {
            let value = write(&mut file)?;
            file.into_inner().map_err(|e| e.into_error())?;
            Ok(value)
        });
    let value = match written {
        Ok(value) => value,
        Err(e) => {
            std::fs::remove_file(&tmp).ok();
            return Err(e.context(format!("cannot write {}", tmp.display())));
        }
    };
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(value)
}

pub(crate) fn bar(len: usize, show: bool, message: String) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} batches, {eta} left")
    {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}
