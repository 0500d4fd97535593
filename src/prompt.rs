//! The text templates of ClinRaGen: the prompt the encoder reads (notes first, then the lab
//! channel tokens are appended after it) and the target the decoder writes,
//! `### Disease Diagnosed: d1,d2 . ### Rationale: <note rationale> <lab rationale>`, and the
//! parser that reads a generated target back.

use crate::record::PatientRecord;

pub const NOTES_HEADER: &str = "### Clinical Notes:";
pub const LABS_HEADER: &str = "### Lab Time Series:";
pub const DIAGNOSED: &str = "### Disease Diagnosed:";
pub const RATIONALE: &str = "### Rationale:";

/// The encoder prompt for a record; `with_labs` adds the header the channel tokens follow.
pub fn clinical_prompt(record: &PatientRecord, with_notes: bool, with_labs: bool) -> String {
    let mut parts = Vec::new();
    if with_notes {
        parts.push(NOTES_HEADER.to_string());
        let notes: Vec<&str> = record.notes.iter().map(|n| n.text.trim()).filter(|t| !t.is_empty()).collect();
        parts.push(if notes.is_empty() { "none".to_string() } else { notes.join(" ") });
    }
    if with_labs {
        parts.push(LABS_HEADER.to_string());
    }
    parts.join(" ")
}

/// The decoder's target text.
pub fn target_text(diagnoses: &[&str], rationales: &[&str]) -> String {
    let rationale: Vec<&str> = rationales.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect();
    format!("{DIAGNOSED} {} . {RATIONALE} {}", diagnoses.join(","), rationale.join(" "))
        .trim_end()
        .to_string()
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
        diagnoses: list.split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).collect(),
        rationale: rationale.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        let text = target_text(&["Shock", "Septicemia (except in labor)"], &["Febrile.", "Lactate rose."]);
        assert_eq!(
            text,
            "### Disease Diagnosed: Shock,Septicemia (except in labor) . ### Rationale: Febrile. Lactate rose."
        );
        let parsed = parse_target(&text);
        assert_eq!(parsed.diagnoses, ["Shock", "Septicemia (except in labor)"]);
        assert_eq!(parsed.rationale, "Febrile. Lactate rose.");
        assert_eq!(parse_target("garbage").diagnoses, ["garbage"]);
        assert!(parse_target("").diagnoses.is_empty());
    }
}
