//! Whether the lab evidence the model cites for a diagnosis is true, scored against what the
//! model did not learn from. Faithfulness (`eval`'s other rationale figures) holds by
//! construction — the record renders every value — so it checks the renderer; what the model
//! decides is *which* finding it cites for *which* diagnosis, and that is scored here:
//!
//! - on synthetic records, against the generator's truth ([`crate::synthetic::truth`]): the
//!   phenotypes the patient has and the channels each shifted, in which direction;
//! - on any labelled cohort, real ones included, against clinical criteria that do not come from
//!   bedside's knowledge base: KDIGO's creatinine rule for acute kidney failure, and a lactate
//!   above 2 mmol/L (Sepsis-3's septic-shock threshold) for shock and sepsis.

use bedside::PatientRecord;
use bedside::engine::Explanation;
use bedside::findings::{Direction, Findings};
use bedside::knowledge::{PHENOTYPES, channel_index};
use bedside::record::read_observation;
use serde::Serialize;

use crate::metrics::Share;
use crate::synthetic::Truth;

/// A criterion a finding can be checked against, from outside the knowledge base.
pub struct Criterion {
    pub name: &'static str,
    /// The phenotype groups (names) whose lab evidence it checks.
    pub phenotypes: &'static [&'static str],
    /// The cited finding it speaks to.
    pub channel: &'static str,
    pub side: Direction,
    /// Whether the record's window (`hours`) meets it.
    pub holds: fn(&PatientRecord, usize) -> bool,
}

pub const CRITERIA: &[Criterion] = &[
    Criterion {
        name: "KDIGO creatinine: a rise of at least 0.3 mg/dL within 48 h, or to 1.5 times the \
               window's first value",
        phenotypes: &["Acute and unspecified renal failure"],
        channel: "creatinine",
        side: Direction::High,
        holds: kdigo_creatinine,
    },
    Criterion {
        name: "lactate above 2 mmol/L",
        phenotypes: &["Shock", "Septicemia (except in labor)"],
        channel: "lactate",
        side: Direction::High,
        holds: lactate_above_2,
    },
];

