//! The admissions a MIMIC reader knows before it reads any event row: ordered by patient and
//! time, each with the start of its window — its first ICU stay's intime where it has one, else
//! its hospital admission (both MIMIC-III and MIMIC-IV) — so that every event row is placed in its
//! admission's window, or skipped with its reason, the moment it is read.

use crate::Summary;
use crate::table::{for_each_row, time};
use anyhow::Result;
use bedside::record::{Sex, WindowStart};
use chrono::NaiveDateTime;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

/// The sex a MIMIC `gender` column codes ("F", "M"; anything else unknown), in both versions.
pub(crate) fn sex_of(gender: &str) -> Option<Sex> {
    match gender {
        "F" => Some(Sex::Female),
        "M" => Some(Sex::Male),
        _ => None,
    }
}

/// One hospital admission, as the admissions and ICU stays tables give it.
#[derive(Debug, Clone)]
pub struct Admission {
    pub hadm: String,
    pub subject: String,
    pub admit: NaiveDateTime,
    pub discharge: Option<NaiveDateTime>,
    pub death: Option<bool>,
    /// The first ICU stay: its intime and its first care unit.
    pub icu: Option<(NaiveDateTime, String)>,
}

impl Admission {
    pub fn window_start(&self) -> NaiveDateTime {
        self.icu.as_ref().map_or(self.admit, |(intime, _)| *intime)
    }

    pub fn window_kind(&self) -> WindowStart {
        match self.icu {
            Some(_) => WindowStart::IcuAdmission,
            None => WindowStart::HospitalAdmission,
        }
    }
}

/// The admissions of a cohort by patient and time, found by `hadm_id`, by ICU `stay_id` and by
/// patient; an admission is named by its position (`u32`) everywhere else.
pub struct Admissions {
    pub list: Vec<Admission>,
    hours: usize,
    index: HashMap<String, u32>,
    of_stay: HashMap<String, u32>,
    of_subject: HashMap<String, Range<u32>>,
}

impl Admissions {
    /// Reads an admissions table (MIMIC-III's `ADMISSIONS`, MIMIC-IV's `hosp/admissions`) and,
    /// where there is one, its ICU stays table; `columns` and `stay_columns` name the columns as
    /// the source spells them: subject, admission, admit time, discharge time, death flag; and
    /// admission, first care unit, intime, stay. An admission listed twice keeps its first row;
    /// one without an id or a readable admit time is skipped, with the columns named.
    pub fn read(
        table: &Path,
        columns: [&str; 5],
        stays: Option<(&Path, [&str; 4])>,
        hours: usize,
        summary: &mut Summary,
    ) -> Result<Self> {
        let mut list = Vec::new();
        let mut seen = HashSet::new();
        let unusable = format!("admission without {} or {}", columns[1], columns[2]);
        for_each_row(table, &columns, summary, |f, at, s| match time(f[2]) {
            Some(_) if !f[1].is_empty() && !seen.insert(f[1].to_string()) => s
                .skip("admission listed twice (the first row kept)", || {
                    at.to_string()
                }),
            Some(admit) if !f[1].is_empty() => list.push(Admission {
                hadm: f[1].to_string(),
                subject: f[0].to_string(),
                admit,
                discharge: time(f[3]),
                death: f[4].parse::<u8>().ok().map(|d| d == 1),
                icu: None,
            }),
            _ => s.skip(&unusable, || at.to_string()),
        })?;
        let mut admissions = Self::new(list, hours);
        if let Some((path, columns)) = stays {
            let unreadable = format!("ICU stay without a readable {}", columns[2]);
            for_each_row(path, &columns, summary, |f, at, s| match time(f[2]) {
                Some(intime) => admissions.add_stay(f[0], f[3], intime, f[1]),
                None => s.skip(&unreadable, || at.to_string()),
            })?;
        }
        Ok(admissions)
    }

    /// `list` in any order; windows of `hours` hours.
    pub fn new(mut list: Vec<Admission>, hours: usize) -> Self {
        list.sort_by(|a, b| (&a.subject, a.admit).cmp(&(&b.subject, b.admit)));
        let index = (0u32..)
            .zip(&list)
            .map(|(i, a)| (a.hadm.clone(), i))
            .collect();
        let mut of_subject: HashMap<String, Range<u32>> = HashMap::new();
        for (i, a) in (0u32..).zip(&list) {
            of_subject
                .entry(a.subject.clone())
                .and_modify(|r| r.end = i + 1)
                .or_insert(i..i + 1);
        }
        Self {
            list,
            hours,
            index,
            of_stay: HashMap::new(),
            of_subject,
        }
    }

    /// An ICU stay of admission `hadm`: the earliest one sets the window and the care unit.
    pub fn add_stay(&mut self, hadm: &str, stay: &str, intime: NaiveDateTime, unit: &str) {
        let Some(&a) = self.index.get(hadm) else {
            return;
        };
        self.of_stay.insert(stay.to_string(), a);
        let icu = &mut self.list[a as usize].icu;
        if icu.as_ref().is_none_or(|(first, _)| intime < *first) {
            *icu = Some((intime, unit.to_string()));
        }
    }

    /// The admission of `hadm_id`, else (for ICU tables, whose rows may lack it) of `stay_id`.
    pub fn find(&self, hadm: &str, stay: &str) -> Option<u32> {
        match hadm.is_empty() {
            false => self.index.get(hadm).copied(),
            true => self.of_stay.get(stay).copied(),
        }
    }

    /// A patient's admissions (empty for an unknown one).
    pub fn of_subject(&self, subject: &str) -> Range<u32> {
        self.of_subject.get(subject).cloned().unwrap_or(0..0)
    }

    /// Hours since admission `a`'s window start at `time` (as the tables write it), where readable.
    pub fn hours_at(&self, a: u32, time: &str) -> Option<f64> {
        let time = crate::table::time(time)?;
        let start = self.list[a as usize].window_start();
        Some((time - start).num_seconds() as f64 / 3600.0)
    }

    /// The admission and hours of an event of admission `a` charted at `chart`, where inside
    /// the window; an unknown admission or an unreadable time is counted in the summary, an
    /// event outside the window is left out.
    pub fn place(
        &self,
        summary: &mut Summary,
        at: &str,
        a: Option<u32>,
        chart: &str,
    ) -> Option<(u32, f64)> {
        let Some((a, hours)) = a.and_then(|a| Some((a, self.hours_at(a, chart)?))) else {
            summary.skip(
                "event with an unknown admission id or an unreadable chart time",
                || at.to_string(),
            );
            return None;
        };
        self.inside(hours).then_some((a, hours))
    }

    /// Whether `hours` falls in the window.
    pub fn inside(&self, hours: f64) -> bool {
        (0.0..self.hours as f64).contains(&hours)
    }
}
