//! `bedside-train eval`: measures a clinical bundle on a labelled cohort, natively on the CPU —
//! the phenotype head (micro/macro F1, macro AUROC with a bootstrap interval, macro AUPRC), the
//! diagnoses the decoder writes (micro/macro F1 with a bootstrap interval, per-label F1, exact
//! match), and the rationales against the teacher's (BLEU-4, ROUGE-L) and against the record
//! (faithfulness of the lab statements, exactness of the note quotes, the facts stated against the
//! teacher's, the diagnoses with evidence; each with a bootstrap interval), and the cited evidence
//! against the truth (`citations`: the synthetic generator's, and clinical criteria from outside
//! the knowledge base). Names the split it scored. Writes report.json, report.md, and the head's
//! ROC curve and calibration as PNG.

use std::collections::BTreeMap;
use std::path::Path;

use crate::teachers::grounding::picks_from_text;
use anyhow::{Result, ensure};
use bedside::findings::Findings;
use bedside::generate::GenerateOptions;
use bedside::grounded::{Pick, RationaleVocab};
use bedside::knowledge::{PHENOTYPES, channel_index};
use bedside::{Backend, Engine, PatientRecord};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::measure::citations::{self, CitationMetrics};
use crate::measure::metrics::{
    self, CalibrationBin, Metrics, Share, auroc, calibration, roc_curve,
};
use crate::measure::text_metrics::{bleu4, rouge_l};
use crate::teachers::{self, Rationale};

#[derive(Debug, Serialize)]
pub struct EvalReport {
    /// The bundle scored: the sha256 of its weights (`card` refuses a report of another bundle).
    pub weights_sha256: String,
    /// Which split was scored (RESULTS.md, "How the figures are made").
    pub split: String,
    pub admissions: usize,
    pub head: Metrics,
    pub head_macro_auprc: f64,
    /// The head's micro-averaged ROC curve (every admission × phenotype pair), at most ~200 points.
    pub head_roc: Vec<(f64, f64)>,
    pub head_micro_auroc: f64,
    /// The head's calibration over every admission × phenotype pair, ten equal-count bins.
    pub head_calibration: Vec<CalibrationBin>,
    pub generated: GeneratedMetrics,
    pub rationale: RationaleMetrics,
    /// The cited lab evidence against the truth: the generator's (synthetic records) and clinical
    /// criteria from outside the knowledge base (any labelled record).
    pub citations: CitationMetrics,
    /// Share of admissions outside the model's range (`bedside::out_of_range`): they write no
    /// diagnosis, and the head's figures still count their probabilities.
    pub abstained: f64,
    pub seconds_per_admission: f64,
}

