//! Reading MIMIC-style CSV tables (`.csv` or `.csv.gz`): the requested columns of every row by
//! header name (any case), with `file:line` for messages; malformed rows and damaged files are
//! counted in the summary instead of ending the run.

use super::Summary;
use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use flate2::read::GzDecoder;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Calls `row` with the requested `columns` of every row of a table (`.csv` or `.csv.gz`) and
/// its `file:line`; malformed rows are counted in the summary, a damaged file ends the table.
pub fn for_each_row(
    path: &Path,
    columns: &[&str],
    summary: &mut Summary,
    mut row: impl FnMut(&[&str], &str, &mut Summary),
) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // a final newline (a blank line when there is one already) ends every row, so that the
    // reader's line after a row is always the one below it
    let reader = reader.chain(&b"\n"[..]);
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .with_context(|| format!("{}: cannot read the header", path.display()))?
        .clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(c))
                .with_context(|| format!("{}: no column {c:?}", path.display()))
        })
        .collect::<Result<_>>()?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut record = csv::StringRecord::new();
    loop {
        let result = csv.read_record(&mut record);
        // The line a row starts on: the one above where reading stopped, less the lines inside
        // its quoted fields (csv's own record position counts the blank lines before a row).
        let end = csv.position().line().saturating_sub(1);
        match result {
            Ok(false) => break,
            Ok(true) => {
                let line =
                    end.saturating_sub(record.iter().map(|f| f.matches('\n').count() as u64).sum());
                let fields: Vec<&str> = index
                    .iter()
                    .map(|&i| record.get(i).unwrap_or("").trim())
                    .collect();
                row(&fields, &format!("{name}:{line}"), summary);
            }
            Err(e) if e.is_io_error() => {
                summary.skip("damaged file (rest of the file not read)", || {
                    format!("{name}:{}: {e}", end + 1)
                });
                break;
            }
            Err(e) => summary.skip("malformed row", || format!("{name}:{end}: {e}")),
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

/// The ATC-3 classes of each admission's prescriptions (MIMIC-III and MIMIC-IV share the columns
/// `hadm_id`, `gsn`, `ndc`): GSN first (a row may list several), else NDC, through
/// `gsn_atc_ndc_mapping.csv.gz`; codes compared without leading zeros. `each(hadm_id, atc3)` is
/// called for every row that reaches a class; the summary records the share that do.
pub fn prescriptions_to_atc3(
    prescriptions: &Path,
    atc: &Path,
    summary: &mut Summary,
    mut each: impl FnMut(&str, &str),
) -> Result<()> {
    let (mut by_gsn, mut by_ndc) = (HashMap::new(), HashMap::new());
    for_each_row(atc, &["gsn", "atc", "ndc"], summary, |f, _, _| {
        if let Some(atc3) = f[1].get(..4) {
            for (map, key) in [(&mut by_gsn, f[0]), (&mut by_ndc, f[2])] {
                if !key.is_empty() && key != "0" {
                    map.insert(key.trim_start_matches('0').to_string(), atc3.to_string());
                }
            }
        }
    })?;
    let (mut rows, mut mapped) = (0usize, 0usize);
    for_each_row(
        prescriptions,
        &["hadm_id", "gsn", "ndc"],
        summary,
        |f, _, _| {
            rows += 1;
            let atc3 = f[1]
                .split_whitespace()
                .find_map(|g| by_gsn.get(g.trim_start_matches('0')))
                .or_else(|| by_ndc.get(f[2].trim_start_matches('0')));
            if let Some(atc3) = atc3 {
                mapped += 1;
                each(f[0], atc3);
            }
        },
    )?;
    summary.prescription_rows_to_atc3 = Some(mapped as f64 / rows.max(1) as f64);
    Ok(())
}
