//! Teacher rationales (`bedside-train teach`): for each admission, a note rationale and a lab
//! rationale, one JSONL object per admission: `{ "id", "note_rationale", "lab_rationale",
//! "teacher" }`.
//!
//! The built-in `knowledge` teacher writes them from the record's findings
//! ([`bedside::findings`], inside the window the model reads) and the knowledge base only, so
//! every statement is true of the record and visible to the model: the note rationale quotes the
//! note sentences that describe a labelled phenotype (by the phenotype's keywords); the lab
//! rationale states the findings of the channels that suggest the labelled phenotypes, most
//! abnormal first.

pub mod endpoint;
pub mod grounding;

use anyhow::{Context, Result, bail};
use bedside::PatientRecord;
use bedside::findings::{Findings, LabFinding};
use bedside::grounded::MAX_QUOTED_SENTENCES;
use bedside::knowledge::{CHANNELS, PHENOTYPES, channel_index};
use grounding::{Verdict, picks_from_text, verdict};
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
    let truth = record.phenotype_truth();
    (0..truth.len()).filter(|&i| truth[i]).collect()
}

/// The note sentences that describe the labelled phenotypes, quoted verbatim.
pub fn note_rationale(record: &PatientRecord, findings: &Findings) -> String {
    let phenotypes = labelled(record);
    let mut quoted: Vec<&str> = Vec::new();
    let mut supported: BTreeSet<&str> = BTreeSet::new();
    for sentence in findings.sentences.iter().take(MAX_QUOTED_SENTENCES) {
        let text = sentence.text(record);
        let lower = text.to_lowercase();
        let matches: Vec<&str> = phenotypes
            .iter()
            .map(|&p| &PHENOTYPES[p])
            .filter(|p| p.keywords.iter().any(|k| lower.contains(k)))
            .map(|p| p.short)
            .collect();
        if !matches.is_empty() && quoted.len() < MAX_NOTE_SENTENCES {
            supported.extend(matches);
            quoted.push(text);
        }
    }
    if quoted.is_empty() {
        return "The notes do not describe the diagnoses directly.".into();
    }
    let list: Vec<&str> = supported.into_iter().collect();
    format!(
        "The notes report: {} This supports {}.",
        quoted.join(" "),
        list.join(", ")
    )
}

/// The record's findings (inside the model's window) of the channels that suggest the labelled
/// phenotypes, most abnormal first.
pub fn lab_rationale(record: &PatientRecord, findings: &Findings) -> String {
    let phenotypes = labelled(record);
    let channels: BTreeSet<usize> = phenotypes
        .iter()
        .flat_map(|&p| {
            PHENOTYPES[p]
                .channels
                .iter()
                .filter_map(|c| channel_index(c))
        })
        .collect();
    let mut chosen: Vec<&LabFinding> = findings
        .labs
        .iter()
        .filter(|f| channels.contains(&f.channel))
        .collect();
    if chosen.is_empty() {
        return "The lab and vital signs show no abnormality specific to the diagnoses.".into();
    }
    chosen.sort_by(|a, b| b.severity.total_cmp(&a.severity));
    chosen.truncate(MAX_LAB_STATEMENTS);
    let shown: BTreeSet<usize> = chosen.iter().map(|f| f.channel).collect();
    let suggested: Vec<&str> = phenotypes
        .iter()
        .map(|&p| &PHENOTYPES[p])
        .filter(|p| {
            p.channels
                .iter()
                .any(|c| channel_index(c).is_some_and(|i| shown.contains(&i)))
        })
        .map(|p| p.short)
        .collect();
    let statements: Vec<String> = chosen.into_iter().map(LabFinding::statement).collect();
    format!(
        "{} These suggest {}.",
        statements.join(" "),
        suggested.join(", ")
    )
}

