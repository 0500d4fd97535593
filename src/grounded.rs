//! Grounded rationales: the decoder chooses *which* of a record's findings support its
//! diagnoses, the record states them. After `### Rationale:` the decoder writes only reserved
//! tokens — one per lab finding (`<lab:lactate:high>`) and one per quotable note sentence
//! (`<note:3>`, a marker the prompt puts before that sentence) — and a constraint masks every
//! token the record does not have and every one already written. The library renders each token
//! into prose from [`Findings`]: the recorded value, hour, unit, normal range and trend, or the
//! note sentence verbatim. No number and no quote in a rationale comes from the decoder, so every
//! statement is true of the record by construction.
//!
//! Teacher rationales (the built-in knowledge teacher's or free text from a language model) are
//! turned into these tokens by [`picks_from_text`]: a note sentence the rationale quotes, and a
//! channel it names with a direction the record's finding has. Statements that match no finding
//! are not taught.

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

const HIGH_WORDS: &[&str] = &["high", "elevated", "raised", "increased", "rising", "above"];
const LOW_WORDS: &[&str] = &[
    "low",
    "decreased",
    "reduced",
    "falling",
    "below",
    "depressed",
];

/// The picks a teacher rationale makes, in the order it states them: every note sentence of the
/// record it quotes (its words up to the final punctuation, verbatim), and every channel it names
/// in a sentence with a direction word, where the record has a finding of that channel in that
/// direction. Also returns how many channel statements matched no finding (not taught).
pub fn picks_from_text(
    record: &PatientRecord,
    findings: &Findings,
    note_rationale: &str,
    lab_rationale: &str,
) -> (Vec<Pick>, usize) {
    let mut picks: Vec<(usize, Pick)> = Vec::new();
    for (k, s) in findings
        .sentences
        .iter()
        .enumerate()
        .take(MAX_QUOTED_SENTENCES)
    {
        // the whole sentence; or its words without the final mark, but then not followed by
        // more words ("Fever" is not quoted by "Fever and chills")
        let sentence = s.text(record);
        let words = sentence.trim_end_matches(['.', ';', '!', '?']);
        let found = note_rationale.find(sentence).or_else(|| {
            note_rationale
                .match_indices(words)
                .map(|(at, _)| at)
                .find(|&at| {
                    let next = note_rationale[at + words.len()..].chars().next();
                    next.is_none_or(|c| !c.is_alphanumeric() && !c.is_whitespace())
                })
        });
        if let (true, Some(at)) = (words.len() > 3, found) {
            picks.push((at, Pick::Note(k)));
        }
    }
    let offset = note_rationale.len() + 1;
    let mut unmatched = 0;
    for (start, end) in crate::findings::sentence_spans(lab_rationale) {
        let sentence = lab_rationale[start..end].to_lowercase();
        let words: Vec<&str> = sentence.split(|c: char| !c.is_alphanumeric()).collect();
        let high = HIGH_WORDS.iter().any(|w| words.contains(w));
        let low = LOW_WORDS.iter().any(|w| words.contains(w));
        for (c, at) in named_channels(&sentence) {
            match findings.lab(c) {
                Some(f)
                    if (f.direction == Direction::High && high)
                        || (f.direction == Direction::Low && low) =>
                {
                    picks.push((offset + start + at, Pick::Lab(c, f.direction)));
                }
                _ => unmatched += 1,
            }
        }
    }
    picks.sort_by_key(|(at, _)| *at);
    let mut out: Vec<Pick> = Vec::new();
    for (_, p) in picks {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    (out, unmatched)
}

/// The channels a lower-cased sentence names by their knowledge-base label, with where: a longer
/// label that contains a shorter one ("Arterial oxygen saturation") names only its own channel.
fn named_channels(sentence: &str) -> Vec<(usize, usize)> {
    CHANNELS
        .iter()
        .enumerate()
        .filter_map(|(c, channel)| {
            let label = channel.label.to_lowercase();
            let at = find_word(sentence, &label)?;
            let shadowed = CHANNELS.iter().any(|o| {
                let other = o.label.to_lowercase();
                other.len() > label.len() && other.contains(&label) && sentence.contains(&other)
            });
            (!shadowed).then_some((c, at))
        })
        .collect()
}

/// What the grounding check makes of one statement (a sentence) of a teacher rationale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It quotes a note sentence of the record, or states lab findings the record has: each
    /// channel it names is abnormal in the direction it says, and every number in it is one of
    /// those findings' numbers (value, hour, normal range, unit).
    Grounded,
    /// It names a channel in a direction the record's findings do not have (or a channel without
    /// a finding), or gives a number none of the named findings has: an invented value.
    Contradicts,
    /// It states nothing the check can tie to the record: no quote, no channel with a direction
    /// (a restated diagnosis, a finding outside the knowledge base's channels).
    Unverifiable,
}

