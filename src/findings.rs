//! A record's findings, in one definition: what the knowledge teacher cites, what the decoder may
//! select, what `eval` checks and what the page shows all come from here, computed from exactly
//! the observations the model reads (the grid's window, valid values, known units; see
//! [`crate::record::read_observation`]).
//!
//! - A lab finding: a channel whose recorded values leave the knowledge base's normal range inside
//!   the window, with its most abnormal recorded value (the observation itself, not an hourly
//!   mean), that observation's hour and index, the normal range and the trend over the window.
//! - A note sentence: a sentence of a note, as a byte span of the note's text, numbered across
//!   the record's notes in order.

use crate::knowledge::CHANNELS;
use crate::record::{PatientRecord, read_observation};
use serde::Serialize;

/// Channels that are never stated as findings: settings and body measures, not results.
const NOT_FINDINGS: &[&str] = &["mech_vent", "capillary_refill", "height", "weight"];

/// Whether a channel's values rose or fell over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Rising,
    Falling,
}

/// The side of the normal range a finding lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    High,
    Low,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Low => "low",
        }
    }
}

/// One abnormal channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabFinding {
    /// Index into [`CHANNELS`].
    pub channel: usize,
    pub direction: Direction,
    /// The most abnormal recorded value, in the channel's unit (converted where the record gave
    /// another unit).
    pub value: f64,
    /// Its time, hours since admission.
    pub hours: f64,
    /// Its index in the record's `observations`.
    pub observation: usize,
    pub trend: Option<Trend>,
    /// How far outside the normal range, in normal half-widths from its middle.
    pub severity: f64,
}

/// One sentence of a note: `note` indexes the record's notes, `start..end` is a byte span of that
/// note's text (trimmed of surrounding white space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NoteSentence {
    pub note: usize,
    pub start: usize,
    pub end: usize,
}

/// A record's findings inside a `hours`-hour window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// At most one per channel, in channel order.
    pub labs: Vec<LabFinding>,
    /// Every sentence of every note, in order.
    pub sentences: Vec<NoteSentence>,
}

impl Findings {
    pub fn of(record: &PatientRecord, hours: usize) -> Self {
        let mut per_channel: Vec<Vec<(f64, f64, usize)>> = vec![Vec::new(); CHANNELS.len()];
        for (i, o) in record.observations.iter().enumerate() {
            if let (_, Ok(used)) = read_observation(o, hours) {
                per_channel[used.channel].push((used.hours, used.value, i));
            }
        }
        let labs = per_channel
            .iter_mut()
            .enumerate()
            .filter(|(c, _)| !NOT_FINDINGS.contains(&CHANNELS[*c].name))
            .filter_map(|(c, values)| lab_finding(c, values))
            .collect();
        let sentences = record
            .notes
            .iter()
            .enumerate()
            .flat_map(|(n, note)| {
                sentence_spans(&note.text)
                    .into_iter()
                    .filter(|&(start, end)| is_statement(&note.text[start..end]))
                    .map(move |(start, end)| NoteSentence {
                        note: n,
                        start,
                        end,
                    })
            })
            .collect();
        Self { labs, sentences }
    }

    /// The finding of channel `c`, if it has one.
    pub fn lab(&self, channel: usize) -> Option<&LabFinding> {
        self.labs.iter().find(|f| f.channel == channel)
    }
}

impl NoteSentence {
    /// The sentence's text in `record` (empty when the span does not fit, which a record the
    /// findings were computed from never gives).
    pub fn text<'a>(&self, record: &'a PatientRecord) -> &'a str {
        record
            .notes
            .get(self.note)
            .and_then(|n| n.text.get(self.start..self.end))
            .unwrap_or("")
    }
}

fn lab_finding(channel: usize, values: &mut [(f64, f64, usize)]) -> Option<LabFinding> {
    let ch = &CHANNELS[channel];
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    // the first of equally abnormal values
    let &(hours, value, observation) = values
        .iter()
        .rev()
        .max_by(|a, b| ch.deviation(a.1).abs().total_cmp(&ch.deviation(b.1).abs()))?;
    let direction = if value > ch.normal_high {
        Direction::High
    } else if value < ch.normal_low {
        Direction::Low
    } else {
        return None;
    };
    let third = (values.len() / 3).max(1);
    let mean = |s: &[(f64, f64, usize)]| s.iter().map(|v| v.1).sum::<f64>() / s.len() as f64;
    let (early, late) = (
        mean(&values[..third]),
        mean(&values[values.len() - third..]),
    );
    let half = 0.5 * (ch.normal_high - ch.normal_low);
    let trend = if values.len() < 3 {
        None
    } else if late - early > 0.5 * half {
        Some(Trend::Rising)
    } else if early - late > 0.5 * half {
        Some(Trend::Falling)
    } else {
        None
    };
    Some(LabFinding {
        channel,
        direction,
        value,
        hours,
        observation,
        trend,
        severity: ch.deviation(value).abs(),
    })
}