/// `(hours, value)` of a channel's usable observations in the window, in time order.
fn series(record: &PatientRecord, hours: usize, channel: &str) -> Vec<(f64, f64)> {
    let Some(c) = channel_index(channel) else {
        return Vec::new();
    };
    let mut points: Vec<(f64, f64)> = record
        .observations
        .iter()
        .filter_map(|o| read_observation(o, hours).1.ok())
        .filter(|u| u.channel == c)
        .map(|u| (u.hours, u.value))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// KDIGO 2012 stage 1 by creatinine, within the record's window (no value from before the
/// admission, so the window's first value is the baseline).
pub fn kdigo_creatinine(record: &PatientRecord, hours: usize) -> bool {
    let points = series(record, hours, "creatinine");
    let Some(&(_, first)) = points.first() else {
        return false;
    };
    // values come to two decimals: 1.5 × 0.4 must count as 0.6
    const ROUNDING: f64 = 1e-9;
    points.iter().any(|&(_, v)| v >= 1.5 * first - ROUNDING)
        || points.iter().enumerate().any(|(i, &(t0, v0))| {
            points[i + 1..]
                .iter()
                .any(|&(t1, v1)| t1 - t0 <= 48.0 && v1 - v0 >= 0.3 - ROUNDING)
        })
}

pub fn lactate_above_2(record: &PatientRecord, hours: usize) -> bool {
    series(record, hours, "lactate")
        .iter()
        .any(|&(_, v)| v > 2.0)
}

/// One admission's counts, each `[numerator, denominator]`.
#[derive(Debug, Clone, Default)]
pub struct CitationCounts {
    /// Synthetic truth: cited lab facts that are a real shift of a phenotype the patient has,
    /// of all cited lab facts.
    pub precision: [usize; 2],
    /// Synthetic truth: realised shifts (a true phenotype the model wrote, a channel it shifted,
    /// and the record's finding on that channel on that side) cited for that diagnosis.
    pub recall: [usize; 2],
    /// Synthetic truth: correct written diagnoses with at least one true cited fact.
    pub supported: [usize; 2],
    /// Per criterion: cited facts it speaks to that it confirms `[0..2]`, and correct written
    /// diagnoses whose record meets it that cite its finding `[2..4]`.
    pub criteria: Vec<[usize; 4]>,
}

/// The lab facts `explanation` cites: `(diagnosis index, channel index, side)`, each once.
fn cited(explanation: &Explanation) -> Vec<(usize, usize, Direction)> {
    let mut facts = Vec::new();
    for e in explanation
        .evidence
        .iter()
        .filter(|e| e.source == "observation")
    {
        let diagnosis = e
            .diagnosis
            .and_then(|d| PHENOTYPES.iter().position(|p| p.name == d));
        let channel = e.channel.and_then(channel_index);
        if let (Some(d), Some(c), Some(side)) = (diagnosis, channel, e.direction)
            && !facts.contains(&(d, c, side))
        {
            facts.push((d, c, side));
        }
    }
    facts
}

/// Scores one explanation of `record` (window `hours`) against `truth` where the record has one,
/// and against [`CRITERIA`] where it has labels.
pub fn counts(
    record: &PatientRecord,
    hours: usize,
    explanation: &Explanation,
    truth: Option<&Truth>,
) -> CitationCounts {
    let cited = cited(explanation);
    let written: Vec<usize> = explanation
        .diagnoses
        .iter()
        .filter_map(|d| PHENOTYPES.iter().position(|p| p.name == d))
        .collect();
    let labels: Vec<&str> = record
        .labels
        .as_ref()
        .map(|l| l.phenotypes.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let correct: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&d| labels.contains(&PHENOTYPES[d].name))
        .collect();
    let mut out = CitationCounts::default();
    if let Some(truth) = truth {
        let shifted = |d: usize, c: usize, side: Direction| {
            truth
                .phenotypes
                .iter()
                .any(|t| t.phenotype == d && t.shifts.contains(&(c, side)))
        };
        let findings = Findings::of(record, hours);
        out.precision = [
            cited.iter().filter(|&&(d, c, s)| shifted(d, c, s)).count(),
            cited.len(),
        ];
        for t in truth
            .phenotypes
            .iter()
            .filter(|t| written.contains(&t.phenotype))
        {
            let mut any = false;
            for &(c, side) in &t.shifts {
                let is_cited = cited.contains(&(t.phenotype, c, side));
                any |= is_cited;
                if findings
                    .labs
                    .iter()
                    .any(|f| f.channel == c && f.direction == side)
                {
                    out.recall[0] += usize::from(is_cited);
                    out.recall[1] += 1;
                }
            }
            out.supported[0] += usize::from(any);
            out.supported[1] += 1;
        }
    }
    for criterion in CRITERIA {
        let Some(c) = channel_index(criterion.channel) else {
            out.criteria.push([0; 4]);
            continue;
        };
        let groups: Vec<usize> = criterion
            .phenotypes
            .iter()
            .filter_map(|n| PHENOTYPES.iter().position(|p| p.name == *n))
            .collect();
        let speaks = cited
            .iter()
            .filter(|&&(d, ch, s)| groups.contains(&d) && ch == c && s == criterion.side)
            .count();
        let holds = (criterion.holds)(record, hours);
        let due: Vec<usize> = correct
            .iter()
            .copied()
            .filter(|d| groups.contains(d) && holds)
            .collect();
        out.criteria.push([
            if holds { speaks } else { 0 },
            speaks,
            due.iter()
                .filter(|&&d| cited.contains(&(d, c, criterion.side)))
                .count(),
            due.len(),
        ]);
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct CriterionMetrics {
    pub criterion: &'static str,
    pub phenotypes: &'static [&'static str],
    /// Cited findings of the criterion's channel and side, for its groups, that its rule confirms.
    pub precision: Share,
    /// Correct written diagnoses of its groups whose record meets it, citing its finding.
    pub recall: Share,
}

/// The evidence scored against the truth: the rationale's headline figures.
#[derive(Debug, Clone, Serialize)]
pub struct CitationMetrics {
    /// Against the synthetic generator's truth (`None` where no record is synthetic).
    pub precision: Option<Share>,
    pub recall: Option<Share>,
    pub supported: Option<Share>,
    /// Against clinical criteria from outside the knowledge base.
    pub criteria: Vec<CriterionMetrics>,
}

impl CitationMetrics {
    pub fn of(counts: &[CitationCounts], with_truth: bool) -> Self {
        let truth =
            |part: fn(&CitationCounts) -> [usize; 2]| with_truth.then(|| Share::of(counts, part));
        Self {
            precision: truth(|c| c.precision),
            recall: truth(|c| c.recall),
            supported: truth(|c| c.supported),
            criteria: CRITERIA
                .iter()
                .enumerate()
                .map(|(i, k)| CriterionMetrics {
                    criterion: k.name,
                    phenotypes: k.phenotypes,
                    precision: Share::of(counts, |c| [c.criteria[i][0], c.criteria[i][1]]),
                    recall: Share::of(counts, |c| [c.criteria[i][2], c.criteria[i][3]]),
                })
                .collect(),
        }
    }

    /// Markdown table rows.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut row = |name: &str, share: &Option<Share>| {
            if let Some(s) = share {
                out += &format!("| {name} | {} |\n", s.cell());
            }
        };
        row(
            "evidence vs the generator's truth: citation precision (95% CI)",
            &self.precision,
        );
        row(
            "evidence vs the generator's truth: citation recall of realised shifts (95% CI)",
            &self.recall,
        );
        row(
            "correct diagnoses with at least one true supporting fact (95% CI)",
            &self.supported,
        );
        for k in &self.criteria {
            out += &format!(
                "| evidence vs {}: cited facts it confirms / correct diagnoses meeting it that cite it | {} / {} |\n",
                k.criterion,
                k.precision.cell(),
                k.recall.cell()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside::record::Observation;

    fn record(channel: &str, points: &[(f64, f64)]) -> PatientRecord {
        let mut r: PatientRecord = serde_json::from_str(r#"{"id": "r"}"#).unwrap();
        r.observations = points
            .iter()
            .map(|&(hours, value)| Observation {
                channel: channel.into(),
                hours,
                value: Some(value),
                unit: None,
            })
            .collect();
        r
    }

    /// A record of the synthetic cohort, cited by hand: a true shift, the same finding under a
    /// phenotype that did not shift it, and a phenotype the patient does not have.
    #[test]
    fn citations_scored_against_the_generator() {
        let records = crate::synthetic::cohort(80, 48, 3);
        // a patient with acute kidney failure whose record shows creatinine high
        let aki = PHENOTYPES
            .iter()
            .position(|p| p.short == "Acute kidney failure")
            .unwrap();
        let creatinine = channel_index("creatinine").unwrap();
        let (record, truth) = records
            .iter()
            .find_map(|r| {
                let t = crate::synthetic::truth(&r.id)?;
                let has = t.phenotypes.iter().any(|p| p.phenotype == aki);
                let shown = Findings::of(r, 48)
                    .labs
                    .iter()
                    .any(|f| f.channel == creatinine && f.direction == Direction::High);
                (has && shown && t.phenotypes.len() >= 2).then_some((r, t))
            })
            .expect("an AKI patient among 80");
        let other = truth
            .phenotypes
            .iter()
            .find(|p| p.phenotype != aki)
            .unwrap();
        let absent = (0..PHENOTYPES.len())
            .find(|&p| truth.phenotypes.iter().all(|t| t.phenotype != p))
            .unwrap();
        let cite = |d: usize| bedside::grounded::Evidence {
            diagnosis: Some(PHENOTYPES[d].name),
            source: "observation",
            channel: Some("creatinine"),
            direction: Some(Direction::High),
            ..Default::default()
        };
        let explanation = Explanation {
            diagnoses: [aki, other.phenotype, absent]
                .iter()
                .map(|&d| PHENOTYPES[d].name.to_string())
                .collect(),
            evidence: vec![cite(aki), cite(aki), cite(other.phenotype), cite(absent)],
            ..Default::default()
        };
        let c = counts(record, 48, &explanation, Some(&truth));
        let shifts_creatinine_up = other.shifts.contains(&(creatinine, Direction::High));
        // the duplicate counts once; under the other phenotype it is true only if that one
        // shifted creatinine up too; never under an absent one
        assert_eq!(c.precision, [1 + usize::from(shifts_creatinine_up), 3]);
        // AKI and the other phenotype are true and written; the absent one is not correct
        assert_eq!(c.supported, [1 + usize::from(shifts_creatinine_up), 2]);
        assert!(
            c.recall[0] >= 1 && c.recall[1] > c.recall[0],
            "{:?}",
            c.recall
        );
        // the criteria see the same citation: it speaks to KDIGO's creatinine for AKI
        assert_eq!(c.criteria[0][1], 1);
        assert_eq!(c.criteria[0][0], usize::from(kdigo_creatinine(record, 48)));
        // no truth: nothing against the generator, the criteria still scored
        let c = counts(record, 48, &explanation, None);
        assert_eq!(
            (c.precision, c.recall, c.supported),
            ([0, 0], [0, 0], [0, 0])
        );
        assert_eq!(c.criteria[0][1], 1);
    }

    #[test]
    fn kdigo_by_rise_or_ratio() {
        // a rise of 0.3 within 48 h
        assert!(kdigo_creatinine(
            &record("creatinine", &[(1.0, 1.0), (20.0, 1.3)]),
            48
        ));
        // 0.2 is not enough, and the first value is the baseline
        assert!(!kdigo_creatinine(
            &record("creatinine", &[(1.0, 1.0), (20.0, 1.2)]),
            48
        ));
        // 1.5 times the first value, however slowly
        assert!(kdigo_creatinine(
            &record("creatinine", &[(0.0, 0.4), (60.0, 0.6)]),
            72
        ));
        // a rise of 0.3 over more than 48 h is not stage 1 by the rise
        assert!(!kdigo_creatinine(
            &record("creatinine", &[(0.0, 1.0), (50.0, 1.35)]),
            72
        ));
        // outside the window does not count; no creatinine, no criterion
        assert!(!kdigo_creatinine(
            &record("creatinine", &[(1.0, 1.0), (50.0, 3.0)]),
            48
        ));
        assert!(!kdigo_creatinine(&record("lactate", &[(1.0, 5.0)]), 48));
        // µmol/L is read in mg/dL: 88.4 → 1.0, 123.8 → 1.4
        let mut r = record("creatinine", &[(1.0, 88.4), (5.0, 123.8)]);
        r.observations
            .iter_mut()
            .for_each(|o| o.unit = Some("umol/L".into()));
        assert!(kdigo_creatinine(&r, 48));
    }

    #[test]
    fn lactate_strictly_above_2() {
        assert!(lactate_above_2(
            &record("lactate", &[(3.0, 1.1), (9.0, 2.4)]),
            48
        ));
        assert!(!lactate_above_2(&record("lactate", &[(3.0, 2.0)]), 48));
    }
}