/// The grounding check of one teacher statement against the record's findings — the filter that
/// keeps a language model's invented findings out of what a student is taught. Conservative: a
/// statement is kept only when every claim in it checks out.
///
/// - Note sentences it quotes are grounded; the rest of the statement is then checked as well.
/// - The statement is cut into clauses (at commas, semicolons, "and", "but", "while", "with").
///   The direction words of a clause are the claim of each channel it names by its
///   knowledge-base label, before or after the name ("elevated lactate", "lactate was high");
///   a clause naming channels but no direction takes the next clause's ("sodium and potassium
///   were low"). The record's finding must lie in that direction; the first number after the
///   channel's name in its clause, if any, must be the finding's value (within 1 %), and every
///   number in the statement one of the claimed findings' own (value, hour, range, unit).
/// - A negation ("not elevated"), or a number next to a channel of which nothing is claimed,
///   makes the statement unverifiable.
pub fn verdict(record: &PatientRecord, findings: &Findings, sentence: &str) -> Verdict {
    let (picks, _) = picks_from_text(record, findings, sentence, "");
    let mut rest = sentence.to_string();
    for pick in &picks {
        if let Some(sentence) = match pick {
            Pick::Note(k) => findings.sentences.get(*k),
            Pick::Lab(..) => None,
        } {
            let quoted = sentence.text(record);
            let words = quoted.trim_end_matches(['.', ';', '!', '?']);
            rest = rest.replacen(quoted, " ", 1).replacen(words, " ", 1);
        }
    }
    let claims = lab_verdict(findings, &rest);
    // a quote with nothing else in the statement is grounded; a quote beside a lab claim is
    // only as good as the claim
    if !picks.is_empty()
        && claims == Verdict::Unverifiable
        && named_channels(&rest.to_lowercase()).is_empty()
    {
        return Verdict::Grounded;
    }
    claims
}

const NEGATIONS: &[&str] = &["not", "no", "without", "never", "denies", "denied"];
const CLAUSE_BREAKS: &[&str] = &[" and ", " but ", " while ", " whereas ", " with "];

/// A clause of a statement: its text, the channels it names (with where), and whether it has a
/// high and a low direction word.
type Clause<'a> = (&'a str, Vec<(usize, usize)>, bool, bool);

