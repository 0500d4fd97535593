//! Reading MIMIC-style CSV tables (`.csv` or `.csv.gz`): the requested columns of every row by
//! header name (any case), with `file:line` for messages; malformed rows and damaged files are
//! counted in the summary instead of ending the run.

use super::Summary;
use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Calls `row` with the requested `columns` of every row of a table (`.csv` or `.csv.gz`) and
/// its `file:line`; malformed rows are counted in the summary, a damaged file ends the table.
pub fn for_each_row(path: &Path, columns: &[&str], summary: &mut Summary, mut row: impl FnMut(&[&str], &str, &mut Summary)) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") { Box::new(GzDecoder::new(file)) } else { Box::new(file) };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.headers().with_context(|| format!("{}: cannot read the header", path.display()))?.clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(c)).with_context(|| format!("{}: no column {c:?}", path.display())))
        .collect::<Result<_>>()?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    loop {
        line += 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let fields: Vec<&str> = index.iter().map(|&i| record.get(i).unwrap_or("").trim()).collect();
                row(&fields, &format!("{name}:{line}"), summary);
            }
            Err(e) if e.is_io_error() => {
                summary.skip("damaged file (rest of the file not read)", || format!("{name}:{line}: {e}"));
                break;
            }
            Err(e) => summary.skip("malformed row", || format!("{name}:{line}: {e}")),
        }
    }
    Ok(())
}

pub fn table(dir: &Path, name: &str) -> Result<PathBuf> {
    [format!("{name}.csv.gz"), format!("{name}.csv")]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .with_context(|| format!("{}: no {name}.csv.gz or {name}.csv", dir.display()))
}

pub fn time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()
}