/// Whether a note sentence states something bedside may quote as a fact: not a heading
/// ("# Chief Complaint", "Plan:", a capitalised line without a full stop such as
/// "HISTORY OF PRESENT ILLNESS"), not a line without a letter (a date, a bullet), not chart
/// boilerplate ("No complaints.", "No Known Allergies.", "None."). Charts from EHRs are full of
/// these; none says anything about a diagnosis. Short findings ("NSTEMI.", "Cr 2.3.", "No urine
/// output.") and scripts without case are statements.
pub fn is_statement(sentence: &str) -> bool {
    let text = sentence.trim();
    let cased = text.chars().any(char::is_uppercase);
    let stops = text.ends_with(['.', '!', '?', ';']);
    let heading = text.starts_with('#')
        || text.ends_with(':')
        || (cased && !text.chars().any(char::is_lowercase) && !stops);
    let has_letter = text.chars().any(char::is_alphabetic);
    let words: String = text
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let boilerplate = [
        "no complaints",
        "no known allergies",
        "no known drug allergies",
        "nkda",
        "none",
        "nil",
    ]
    .contains(&words.trim_end_matches(['.', '!', ';']));
    !heading && has_letter && !boilerplate
}

/// Byte spans of the sentences of `text`: a sentence ends at `.`, `;`, `!` or `?` followed by
/// white space or the end, or at a line break; spans are trimmed and those of three bytes or
/// fewer dropped. A decimal point ("1.5") does not end a sentence.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    let mut push = |from: usize, to: usize| {
        let piece = &text[from..to];
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        if trimmed.len() > 3 {
            spans.push((from + lead, from + lead + trimmed.len()));
        }
    };
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | ';' | '!' | '?') && next_is_space) {
            let end = i + c.len_utf8();
            push(start, end);
            start = end;
        }
    }
    push(start, text.len());
    spans
}

/// `value` as the findings state it: whole numbers from 100 up, one decimal from 10, two below.
pub fn format_value(v: f64) -> String {
    format!("{v:.*}", decimals(v))
}

fn decimals(v: f64) -> usize {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    }
}

/// `value` printed as [`format_value`] does, with more decimals where rounding would put it on
/// or inside the normal range (134.6 low against 135-145 reads "134.6", not "135").
fn format_outside(v: f64, low: f64, high: f64, direction: Direction) -> String {
    let outside = |t: &str| {
        t.parse::<f64>().is_ok_and(|p| match direction {
            Direction::High => p > high,
            Direction::Low => p < low,
        })
    };
    (decimals(v)..=6)
        .map(|d| format!("{v:.d$}"))
        .find(|t| outside(t))
        .unwrap_or_else(|| v.to_string())
}

