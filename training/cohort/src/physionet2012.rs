//! PhysioNet/CinC Challenge 2012 reader: `set-*.tar.gz` (one `Time,Parameter,Value` file per ICU
//! stay, first 48 h) and `Outcomes-*.txt` (SAPS-I, SOFA, length of stay, survival, in-hospital
//! death). Static descriptors (Age, Gender, ICUType, Height, Weight) go to demographics and to
//! observations at hour 0; -1 means missing. A damaged archive or file is reported and the rest
//! is still read.

use super::Summary;
use anyhow::{Context, Result};
use bedside::knowledge::{CHANNELS, channel_index};
use bedside::record::{
    Demographics, Labels, Observation, Outcomes, PatientRecord, RECORD_FORMAT_VERSION, Sex, Visit,
};
use flate2::read::GzDecoder;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

const STATIC: &[&str] = &["RecordID", "Age", "Gender", "ICUType", "Height"];

/// Reads every `set-*.tar.gz` in `dir`, joined with the `Outcomes-*.txt` files there.
pub fn read(dir: &Path, summary: &mut Summary) -> Result<Vec<PatientRecord>> {
    let records: Vec<PatientRecord> = read_sets(dir, summary)?
        .into_iter()
        .flat_map(|(_, records)| records)
        .collect();
    let patients = records.len();
    summary.describe(&records, patients);
    Ok(records)
}

/// Like [`read`], but keeps the challenge's sets apart (`("set-a", records)`, ...), in name order:
/// the challenge trains on set-a and tests on set-b.
pub fn read_sets(dir: &Path, summary: &mut Summary) -> Result<Vec<(String, Vec<PatientRecord>)>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut outcomes = HashMap::new();
    for path in names
        .iter()
        .filter(|p| file_name(p).starts_with("Outcomes") && file_name(p).ends_with(".txt"))
    {
        read_outcomes(path, &mut outcomes, summary)?;
    }
    let archives: Vec<_> = names
        .iter()
        .filter(|p| file_name(p).starts_with("set-") && file_name(p).ends_with(".tar.gz"))
        .collect();
    anyhow::ensure!(!archives.is_empty(), "no set-*.tar.gz in {}", dir.display());
    let mut sets = Vec::new();
    for archive in archives {
        let file = std::fs::File::open(archive)
            .with_context(|| format!("cannot open {}", archive.display()))?;
        let mut tar = tar::Archive::new(GzDecoder::new(file));
        let entries = tar
            .entries()
            .with_context(|| format!("cannot read {}", archive.display()))?;
        let mut records = Vec::new();
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    summary.skip("damaged archive (rest of the archive not read)", || {
                        format!("{}: {e}", archive.display())
                    });
                    break;
                }
            };
            let name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if !name.ends_with(".txt") {
                continue;
            }
            let mut text = String::new();
            if let Err(e) = entry.read_to_string(&mut text) {
                summary.skip("unreadable stay file", || {
                    format!("{}:{name}: {e}", archive.display())
                });
                break;
            }
            let location = format!("{}:{name}", file_name(archive));
            if let Some(record) = parse_stay(&location, &text, &outcomes, summary) {
                records.push(record);
            }
        }
        sets.push((
            file_name(archive).trim_end_matches(".tar.gz").to_string(),
            records,
        ));
    }
    Ok(sets)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_outcomes(
    path: &Path,
    into: &mut HashMap<String, Outcomes>,
    summary: &mut Summary,
) -> Result<()> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let id =
        column("RecordID").with_context(|| format!("{}: no RecordID column", path.display()))?;
    let (saps, sofa, los, survival, death) = (
        column("SAPS-I"),
        column("SOFA"),
        column("Length_of_stay"),
        column("Survival"),
        column("In-hospital_death"),
    );
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                summary.skip("malformed outcome row", || {
                    format!("{}:{line}: {e}", path.display())
                });
                continue;
            }
        };
        let number = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| *v >= 0.0)
        };
        let Some(record_id) = row
            .get(id)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        else {
            summary.skip("outcome row without RecordID", || {
                format!("{}:{line}", path.display())
            });
            continue;
        };
        into.insert(
            record_id,
            Outcomes {
                in_hospital_death: number(death).map(|d| d >= 1.0),
                length_of_stay_days: number(los),
                survival_days: number(survival),
                saps_i: number(saps),
                sofa: number(sofa),
            },
        );
    }
    Ok(())
}

