//! Grounded rationales: the decoder chooses *which* of a record's findings support its
//! diagnoses, the record states them. After `### Rationale:` the decoder writes only reserved
//! tokens — one per lab finding (`<lab:lactate:high>`) and one per quotable note sentence
//! (`<note:3>`, a marker the prompt puts before that sentence) — and a constraint masks every
//! token the record does not have and every one already written. The library renders each token
//! into prose from [`Findings`]: the recorded value, hour, unit, normal range and trend, or the
//! note sentence verbatim. No number and no quote in a rationale comes from the decoder, so every
//! statement is true of the record by construction.
//!
//! Here: the vocabulary (the reserved tokens and their ids), the prompt's sentence markers and
//! the rendering of each pick as evidence. Teacher rationales are turned into these tokens, and
//! free-text rationales judged, by `bedside-train` (`teachers::grounding`), not in the library.

use crate::findings::{Direction, Findings, LabFinding, NoteSentence};
use crate::knowledge::{CHANNELS, PHENOTYPES, channel_index};
use crate::record::PatientRecord;
use crate::tokenizer::TextTokenizer;
use serde::Serialize;

/// Note sentences that get a marker in the prompt (the first ones of the record, in order).
pub const MAX_QUOTED_SENTENCES: usize = 32;

/// One thing a rationale can state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A channel's finding (channel index, direction).
    Lab(usize, Direction),
    /// A note sentence, by its number among the record's sentences.
    Note(usize),
}

impl Pick {
    pub fn token(self) -> String {
        match self {
            Self::Lab(c, d) => format!("<lab:{}:{}>", CHANNELS[c].name, d.name()),
            Self::Note(k) => format!("<note:{k}>"),
        }
    }
}

/// Every reserved token, in a fixed order: tokenizer training adds them all.
pub fn reserved_tokens() -> Vec<String> {
    all_picks().map(Pick::token).collect()
}

/// Every pick a rationale can make, in the fixed order of the reserved tokens.
fn all_picks() -> impl Iterator<Item = Pick> {
    let labs = (0..CHANNELS.len())
        .flat_map(|c| [Pick::Lab(c, Direction::High), Pick::Lab(c, Direction::Low)]);
    labs.chain((0..MAX_QUOTED_SENTENCES).map(Pick::Note))
}

/// The reserved tokens' ids under a tokenizer.
#[derive(Debug, Clone)]
pub struct RationaleVocab {
    ids: Vec<(u32, Pick)>,
}

impl RationaleVocab {
    /// `None` when the tokenizer lacks any reserved token (a bundle trained before grounded
    /// rationales): such a bundle writes diagnoses without a rationale.
    pub fn new(tokenizer: &TextTokenizer) -> Option<Self> {
        let ids = all_picks()
            .map(|p| tokenizer.token_id(&p.token()).map(|id| (id, p)))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { ids })
    }

    pub fn pick(&self, id: u32) -> Option<Pick> {
        self.ids.iter().find(|(i, _)| *i == id).map(|(_, p)| *p)
    }

    pub fn id(&self, pick: Pick) -> Option<u32> {
        self.ids.iter().find(|(_, p)| *p == pick).map(|(i, _)| *i)
    }

    /// What a record's rationale may state: its lab findings, and the note sentences whose
    /// marker is in `prompt` (the encoder's input ids, after truncation: a sentence the model
    /// cannot see cannot be quoted).
    pub fn choices(&self, findings: &Findings, prompt: &[u32]) -> Vec<u32> {
        let labs = findings
            .labs
            .iter()
            .filter_map(|f| self.id(Pick::Lab(f.channel, f.direction)));
        let notes = (0..findings.sentences.len().min(MAX_QUOTED_SENTENCES))
            .filter_map(|k| self.id(Pick::Note(k)))
            .filter(|id| prompt.contains(id));
        labs.chain(notes).collect()
    }

    /// The tokens allowed after `written` (the rationale's tokens so far): each choice once, or
    /// the end.
    pub fn allowed(choices: &[u32], written: &[u32], eos: u32) -> Vec<u32> {
        choices
            .iter()
            .copied()
            .filter(|c| !written.contains(c))
            .chain(std::iter::once(eos))
            .collect()
    }

    /// The teacher's picks as target text (reserved tokens, no spaces), keeping only `choices`.
    pub fn target(&self, picks: &[Pick], choices: &[u32]) -> String {
        picks
            .iter()
            .filter(|p| self.id(**p).is_some_and(|id| choices.contains(&id)))
            .map(|p| p.token())
            .collect()
    }
}