impl LabFinding {
    /// The finding as a sentence: "Lactate was high at 4.20 mmol/L at hour 3 (normal 0.50-2),
    /// rising over the stay." The value is printed with the decimals that keep it on its side of
    /// the range, so the statement reads back to the observation.
    pub fn statement(&self) -> String {
        let ch = &CHANNELS[self.channel];
        let trend = match self.trend {
            Some(Trend::Rising) => ", rising over the stay",
            Some(Trend::Falling) => ", falling over the stay",
            None => "",
        };
        format!(
            "{} was {} at {} {} at hour {:.0} (normal {}-{}){trend}.",
            ch.label,
            self.direction.name(),
            format_outside(self.value, ch.normal_low, ch.normal_high, self.direction),
            ch.unit,
            self.hours.floor(),
            format_value(ch.normal_low),
            format_value(ch.normal_high)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Note, Observation};

    fn record(observations: Vec<Observation>, notes: &[&str]) -> PatientRecord {
        let mut r = crate::self_test::self_test_record();
        r.observations = observations;
        r.notes = notes
            .iter()
            .map(|t| Note {
                reference: None,
                kind: String::new(),
                text: (*t).into(),
                hours: None,
            })
            .collect();
        r
    }

    fn obs(channel: &str, hours: f64, value: f64) -> Observation {
        Observation::new(channel, hours, value)
    }

    #[test]
    fn the_most_abnormal_recorded_value_inside_the_window() {
        let r = record(
            vec![
                obs("lactate", 1.0, 2.5),
                obs("lactate", 1.5, 4.25),
                obs("lactate", 60.0, 9.0),
                obs("lactate", 3.0, 3.0),
                obs("heart_rate", 2.0, 80.0),
            ],
            &[],
        );
        let f = Findings::of(&r, 48);
        assert_eq!(f.labs.len(), 1, "{f:?}");
        let lactate = &f.labs[0];
        // the recorded 4.25 (not the hour's mean 3.375), not the 9.0 outside the window
        assert_eq!(
            (lactate.value, lactate.hours, lactate.observation),
            (4.25, 1.5, 1)
        );
        assert_eq!(lactate.direction, Direction::High);
        assert!(
            lactate
                .statement()
                .starts_with("Lactate was high at 4.25 mmol/L at hour 1 "),
            "{}",
            lactate.statement()
        );
        assert!(
            Findings::of(&record(vec![obs("heart_rate", 1.0, 20.0)], &[]), 48).labs[0].direction
                == Direction::Low
        );
        assert!(Findings::of(&record(Vec::new(), &[]), 48).labs.is_empty());
        // far past the input scale's clamp the larger value is still the more abnormal one
        let far = Findings::of(
            &record(
                vec![obs("creatinine", 2.0, 4.0), obs("creatinine", 30.0, 9.0)],
                &[],
            ),
            48,
        );
        assert_eq!((far.labs[0].value, far.labs[0].hours), (9.0, 30.0));
    }

    #[test]
    fn a_value_just_outside_the_range_is_not_rounded_into_it() {
        let f = Findings::of(
            &record(
                vec![obs("sodium", 12.5, 134.6), obs("heart_rate", 1.0, 100.04)],
                &[],
            ),
            48,
        );
        let statements: Vec<String> = f.labs.iter().map(LabFinding::statement).collect();
        assert!(
            statements.iter().any(
                |s| s.starts_with("Sodium was low at 134.6 mmol/L at hour 12 (normal 135-145)")
            ),
            "{statements:?}"
        );
        assert!(
            statements
                .iter()
                .any(|s| s.starts_with("Heart rate was high at 100.04 /min")),
            "{statements:?}"
        );
    }

    #[test]
    fn headings_dates_and_bare_negations_are_not_statements() {
        for not in [
            "# Chief Complaint",
            "## Plan",
            "HISTORY OF PRESENT ILLNESS",
            "Assessment and Plan:",
            "2018-05-16",
            "- 1",
            "No complaints.",
            "NKDA",
            "No Known Allergies.",
            "None.",
        ] {
            assert!(!is_statement(not), "{not}");
        }
        for yes in [
            "NSTEMI.",
            "Cr 2.3.",
            "No urine output.",
            "no rash!",
            "CT HEAD: NO ACUTE PROCESS.",
            "患者发热三天。",
            "Troponins negative.",
            "Elevated cholesterol.",
            "No signs of bleeding.",
            "Brief Hospital Course: admitted with sepsis.",
            "Creatinine 1.5 on admission.",
            "CXR: bilateral infiltrates.",
        ] {
            assert!(is_statement(yes), "{yes}");
        }
        // a chart's note: only what it states becomes a sentence to quote
        let r = record(
            Vec::new(),
            &[
                "2018-05-16\n\n# Chief Complaint\nNo complaints.\n\n# History of Present Illness\nShe has had a cough for two days.",
            ],
        );
        let f = Findings::of(&r, 48);
        assert_eq!(
            f.sentences.iter().map(|s| s.text(&r)).collect::<Vec<_>>(),
            ["She has had a cough for two days."]
        );
    }

    #[test]
    fn sentences_are_exact_spans_and_decimals_do_not_split_them() {
        let text = "  Creatinine 1.5 on admission. Fever;\nno rash!  ok. Lactate rose";
        let spans = sentence_spans(text);
        let pieces: Vec<&str> = spans.iter().map(|(a, b)| &text[*a..*b]).collect();
        assert_eq!(
            pieces,
            [
                "Creatinine 1.5 on admission.",
                "Fever;",
                "no rash!",
                "Lactate rose"
            ]
        );
        let r = record(Vec::new(), &["Ça va. Très bien.", "Second note here."]);
        let f = Findings::of(&r, 48);
        assert_eq!(
            f.sentences.iter().map(|s| s.text(&r)).collect::<Vec<_>>(),
            ["Ça va.", "Très bien.", "Second note here."]
        );
        assert_eq!(f.sentences[2].note, 1);
    }
}
