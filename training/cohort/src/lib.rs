//! Cohort extraction: MIMIC-III, MIMIC-IV and PhysioNet 2012 → PatientRecords, and the summary
//! every run prints and writes. The readers are a crate of their own, not part of the library
//! (the browser bundle stays small) nor of bedside-train (the CSV fuzz target links them without
//! the training stack).

pub mod admissions;
pub mod events;
pub mod items;
pub mod mimic3;
pub mod mimic4;
pub mod notes;
pub mod physionet2012;
pub mod table;

use bedside::PatientRecord;
use bedside::knowledge::{CHANNELS, PHENOTYPES, channel_index};
use serde::Serialize;
use std::collections::BTreeMap;

/// The records a streaming reader hands its sink, in a vector (for tests and cohorts that fit).
pub fn collect(
    read: impl FnOnce(&mut dyn FnMut(PatientRecord) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<PatientRecord>> {
    let mut records = Vec::new();
    read(&mut |r| {
        records.push(r);
        Ok(())
    })?;
    Ok(records)
}

/// What a MIMIC reader reads besides the tables it always reads, and where it may spill.
#[derive(Debug, Clone)]
pub struct Options {
    /// `gsn_atc_ndc_mapping.csv.gz`, for the medications.
    pub atc: Option<std::path::PathBuf>,
    /// Hours of each window.
    pub hours: usize,
    /// MIMIC-IV-Note's `note/` directory (`discharge`, `radiology`); absent: `note/` beside
    /// `hosp/`, where there is one.
    pub notes: Option<std::path::PathBuf>,
    /// Keep MIMIC-IV discharge summaries' diagnosis sections (they name the labels).
    pub keep_diagnoses: bool,
    /// Where a cohort too large for memory spills (default: the system's temporary directory).
    pub spill: Option<std::path::PathBuf>,
    /// Admissions held in memory at once (see [`items::BUCKET_ADMISSIONS`]).
    pub bucket_admissions: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            atc: None,
            hours: 48,
            notes: None,
            keep_diagnoses: false,
            spill: None,
            bucket_admissions: items::BUCKET_ADMISSIONS,
        }
    }
}

/// What a cohort run produced and what it had to skip.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub source: String,
    pub patients: usize,
    pub admissions: usize,
    pub observations: usize,
    /// Share of admissions with at least one value of each channel.
    pub channel_coverage: BTreeMap<String, f64>,
    /// Share of admissions labelled with each phenotype (where the source has labels).
    pub label_prevalence: BTreeMap<String, f64>,
    /// Share of admissions that died in hospital (where the source says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_hospital_mortality: Option<f64>,
    /// Share of prescription rows that reach an ATC-3 code (where the source has prescriptions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prescription_rows_to_atc3: Option<f64>,
    /// Records or rows skipped, by reason, with a few examples naming file and line.
    pub skipped: BTreeMap<String, Skipped>,
    /// Sections of discharge summaries cut because they list diagnoses (MIMIC-IV).
    #[serde(skip_serializing_if = "is_zero")]
    pub stripped_note_sections: usize,
    /// Records by what hour 0 is (`window_start`), where the source says.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, usize>,
    #[serde(skip)]
    tally: Tally,
}

/// Counts over the records seen so far, for the shares [`Summary::finish`] fills.
#[derive(Debug, Clone, Default)]
struct Tally {
    with_channel: Vec<usize>,
    with_label: Vec<usize>,
    labelled: bool,
    deaths: usize,
    outcomes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Skipped {
    pub count: usize,
    pub examples: Vec<String>,
}

impl Summary {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Counts one skipped item; keeps the first five examples.
    pub fn skip(&mut self, reason: &str, example: impl FnOnce() -> String) {
        let entry = self.skipped.entry(reason.to_string()).or_default();
        entry.count += 1;
        if entry.examples.len() < 5 {
            entry.examples.push(example());
        }
    }

