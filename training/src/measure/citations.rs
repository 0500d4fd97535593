//! Whether the lab facts the model states are true support for what it diagnosed, scored against
//! what the model did not learn from. Faithfulness (`eval`'s other rationale figures) holds by
//! construction — the record renders every value — so it checks the renderer. What the model
//! decides is *which* of the record's findings it states; the knowledge base then files each
//! stated fact under the written diagnoses it links. So the unit scored here is the stated fact
//! (channel and side, once per admission, whatever it is filed under):
//!
//! - on synthetic records, against the generator's truth ([`crate::shared::synthetic::truth`]): the
//!   phenotypes the patient has and the channels each shifted, in which direction;
//! - on any labelled cohort, real ones included, against clinical rules that do not come from
//!   bedside's knowledge base nor from its normal ranges: KDIGO's creatinine rule for acute kidney
//!   failure, and Sepsis-3's septic shock (lactate above 2 mmol/L with hypotension, a mean
//!   pressure below 65 mmHg standing for the vasopressors a record may not show) for shock and
//!   sepsis.

use bedside::PatientRecord;
use bedside::engine::Explanation;
use bedside::findings::{Direction, Findings};
use bedside::knowledge::{PHENOTYPES, channel_index};
use bedside::record::read_observation;
use serde::Serialize;

use crate::measure::metrics::Share;
use crate::shared::synthetic::Truth;

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
        name: "Sepsis-3 septic shock: lactate above 2 mmol/L and a mean arterial pressure below \
               65 mmHg",
        phenotypes: &["Shock", "Septicemia (except in labor)"],
        channel: "lactate",
        side: Direction::High,
        holds: septic_shock,
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

/// Sepsis-3's septic shock as a record's window can show it: a lactate above 2 mmol/L and a
/// mean arterial pressure below 65 mmHg (the definition's vasopressors, which a record of labs
/// and vitals does not carry, stand in as the hypotension they treat). Stricter than a "lactate
/// high" finding (above the normal limit, 2.0), so the rule can refuse what the model states.
pub fn septic_shock(record: &PatientRecord, hours: usize) -> bool {
    series(record, hours, "lactate")
        .iter()
        .any(|&(_, v)| v > 2.0)
        && series(record, hours, "mean_bp")
            .iter()
            .any(|&(_, v)| v < 65.0)
}

/// One admission's counts, each `[numerator, denominator]`.
#[derive(Debug, Clone, Default)]
pub struct CitationCounts {
    /// Synthetic truth: stated lab facts that are a real shift of a phenotype the patient has and
    /// the model wrote, of all stated lab facts (those filed under no diagnosis included).
    pub precision: [usize; 2],
    /// Synthetic truth: realised shifts (of a true phenotype the model wrote, the record's finding
    /// on a channel it shifted, on the side it shifted it to) that the model states.
    pub recall: [usize; 2],
    /// Synthetic truth: correct written diagnoses for which the model states at least one fact
    /// their phenotype truly shifted.
    pub supported: [usize; 2],
    /// Per criterion: admissions where the model wrote one of its diagnoses and stated its
    /// finding, and the rule confirms it `[0..2]`; correct written diagnoses of its groups whose
    /// record meets the rule, with its finding stated `[2..4]`.
    pub criteria: Vec<[usize; 4]>,
}

