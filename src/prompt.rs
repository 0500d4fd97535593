//! The text templates of ClinRaGen: the prompt the encoder reads (notes first, then the lab
//! channel tokens are appended after it) and the target the decoder writes,
//! `### Disease Diagnosed: d1,d2 . ### Rationale:<note:3><lab:lactate:high>` (the rationale as
//! reserved tokens, [`crate::grounded`]), and the parser that reads a generated target back.

use crate::findings::Findings;
use crate::record::PatientRecord;

pub const NOTES_HEADER: &str = "### Clinical Notes:";
pub const LABS_HEADER: &str = "### Lab Time Series:";
pub const DIAGNOSED: &str = "### Disease Diagnosed:";
pub const RATIONALE: &str = "### Rationale:";

/// The encoder prompt for a record; `with_labs` adds the header the channel tokens follow. The
/// notes carry a marker before each quotable sentence ([`crate::grounded::marked_notes`]).
pub fn clinical_prompt(
    record: &PatientRecord,
    findings: &Findings,
    with_notes: bool,
    with_labs: bool,
) -> String {
    let mut parts = Vec::new();
    if with_notes {
        parts.push(NOTES_HEADER.to_string());
        let notes = crate::grounded::marked_notes(record, findings);
        parts.push(if notes.is_empty() {
            "none".to_string()
        } else {
            notes
        });
    }
    if with_labs {
        parts.push(LABS_HEADER.to_string());
    }
    parts.join(" ")
}

/// The decoder's target text: the diagnosis list, then the rationale's reserved tokens
/// ([`crate::grounded`]) straight after the marker, without spaces.
pub fn target_text(diagnoses: &[&str], rationale: &str) -> String {
    format!(
        "{DIAGNOSED} {} . {RATIONALE}{}",
        diagnoses.join(","),
        rationale.trim()
    )
}

/// A generated target read back: the diagnosis names (as written) and the rationale.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParsedTarget {
    pub diagnoses: Vec<String>,
    pub rationale: String,
}

/// Reads `### Disease Diagnosed: a,b . ### Rationale: text`; tolerant of a missing rationale.
pub fn parse_target(text: &str) -> ParsedTarget {
    let body = text.split_once(DIAGNOSED).map_or(text, |(_, rest)| rest);
    let (list, rationale) = match body.split_once(RATIONALE) {
        Some((list, rationale)) => (list, rationale.trim()),
        None => (body, ""),
    };
    let list = list.trim().trim_end_matches('.').trim();
    ParsedTarget {
        diagnoses: list
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
        rationale: rationale.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        let text = target_text(
            &["Shock", "Septicemia (except in labor)"],
            "<note:0><lab:lactate:high>",
        );
        assert_eq!(
            text,
            "### Disease Diagnosed: Shock,Septicemia (except in labor) . ### Rationale:<note:0><lab:lactate:high>"
        );
        let parsed = parse_target(&text);
        assert_eq!(parsed.diagnoses, ["Shock", "Septicemia (except in labor)"]);
        assert_eq!(parsed.rationale, "<note:0><lab:lactate:high>");
        assert_eq!(parse_target("garbage").diagnoses, ["garbage"]);
        assert!(parse_target("").diagnoses.is_empty());
    }
}
