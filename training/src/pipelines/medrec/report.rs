//! What a run reports: metrics per group (single- and multi-visit, per source), the epoch
//! history, report.json / report.md and the training curve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::config::TeacherMode;
use super::data::Example;
use crate::measure::medrec_metrics::{MedicationMetrics, evaluate};
use crate::measure::usage::Usage;

/// Metrics of one model on the test split: overall, single- and multi-visit, per source.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    pub overall: MedicationMetrics,
    pub single_visit: MedicationMetrics,
    pub multi_visit: MedicationMetrics,
    pub by_source: BTreeMap<String, MedicationMetrics>,
}

pub(super) fn grouped(
    probs: &[f32],
    targets: &[bool],
    drugs: &[String],
    threshold: f32,
    examples: &[Example],
    rows: &[usize],
) -> GroupMetrics {
    // `probs`/`targets` are over `rows` in order
    let local: Vec<usize> = (0..rows.len()).collect();
    let pick = |f: &dyn Fn(&Example) -> bool| {
        local
            .iter()
            .copied()
            .filter(|&i| f(&examples[rows[i]]))
            .collect::<Vec<_>>()
    };
    let sources: BTreeSet<&str> = rows.iter().map(|&r| examples[r].source.as_str()).collect();
    GroupMetrics {
        overall: evaluate(probs, targets, drugs, threshold, &local),
        single_visit: evaluate(probs, targets, drugs, threshold, &pick(&|e| !e.multi_visit)),
        multi_visit: evaluate(probs, targets, drugs, threshold, &pick(&|e| e.multi_visit)),
        by_source: sources
            .into_iter()
            .map(|s| {
                (
                    s.to_string(),
                    evaluate(probs, targets, drugs, threshold, &pick(&|e| e.source == s)),
                )
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub model: &'static str,
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_prauc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MedRecReport {
    pub admissions: [usize; 3],
    pub patients_test: usize,
    pub vocabulary: [usize; 3],
    /// Test-split drug labels outside the vocabulary (they count as misses).
    pub unseen_test_drugs: usize,
    pub teacher_mode: TeacherMode,
    pub threshold: f32,
    pub student: GroupMetrics,
    /// The most-frequent-drugs baseline on the same test admissions: each drug scored by its
    /// share of the training admissions, the cut chosen on validation.
    pub most_frequent: GroupMetrics,
    /// The teacher on the same test admissions, where it has logits over the same drugs.
    pub teacher: Option<GroupMetrics>,
    pub teacher_threshold: Option<f32>,
    pub student_parameters: usize,
    pub teacher_parameters: Option<usize>,
    pub history: Vec<EpochRecord>,
    /// Wall time and peak memory of the teacher and the student.
    pub usage: Vec<Usage>,
    pub seconds: f64,
}

/// training.png: each model's training loss and validation PRAUC by epoch.
pub(super) fn plot_history(history: &[EpochRecord], path: &Path) -> Result<()> {
    use crate::measure::plots::{Axis, Line, line_chart, padded, value_axis};
    let mut lines = Vec::new();
    for model in ["teacher", "student"] {
        let epochs: Vec<&EpochRecord> = history.iter().filter(|e| e.model == model).collect();
        if !epochs.is_empty() {
            lines.push(Line::new(
                format!("{model}: training loss"),
                epochs
                    .iter()
                    .map(|e| ((e.epoch + 1) as f64, e.train_loss))
                    .collect(),
            ));
            lines.push(Line::new(
                format!("{model}: validation PRAUC"),
                epochs
                    .iter()
                    .map(|e| ((e.epoch + 1) as f64, e.validation_prauc))
                    .collect(),
            ));
        }
    }
    let x = Axis {
        label: "epoch",
        range: padded(history.iter().map(|e| (e.epoch + 1) as f64)),
    };
    let y = value_axis(&lines, &[0.0]);
    line_chart(
        path,
        "Medication recommendation: training and validation",
        x,
        y,
        &lines,
        false,
    )
}

pub(super) fn markdown(report: &MedRecReport) -> String {
    let row = |name: &str, m: &MedicationMetrics| {
        format!(
            "| {name} | {} | {:.3} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.3} | {:.2} |\n",
            m.n,
            m.jaccard,
            m.jaccard_ci95.0,
            m.jaccard_ci95.1,
            m.prauc,
            m.f1,
            m.ddi_rate,
            m.mean_drugs
        )
    };
    let mut text = format!(
        "Medication recommendation (LEADER), test split: {} admissions of {} patients; teacher {}; threshold {:.2}\n\n\
         | model / group | n | Jaccard (95% CI) | PRAUC | F1 | DDI rate | drugs |\n|---|---|---|---|---|---|---|\n",
        report.admissions[2], report.patients_test, report.teacher_mode, report.threshold
    );
    let mut groups = |model: &str, g: &GroupMetrics| {
        text.push_str(&row(&format!("{model} overall"), &g.overall));
        text.push_str(&row(&format!("{model} single-visit"), &g.single_visit));
        text.push_str(&row(&format!("{model} multi-visit"), &g.multi_visit));
        for (source, m) in &g.by_source {
            text.push_str(&row(&format!("{model} {source}"), m));
        }
    };
    groups("student", &report.student);
    groups("most frequent", &report.most_frequent);
    if let Some(t) = &report.teacher {
        groups("teacher", t);
    }
    text + &crate::measure::usage::markdown(&report.usage)
}