fn parse_hours(time: &str) -> Option<f64> {
    let (h, m) = time.trim().split_once(':')?;
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (m < 60).then(|| h as f64 + m as f64 / 60.0)
}

/// One stay file → a record; `None` (and a skip in the summary) when it has no RecordID.
fn parse_stay(
    location: &str,
    text: &str,
    outcomes: &HashMap<String, Outcomes>,
    summary: &mut Summary,
) -> Option<PatientRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header_ok = reader
        .headers()
        .is_ok_and(|h| h.iter().map(str::trim).eq(["Time", "Parameter", "Value"]));
    if !header_ok {
        summary.skip("stay file without a Time,Parameter,Value header", || {
            location.to_string()
        });
        return None;
    }
    let mut record_id = None;
    let mut demographics = Demographics::default();
    let mut observations = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = match row {
            Ok(r) if r.len() == 3 => r,
            Ok(_) | Err(_) => {
                summary.skip("malformed row", || format!("{location}:{line}"));
                continue;
            }
        };
        let (Some(hours), parameter) = (parse_hours(&row[0]), row[1].trim()) else {
            summary.skip("unreadable time", || {
                format!("{location}:{line}: {:?}", &row[0])
            });
            continue;
        };
        let Some(value) = row[2].trim().parse::<f64>().ok().filter(|v| v.is_finite()) else {
            summary.skip("unreadable value", || {
                format!("{location}:{line}: {:?}", &row[2])
            });
            continue;
        };
        let known = value != -1.0;
        match parameter {
            "RecordID" => record_id = Some(format!("{}", value as i64)),
            "Age" if known => demographics.age = Some(value),
            "Gender" if known => {
                demographics.sex = Some(if value == 0.0 { Sex::Female } else { Sex::Male })
            }
            "ICUType" if known => {
                demographics.care_unit = Some(
                    match value as i64 {
                        1 => "coronary care unit",
                        2 => "cardiac surgery recovery unit",
                        3 => "medical ICU",
                        4 => "surgical ICU",
                        _ => "unknown ICU",
                    }
                    .to_string(),
                )
            }
            p if STATIC.contains(&p) && p != "Height" => {}
            _ if !known && hours == 0.0 => {} // a static descriptor recorded as missing
            _ => {
                let channel = channel_index(parameter).map(|c| CHANNELS[c].name);
                if channel.is_none() {
                    summary.skip("unknown parameter (kept in the record)", || {
                        format!("{location}:{line}: {parameter}")
                    });
                }
                observations.push(Observation {
                    reference: None,
                    channel: channel.unwrap_or(parameter).to_string(),
                    hours,
                    value: Some(value),
                    unit: None,
                });
            }
        }
    }
    let Some(record_id) = record_id else {
        summary.skip("stay file without RecordID", || location.to_string());
        return None;
    };
    let outcome = outcomes.get(&record_id).cloned();
    if outcome.is_none() {
        summary.skip("stay without an outcome row (kept, unlabelled)", || {
            location.to_string()
        });
    }
    Some(PatientRecord {
        skipped: Vec::new(),
        window_start: Some(bedside::record::WindowStart::IcuAdmission),
        format_version: RECORD_FORMAT_VERSION,
        id: format!("physionet2012-{record_id}"),
        patient: None,
        demographics,
        notes: Vec::new(),
        observations,
        visits: vec![Visit::default()],
        labels: outcome.map(|o| Labels {
            outcomes: Some(o),
            ..Labels::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAY: &str = "Time,Parameter,Value\n00:00,RecordID,132539\n00:00,Age,54\n00:00,Gender,0\n00:00,Height,-1\n00:00,ICUType,4\n00:00,Weight,-1\n00:07,GCS,15\n00:07,HR,73\n00:37,NIMAP,91\n01:10,Temp,35.1\n02:00,Mystery,3\nxx,HR,70\n03:00,HR,abc\n";

    #[test]
    fn a_stay_file_becomes_a_record() {
        let mut summary = Summary::new("physionet2012");
        let mut outcomes = HashMap::new();
        outcomes.insert(
            "132539".to_string(),
            Outcomes {
                in_hospital_death: Some(false),
                saps_i: Some(6.0),
                ..Outcomes::default()
            },
        );
        let r = parse_stay("set-a:132539.txt", STAY, &outcomes, &mut summary).unwrap();
        assert_eq!(r.id, "physionet2012-132539");
        assert_eq!(r.demographics.age, Some(54.0));
        assert_eq!(r.demographics.sex, Some(Sex::Female));
        assert_eq!(r.demographics.care_unit.as_deref(), Some("surgical ICU"));
        let obs: Vec<(&str, f64)> = r
            .observations
            .iter()
            .map(|o| (o.channel.as_str(), o.hours))
            .collect();
        assert_eq!(
            obs,
            [
                ("gcs_total", 7.0 / 60.0),
                ("heart_rate", 7.0 / 60.0),
                ("mean_bp", 37.0 / 60.0),
                ("temperature", 70.0 / 60.0),
                ("Mystery", 2.0)
            ]
        );
        assert_eq!(r.labels.unwrap().outcomes.unwrap().saps_i, Some(6.0));
        let reasons: Vec<&str> = summary.skipped.keys().map(String::as_str).collect();
        assert_eq!(
            reasons,
            [
                "unknown parameter (kept in the record)",
                "unreadable time",
                "unreadable value"
            ]
        );
        assert_eq!(
            summary.skipped["unreadable time"].examples,
            ["set-a:132539.txt:13: \"xx\""]
        );
    }

    /// The catalogue's stay files (tests/catalogue/physionet.jsonl): each bad row is counted with
    /// its reason and line, the rest of the stay is still read; then 20,000 mutations of them
    /// must not panic.
    #[test]
    fn catalogued_bad_stay_files_are_counted_not_fatal() {
        use rand::{Rng, SeedableRng};
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/catalogue/physionet.jsonl");
        let cases: Vec<serde_json::Value> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut outcomes = HashMap::new();
        outcomes.insert(
            "132539".to_string(),
            Outcomes {
                in_hospital_death: Some(true),
                ..Outcomes::default()
            },
        );
        let mut failures = Vec::new();
        for case in &cases {
            let mut summary = Summary::new("physionet2012");
            let text = case["text"].as_str().unwrap();
            let record = parse_stay("catalogue.txt", text, &outcomes, &mut summary);
            let reason = case["skip"].as_str().unwrap();
            let examples = summary
                .skipped
                .get(reason)
                .map(|s| s.examples.clone())
                .unwrap_or_default();
            let line_named = case["line"].as_u64().is_none_or(|l| {
                examples
                    .iter()
                    .any(|e| e.starts_with(&format!("catalogue.txt:{l}")))
            });
            if record.is_some() != case["record"].as_bool().unwrap()
                || examples.is_empty()
                || !line_named
            {
                failures.push(format!(
                    "{}: record {}, skipped {:?}",
                    case["name"],
                    record.is_some(),
                    summary.skipped.keys().collect::<Vec<_>>()
                ));
            }
            if let Some(r) = record {
                assert!(
                    r.observations.len() >= 2,
                    "{}: the good rows were dropped",
                    case["name"]
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("../.."));
        let seeds: Vec<Vec<u8>> = cases
            .iter()
            .map(|c| c["text"].as_str().unwrap().as_bytes().to_vec())
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2012);
        for i in 0..20_000 {
            let mut data = seeds[rng.random_range(0..seeds.len())].clone();
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..=data.len());
                match rng.random_range(0..3) {
                    0 => {
                        const BYTES: &[u8] = b",:\n-.0e9x";
                        data.insert(at, BYTES[rng.random_range(0..BYTES.len())]);
                    }
                    1 if at < data.len() => {
                        data.remove(at);
                    }
                    _ => data.truncate(at),
                }
            }
            let text = String::from_utf8_lossy(&data);
            let mut summary = Summary::new("physionet2012");
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse_stay("fuzz.txt", &text, &outcomes, &mut summary)
            }));
            assert!(run.is_ok(), "input {i} panicked: {text:?}");
        }
    }

    #[test]
    fn the_real_challenge_data() {
        let Some(dir) = bedside::test_layers::shared_data("physionet2012") else {
            return;
        };
        let mut summary = Summary::new("physionet2012");
        let records = read(&dir, &mut summary).unwrap();
        assert_eq!(records.len(), 8000, "{}", summary.table());
        let deaths = records
            .iter()
            .filter(|r| {
                r.labels
                    .as_ref()
                    .and_then(|l| l.outcomes.as_ref()?.in_hospital_death)
                    == Some(true)
            })
            .count();
        assert_eq!(deaths, 554 + 568);
        assert!(summary.channel_coverage["heart_rate"] > 0.95);
        for r in records.iter().take(200) {
            r.validate().unwrap();
        }
    }
}
