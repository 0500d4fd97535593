//! MIMIC-III v1.4 reader (upper-case table names and headers, `.csv.gz` or `.csv`): one
//! PatientRecord per admission with the first `hours` hours of vitals (CHARTEVENTS, CareVue and
//! MetaVision item ids of the MIMIC-III benchmark), labs (LABEVENTS), urine output (OUTPUTEVENTS,
//! the benchmark map's urine items) and mechanical ventilation (CHARTEVENTS, as mimic-code's
//! ventilation classification marks a ventilated hour), hours from the first ICU stay's INTIME
//! where the admission has one, else from ADMITTIME (as MIMIC-IV; the record's `window_start`
//! says which);
//! DIAGNOSES_ICD (ICD-9-CM) → phenotype labels; PROCEDURES_ICD; PRESCRIPTIONS (GSN, else NDC,
//! → ATC-3 through `gsn_atc_ndc_mapping.csv.gz`); the discharge summary's "Brief Hospital Course"
//! (NOTEEVENTS; the rest of the summary names the discharge diagnoses, which would leak the
//! labels); the first ICU stay's care unit; each patient's admissions in time order as visits.

use super::admissions::{Admissions, sex_of};
use super::events::{chart_event, urine_item};
use super::items::{Item, Items, record};
use super::notes::brief_hospital_course;
use super::table::{for_each_row, prescriptions_to_atc3, table, time};
use super::{Options, Summary};
use anyhow::Result;
use bedside::knowledge::{mimic3_item, normalise_code};
use bedside::record::{Note, PatientRecord, Sex};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::path::Path;

/// `dir`: the MIMIC-III directory; `atc`: `gsn_atc_ndc_mapping.csv.gz`.
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
    crate::collect(|sink| stream(dir, &options, summary, sink))
}

/// Reads the cohort and hands each record to `sink`, in patient and time order, holding at most
/// [`Options::bucket_admissions`] admissions' rows in memory ([`crate::items`]).
pub fn stream(
    dir: &Path,
    options: &Options,
    summary: &mut Summary,
    sink: impl FnMut(PatientRecord) -> Result<()>,
) -> Result<()> {
    let patients = patients(dir, summary)?;
    let admissions = Admissions::read(
        &table(dir, "ADMISSIONS")?,
        [
            "SUBJECT_ID",
            "HADM_ID",
            "ADMITTIME",
            "DISCHTIME",
            "HOSPITAL_EXPIRE_FLAG",
        ],
        Some((
            &table(dir, "ICUSTAYS")?,
            ["HADM_ID", "FIRST_CAREUNIT", "INTIME", "ICUSTAY_ID"],
        )),
        options.hours,
        summary,
    )?;
    let mut items = Items::new(
        &admissions,
        options.bucket_admissions,
        options.spill.as_deref(),
    )?;

    events(dir, &admissions, &mut items, summary)?;
    codes(dir, options, &admissions, &mut items, summary)?;
    notes(dir, &admissions, &mut items, summary)?;

    items.records(
        &admissions,
        summary,
        |a, gathered, history| {
            let (sex, dob) = patients.get(&a.subject).cloned().unwrap_or((None, None));
            // MIMIC-III shifts the birth dates of patients older than 89 by 300 years
            let age = dob
                .map(|dob| (a.admit - dob).num_days() as f64 / 365.25)
                .map(|age| if age >= 200.0 { 90.0 } else { age.floor() });
            record("mimic3", a, gathered, history, age, sex)
        },
        sink,
    )
}

/// subject_id → (sex, date of birth)
type Patient = (Option<Sex>, Option<NaiveDateTime>);

/// PATIENTS.
fn patients(dir: &Path, summary: &mut Summary) -> Result<HashMap<String, Patient>> {
    let mut patients: HashMap<String, Patient> = HashMap::new();
    for_each_row(
        &table(dir, "PATIENTS")?,
        &["SUBJECT_ID", "GENDER", "DOB"],
        summary,
        |f, _, _| {
            let sex = sex_of(f[1]);
            patients.insert(f[0].to_string(), (sex, time(f[2])));
        },
    )?;
    Ok(patients)
}

