//! Clinical notes as cohort readers keep them: a discharge summary names the discharge diagnoses,
//! which are the labels, so what a model may read of it is cut out here — MIMIC-III keeps the
//! "Brief Hospital Course"; MIMIC-IV strips the sections that list diagnoses (by default).

/// The "Brief Hospital Course" section of a discharge summary, up to the next section header.
pub fn brief_hospital_course(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("brief hospital course")?;
    let after = &text[start..];
    let body = after.split_once(':').map_or("", |(_, rest)| rest);
    let mut kept = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        let is_header = t.ends_with(':')
            && t.split_whitespace().count() <= 6
            && t.chars().next().is_some_and(char::is_uppercase);
        if is_header {
            break;
        }
        if !t.is_empty() {
            kept.push(t);
        }
    }
    let section = kept.join(" ");
    (!section.is_empty()).then_some(section)
}

/// What a header line says before its colon: a short, capitalised phrase ("Discharge
/// Diagnosis:", "DISCHARGE DIAGNOSES: sepsis"); `None` for any other line.
fn header(line: &str) -> Option<&str> {
    let (head, _) = line.trim().split_once(':')?;
    let words = head.split_whitespace().count();
    ((1..=6).contains(&words) && head.chars().next().is_some_and(char::is_uppercase))
        .then_some(head)
}

/// Whether a header opens a list of diagnoses or codes, which are the labels.
fn names_diagnoses(head: &str) -> bool {
    let lower = head.to_ascii_lowercase();
    (lower.contains("diagnos") && !lower.contains("diagnostic")) || lower.contains("icd")
}

/// The sections of a MIMIC-IV discharge summary that may follow a diagnosis list without a blank
/// line before them.
const SECTIONS: &[&str] = &[
    "allergies",
    "attending",
    "brief hospital course",
    "chief complaint",
    "discharge condition",
    "discharge disposition",
    "discharge instructions",
    "discharge medications",
    "facility",
    "followup instructions",
    "history of present illness",
    "major surgical or invasive procedure",
    "medications on admission",
    "past medical history",
    "pertinent results",
    "physical exam",
];

/// Whether a header inside a diagnosis section is one of its parts ("Primary:", "Secondary
/// diagnoses:", "Active issues:"), so that the section goes on.
fn part_of_a_diagnosis_list(head: &str) -> bool {
    let lower = head.to_ascii_lowercase();
    [
        "primary",
        "secondary",
        "active",
        "chronic",
        "resolved",
        "other",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// `text` without its sections that list diagnoses or codes, and how many such sections it cut.
/// A section opens with a header naming diagnoses or ICD codes and runs through its "Primary:" /
/// "Secondary:" parts and any line that looks like a header ("Sepsis: due to UTI"), up to a
/// header after a blank line or a known section's header ([`SECTIONS`]).
pub fn without_diagnoses(text: &str) -> (String, usize) {
    let (mut kept, mut cut, mut stripping, mut blank_before) = (Vec::new(), 0, false, true);
    for line in text.lines() {
        let head = header(line);
        let ends = head.is_some_and(|h| {
            (blank_before && !part_of_a_diagnosis_list(h))
                || SECTIONS.contains(&h.trim().to_ascii_lowercase().as_str())
        });
        match head {
            Some(h) if names_diagnoses(h) => {
                cut += usize::from(!stripping);
                stripping = true;
            }
            Some(_) if stripping && !ends => {}
            Some(_) => {
                stripping = false;
                kept.push(line);
            }
            None if !stripping => kept.push(line),
            None => {}
        }
        blank_before = line.trim().is_empty();
    }
    (kept.join("\n"), cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_of_a_discharge_summary() {
        let text = "Service: MEDICINE\n\nBrief Hospital Course:\n72M with CHF.\nDiuresed.\n\nDischarge Medications:\n1. Lasix";
        assert_eq!(
            brief_hospital_course(text).as_deref(),
            Some("72M with CHF. Diuresed.")
        );
        assert_eq!(brief_hospital_course("no such section"), None);
        assert_eq!(
            brief_hospital_course("BRIEF HOSPITAL COURSE: Stable course.\n"),
            Some("Stable course.".into())
        );
    }

    /// A MIMIC-IV discharge summary's layout: the diagnosis list goes with its parts, the
    /// sections around it stay, and an inline header is a header too.
    #[test]
    fn diagnosis_sections_are_cut_and_counted() {
        let text = "Chief Complaint:\nfever\n\nBrief Hospital Course:\nTreated for pneumonia.\n\n\
                    Discharge Diagnosis:\nPrimary:\n- Septic shock\nSepsis: due to UTI\nSecondary:\n- CKD stage 3\n\n\
                    Discharge Condition:\nStable.\nICD-10 codes: A41.9, N18.3\nFollowup Instructions:\n___";
        let (kept, cut) = without_diagnoses(text);
        assert_eq!(cut, 2, "{kept}");
        for gone in [
            "Septic shock",
            "due to UTI",
            "CKD stage 3",
            "A41.9",
            "Discharge Diagnosis",
            "Primary:",
        ] {
            assert!(!kept.contains(gone), "{gone} left in: {kept}");
        }
        for stays in [
            "fever",
            "Treated for pneumonia.",
            "Discharge Condition:",
            "Stable.",
            "Followup Instructions:",
        ] {
            assert!(kept.contains(stays), "{stays} cut from: {kept}");
        }
        assert_eq!(
            without_diagnoses("No sections here.\nAt all."),
            ("No sections here.\nAt all.".into(), 0)
        );
        assert_eq!(
            without_diagnoses("DISCHARGE DIAGNOSES: sepsis\nurosepsis\n\nPlan: home").0,
            "Plan: home",
            "an inline header opens a section too; a blank line and a header end it"
        );
    }
}
