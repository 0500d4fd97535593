//! Teacher rationales (`bedside-train teach`): for each admission, a note rationale and a lab
//! rationale, one JSONL object per admission: `{ "id", "note_rationale", "lab_rationale",
//! "teacher" }`.
//!
//! The built-in `knowledge` teacher writes them from the record and the knowledge base only, so
//! every statement is true of the record: the note rationale quotes the note sentences that
//! describe a labelled phenotype (by the phenotype's keywords); the lab rationale names the
//! channels that suggest the labelled phenotypes and are outside their normal range, with the most
//! abnormal value, its hour, the normal range and the trend over the stay.

use anyhow::{Context, Result, bail};
use bedside::PatientRecord;
use bedside::knowledge::{CHANNELS, PHENOTYPES, channel_index};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rationale {
    pub id: String,
    pub note_rationale: String,
    pub lab_rationale: String,
    pub teacher: String,
}

/// Most lab statements per rationale: targets stay short enough for a small decoder.
const MAX_LAB_STATEMENTS: usize = 4;
const MAX_NOTE_SENTENCES: usize = 3;

fn labelled(record: &PatientRecord) -> Vec<usize> {
    let names = record.labels.as_ref().map(|l| l.phenotypes.as_slice()).unwrap_or(&[]);
    PHENOTYPES.iter().enumerate().filter(|(_, p)| names.iter().any(|n| n == p.name)).map(|(i, _)| i).collect()
}

fn sentences(text: &str) -> Vec<&str> {
    text.split_inclusive(['.', ';', '\n']).map(str::trim).filter(|s| s.len() > 3).collect()
}

/// The note sentences that describe the labelled phenotypes.
pub fn note_rationale(record: &PatientRecord) -> String {
    let phenotypes = labelled(record);
    let mut quoted: Vec<String> = Vec::new();
    let mut supported: BTreeSet<&str> = BTreeSet::new();
    for note in &record.notes {
        for sentence in sentences(&note.text) {
            let lower = sentence.to_lowercase();
            let matches: Vec<&str> = phenotypes
                .iter()
                .map(|&p| &PHENOTYPES[p])
                .filter(|p| p.keywords.iter().any(|k| lower.contains(k)))
                .map(|p| p.short)
                .collect();
            if !matches.is_empty() && quoted.len() < MAX_NOTE_SENTENCES {
                supported.extend(matches);
                quoted.push(sentence.trim_end_matches(['.', ';']).to_string());
            }
        }
    }
    if quoted.is_empty() {
        return "The notes do not describe the diagnoses directly.".into();
    }
    let list: Vec<&str> = supported.into_iter().collect();
    format!("The notes report: {}. This supports {}.", quoted.join("; "), list.join(", "))
}

/// One abnormal channel: the statement and how abnormal it is (in normal half-widths).
struct Finding {
    statement: String,
    severity: f64,
}

fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else if v.abs() >= 10.0 { format!("{v:.1}") } else { format!("{v:.2}") }
}