/// [`verdict`] on a statement's lab claims.
fn lab_verdict(findings: &Findings, sentence: &str) -> Verdict {
    let lower = sentence.to_lowercase();
    if named_channels(&lower).is_empty() {
        return Verdict::Unverifiable;
    }
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .map(str::to_string)
            .collect()
    };
    if words(&lower)
        .iter()
        .any(|w| NEGATIONS.contains(&w.as_str()))
    {
        return Verdict::Unverifiable;
    }
    // clauses, each with the channels it names and its direction words
    let mut text = lower.replace([',', ';'], "|");
    for b in CLAUSE_BREAKS {
        text = text.replace(b, "|");
    }
    let clauses: Vec<Clause> = text
        .split('|')
        .map(|clause| {
            let w = words(clause);
            let high = HIGH_WORDS.iter().any(|h| w.iter().any(|x| x == h));
            let low = LOW_WORDS.iter().any(|l| w.iter().any(|x| x == l));
            (clause, named_channels(clause), high, low)
        })
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 0.01 * b.abs().max(1.0);
    let (mut allowed, mut claimed, mut unclaimed) = (Vec::new(), false, false);
    for (i, (clause, named, high, low)) in clauses.iter().enumerate() {
        let (high, low) = if *high || *low {
            (*high, *low)
        } else {
            match clauses[i + 1..].iter().find(|(_, _, h, l)| *h || *l) {
                Some(&(_, _, h, l)) => (h, l),
                None => {
                    unclaimed |= !named.is_empty();
                    continue; // named, but nothing claimed of it
                }
            }
        };
        for &(c, at) in named {
            match findings.lab(c) {
                Some(f)
                    if (f.direction == Direction::High && high)
                        || (f.direction == Direction::Low && low) =>
                {
                    let after = clause.get(at + CHANNELS[c].label.len()..).unwrap_or("");
                    if numbers(after).first().is_some_and(|v| !close(*v, f.value)) {
                        return Verdict::Contradicts;
                    }
                    allowed.extend(numbers(&f.statement()));
                    claimed = true;
                }
                _ => return Verdict::Contradicts,
            }
        }
    }
    let invented = numbers(&lower)
        .iter()
        .any(|n| !allowed.iter().any(|a| close(*n, *a)));
    match (claimed, invented, unclaimed) {
        (_, true, true) => Verdict::Unverifiable,
        (_, true, false) => Verdict::Contradicts,
        (true, false, _) => Verdict::Grounded,
        (false, false, _) => Verdict::Unverifiable,
    }
}

/// The numbers written in `text` as numbers, not as parts of words ("CO2", "B12" give none).
fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_digit() && prev.is_none_or(|p| !p.is_alphanumeric() && p != '.') {
            let mut end = i + 1;
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_ascii_digit() || d == '.') {
                    break;
                }
                end = j + 1;
                chars.next();
            }
            if let Ok(v) = text[i..end].trim_end_matches('.').parse() {
                out.push(v);
            }
            prev = text[..end].chars().next_back();
        } else {
            prev = Some(c);
        }
    }
    out
}