#[derive(Debug, Serialize)]
pub struct GeneratedMetrics {
    pub micro_f1: f64,
    pub micro_f1_ci95: (f64, f64),
    pub macro_f1: f64,
    pub exact_match: f64,
    pub per_label_f1: BTreeMap<String, f64>,
    /// Admissions with each group in the truth (the support behind each F1).
    pub per_label_positives: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct RationaleMetrics {
    pub bleu4: f64,
    pub rouge_l: f64,
    /// Share of the written lab statements that are true of the record (read back from the text
    /// and checked against the record's observations: value, hour, side and normal range).
    pub faithfulness: f64,
    pub faithfulness_ci95: (f64, f64),
    pub lab_statements: usize,
    /// Share of the note quotes that are exactly the record's text at the evidence's span.
    pub quote_exactness: f64,
    pub quote_exactness_ci95: (f64, f64),
    pub note_quotes: usize,
    /// The facts the rationale states against those the teacher's rationale picks (of what the
    /// model can see), micro-averaged over admissions.
    pub finding_precision: f64,
    pub finding_recall: f64,
    pub finding_f1: f64,
    pub finding_f1_ci95: (f64, f64),
    /// Share of the written diagnoses with at least one evidence item.
    pub diagnoses_with_evidence: f64,
    pub diagnoses_with_evidence_ci95: (f64, f64),
    /// The first lab statements found untrue, with their admission (none when faithful).
    pub untrue_statements: Vec<String>,
}

/// Per admission: (true, written) lab statements, (exact, written) quotes, (matched, stated,
/// taught) findings, (with evidence, written) diagnoses.
#[derive(Debug, Clone, Default)]
struct RationaleCounts {
    statements: [usize; 2],
    quotes: [usize; 2],
    picks: [usize; 3],
    evidenced: [usize; 2],
    untrue: Vec<String>,
}

/// The ratio over every admission and its 95% bootstrap interval (200 resamples of admissions).
fn ratio_ci(
    counts: &[RationaleCounts],
    part: fn(&RationaleCounts) -> [usize; 2],
) -> (f64, (f64, f64)) {
    let share = Share::of(counts, part);
    (share.value, share.ci95)
}

/// What one explanation's rationale does, checked against the record independently of how it
/// was made: lab statements read back from the text ([`teachers::lab_statements`]), quotes against
/// the note text at the evidence's UTF-16 span, the facts stated against the teacher's picks.
fn rationale_counts(
    record: &PatientRecord,
    hours: usize,
    explanation: &bedside::engine::Explanation,
    teacher: &Rationale,
    prompt: &[u32],
    vocab: Option<&RationaleVocab>,
) -> RationaleCounts {
    // the lab statements: each observation fact's sentence must stand in the rationale and read
    // back true of the record's window; lab-statement text left once the facts' sentences and
    // quotes are taken out is counted as untrue
    let (mut written, mut true_statements, mut untrue) = (0, 0, Vec::new());
    let mut rest = explanation.rationale.clone();
    let mut seen: Vec<&str> = Vec::new();
    for e in &explanation.evidence {
        let Some(text) = e.text.as_deref().filter(|t| !seen.contains(t)) else {
            continue;
        };
        seen.push(text);
        if e.source == "note" {
            rest = rest.replacen(&format!("\u{201c}{text}\u{201d}"), "", 1);
            continue;
        }
        written += 1;
        let stated = rest.contains(text);
        rest = rest.replacen(text, "", 1);
        if stated
            && teachers::lab_statements(text)
                .first()
                .is_some_and(|s| s.is_true_of(record, hours))
        {
            true_statements += 1;
        } else {
            untrue.push(format!("{}: {text}", record.id));
        }
    }
    let stray = rest.matches(" was high at ").count() + rest.matches(" was low at ").count();
    if stray > 0 {
        written += stray;
        untrue.push(format!(
            "{}: {stray} statement(s) without evidence in {:?}",
            record.id, explanation.rationale
        ));
    }
    let findings = Findings::of(record, hours);
    let mut stated: Vec<Pick> = Vec::new();
    let (mut quotes, mut exact) = (0, 0);
    for e in &explanation.evidence {
        let pick = match (e.source, e.channel.and_then(channel_index), e.direction) {
            ("observation", Some(c), Some(d)) => Some(Pick::Lab(c, d)),
            _ => findings
                .sentences
                .iter()
                .position(|s| Some(s.note) == e.note && e.text.as_deref() == Some(s.text(record)))
                .map(Pick::Note),
        };
        if let Some(pick) = pick.filter(|p| !stated.contains(p)) {
            stated.push(pick);
            if e.source == "note" {
                quotes += 1;
                let units: Vec<u16> = record
                    .notes
                    .get(e.note.unwrap_or(usize::MAX))
                    .map(|n| n.text.encode_utf16().collect())
                    .unwrap_or_default();
                let span = units
                    .get(e.start.unwrap_or(1)..e.end.unwrap_or(0))
                    .map(String::from_utf16_lossy);
                exact += usize::from(
                    span.is_some()
                        && span == e.text
                        && explanation
                            .rationale
                            .contains(e.text.as_deref().unwrap_or("\u{0}")),
                );
            }
        }
    }
    let (notes, _) = picks_from_text(record, &findings, &teacher.note_rationale, "");
    let (labs, _) = picks_from_text(record, &findings, "", &teacher.lab_rationale);
    let visible = vocab
        .map(|v| v.choices(&findings, prompt))
        .unwrap_or_default();
    let taught: Vec<Pick> = notes
        .into_iter()
        .chain(labs)
        .filter(|p| {
            vocab
                .and_then(|v| v.id(*p))
                .is_some_and(|id| visible.contains(&id))
        })
        .collect();
    let evidenced = explanation
        .diagnoses
        .iter()
        .filter(|d| {
            explanation
                .evidence
                .iter()
                .any(|e| e.diagnosis == Some(d.as_str()))
        })
        .count();
    RationaleCounts {
        statements: [true_statements, written],
        quotes: [exact, quotes],
        picks: [
            stated.iter().filter(|p| taught.contains(p)).count(),
            stated.len(),
            taught.len(),
        ],
        evidenced: [evidenced, explanation.diagnoses.len()],
        untrue,
    }
}

/// Average precision (area under the precision–recall curve, step-wise); `None` without positives.
pub fn average_precision(pairs: &[(f32, bool)]) -> Option<f64> {
    let positives = pairs.iter().filter(|p| p.1).count();
    if positives == 0 {
        return None;
    }
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut hits, mut sum) = (0usize, 0.0);
    for (rank, (_, positive)) in sorted.iter().enumerate() {
        if *positive {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    Some(sum / positives as f64)
}

fn f1_of(tp: usize, fp: usize, fn_: usize) -> f64 {
    if tp + fp + fn_ == 0 {
        f64::NAN
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

fn micro_f1(rows: &[usize], written: &[Vec<bool>], truth: &[Vec<bool>]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for &r in rows {
        for (w, t) in written[r].iter().zip(&truth[r]) {
            match (w, t) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
    }
    f1_of(tp, fp, fn_)
}

pub fn evaluate(
    bundle: &Path,
    split: &str,
    records: &[PatientRecord],
    rationales: &BTreeMap<String, Rationale>,
    max_tokens: usize,
    show: bool,
) -> Result<EvalReport> {
    ensure!(!records.is_empty(), "no admissions to evaluate");
    let bundle = bedside::bundle::Bundle::from_dir(bundle)?;
    let engine = pollster::block_on(Engine::load(&bundle, Backend::Cpu))?;
    let options = GenerateOptions {
        max_new_tokens: max_tokens,
        ..Default::default()
    };
    let bar = if show {
        ProgressBar::new(records.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let (mut probs, mut truth, mut written) = (Vec::new(), Vec::new(), Vec::new());
    let (mut candidates, mut references) = (Vec::new(), Vec::new());
    let mut counts: Vec<RationaleCounts> = Vec::new();
    let mut cited = Vec::new();
    let mut with_truth = false;
    let mut abstained = 0usize;
    let hours = engine.manifest().model.hours();
    let vocab = engine
        .clinical_model()
        .and_then(|(_, tok, _)| RationaleVocab::new(tok));
    for record in records {
        let row_truth = record.phenotype_truth();
        let diagnosis = pollster::block_on(engine.diagnose(record))?;
        probs.extend(PHENOTYPES.iter().map(|p| {
            diagnosis
                .phenotypes
                .iter()
                .find(|s| s.name == p.name)
                .map_or(0.0, |s| s.probability)
        }));
        let explanation = pollster::block_on(engine.explain(record, &options, &mut |_| true))?;
        abstained += usize::from(explanation.out_of_range.is_some());
        written.push(
            PHENOTYPES
                .iter()
                .map(|p| explanation.diagnoses.iter().any(|d| d == p.name))
                .collect::<Vec<bool>>(),
        );
        truth.push(row_truth);
        let teacher = rationales
            .get(&record.id)
            .cloned()
            .unwrap_or_else(|| teachers::knowledge_teacher(record, hours));
        references.push(format!(
            "{} {}",
            teacher.note_rationale, teacher.lab_rationale
        ));
        candidates.push(explanation.rationale.clone());
        let prompt = engine.prompt(record)?;
        counts.push(rationale_counts(
            record,
            hours,
            &explanation,
            &teacher,
            &prompt,
            vocab.as_ref(),
        ));
        let truth = crate::shared::synthetic::truth(&record.id);
        with_truth |= truth.is_some();
        cited.push(citations::counts(
            record,
            hours,
            &explanation,
            truth.as_ref(),
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = records.len();
    let flat_truth: Vec<bool> = truth.iter().flatten().copied().collect();
    let head = metrics::evaluate(&probs, &flat_truth, PHENOTYPES.len(), 0.5);
    let auprcs: Vec<f64> = (0..PHENOTYPES.len())
        .filter_map(|l| {
            average_precision(
                &(0..n)
                    .map(|r| (probs[r * PHENOTYPES.len() + l], truth[r][l]))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let pairs: Vec<(f32, bool)> = probs
        .iter()
        .copied()
        .zip(flat_truth.iter().copied())
        .collect();
    let rows: Vec<usize> = (0..n).collect();
    let micro_f1_ci95 = metrics::bootstrap_ci95(n, 200, 0, |rows| micro_f1(rows, &written, &truth));
    let mut per_label_f1 = BTreeMap::new();
    let mut per_label_positives = BTreeMap::new();
    let mut macro_values = Vec::new();
    for (l, p) in PHENOTYPES.iter().enumerate() {
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for r in 0..n {
            match (written[r][l], truth[r][l]) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
        per_label_positives.insert(p.name.to_string(), tp + fn_);
        let f = f1_of(tp, fp, fn_);
        if f.is_finite() {
            macro_values.push(f);
            per_label_f1.insert(p.name.to_string(), f);
        }
    }
    let (faithfulness, faithfulness_ci95) = ratio_ci(&counts, |c| c.statements);
    let (quote_exactness, quote_exactness_ci95) = ratio_ci(&counts, |c| c.quotes);
    let (finding_f1, finding_f1_ci95) =
        ratio_ci(&counts, |c| [2 * c.picks[0], c.picks[1] + c.picks[2]]);
    let (diagnoses_with_evidence, diagnoses_with_evidence_ci95) =
        ratio_ci(&counts, |c| c.evidenced);
    let candidate_refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let reference_refs: Vec<&str> = references.iter().map(String::as_str).collect();
    Ok(EvalReport {
        weights_sha256: bedside::bundle::sha256_hex(bundle.weights()),
        split: split.to_string(),
        admissions: n,
        head,
        head_macro_auprc: auprcs.iter().sum::<f64>() / auprcs.len().max(1) as f64,
        head_roc: roc_curve(&pairs, 200),
        head_micro_auroc: auroc(&pairs).unwrap_or(f64::NAN),
        head_calibration: calibration(&pairs, 10),
        generated: GeneratedMetrics {
            micro_f1: micro_f1(&rows, &written, &truth),
            micro_f1_ci95,
            macro_f1: macro_values.iter().sum::<f64>() / macro_values.len().max(1) as f64,
            exact_match: written.iter().zip(&truth).filter(|(w, t)| w == t).count() as f64
                / n as f64,
            per_label_f1,
            per_label_positives,
        },
        rationale: RationaleMetrics {
            bleu4: bleu4(&candidate_refs, &reference_refs),
            rouge_l: candidates
                .iter()
                .zip(&references)
                .map(|(c, r)| rouge_l(c, r))
                .sum::<f64>()
                / n as f64,
            faithfulness,
            faithfulness_ci95,
            lab_statements: counts.iter().map(|c| c.statements[1]).sum(),
            quote_exactness,
            quote_exactness_ci95,
            note_quotes: counts.iter().map(|c| c.quotes[1]).sum(),
            finding_precision: Share::of(&counts, |c| [c.picks[0], c.picks[1]]).value,
            finding_recall: Share::of(&counts, |c| [c.picks[0], c.picks[2]]).value,
            finding_f1,
            finding_f1_ci95,
            diagnoses_with_evidence,
            diagnoses_with_evidence_ci95,
            untrue_statements: counts
                .iter()
                .flat_map(|c| c.untrue.iter().cloned())
                .take(20)
                .collect(),
        },
        citations: CitationMetrics::of(&cited, with_truth),
        abstained: abstained as f64 / n as f64,
        seconds_per_admission: started.elapsed().as_secs_f64() / n as f64,
    })
}

impl EvalReport {
    /// report.json, report.md, roc.png and calibration.png into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        use crate::measure::plots::{Line, calibration_chart, roc_chart};
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        crate::shared::io::write_atomic(
            &dir.join("report.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        crate::shared::io::write_atomic(&dir.join("report.md"), self.markdown().as_bytes())?;
        let name = format!(
            "phenotype head, micro-average (AUROC {:.3}; macro {:.3})",
            self.head_micro_auroc, self.head.macro_auroc
        );
        roc_chart(
            &dir.join("roc.png"),
            "Phenotypes: ROC of the head",
            &[Line::new(name, self.head_roc.clone())],
        )?;
        calibration_chart(
            &dir.join("calibration.png"),
            "Phenotypes: calibration of the head",
            &self.head_calibration,
            "mean predicted probability",
            "observed share",
        )
    }

    pub fn markdown(&self) -> String {
        let g = &self.generated;
        let h = &self.head;
        let r = &self.rationale;
        format!("split scored: {}\n\n", self.split)
            + &format!(
                "| measure | value |\n|---|---|\n\
             | admissions | {} |\n\
             | written diagnoses: micro-F1 (95% CI) | {:.3} ({:.3}–{:.3}) |\n\
             | written diagnoses: macro-F1 | {:.3} |\n\
             | written diagnoses: exact match | {:.3} |\n\
             | head: micro-F1 / macro-F1 at 0.5 | {:.3} / {:.3} |\n\
             | head: macro AUROC (95% CI) | {:.3} ({:.3}–{:.3}) |\n\
             | head: macro AUPRC | {:.3} |\n\
             | head: micro AUROC (all admission × phenotype pairs) | {:.3} |\n\
             | head: calibration error (ECE, 10 bins) / Brier score | {:.4} / {:.4} |\n\
             | rationale: BLEU-4 / ROUGE-L vs teacher | {:.3} / {:.3} |\n\
             | rationale: faithfulness (lab statements true of the record, 95% CI) | {:.3} of {} ({:.3}–{:.3}) |\n\
             | rationale: note quotes exact (95% CI) | {:.3} of {} ({:.3}–{:.3}) |\n\
             | rationale: facts vs teacher: precision / recall / F1 (95% CI) | {:.3} / {:.3} / {:.3} ({:.3}–{:.3}) |\n\
             | written diagnoses with evidence (95% CI) | {:.3} ({:.3}–{:.3}) |\n\
             | admissions outside the model's range (abstained; the head counts them) | {:.3} |\n\
             | seconds per admission (CPU, diagnose + explain) | {:.2} |\n",
                self.admissions,
                g.micro_f1,
                g.micro_f1_ci95.0,
                g.micro_f1_ci95.1,
                g.macro_f1,
                g.exact_match,
                h.micro_f1,
                h.macro_f1,
                h.macro_auroc,
                h.macro_auroc_ci95.0,
                h.macro_auroc_ci95.1,
                self.head_macro_auprc,
                self.head_micro_auroc,
                h.ece,
                h.brier,
                r.bleu4,
                r.rouge_l,
                r.faithfulness,
                r.lab_statements,
                r.faithfulness_ci95.0,
                r.faithfulness_ci95.1,
                r.quote_exactness,
                r.note_quotes,
                r.quote_exactness_ci95.0,
                r.quote_exactness_ci95.1,
                r.finding_precision,
                r.finding_recall,
                r.finding_f1,
                r.finding_f1_ci95.0,
                r.finding_f1_ci95.1,
                r.diagnoses_with_evidence,
                r.diagnoses_with_evidence_ci95.0,
                r.diagnoses_with_evidence_ci95.1,
                self.abstained,
                self.seconds_per_admission
            )
            + &self.citations.markdown()
            + &self.weakest_groups(5)
    }

    /// The `k` groups with the lowest written F1, with their support: where the errors are.
    fn weakest_groups(&self, k: usize) -> String {
        let g = &self.generated;
        let mut groups: Vec<(&String, &f64)> = g.per_label_f1.iter().collect();
        groups.sort_by(|a, b| a.1.total_cmp(b.1));
        let mut out =
            String::from("\n| weakest groups | written F1 | admissions with it |\n|---|---|---|\n");
        for (name, f1) in groups.into_iter().take(k) {
            let positives = g.per_label_positives.get(name).copied().unwrap_or(0);
            out += &format!("| {name} | {f1:.3} | {positives} |\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_known_values() {
        assert_eq!(average_precision(&[(0.9, true), (0.1, false)]), Some(1.0));
        // ranks: + - + → (1/1 + 2/3) / 2
        let ap = average_precision(&[(0.9, true), (0.5, false), (0.3, true)]).unwrap();
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(average_precision(&[(0.2, false)]), None);
    }
}