/// The lab facts `explanation` states: `(channel index, side)`, each once, whatever the
/// knowledge base files them under.
fn stated(explanation: &Explanation) -> Vec<(usize, Direction)> {
    let mut facts = Vec::new();
    for e in explanation
        .evidence
        .iter()
        .filter(|e| e.source == "observation")
    {
        if let (Some(c), Some(side)) = (e.channel.and_then(channel_index), e.direction)
            && !facts.contains(&(c, side))
        {
            facts.push((c, side));
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
    let stated = stated(explanation);
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
        // the true phenotypes the model wrote, with what each shifted
        let diagnosed: Vec<_> = truth
            .phenotypes
            .iter()
            .filter(|t| written.contains(&t.phenotype))
            .collect();
        let findings = Findings::of(record, hours);
        out.precision = [
            stated
                .iter()
                .filter(|fact| diagnosed.iter().any(|t| t.shifts.contains(fact)))
                .count(),
            stated.len(),
        ];
        for t in &diagnosed {
            for &(c, side) in &t.shifts {
                if findings
                    .labs
                    .iter()
                    .any(|f| f.channel == c && f.direction == side)
                {
                    out.recall[0] += usize::from(stated.contains(&(c, side)));
                    out.recall[1] += 1;
                }
            }
            out.supported[0] += usize::from(t.shifts.iter().any(|f| stated.contains(f)));
            out.supported[1] += 1;
        }
    }
    for criterion in CRITERIA {
        let groups: Vec<usize> = criterion
            .phenotypes
            .iter()
            .filter_map(|n| PHENOTYPES.iter().position(|p| p.name == *n))
            .collect();
        let finding =
            channel_index(criterion.channel).is_some_and(|c| stated.contains(&(c, criterion.side)));
        let speaks = finding && written.iter().any(|d| groups.contains(d));
        let holds = (criterion.holds)(record, hours);
        let due = usize::from(holds) * correct.iter().filter(|d| groups.contains(d)).count();
        out.criteria.push([
            usize::from(speaks && holds),
            usize::from(speaks),
            due * usize::from(finding),
            due,
        ]);
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct CriterionMetrics {
    pub criterion: &'static str,
    pub phenotypes: &'static [&'static str],
    /// Admissions where the model wrote one of its groups and stated its finding, that its rule
    /// confirms.
    pub precision: Share,
    /// Correct written diagnoses of its groups whose record meets it, with its finding stated.
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
            "stated lab facts vs the generator's truth: precision (95% CI)",
            &self.precision,
        );
        row(
            "stated lab facts vs the generator's truth: recall of realised shifts (95% CI)",
            &self.recall,
        );
        row(
            "correct diagnoses with at least one true supporting fact stated (95% CI)",
            &self.supported,
        );
        for k in &self.criteria {
            out += &format!(
                "| stated facts vs {}: its finding stated with its diagnosis, confirmed / correct diagnoses meeting it, with its finding stated | {} / {} |\n",
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
    use bedside::grounded::{Fact, Pick};
    use bedside::record::Observation;

    fn record(channel: &str, points: &[(f64, f64)]) -> PatientRecord {
        let mut r: PatientRecord = serde_json::from_str(r#"{"id": "r"}"#).unwrap();
        r.observations = points
            .iter()
            .map(|&(hours, value)| Observation::new(channel, hours, value))
            .collect();
        r
    }

    /// A record of the synthetic cohort, its facts picked by hand and filed by the knowledge base:
    /// a true shift (counted once however often it is filed), and a finding of the record that no
    /// written true phenotype shifted.
    #[test]
    fn stated_facts_scored_against_the_generator() {
        let records = crate::shared::synthetic::cohort(80, 48, 3);
        let aki = PHENOTYPES
            .iter()
            .position(|p| p.short == "Acute kidney failure")
            .unwrap();
        let creatinine = channel_index("creatinine").unwrap();
        // a patient with acute kidney failure and another phenotype, creatinine high on record
        let (record, truth) = records
            .iter()
            .find_map(|r| {
                let t = crate::shared::synthetic::truth(&r.id)?;
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
        // a finding of the record that neither written phenotype shifted to its side
        let findings = Findings::of(record, 48);
        let untrue = findings
            .labs
            .iter()
            .find(|f| {
                truth
                    .phenotypes
                    .iter()
                    .filter(|t| t.phenotype == aki || t.phenotype == other.phenotype)
                    .all(|t| !t.shifts.contains(&(f.channel, f.direction)))
            })
            .map(|f| (f.channel, f.direction));
        // the facts the model would pick, filed by the knowledge base as `explain` files them:
        // creatinine high under every written diagnosis it links (a duplicate when both do)
        let mut picks = vec![Pick::Lab(creatinine, Direction::High)];
        if let Some((channel, side)) = untrue {
            picks.push(Pick::Lab(channel, side));
        }
        let facts: Vec<Fact> = picks
            .iter()
            .filter_map(|p| Fact::of(*p, &findings))
            .collect();
        let written = [PHENOTYPES[aki].name, PHENOTYPES[other.phenotype].name];
        let evidence = bedside::grounded::evidence(record, &facts, &written);
        let explanation = Explanation {
            id: record.id.clone(),
            text: String::new(),
            diagnoses: written.iter().map(|d| d.to_string()).collect(),
            rationale: String::new(),
            evidence,
            tokens: 0,
            channels: Vec::new(),
            knowledge_attention: Vec::new(),
            series: Vec::new(),
            out_of_range: None,
            backend: "cpu",
        };
        let c = counts(record, 48, &explanation, Some(&truth));
        let n_untrue = usize::from(untrue.is_some());
        // creatinine high once (filed twice), true; the other finding untrue
        assert_eq!(c.precision, [1, 1 + n_untrue]);
        // AKI is supported by a true fact; the other only if it shifted creatinine up too
        let other_creatinine = other.shifts.contains(&(creatinine, Direction::High));
        assert_eq!(c.supported, [1 + usize::from(other_creatinine), 2]);
        // AKI shifts several channels the record shows; one of them is stated
        assert!(
            c.recall[0] >= 1 && c.recall[1] > c.recall[0],
            "{:?}",
            c.recall
        );
        // KDIGO: creatinine stated with AKI written
        assert_eq!(c.criteria[0][1], 1);
        assert_eq!(c.criteria[0][0], usize::from(kdigo_creatinine(record, 48)));
        // without the truth: nothing against the generator, the criteria still scored
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
    fn septic_shock_needs_lactate_and_hypotension() {
        let mut r = record("lactate", &[(3.0, 1.1), (9.0, 2.4)]);
        assert!(!septic_shock(&r, 48), "a high lactate alone is not shock");
        r.observations
            .extend(record("mean_bp", &[(10.0, 62.0)]).observations);
        assert!(septic_shock(&r, 48));
        let r = record("lactate", &[(3.0, 2.0)]);
        assert!(!septic_shock(&r, 48));
    }
}