/// The observations of every window: LABEVENTS, CHARTEVENTS (vital signs, ventilation) and
/// OUTPUTEVENTS (urine).
fn events(
    dir: &Path,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    // each event: an observation of its admission's window
    for_each_row(
        &table(dir, "LABEVENTS")?,
        &["HADM_ID", "ITEMID", "CHARTTIME", "VALUENUM", "VALUEUOM"],
        summary,
        |f, at, s| {
            let Some((channel, unit)) = f[1].parse::<u32>().ok().and_then(mimic3_item) else {
                return;
            };
            if f[0].is_empty() {
                return s.skip(
                    "lab outside any admission (no HADM_ID; not an error)",
                    || at.to_string(),
                );
            }
            if let Some((a, hours)) = admissions.place(s, at, admissions.find(f[0], ""), f[2]) {
                let unit = if unit.is_empty() { f[4] } else { unit };
                items.push(
                    a,
                    Item::observation(channel, hours, f[3].parse().ok(), unit),
                );
            }
        },
    )?;
    for_each_row(
        &table(dir, "CHARTEVENTS")?,
        &[
            "HADM_ID",
            "ITEMID",
            "CHARTTIME",
            "VALUENUM",
            "VALUE",
            "ERROR",
            "ICUSTAY_ID",
        ],
        summary,
        |f, at, s| {
            let Some((channel, value, unit)) = chart_event(f[1], f[3], f[4]) else {
                return;
            };
            if f[5] == "1" {
                return s.skip("charted value marked as an error", || at.to_string());
            }
            let a = admissions.find(f[0], f[6]);
            if let Some((a, hours)) = admissions.place(s, at, a, f[2]) {
                items.push(a, Item::observation(channel, hours, value, unit));
            }
        },
    )?;
    for_each_row(
        &table(dir, "OUTPUTEVENTS")?,
        &[
            "HADM_ID",
            "ITEMID",
            "CHARTTIME",
            "VALUE",
            "ISERROR",
            "ICUSTAY_ID",
        ],
        summary,
        |f, at, s| {
            let Some(unit) = urine_item(f[1]) else {
                return;
            };
            if f[4] == "1" {
                return s.skip("output marked as an error", || at.to_string());
            }
            let a = admissions.find(f[0], f[5]);
            if let Some((a, hours)) = admissions.place(s, at, a, f[2]) {
                let value = f[3].parse().ok();
                items.push(a, Item::observation("urine_output", hours, value, unit));
            }
        },
    )?;
    Ok(())
}

/// Diagnoses (the labels), procedures and, given the ATC table, medications.
fn codes(
    dir: &Path,
    options: &Options,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    for_each_row(
        &table(dir, "DIAGNOSES_ICD")?,
        &["HADM_ID", "SEQ_NUM", "ICD9_CODE"],
        summary,
        |f, at, s| {
            if f[2].is_empty() {
                return s.skip("diagnosis without an ICD9_CODE", || at.to_string());
            }
            if let Some(a) = admissions.find(f[0], "") {
                let seq = f[1].parse().unwrap_or(u32::MAX);
                items.push(a, Item::Diagnosis(seq, normalise_code(f[2]), 9));
            }
        },
    )?;
    for_each_row(
        &table(dir, "PROCEDURES_ICD")?,
        &["HADM_ID", "SEQ_NUM", "ICD9_CODE"],
        summary,
        |f, at, s| {
            if f[2].is_empty() {
                return s.skip("procedure without an ICD9_CODE", || at.to_string());
            }
            if let Some(a) = admissions.find(f[0], "") {
                let code = format!("icd9:{}", normalise_code(f[2]));
                items.push(a, Item::Procedure(f[1].parse().unwrap_or(u32::MAX), code));
            }
        },
    )?;
    if let Some(atc) = &options.atc {
        prescriptions_to_atc3(&table(dir, "PRESCRIPTIONS")?, atc, summary, |hadm, atc3| {
            if let Some(a) = admissions.find(hadm, "") {
                items.push(a, Item::Medication(atc3.to_string()));
            }
        })?;
    }
    Ok(())
}

