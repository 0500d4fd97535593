//! MIMIC-IV reader (`hosp/`, and `icu/` and MIMIC-IV-Note's `note/` where present; lower-case
//! headers, `.csv.gz` or `.csv`): one PatientRecord per admission with the first `hours` hours of
//! its window — from its first ICU stay's `intime` where it has one (`icu/icustays`; the record
//! says so in `window_start`), else from `admittime` — holding its labs (by `d_labitems` item id,
//! see [`MIMIC_IV_LAB_ITEMS`]), its charted vital signs (`icu/chartevents`, MetaVision item ids as
//! the MIMIC-III reader reads them, units converted by the record reader: °F → °C, ...) and its
//! urine output (`icu/outputevents`, the urine items); its discharge summaries (without the
//! sections that list the diagnoses, which are the labels: [`crate::notes::without_diagnoses`])
//! and the radiology reports of its window as notes; its ICD-9/ICD-10 diagnoses as phenotype
//! labels (ICD-10 through the GEMs), procedures, and ATC-3 medications from prescriptions (GSN,
//! else NDC, through `gsn_atc_ndc_mapping.csv.gz`); earlier admissions of the same patient come
//! first as visits.

use super::admissions::{Admissions, sex_of};
use super::events::{chart_event, urine_item};
use super::items::{Item, Items, record};
use super::table::{for_each_row, prescriptions_to_atc3, table};
use super::{Options, Summary};
use anyhow::Result;
use bedside::knowledge::{MIMIC_IV_LAB_ITEMS, normalise_code};
use bedside::record::{Note, PatientRecord, Sex};
use std::collections::HashMap;
use std::path::Path;

/// `dir`: the MIMIC-IV root (with `hosp/`) or `hosp/` itself; `atc`: `gsn_atc_ndc_mapping.csv.gz`.
pub fn read(
    dir: &Path,
    atc: Option<&Path>,
    hours: usize,
    summary: &mut Summary,
) -> Result<Vec<PatientRecord>> {
    let options = Options {
        atc: atc.map(Path::to_path_buf),
        hours,
        ..Options::default()
    };
    read_with(dir, &options, summary)
}

/// [`stream`] into a vector.
pub fn read_with(
    dir: &Path,
    options: &Options,
    summary: &mut Summary,
) -> Result<Vec<PatientRecord>> {
    crate::collect(|sink| stream(dir, options, summary, sink))
}

/// Reads the cohort and hands each record to `sink`, in patient and time order, holding at most
/// [`Options::bucket_admissions`] admissions' rows in memory ([`crate::items`]).
pub fn stream(
    dir: &Path,
    options: &Options,
    summary: &mut Summary,
    sink: impl FnMut(PatientRecord) -> Result<()>,
) -> Result<()> {
    // `icu/` and `note/` sit beside `hosp/` (given the root, or `hosp/` by its name)
    let (hosp, root) = if dir.join("hosp").is_dir() {
        (dir.join("hosp"), Some(dir.to_path_buf()))
    } else {
        let root = (dir.file_name().is_some_and(|n| n == "hosp"))
            .then(|| dir.parent().map(Path::to_path_buf))
            .flatten();
        (dir.to_path_buf(), root)
    };
    let icu = root.as_ref().map(|r| r.join("icu")).filter(|d| d.is_dir());
    let notes_dir = options
        .notes
        .clone()
        .or_else(|| root.as_ref().map(|r| r.join("note")))
        .filter(|d| d.is_dir());

    let patients = patients(&hosp, summary)?;
    let stays = icu
        .as_deref()
        .map(|icu| table(icu, "icustays"))
        .transpose()?;
    let admissions = Admissions::read(
        &table(&hosp, "admissions")?,
        [
            "subject_id",
            "hadm_id",
            "admittime",
            "dischtime",
            "hospital_expire_flag",
        ],
        stays
            .as_deref()
            .map(|path| (path, ["hadm_id", "first_careunit", "intime", "stay_id"])),
        options.hours,
        summary,
    )?;
    let mut items = Items::new(
        &admissions,
        options.bucket_admissions,
        options.spill.as_deref(),
    )?;
    events(&hosp, icu.as_deref(), &admissions, &mut items, summary)?;
    if let Some(dir) = &notes_dir {
        notes(dir, options, &admissions, &mut items, summary)?;
    }
    codes(&hosp, options, &admissions, &mut items, summary)?;

    items.records(
        &admissions,
        summary,
        |a, gathered, history| {
            let (sex, anchor_age, anchor_year) = patients
                .get(&a.subject)
                .cloned()
                .unwrap_or((None, None, None));
            let age = anchor_age
                .zip(anchor_year)
                .map(|(age, year)| age + (chrono::Datelike::year(&a.admit) - year) as f64);
            record("mimic4", a, gathered, history, age, sex)
        },
        sink,
    )
}