/// A lab statement as the knowledge teacher writes it: "`Label` was high|low at `value` `unit`
/// at hour `h` (...)".
#[derive(Debug, Clone, PartialEq)]
pub struct LabStatement {
    pub channel: usize,
    pub high: bool,
    pub value: f64,
    pub hour: f64,
    /// The normal range it states, where it states one.
    pub normal: Option<(f64, f64)>,
}

/// Every lab statement in `text` that follows the teacher's pattern (others are not counted).
pub fn lab_statements(text: &str) -> Vec<LabStatement> {
    text.split(". ")
        .filter_map(|sentence| {
            let (label, rest) = sentence.split_once(" was ")?;
            let channel = CHANNELS
                .iter()
                .position(|c| label.trim().ends_with(c.label))?;
            let high = match rest.split(' ').next()? {
                "high" => true,
                "low" => false,
                _ => return None,
            };
            let value = rest.split(' ').nth(2)?.parse().ok()?;
            let hour = rest
                .split("at hour ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            let normal = rest.split("(normal ").nth(1).and_then(|r| {
                let (low, high) = r.split(')').next()?.split_once('-')?;
                Some((low.parse().ok()?, high.parse().ok()?))
            });
            Some(LabStatement {
                channel,
                high,
                value,
                hour,
                normal,
            })
        })
        .collect()
}

impl LabStatement {
    /// Whether the record has this value (within 1 %, in the channel's unit) in this hour of its
    /// first `hours`, it lies on the stated side of the normal range, and the stated range is the
    /// knowledge base's.
    pub fn is_true_of(&self, record: &PatientRecord, hours: usize) -> bool {
        let ch = &CHANNELS[self.channel];
        let close = |a: f64, b: f64| (a - b).abs() <= 0.01 * b.abs().max(1.0);
        let side = if self.high {
            self.value > ch.normal_high
        } else {
            self.value < ch.normal_low
        };
        let range = self
            .normal
            .is_none_or(|(low, high)| close(low, ch.normal_low) && close(high, ch.normal_high));
        side && range
            && record.observations.iter().any(|o| {
                let (_, used) = bedside::record::read_observation(o, hours);
                used.is_ok_and(|u| {
                    u.channel == self.channel
                        && u.hours.floor() == self.hour
                        && close(u.value, self.value)
                })
            })
    }
}

/// The built-in teacher, for a model that reads the first `hours` hours.
pub fn knowledge_teacher(record: &PatientRecord, hours: usize) -> Rationale {
    let findings = Findings::of(record, hours);
    Rationale {
        id: record.id.clone(),
        note_rationale: note_rationale(record, &findings),
        lab_rationale: lab_rationale(record, &findings),
        teacher: "knowledge".into(),
    }
}

/// What the grounding check ([`grounding::verdict`]) found in a teacher's rationales.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grounding {
    pub statements: usize,
    pub grounded: usize,
    /// Dropped: they contradict the record (an invented value, direction or finding).
    pub contradicts: usize,
    /// Dropped: nothing in them can be tied to the record.
    pub unverifiable: usize,
    /// The dropped statements (admission id, verdict, text), for review.
    pub dropped: Vec<(String, Verdict, String)>,
}

impl Grounding {
    pub fn add(&mut self, other: Grounding) {
        self.statements += other.statements;
        self.grounded += other.grounded;
        self.contradicts += other.contradicts;
        self.unverifiable += other.unverifiable;
        self.dropped.extend(other.dropped);
    }
}