/// The notes of a record as the prompt gives them: each note's text with a marker before each
/// of the first [`MAX_QUOTED_SENTENCES`] sentences; notes separated by a space.
pub fn marked_notes(record: &PatientRecord, findings: &Findings) -> String {
    let mut out = String::new();
    for (n, note) in record.notes.iter().enumerate() {
        let mut text = String::new();
        let mut at = 0;
        for (k, s) in findings
            .sentences
            .iter()
            .enumerate()
            .take(MAX_QUOTED_SENTENCES)
            .filter(|(_, s)| s.note == n)
        {
            text.push_str(&unreserved(note.text.get(at..s.start).unwrap_or("")));
            text.push_str(&Pick::Note(k).token());
            at = s.start;
        }
        text.push_str(&unreserved(note.text.get(at..).unwrap_or("")));
        let text = text.trim();
        if !text.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(text);
        }
    }
    out
}

/// Note text with any reserved token it happens to contain broken up ("<note:3>" typed into a
/// note reads "< note:3>"), so that only the markers bedside puts in are reserved ids.
fn unreserved(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("<note:") || text.contains("<lab:") {
        text.replace("<note:", "< note:")
            .replace("<lab:", "< lab:")
            .into()
    } else {
        text.into()
    }
}

/// One fact supporting a diagnosis. `source` is "observation" (a real observation of the record:
/// `observation` indexes its `observations`; channel, direction, value in the channel's unit,
/// hours, normal range, trend; `text` the sentence the rationale states) or "note" (`note`
/// indexes its `notes`; `start..end` is the quoted span in UTF-16 code units, as JavaScript's
/// `String.prototype.slice` takes it; `text` is the quote).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The diagnosis it supports (a phenotype name); `None` for a fact the rationale states that
    /// the knowledge base links to none of the written diagnoses.
    pub diagnosis: Option<&'static str>,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<crate::findings::Trend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The source resource of the observation or note (`Observation/123`), where the record
    /// names one (a FHIR chart does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A pick resolved against the record's findings.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    Lab(&'a LabFinding),
    Note(&'a NoteSentence),
}

impl<'a> Fact<'a> {
    /// The finding behind `pick`; `None` when the record has no such finding (never for a pick
    /// the constraint allowed).
    pub fn of(pick: Pick, findings: &'a Findings) -> Option<Self> {
        match pick {
            Pick::Lab(c, d) => findings.lab(c).filter(|f| f.direction == d).map(Fact::Lab),
            Pick::Note(k) => findings.sentences.get(k).map(Fact::Note),
        }
    }

    /// The fact as prose, from the record alone.
    pub fn render(self, record: &PatientRecord) -> String {
        match self {
            Self::Lab(f) => f.statement(),
            Self::Note(s) => format!("Note {}: \u{201c}{}\u{201d}", s.note + 1, s.text(record)),
        }
    }

    /// Whether the knowledge base links this fact to phenotype `p`: the channel is one of the
    /// phenotype's channels, or the sentence holds one of its keywords.
    pub fn supports(self, record: &PatientRecord, p: &crate::knowledge::Phenotype) -> bool {
        match self {
            Self::Lab(f) => p
                .channels
                .iter()
                .any(|c| channel_index(c) == Some(f.channel)),
            Self::Note(s) => {
                let lower = s.text(record).to_lowercase();
                p.keywords.iter().any(|k| lower.contains(k))
            }
        }
    }

    /// The fact as evidence, rendered from the record, filed under `diagnosis`.
    pub fn evidence(self, record: &PatientRecord, diagnosis: Option<&'static str>) -> Evidence {
        let mut e = Evidence {
            diagnosis,
            source: "observation",
            channel: None,
            label: None,
            direction: None,
            value: None,
            unit: None,
            hours: None,
            normal: None,
            trend: None,
            observation: None,
            note: None,
            start: None,
            end: None,
            text: None,
            reference: None,
        };
        match self {
            Self::Lab(f) => {
                let ch = &CHANNELS[f.channel];
                e.channel = Some(ch.name);
                e.label = Some(ch.label);
                e.direction = Some(f.direction);
                e.value = Some(f.value);
                e.unit = Some(ch.unit);
                e.hours = Some(f.hours);
                e.normal = Some([ch.normal_low, ch.normal_high]);
                e.trend = f.trend;
                e.observation = Some(f.observation);
                e.reference = record
                    .observations
                    .get(f.observation)
                    .and_then(|o| o.reference.clone());
                e.text = Some(f.statement());
            }
            Self::Note(s) => {
                let text = record.notes.get(s.note).map_or("", |n| n.text.as_str());
                let utf16 = |byte: usize| text.get(..byte).map_or(0, |t| t.encode_utf16().count());
                e.source = "note";
                e.note = Some(s.note);
                e.reference = record.notes.get(s.note).and_then(|n| n.reference.clone());
                e.start = Some(utf16(s.start));
                e.end = Some(utf16(s.end));
                e.text = Some(s.text(record).to_string());
            }
        }
        e
    }
}