/// subject_id → (sex, anchor_age, anchor_year)
type Patient = (Option<Sex>, Option<f64>, Option<i32>);

/// `hosp/patients`.
fn patients(hosp: &Path, summary: &mut Summary) -> Result<HashMap<String, Patient>> {
    let mut patients: HashMap<String, Patient> = HashMap::new();
    for_each_row(
        &table(hosp, "patients")?,
        &["subject_id", "gender", "anchor_age", "anchor_year"],
        summary,
        |f, _, _| {
            let sex = sex_of(f[1]);
            patients.insert(
                f[0].to_string(),
                (sex, f[2].parse().ok(), f[3].parse().ok()),
            );
        },
    )?;
    Ok(patients)
}

/// The observations of every window: labs (`hosp/labevents`), charted vital signs
/// (`icu/chartevents`) and urine output (`icu/outputevents`).
fn events(
    hosp: &Path,
    icu: Option<&Path>,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    let lab_items: HashMap<u32, &str> = MIMIC_IV_LAB_ITEMS.iter().copied().collect();
    for_each_row(
        &table(hosp, "labevents")?,
        &["hadm_id", "itemid", "charttime", "valuenum", "valueuom"],
        summary,
        |f, at, s| {
            let Some(channel) = f[1].parse::<u32>().ok().and_then(|i| lab_items.get(&i)) else {
                return;
            };
            if f[0].is_empty() {
                return s.skip(
                    "lab outside any admission (no hadm_id; not an error)",
                    || at.to_string(),
                );
            }
            if let Some((a, hours)) = admissions.place(s, at, admissions.find(f[0], ""), f[2]) {
                items.push(
                    a,
                    Item::observation(channel, hours, f[3].parse().ok(), f[4]),
                );
            }
        },
    )?;
    if let Some(icu) = icu {
        // vital signs: absent from the public demo, present in credentialed MIMIC-IV
        if let Ok(path) = table(icu, "chartevents") {
            let columns = [
                "hadm_id",
                "itemid",
                "charttime",
                "valuenum",
                "value",
                "stay_id",
            ];
            for_each_row(&path, &columns, summary, |f, at, s| {
                let Some((channel, value, unit)) = chart_event(f[1], f[3], f[4]) else {
                    return;
                };
                let a = admissions.find(f[0], f[5]);
                if let Some((a, hours)) = admissions.place(s, at, a, f[2]) {
                    items.push(a, Item::observation(channel, hours, value, unit));
                }
            })?;
        }
        if let Ok(path) = table(icu, "outputevents") {
            let columns = ["hadm_id", "itemid", "charttime", "value", "stay_id"];
            for_each_row(&path, &columns, summary, |f, at, s| {
                let Some(unit) = urine_item(f[1]) else {
                    return;
                };
                let a = admissions.find(f[0], f[4]);
                if let Some((a, hours)) = admissions.place(s, at, a, f[2]) {
                    let value = f[3].parse().ok();
                    items.push(a, Item::observation("urine_output", hours, value, unit));
                }
            })?;
        }
    }
    Ok(())
}