/// The hallucination filter for a language model's rationales: every sentence is checked against
/// the record's findings inside the first `hours`, and only grounded ones are kept — quotes in the
/// note rationale, lab statements in the lab rationale.
pub fn ground(record: &PatientRecord, hours: usize, r: &Rationale) -> (Rationale, Grounding) {
    let findings = Findings::of(record, hours);
    let mut counts = Grounding::default();
    // grounded statements by what grounds them: a quote goes to the note rationale, a lab
    // finding to the lab rationale, wherever the model wrote it (distillation reads each
    // rationale for its own kind of pick)
    let (mut quotes, mut labs) = (Vec::new(), Vec::new());
    for text in [&r.note_rationale, &r.lab_rationale] {
        for (start, end) in bedside::findings::sentence_spans(text) {
            let sentence = &text[start..end];
            counts.statements += 1;
            match verdict(record, &findings, sentence) {
                Verdict::Grounded => {
                    counts.grounded += 1;
                    let quotes_a_note = !picks_from_text(record, &findings, sentence, "")
                        .0
                        .is_empty();
                    if quotes_a_note {
                        &mut quotes
                    } else {
                        &mut labs
                    }
                    .push(sentence);
                }
                v => {
                    match v {
                        Verdict::Contradicts => counts.contradicts += 1,
                        _ => counts.unverifiable += 1,
                    }
                    counts.dropped.push((r.id.clone(), v, sentence.to_string()));
                }
            }
        }
    }
    // each kept sentence ends with a mark, so that the kept text splits into the same sentences
    // again (a model's last sentence is often cut off)
    let join = |sentences: Vec<&str>| -> String {
        sentences
            .into_iter()
            .map(|s| {
                if s.ends_with(['.', ';', '!', '?']) {
                    s.to_string()
                } else {
                    format!("{s}.")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let kept = Rationale {
        id: r.id.clone(),
        note_rationale: join(quotes),
        lab_rationale: join(labs),
        teacher: r.teacher.clone(),
    };
    (kept, counts)
}

/// Reads and validates a rationale JSONL file: every line an object with the four fields, ids
/// unique; errors name the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Rationale>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{}:{}", path.display(), i + 1);
        let r: Rationale =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(line))
                .map_err(|e| {
                    anyhow::anyhow!("{}: not a rationale: at {}: {}", at(), e.path(), e.inner())
                })?;
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
    use crate::shared::synthetic;

    #[test]
    fn every_lab_statement_is_true_of_the_record_and_every_quote_is_a_sentence_of_it() {
        let mut quotes = 0;
        for record in synthetic::cohort(60, 48, 9) {
            let r = knowledge_teacher(&record, 48);
            let written = r.lab_rationale.matches(" was ").count();
            let statements = lab_statements(&r.lab_rationale);
            assert_eq!(statements.len(), written, "{}", r.lab_rationale);
            for statement in statements {
                assert!(
                    statement.is_true_of(&record, 48),
                    "{}: {statement:?}",
                    record.id
                );
            }
            // what the teacher quotes is what distillation teaches as note picks
            let findings = Findings::of(&record, 48);
            let (picks, _) = grounding::picks_from_text(&record, &findings, &r.note_rationale, "");
            let quoted: Vec<&str> = picks
                .iter()
                .map(|p| match p {
                    bedside::grounded::Pick::Note(k) => findings.sentences[*k].text(&record),
                    bedside::grounded::Pick::Lab(..) => unreachable!(),
                })
                .collect();
            assert_eq!(
                r.note_rationale.starts_with("The notes report: "),
                !quoted.is_empty(),
                "{}",
                r.note_rationale
            );
            if !quoted.is_empty() {
                assert!(
                    r.note_rationale.starts_with(&format!(
                        "The notes report: {} This supports",
                        quoted.join(" ")
                    )),
                    "{}",
                    r.note_rationale
                );
            }
            quotes += quoted.len();
        }
        assert!(quotes > 20, "{quotes}");
    }

    #[test]
    fn the_filter_keeps_every_knowledge_statement_and_drops_invented_ones() {
        let mut total = Grounding::default();
        for record in synthetic::cohort(40, 48, 5) {
            let r = knowledge_teacher(&record, 48);
            let (kept, counts) = ground(&record, 48, &r);
            assert_eq!(counts.contradicts, 0, "{}: {:?}", record.id, counts.dropped);
            // what is taught (the picks) is unchanged by the filter
            let findings = Findings::of(&record, 48);
            let picks = |r: &Rationale| {
                grounding::picks_from_text(&record, &findings, &r.note_rationale, &r.lab_rationale)
                    .0
            };
            assert_eq!(picks(&kept), picks(&r), "{}", record.id);
            // a value moved off the record is caught
            if let Some(s) = lab_statements(&r.lab_rationale).first() {
                let wrong = format!(
                    "{} was {} at {} at hour {}.",
                    CHANNELS[s.channel].label,
                    if s.high { "high" } else { "low" },
                    s.value * 1.5 + 1.0,
                    s.hour
                );
                let bad = Rationale {
                    lab_rationale: wrong,
                    ..r.clone()
                };
                let (kept, counts) = ground(&record, 48, &bad);
                assert_eq!((counts.contradicts, kept.lab_rationale.as_str()), (1, ""));
            }
            // the filter's output passes it whole, even a sentence cut off before its mark
            // (a lab statement cut off in the note rationale, then the lab rationale)
            let spans = bedside::findings::sentence_spans(&r.lab_rationale);
            let first = &r.lab_rationale[spans[0].0..spans[0].1];
            let cut = Rationale {
                note_rationale: first.trim_end_matches('.').to_string(),
                lab_rationale: r.lab_rationale[spans[0].1..].to_string(),
                ..r.clone()
            };
            let (once, first) = ground(&record, 48, &cut);
            let (twice, again) = ground(&record, 48, &once);
            assert_eq!(twice, once, "{}", record.id);
            assert_eq!(
                (again.statements, again.grounded),
                (first.grounded, first.grounded),
                "{}",
                record.id
            );
            total.add(counts);
        }
        assert!(total.grounded > 80, "{total:?}");
    }

    #[test]
    fn findings_outside_the_window_are_not_cited() {
        let mut record = synthetic::cohort(1, 48, 9).remove(0);
        record.labels = Some(bedside::record::Labels {
            phenotypes: vec!["Acute and unspecified renal failure".into()],
            ..Default::default()
        });
        record.observations.retain(|o| {
            ![
                "creatinine",
                "bun",
                "potassium",
                "urine_output",
                "bicarbonate",
            ]
            .contains(&o.channel.as_str())
        });
        record
            .observations
            .push(bedside::record::Observation::new("creatinine", 50.0, 6.0));
        assert!(
            !knowledge_teacher(&record, 48)
                .lab_rationale
                .contains("Creatinine")
        );
        assert!(
            knowledge_teacher(&record, 72)
                .lab_rationale
                .contains("Creatinine was high at 6 mg/dL at hour 50")
        );
    }

    #[test]
    fn jsonl_import_names_the_line() {
        let dir = std::env::temp_dir().join(format!("bedside-teach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.jsonl");
        let good =
            serde_json::to_string(&knowledge_teacher(&synthetic::cohort(1, 48, 1)[0], 48)).unwrap();
        std::fs::write(&file, format!("{good}\n{good}\n")).unwrap();
        let e = read_jsonl(&file).unwrap_err().to_string();
        assert!(e.contains("r.jsonl:2") && e.contains("twice"), "{e}");
        std::fs::write(&file, "{\"id\": \"a\"}\n").unwrap();
        let e = format!("{:#}", read_jsonl(&file).unwrap_err());
        assert!(
            e.contains("r.jsonl:1") && e.contains("note_rationale"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod statement_tests {
    use super::*;

    #[test]
    fn a_false_statement_is_caught() {
        let record = crate::shared::synthetic::cohort(1, 48, 4).remove(0);
        let o = record
            .observations
            .iter()
            .find(|o| o.channel == "heart_rate")
            .unwrap();
        let text = format!(
            "Heart rate was high at {} /min at hour {} (normal 60-100).",
            o.value.unwrap(),
            o.hours.floor()
        );
        let parsed = lab_statements(&text);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].is_true_of(&record, 48), o.value.unwrap() > 100.0);
        let wrong = lab_statements("Heart rate was high at 250 /min at hour 3 (normal 60-100).");
        assert!(!wrong[0].is_true_of(&record, 48));
    }
}