/// Where `needle` occurs in `haystack` as whole words ("troponin i" is not in "troponin increased").
fn find_word(haystack: &str, needle: &str) -> Option<usize> {
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    haystack
        .match_indices(needle)
        .map(|(at, _)| at)
        .find(|&at| {
            boundary(haystack[..at].chars().next_back())
                && boundary(haystack[at + needle.len()..].chars().next())
        })
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
    fn teacher_text_becomes_picks_of_real_findings() {
        let r = record();
        let f = Findings::of(&r, 48);
        let lactate = channel_index("lactate").unwrap();
        let sodium = channel_index("sodium").unwrap();
        let (picks, unmatched) = picks_from_text(
            &r,
            &f,
            "The notes report: Sepsis from a urinary source. This supports Sepsis.",
            "Lactate was high at 9 mmol/L. Sodium was high at 150. Lactate is elevated.",
        );
        // the quote, lactate once (its value is the record's, not the teacher's), sodium is normal
        assert_eq!(picks, [Pick::Note(1), Pick::Lab(lactate, Direction::High)]);
        // a sentence is quoted whole: "Admitted with fever." is not in "...fever and chills"
        let (longer, _) = picks_from_text(&r, &f, "Admitted with fever and chills.", "");
        assert!(longer.is_empty(), "{longer:?}");
        // a reserved token typed into a note is not one: the prompt breaks it up
        let mut typed = r.clone();
        typed.notes[0].text = "Typed <note:7> and <lab:lactate:high> here.".into();
        let marked = marked_notes(&typed, &Findings::of(&typed, 48));
        assert_eq!(
            marked,
            "<note:0>Typed < note:7> and < lab:lactate:high> here."
        );
        assert_eq!(unmatched, 1);
        assert!(f.lab(sodium).is_none());
        let facts: Vec<Fact> = picks.iter().filter_map(|p| Fact::of(*p, &f)).collect();
        assert_eq!(facts[1].render(&r), f.lab(lactate).unwrap().statement());
        assert!(facts[1].render(&r).contains("4.20 mmol/L at hour 1"));
        assert_eq!(
            facts[0].render(&r),
            "Note 1: \u{201c}Sepsis from a urinary source;\u{201d}"
        );
    }

    #[test]
    fn the_grounding_check_keeps_true_statements_and_catches_invented_ones() {
        let r = record();
        let f = Findings::of(&r, 48);
        let lactate = f.lab(channel_index("lactate").unwrap()).unwrap();
        let check = |s: &str| verdict(&r, &f, s);
        // what the record states, in the findings' own words and in a model's
        assert_eq!(check(&lactate.statement()), Verdict::Grounded);
        assert_eq!(check("Lactate was elevated."), Verdict::Grounded);
        assert_eq!(check("Lactate 4.2 mmol/L, high."), Verdict::Grounded);
        assert_eq!(check("Sepsis from a urinary source."), Verdict::Grounded);
        // an invented value, hour, direction or finding
        assert_eq!(check("Lactate was high at 9 mmol/L."), Verdict::Contradicts);
        assert_eq!(
            check("Lactate was high at 4.2 mmol/L at hour 30."),
            Verdict::Contradicts
        );
        assert_eq!(check("Lactate was low."), Verdict::Contradicts);
        assert_eq!(
            check("Sodium was high at 150 mmol/L."),
            Verdict::Contradicts
        );
        // statements the check cannot tie to the record
        assert_eq!(
            check("The patient has leukocytosis."),
            Verdict::Unverifiable
        );
        assert_eq!(check("This supports Sepsis."), Verdict::Unverifiable);
        assert_eq!(check("Sodium was measured."), Verdict::Unverifiable);
        assert_eq!(check("Lactate was not elevated."), Verdict::Unverifiable);
        // each claim is checked: a quote does not carry an invented value, the value slot is
        // the finding's value (not its hour or range), directions belong to their channel
        assert_eq!(
            check("Sepsis from a urinary source; lactate was high at 9 mmol/L."),
            Verdict::Contradicts
        );
        assert_eq!(
            check("Lactate was high at 2 mmol/L (normal 0.50-2)."),
            Verdict::Contradicts
        );
        assert_eq!(
            check("White blood cells were high and lactate was low."),
            Verdict::Contradicts
        );
        assert_eq!(
            check("Lactate and white blood cells were elevated."),
            Verdict::Grounded
        );
        assert_eq!(
            check("Lactate was high at 4.2 while sodium stayed at 140."),
            Verdict::Unverifiable,
            "a number of an unclaimed channel is not checked, so not kept"
        );
        // a direction before the name is that channel's
        assert_eq!(check("Elevated lactate at 4.2 mmol/L."), Verdict::Grounded);
        assert_eq!(check("Lactate was high, low sodium."), Verdict::Contradicts);
        assert_eq!(check("Elevated lactate at 9 mmol/L."), Verdict::Contradicts);
        // a negated claim is not made good by a quote beside it
        assert_eq!(
            check("Sepsis from a urinary source, and lactate was not elevated."),
            Verdict::Unverifiable
        );
    }

    #[test]
    fn numbers_are_read_as_numbers_not_parts_of_words() {
        assert_eq!(
            numbers("PaCO2 was 53.9 at hour 37 (normal 35-45). B12 0.59 1."),
            [53.9, 37.0, 35.0, 45.0, 0.59, 1.0]
        );
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