/// The evidence for `diagnoses` among `facts`: one entry per (diagnosis, fact) pair the knowledge
/// base links, in the order of the diagnoses and then of the facts; a fact linked to none of them
/// gets one entry without a diagnosis.
pub fn evidence(record: &PatientRecord, facts: &[Fact], diagnoses: &[&str]) -> Vec<Evidence> {
    let phenotypes: Vec<&crate::knowledge::Phenotype> = diagnoses
        .iter()
        .filter_map(|d| PHENOTYPES.iter().find(|p| p.name == *d))
        .collect();
    let mut out = Vec::new();
    for p in &phenotypes {
        out.extend(
            facts
                .iter()
                .filter(|f| f.supports(record, p))
                .map(|f| f.evidence(record, Some(p.name))),
        );
    }
    out.extend(
        facts
            .iter()
            .filter(|f| !phenotypes.iter().any(|p| f.supports(record, p)))
            .map(|f| f.evidence(record, None)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Note, Observation};

    fn record() -> PatientRecord {
        let mut r = crate::self_test::self_test_record();
        r.notes = vec![Note {
            reference: None,
            kind: String::new(),
            text: "Admitted with fever. Sepsis from a urinary source; lactate 4.2.".into(),
            hours: None,
        }];
        r.observations.push(Observation::new("sodium", 2.0, 140.0));
        r
    }

    #[test]
    fn evidence_names_the_observation_and_the_utf16_span() {
        let mut r = record();
        r.notes[0].text = format!("Pt \u{1F600} ok. {}", r.notes[0].text);
        let f = Findings::of(&r, 48);
        let facts: Vec<Fact> = [
            Pick::Note(1),
            Pick::Lab(channel_index("lactate").unwrap(), Direction::High),
        ]
        .iter()
        .filter_map(|p| Fact::of(*p, &f))
        .collect();
        let e = evidence(&r, &facts, &["Septicemia (except in labor)", "Shock"]);
        let lab = e.iter().find(|e| e.source == "observation").unwrap();
        let o = &r.observations[lab.observation.unwrap()];
        assert_eq!(
            (o.channel.as_str(), o.value, Some(o.hours)),
            ("lactate", lab.value, lab.hours)
        );
        let note = e.iter().find(|e| e.source == "note").unwrap();
        // "Pt 😀 ok. " is ten UTF-16 units (the emoji two) and twelve bytes
        assert_eq!(
            (note.start, note.end),
            (Some(10), Some(10 + "Admitted with fever.".len()))
        );
        // lactate supports both written groups; the sentence names neither, so it stands alone
        let linked: Vec<_> = e.iter().map(|e| (e.source, e.diagnosis)).collect();
        assert_eq!(
            linked,
            [
                ("observation", Some("Septicemia (except in labor)")),
                ("observation", Some("Shock")),
                ("note", None)
            ]
        );
    }

    #[test]
    fn markers_precede_sentences_and_stop_at_the_limit() {
        let mut r = record();
        r.notes.push(Note {
            reference: None,
            kind: String::new(),
            text: (0..40)
                .map(|i| format!("Sentence number {i}."))
                .collect::<Vec<_>>()
                .join(" "),
            hours: None,
        });
        let f = Findings::of(&r, 48);
        let marked = marked_notes(&r, &f);
        assert!(
            marked.starts_with("<note:0>Admitted with fever. <note:1>Sepsis"),
            "{marked}"
        );
        assert!(marked.contains("<note:31>Sentence number 28.") && !marked.contains("<note:32>"));
        assert!(marked.ends_with("Sentence number 39."));
    }
}