/// MIMIC-IV-Note: discharge summaries (without their diagnosis sections unless kept) and the
/// radiology reports of each window.
fn notes(
    dir: &Path,
    options: &Options,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    if let Ok(path) = table(dir, "discharge") {
        let columns = ["hadm_id", "charttime", "text"];
        for_each_row(&path, &columns, summary, |f, at, s| {
            let Some(a) = admissions
                .find(f[0], "")
                .filter(|&a| admissions.hours_at(a, f[1]).is_some())
            else {
                return s.skip(
                    "discharge summary with an unknown hadm_id or an unreadable charttime",
                    || at.to_string(),
                );
            };
            let text = match options.keep_diagnoses {
                true => f[2].to_string(),
                false => {
                    let (text, cut) = crate::notes::without_diagnoses(f[2]);
                    s.stripped_note_sections += cut;
                    text
                }
            };
            items.push(
                a,
                Item::Note(Note {
                    reference: None,
                    kind: "discharge_summary".into(),
                    text,
                    hours: None,
                }),
            );
        })?;
    }
    // a report without hadm_id (many are: outpatient imaging) belongs to the patient's
    // admission whose window holds its time, where one does
    if let Ok(path) = table(dir, "radiology") {
        let columns = ["hadm_id", "charttime", "text", "subject_id"];
        for_each_row(&path, &columns, summary, |f, at, s| {
            let inside = |a: u32| {
                admissions
                    .hours_at(a, f[1])
                    .filter(|&h| admissions.inside(h))
                    .map(|h| (a, h))
            };
            let known = admissions.find(f[0], "");
            let placed = match f[0].is_empty() {
                false => known.and_then(inside),
                true => admissions.of_subject(f[3]).find_map(inside),
            };
            match placed {
                Some((a, h)) => items.push(
                    a,
                    Item::Note(Note {
                        reference: None,
                        kind: "radiology".into(),
                        text: f[2].to_string(),
                        hours: Some(h),
                    }),
                ),
                None if !f[0].is_empty()
                    && known.and_then(|a| admissions.hours_at(a, f[1])).is_none() =>
                {
                    s.skip(
                        "radiology report with an unknown hadm_id or an unreadable charttime",
                        || at.to_string(),
                    )
                }
                None => {} // outside every window of the patient's admissions
            }
        })?;
    }
    Ok(())
}