fn finding(record: &PatientRecord, channel: usize) -> Option<Finding> {
    let ch = &CHANNELS[channel];
    let mut values: Vec<(f64, f64)> = record
        .observations
        .iter()
        .filter(|o| channel_index(&o.channel) == Some(channel))
        .filter_map(|o| o.value.filter(|v| ch.is_valid(*v)).map(|v| (o.hours, v)))
        .collect();
    if values.is_empty() || matches!(ch.name, "mech_vent" | "capillary_refill" | "height" | "weight") {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (hour, value) = values.iter().copied().max_by(|a, b| ch.standardise(a.1).abs().total_cmp(&ch.standardise(b.1).abs()))?;
    let z = ch.standardise(value);
    if z.abs() <= 1.0 {
        return None;
    }
    let direction = if z > 0.0 { "high" } else { "low" };
    let third = (values.len() / 3).max(1);
    let mean = |s: &[(f64, f64)]| s.iter().map(|v| v.1).sum::<f64>() / s.len() as f64;
    let (early, late) = (mean(&values[..third]), mean(&values[values.len() - third..]));
    let half = 0.5 * (ch.normal_high - ch.normal_low);
    let trend = if values.len() < 3 {
        ""
    } else if late - early > 0.5 * half {
        ", rising over the stay"
    } else if early - late > 0.5 * half {
        ", falling over the stay"
    } else {
        ""
    };
    Some(Finding {
        statement: format!(
            "{} was {direction} at {} {} at hour {:.0} (normal {}-{}){trend}.",
            ch.label,
            format_value(value),
            ch.unit,
            hour.floor(),
            format_value(ch.normal_low),
            format_value(ch.normal_high)
        ),
        severity: z.abs(),
    })
}

/// Abnormal values of the channels that suggest the labelled phenotypes.
pub fn lab_rationale(record: &PatientRecord) -> String {
    let phenotypes = labelled(record);
    let channels: BTreeSet<usize> = phenotypes
        .iter()
        .flat_map(|&p| PHENOTYPES[p].channels.iter().filter_map(|c| channel_index(c)))
        .collect();
    let mut findings: Vec<(usize, Finding)> = channels.into_iter().filter_map(|c| finding(record, c).map(|f| (c, f))).collect();
    if findings.is_empty() {
        return "The lab and vital signs show no abnormality specific to the diagnoses.".into();
    }
    findings.sort_by(|a, b| b.1.severity.total_cmp(&a.1.severity));
    findings.truncate(MAX_LAB_STATEMENTS);
    let shown: BTreeSet<usize> = findings.iter().map(|(c, _)| *c).collect();
    let suggested: Vec<&str> = phenotypes
        .iter()
        .map(|&p| &PHENOTYPES[p])
        .filter(|p| p.channels.iter().any(|c| channel_index(c).is_some_and(|i| shown.contains(&i))))
        .map(|p| p.short)
        .collect();
    let statements: Vec<String> = findings.into_iter().map(|(_, f)| f.statement).collect();
    format!("{} These suggest {}.", statements.join(" "), suggested.join(", "))
}

/// A lab statement as the knowledge teacher writes it: "`Label` was high|low at `value` `unit`
/// at hour `h` (...)".
#[derive(Debug, Clone, PartialEq)]
pub struct LabStatement {
    pub channel: usize,
    pub high: bool,
    pub value: f64,
    pub hour: f64,
}

/// Every lab statement in `text` that follows the teacher's pattern (others are not counted).
pub fn lab_statements(text: &str) -> Vec<LabStatement> {
    text.split(". ")
        .filter_map(|sentence| {
            let (label, rest) = sentence.split_once(" was ")?;
            let channel = CHANNELS.iter().position(|c| label.trim().ends_with(c.label))?;
            let high = match rest.split(' ').next()? {
                "high" => true,
                "low" => false,
                _ => return None,
            };
            let value = rest.split(' ').nth(2)?.parse().ok()?;
            let hour = rest.split("at hour ").nth(1)?.split(' ').next()?.parse().ok()?;
            Some(LabStatement { channel, high, value, hour })
        })
        .collect()
}

impl LabStatement {
    /// Whether the record has this value (within 1 %) in this hour, and it lies on the stated
    /// side of the normal range.
    pub fn is_true_of(&self, record: &PatientRecord) -> bool {
        let ch = &CHANNELS[self.channel];
        let side = if self.high { self.value > ch.normal_high } else { self.value < ch.normal_low };
        side && record.observations.iter().any(|o| {
            channel_index(&o.channel) == Some(self.channel)
                && o.hours.floor() == self.hour
                && o.value.is_some_and(|v| (v - self.value).abs() <= 0.01 * self.value.abs().max(1.0))
        })
    }
}

pub fn knowledge_teacher(record: &PatientRecord) -> Rationale {
    Rationale {
        id: record.id.clone(),
        note_rationale: note_rationale(record),
        lab_rationale: lab_rationale(record),
        teacher: "knowledge".into(),
    }
}

/// Reads and validates a rationale JSONL file: every line an object with the four fields, ids
/// unique; errors name the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Rationale>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", path.display(), i + 1);
        let r: Rationale = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(line))
            .map_err(|e| anyhow::anyhow!("{}: not a rationale: at {}: {}", at(), e.path(), e.inner()))?;
        if r.id.trim().is_empty() {
            bail!("{}: id is empty", at());
        }
        if !seen.insert(r.id.clone()) {
            bail!("{}: id {:?} appears twice", at(), r.id);
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn every_lab_statement_is_true_of_the_record() {
        for record in synthetic::cohort(60, 48, 9) {
            let r = knowledge_teacher(&record);
            let written = r.lab_rationale.matches(" was ").count();
            let statements = lab_statements(&r.lab_rationale);
            assert_eq!(statements.len(), written, "{}", r.lab_rationale);
            for statement in statements {
                assert!(statement.is_true_of(&record), "{}: {statement:?}", record.id);
            }
            for quoted in r.note_rationale.trim_start_matches("The notes report: ").split("; ").filter(|_| r.note_rationale.starts_with("The notes report")) {
                let quoted = quoted.split(". This supports").next().unwrap();
                assert!(record.notes[0].text.contains(quoted), "{quoted}");
            }
        }
    }

    #[test]
    fn jsonl_import_names_the_line() {
        let dir = std::env::temp_dir().join(format!("bedside-teach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.jsonl");
        let good = serde_json::to_string(&knowledge_teacher(&synthetic::cohort(1, 48, 1)[0])).unwrap();
        std::fs::write(&file, format!("{good}\n{good}\n")).unwrap();
        let e = read_jsonl(&file).unwrap_err().to_string();
        assert!(e.contains("r.jsonl:2") && e.contains("twice"), "{e}");
        std::fs::write(&file, "{\"id\": \"a\"}\n").unwrap();
        let e = format!("{:#}", read_jsonl(&file).unwrap_err());
        assert!(e.contains("r.jsonl:1") && e.contains("note_rationale"), "{e}");
    }
}

#[cfg(test)]
mod statement_tests {
    use super::*;

    #[test]
    fn a_false_statement_is_caught() {
        let record = crate::synthetic::cohort(1, 48, 4).remove(0);
        let o = record.observations.iter().find(|o| o.channel == "heart_rate").unwrap();
        let text = format!("Heart rate was high at {} /min at hour {} (normal 60-100).", o.value.unwrap(), o.hours.floor());
        let parsed = lab_statements(&text);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].is_true_of(&record), o.value.unwrap() > 100.0);
        let wrong = lab_statements("Heart rate was high at 250 /min at hour 3 (normal 60-100).");
        assert!(!wrong[0].is_true_of(&record));
    }
}