    /// Fills the counts and shares from the records.
    pub fn describe(&mut self, records: &[PatientRecord], patients: usize) {
        records.iter().for_each(|r| self.add(r));
        self.finish(patients);
    }

    /// Counts one record (records stream through: a cohort need not fit in memory).
    pub fn add(&mut self, r: &PatientRecord) {
        let t = &mut self.tally;
        t.with_channel.resize(CHANNELS.len(), 0);
        t.with_label.resize(PHENOTYPES.len(), 0);
        self.admissions += 1;
        self.observations += r.observations.len();
        if let Some(start) = r.window_start {
            let name = match start {
                bedside::record::WindowStart::HospitalAdmission => "hospital_admission",
                bedside::record::WindowStart::IcuAdmission => "icu_admission",
            };
            *self.windows.entry(name.to_string()).or_default() += 1;
        }
        let mut seen = vec![false; CHANNELS.len()];
        for o in r.observations.iter().filter(|o| o.value.is_some()) {
            if let Some(c) = channel_index(&o.channel) {
                seen[c] = true;
            }
        }
        t.with_channel
            .iter_mut()
            .zip(seen)
            .for_each(|(w, s)| *w += s as usize);
        if let Some(labels) = &r.labels {
            t.labelled |= !labels.phenotypes.is_empty();
            for (p, with) in PHENOTYPES.iter().zip(&mut t.with_label) {
                *with += labels.phenotypes.iter().any(|x| x == p.name) as usize;
            }
            if let Some(death) = labels.outcomes.as_ref().and_then(|o| o.in_hospital_death) {
                t.outcomes += 1;
                t.deaths += death as usize;
            }
        }
    }

    /// The shares, from the records counted by [`Summary::add`].
    pub fn finish(&mut self, patients: usize) {
        self.tally.with_channel.resize(CHANNELS.len(), 0);
        self.tally.with_label.resize(PHENOTYPES.len(), 0);
        let t = &self.tally;
        let n = self.admissions.max(1) as f64;
        self.patients = patients;
        for (channel, with) in CHANNELS.iter().zip(&t.with_channel) {
            self.channel_coverage
                .insert(channel.name.to_string(), *with as f64 / n);
        }
        if t.labelled {
            for (p, with) in PHENOTYPES.iter().zip(&t.with_label) {
                self.label_prevalence
                    .insert(p.name.to_string(), *with as f64 / n);
            }
        }
        if t.outcomes > 0 {
            self.in_hospital_mortality = Some(t.deaths as f64 / t.outcomes as f64);
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "source {}: {} patients, {} admissions, {} observations\n",
            self.source, self.patients, self.admissions, self.observations
        );
        if let Some(m) = self.in_hospital_mortality {
            out += &format!("in-hospital mortality {:.1}%\n", 100.0 * m);
        }
        if let Some(m) = self.prescription_rows_to_atc3 {
            out += &format!(
                "prescription rows reaching an ATC-3 code {:.1}%\n",
                100.0 * m
            );
        }
        for (start, n) in &self.windows {
            let start = start.replace('_', " ").replace("icu", "ICU");
            out += &format!("windows starting at the {start}: {n}\n");
        }
        if self.stripped_note_sections > 0 {
            out += &format!(
                "discharge-summary sections listing diagnoses cut: {}\n",
                self.stripped_note_sections
            );
        }
        out += "channel coverage (share of admissions with a value):\n";
        for (name, share) in &self.channel_coverage {
            out += &format!("  {name:<18} {:>5.1}%\n", 100.0 * share);
        }
        if !self.label_prevalence.is_empty() {
            out += "label prevalence:\n";
            for (name, share) in &self.label_prevalence {
                out += &format!("  {:>5.1}%  {name}\n", 100.0 * share);
            }
        }
        if self.skipped.is_empty() {
            out += "nothing skipped\n";
        }
        for (reason, s) in &self.skipped {
            out += &format!(
                "skipped {} × {reason}, e.g. {}\n",
                s.count,
                s.examples.join("; ")
            );
        }
        out
    }
}