/// Diagnoses (the labels), procedures and, given the ATC table, medications.
fn codes(
    hosp: &Path,
    options: &Options,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    for_each_row(
        &table(hosp, "diagnoses_icd")?,
        &["hadm_id", "seq_num", "icd_code", "icd_version"],
        summary,
        |f, at, s| {
            let version = match f[3] {
                "9" => 9,
                "10" => 10,
                _ => return s.skip("diagnosis with an unknown icd_version", || at.to_string()),
            };
            if f[2].is_empty() {
                return s.skip("diagnosis without an icd_code", || at.to_string());
            }
            if let Some(a) = admissions.find(f[0], "") {
                let seq = f[1].parse().unwrap_or(u32::MAX);
                items.push(a, Item::Diagnosis(seq, normalise_code(f[2]), version));
            }
        },
    )?;
    for_each_row(
        &table(hosp, "procedures_icd")?,
        &["hadm_id", "icd_code", "icd_version", "seq_num"],
        summary,
        |f, at, s| {
            if f[1].is_empty() {
                return s.skip("procedure without an icd_code", || at.to_string());
            }
            if let Some(a) = admissions.find(f[0], "") {
                let code = format!("icd{}:{}", f[2], normalise_code(f[1]));
                items.push(a, Item::Procedure(f[3].parse().unwrap_or(u32::MAX), code));
            }
        },
    )?;
    if let Some(atc) = &options.atc {
        prescriptions_to_atc3(
            &table(hosp, "prescriptions")?,
            atc,
            summary,
            |hadm, atc3| {
                if let Some(a) = admissions.find(hadm, "") {
                    items.push(a, Item::Medication(atc3.to_string()));
                }
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::values as value;
    use bedside::record::WindowStart;

    #[test]
    fn the_mimic_iv_demo() {
        let Some(dir) = bedside::test_layers::shared_data("mimic-iv-demo") else {
            return;
        };
        let data = dir.parent().unwrap().to_path_buf();
        let mut summary = Summary::new("mimic4");
        let records = read(
            &dir,
            Some(&data.join("medrec/gsn_atc_ndc_mapping.csv.gz")),
            48,
            &mut summary,
        )
        .unwrap();
        assert_eq!(records.len(), 275, "{}", summary.table());
        assert_eq!(summary.patients, 100);
        for r in &records {
            r.validate().unwrap();
            assert!(
                r.observations
                    .iter()
                    .all(|o| (0.0..48.0).contains(&o.hours))
            );
        }
        // visits accumulate per patient, oldest first, the current admission last
        let multi = records.iter().filter(|r| r.visits.len() > 1).count();
        assert!(multi > 100, "{multi} admissions with history");
        assert!(summary.label_prevalence.values().any(|p| *p > 0.2));
        assert!(summary.channel_coverage["creatinine"] > 0.5);
        let atc = summary.prescription_rows_to_atc3.unwrap();
        assert!(atc > 0.5, "only {atc} of prescription rows reach ATC-3");
        // icu/: the admissions with an ICU stay are windowed from it and carry its care unit
        // and urine output
        let icu: Vec<&PatientRecord> = records
            .iter()
            .filter(|r| r.window_start == Some(WindowStart::IcuAdmission))
            .collect();
        assert_eq!(summary.windows["icu_admission"], icu.len());
        assert!(icu.len() > 100, "{} ICU admissions", icu.len());
        assert!(icu.iter().all(|r| r.demographics.care_unit.is_some()));
        let urine = icu
            .iter()
            .filter(|r| r.observations.iter().any(|o| o.channel == "urine_output"))
            .count();
        assert!(
            urine * 2 > icu.len(),
            "urine output in {urine} of {} ICU admissions",
            icu.len()
        );
    }

    /// `tests/fixtures/mimic4` follows MIMIC-IV's published column layouts (`hosp/`, `icu/` with
    /// `chartevents`, MIMIC-IV-Note's `note/`): one admission with an ICU stay that starts 6 h
    /// after it, one without.
    #[test]
    fn icu_stays_charts_urine_and_notes_in_the_published_layout() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mimic4");
        let mut summary = Summary::new("mimic4");
        let records = read(&dir, None, 48, &mut summary).unwrap();
        let [icu, ward] = records.as_slice() else {
            panic!("{} records", records.len())
        };
        assert_eq!(icu.window_start, Some(WindowStart::IcuAdmission));
        assert_eq!(ward.window_start, Some(WindowStart::HospitalAdmission));
        assert_eq!(
            icu.demographics.care_unit.as_deref(),
            Some("Medical Intensive Care Unit (MICU)")
        );
        // hours from the ICU's intime (14:00): the 09:00 lab and the 13:00 heart rate are before it
        assert_eq!(value(icu, "creatinine"), [(1.0, Some(2.4))]);
        assert_eq!(value(icu, "heart_rate"), [(1.0, Some(112.0))]);
        assert_eq!(
            value(icu, "mean_bp"),
            [(2.0, Some(61.0))],
            "a warning is not an error"
        );
        assert_eq!(
            value(icu, "fio2"),
            [(3.0, Some(0.5))],
            "FiO2 charted in percent"
        );
        assert_eq!(
            value(icu, "urine_output"),
            [(3.0, Some(35.0))],
            "urine, not a chest tube"
        );
        assert_eq!(value(ward, "creatinine"), [(2.0, Some(0.9))]);
        // a chart event with a stay_id and no hadm_id belongs to its stay's admission
        assert_eq!(value(icu, "resp_rate"), [(1.0, Some(24.0))]);
        // the temperature item is in °F: the record says so, and the model reads °C
        let fever = icu
            .observations
            .iter()
            .find(|o| o.channel == "temperature")
            .unwrap();
        assert_eq!(
            (fever.value, fever.unit.as_deref()),
            (Some(101.3), Some("[degF]"))
        );
        let (_, used) = bedside::record::read_observation(fever, 48);
        assert!((used.unwrap().value - 38.5).abs() < 0.01);
        // the discharge summary without its diagnosis list; the radiology report of the window
        let text = |r: &PatientRecord, kind: &str| -> Vec<String> {
            r.notes
                .iter()
                .filter(|n| n.kind == kind)
                .map(|n| n.text.clone())
                .collect()
        };
        let [discharge] = text(icu, "discharge_summary").try_into().unwrap();
        assert!(
            discharge.contains("broad-spectrum antibiotics"),
            "{discharge}"
        );
        assert!(discharge.contains("Mental Status"), "{discharge}");
        for label in ["Septic shock", "Acute kidney injury", "Discharge Diagnosis"] {
            assert!(!discharge.contains(label), "{label} left in: {discharge}");
        }
        // the report without hadm_id joins the admission whose window holds it; the outpatient
        // one months later joins none
        assert_eq!(
            text(icu, "radiology"),
            [
                "CHEST RADIOGRAPH: Right lower lobe opacity.",
                "CT HEAD: No acute process."
            ]
        );
        assert!(ward.notes.is_empty());
        assert_eq!(summary.stripped_note_sections, 1);
        assert_eq!(summary.windows["icu_admission"], 1);
        assert_eq!(summary.windows["hospital_admission"], 1);
        for r in &records {
            r.validate().unwrap();
        }
        // on request the list stays (for those who know why)
        let options = Options {
            hours: 48,
            keep_diagnoses: true,
            ..Options::default()
        };
        let kept = read_with(&dir, &options, &mut Summary::new("mimic4")).unwrap();
        assert!(
            kept[0]
                .notes
                .iter()
                .any(|n| n.text.contains("Septic shock"))
        );
    }
}
