//! Teacher rationales turned into what bedside can teach: [`picks_from_text`] reads the note
//! sentences a teacher's rationale quotes and the channels it names with a direction the
//! record's finding has (statements that match no finding are not taught), and [`verdict`]
//! judges each sentence of a free-text rationale against the record — training and evaluation
//! only, so none of it ships in the browser package.

use bedside::findings::{Direction, Findings};
use bedside::grounded::{MAX_QUOTED_SENTENCES, Pick};
use bedside::knowledge::CHANNELS;
use bedside::record::PatientRecord;
use serde::Serialize;

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
    for (start, end) in bedside::findings::sentence_spans(lab_rationale) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use bedside::grounded::{Fact, marked_notes};
    use bedside::knowledge::channel_index;
    use bedside::record::Observation;

    fn record() -> PatientRecord {
        let note = "Admitted with fever. Sepsis from a urinary source; lactate 4.2.";
        let mut r = bedside::self_test::self_test_record();
        r.notes = vec![serde_json::from_value(serde_json::json!({ "text": note })).unwrap()];
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
}