/// The discharge summaries' Brief Hospital Course (NOTEEVENTS).
fn notes(
    dir: &Path,
    admissions: &Admissions,
    items: &mut Items,
    summary: &mut Summary,
) -> Result<()> {
    if let Ok(path) = table(dir, "NOTEEVENTS") {
        for_each_row(
            &path,
            &["HADM_ID", "CATEGORY", "ISERROR", "TEXT"],
            summary,
            |f, at, s| {
                if !f[1].eq_ignore_ascii_case("Discharge summary") || f[2] == "1" || f[0].is_empty()
                {
                    return;
                }
                let Some(a) = admissions.find(f[0], "") else {
                    return;
                };
                match brief_hospital_course(f[3]) {
                    Some(text) => items.push(
                        a,
                        Item::Note(Note {
                            reference: None,
                            kind: "discharge_summary".into(),
                            text,
                            hours: None,
                        }),
                    ),
                    None => s.skip(
                        "discharge summary without a Brief Hospital Course section",
                        || at.to_string(),
                    ),
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
    use bedside::record::SeriesGrid;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mimic3")
    }

    fn atc() -> Option<std::path::PathBuf> {
        bedside::test_layers::shared_data("medrec/gsn_atc_ndc_mapping.csv.gz")
    }

    #[test]
    fn the_v1_4_fixtures_become_records() {
        let mut summary = Summary::new("mimic3");
        let records = read(&fixtures(), atc().as_deref(), 48, &mut summary).unwrap();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["mimic3-1001", "mimic3-1002", "mimic3-2001"],
            "each patient's admissions in time order"
        );
        let (a, b, c) = (&records[0], &records[1], &records[2]);
        for r in &records {
            r.validate().unwrap();
        }

        assert_eq!(a.demographics.age, Some(70.0));
        assert_eq!(
            a.demographics.care_unit.as_deref(),
            Some("MICU"),
            "the first ICU stay's unit"
        );
        assert_eq!(
            value(a, "creatinine"),
            [(2.0, Some(1.8)), (30.0, Some(2.6))],
            "the lab at 60 h is outside 48 h"
        );
        assert_eq!(value(a, "lactate"), [(3.0, Some(4.1))]);
        assert_eq!(
            value(a, "heart_rate"),
            [(1.0, Some(112.0))],
            "the ERROR=1 row is dropped"
        );
        assert_eq!(
            value(a, "gcs_verbal"),
            [(2.0, Some(4.0))],
            "CareVue text \"4 Confused\""
        );
        assert_eq!(value(a, "capillary_refill"), [(2.0, Some(1.0))]);
        assert_eq!(
            value(a, "fio2"),
            [(2.0, Some(0.5))],
            "a percentage becomes a fraction"
        );
        assert_eq!(a.observations.len(), 9);
        // °F and lb reach the grid converted to °C and kg
        let grid = SeriesGrid::from_record(a, 48);
        let kinds: Vec<(&str, &str)> = grid
            .notices
            .iter()
            .map(|n| (n.path.as_str(), n.kind))
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(
            kinds.iter().all(|(_, kind)| *kind == "unit_converted"),
            "the conversions are recorded: {kinds:?}"
        );
        for (name, hour, canonical) in [
            ("temperature", 1, (101.3 - 32.0) * 5.0 / 9.0),
            ("weight", 1, 154.0 * 0.453_592_37),
        ] {
            let c = bedside::knowledge::channel_index(name).unwrap();
            let expected = bedside::knowledge::CHANNELS[c].standardise(canonical) as f32;
            assert!(
                (grid.values[c * 48 + hour] - expected).abs() < 1e-5,
                "{name}"
            );
        }

        let labels = a.labels.as_ref().unwrap();
        assert_eq!(
            labels.phenotypes,
            [
                "Acute and unspecified renal failure",
                "Septicemia (except in labor)"
            ]
        );
        assert_eq!(a.visits.len(), 1);
        assert_eq!(
            a.visits[0].diagnoses,
            ["icd9:5849", "icd9:99591"],
            "by SEQ_NUM"
        );
        assert_eq!(a.visits[0].procedures, ["icd9:9604"]);
        assert_eq!(
            a.notes.len(),
            1,
            "the discharge summary; radiology is not used"
        );
        let note = &a.notes[0].text;
        assert!(
            note.starts_with("Pt admitted with fever") && note.ends_with("acute kidney injury."),
            "{note}"
        );
        assert!(
            !note.contains("Discharge Diagnosis") && !note.contains("Furosemide"),
            "only the Brief Hospital Course: {note}"
        );

        // admissions 1002 and 2001 reach the ICU an hour after the hospital: their hours count
        // from the ICU's INTIME, as MIMIC-IV's do
        assert_eq!(
            b.window_start,
            Some(bedside::record::WindowStart::IcuAdmission)
        );
        assert_eq!(
            value(b, "urine_output"),
            [(1.0, Some(350.0)), (2.0, None)],
            "OUTPUTEVENTS urine items; a chest tube's output is not urine"
        );
        assert_eq!(
            value(b, "mech_vent"),
            [(3.0, Some(1.0)), (4.0, Some(1.0)), (6.0, Some(1.0))],
            "a ventilator type, a tidal volume (1, not 450 ml) and the ventilator as O2 device; \
             neither \"Other/Remarks\" nor a nasal cannula"
        );
        assert_eq!(
            value(c, "mech_vent"),
            [(0.0, Some(1.0))],
            "mode, not \"Other\""
        );
        assert_eq!(
            value(c, "urine_output"),
            [(1.0, Some(40.0))],
            "ISERROR=1 dropped, day 60 outside 48 h"
        );
        assert_eq!(b.visits.len(), 2, "the earlier admission comes first");
        assert_eq!(b.visits[0], a.visits[0]);
        assert_eq!(
            b.labels.as_ref().unwrap().phenotypes,
            ["Congestive heart failure; nonhypertensive"]
        );

        assert_eq!(
            c.demographics.age,
            Some(90.0),
            "a shifted birth date means older than 89"
        );
        assert_eq!(
            c.labels
                .as_ref()
                .unwrap()
                .outcomes
                .as_ref()
                .unwrap()
                .in_hospital_death,
            Some(true)
        );
        assert_eq!(
            value(c, "heart_rate"),
            [],
            "charted half an hour before the ICU's INTIME: outside the window"
        );
        assert_eq!(
            value(c, "bun"),
            [(2.0, None)],
            "a missing value is kept as null"
        );
        assert!(c.notes.is_empty());

        if atc().is_some() {
            assert_eq!(a.labels.as_ref().unwrap().medications, ["C03C"]);
            assert_eq!(b.visits[1].medications, ["C01A"]);
            assert!((summary.prescription_rows_to_atc3.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        }
        let reasons: Vec<&str> = summary.skipped.keys().map(String::as_str).collect();
        for expected in [
            "admission without HADM_ID or ADMITTIME",
            "charted value marked as an error",
            "output marked as an error",
            "event with an unknown admission id or an unreadable chart time",
            "discharge summary without a Brief Hospital Course section",
            "diagnosis without an ICD9_CODE",
            "lab outside any admission (no HADM_ID; not an error)",
        ] {
            assert!(reasons.contains(&expected), "{expected} not in {reasons:?}");
        }
    }

    #[test]
    fn a_gzip_cut_mid_stream_and_malformed_rows_are_reported_not_fatal() {
        let dir = std::env::temp_dir().join(format!("bedside-mimic3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(fixtures()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        let gz = std::fs::read(dir.join("CHARTEVENTS.csv.gz")).unwrap();
        std::fs::write(dir.join("CHARTEVENTS.csv.gz"), &gz[..gz.len() / 2]).unwrap();
        let labs = std::fs::read_to_string(dir.join("LABEVENTS.csv")).unwrap();
        std::fs::write(dir.join("LABEVENTS.csv"), format!("{labs}9,101,1001\n")).unwrap();
        let mut summary = Summary::new("mimic3");
        let records = read(&dir, None, 48, &mut summary).unwrap();
        assert_eq!(records.len(), 3, "the other tables are still read");
        assert!(
            summary
                .skipped
                .contains_key("damaged file (rest of the file not read)"),
            "{:?}",
            summary.skipped.keys()
        );
        // a short row is read with its missing columns empty, and skipped for its missing time
        assert!(value(&records[0], "creatinine").len() == 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod fhir_equivalence {
    use super::*;
    use bedside::knowledge::{CHANNELS, channel_index};
    use bedside::record::SeriesGrid;

    /// `tests/fixtures/fhir/mimic3-1001-bundle.json` says in FHIR R4 what the MIMIC-III fixture
    /// rows say of admission 1001 (all but capillary refill, which has no LOINC code here).
    #[test]
    fn a_fhir_bundle_and_the_same_mimic_rows_give_the_same_record() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text =
            std::fs::read_to_string(root.join("tests/fixtures/fhir/mimic3-1001-bundle.json"))
                .unwrap();
        let fhir = PatientRecord::from_json_or_fhir(&text).unwrap();
        let mut summary = Summary::new("mimic3");
        let atc = bedside::test_layers::shared_data("medrec/gsn_atc_ndc_mapping.csv.gz");
        let records = read(
            &root.join("tests/fixtures/mimic3"),
            atc.as_deref(),
            48,
            &mut summary,
        )
        .unwrap();
        let mimic = records.iter().find(|r| r.id == "mimic3-1001").unwrap();

        assert_eq!(fhir.demographics, mimic.demographics);
        assert_eq!(
            fhir.notes.iter().map(|n| &n.text).collect::<Vec<_>>(),
            mimic.notes.iter().map(|n| &n.text).collect::<Vec<_>>()
        );
        let (f, m) = (fhir.visits.last().unwrap(), mimic.visits.last().unwrap());
        assert_eq!(f.diagnoses, m.diagnoses);
        assert_eq!(f.procedures, m.procedures);
        if atc.is_some() {
            assert_eq!(f.medications, m.medications);
        }
        assert_eq!(
            fhir.labels.as_ref().unwrap().phenotypes,
            mimic.labels.as_ref().unwrap().phenotypes
        );

        // what the model reads: every cell of the hourly grid, in canonical units
        let (gf, gm) = (
            SeriesGrid::from_record(&fhir, 48),
            SeriesGrid::from_record(mimic, 48),
        );
        let conversions = |g: &SeriesGrid| {
            g.notices
                .iter()
                .filter(|n| n.kind == "unit_converted")
                .count()
        };
        assert_eq!(gf.notices.len(), conversions(&gf), "{:?}", gf.notices);
        assert_eq!(gm.notices.len(), conversions(&gm), "{:?}", gm.notices);
        let skip = channel_index("capillary_refill").unwrap();
        for c in (0..CHANNELS.len()).filter(|&c| c != skip) {
            for h in 0..48 {
                let i = c * 48 + h;
                assert_eq!(gf.mask[i], gm.mask[i], "{} hour {h}", CHANNELS[c].name);
                assert!(
                    (gf.values[i] - gm.values[i]).abs() < 1e-6,
                    "{} hour {h}: {} vs {}",
                    CHANNELS[c].name,
                    gf.values[i],
                    gm.values[i]
                );
            }
        }
        assert_eq!(
            gf.observed() + 1,
            gm.observed(),
            "the same cells, capillary refill aside"
        );
    }
}
