//! What the tables say of each admission, gathered in bounded memory: a cohort of up to
//! [`BUCKET_ADMISSIONS`] admissions is held in memory; a larger one is spilled, as each row is
//! read, to one file per bucket of admissions (CBOR, which keeps every f64 exact, in a temporary
//! directory) and read back one bucket at a time. Memory then holds the admissions index and one bucket's rows,
//! however large the cohort (MIMIC-IV at full size: a few hundred MB, not the ~15 GB of every
//! record at once); time stays linear in rows.

use crate::Summary;
use crate::admissions::{Admission, Admissions};
use anyhow::{Context, Result};
use bedside::knowledge::{IcdVersion, PHENOTYPES, phenotypes_for_icd};
use bedside::record::{
    Demographics, Labels, Note, Observation, Outcomes, PatientRecord, RECORD_FORMAT_VERSION, Sex,
    Visit,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::PathBuf;

/// Admissions per bucket: about 100 MB of rows at MIMIC-IV's density of charted values.
pub const BUCKET_ADMISSIONS: usize = 4096;

/// One row's worth of an admission, as it is kept until the admission's record is built.
#[derive(Debug, Serialize, Deserialize)]
pub enum Item {
    Observation(Observation),
    Note(Note),
    /// `(seq_num, code, ICD version 9 or 10)`
    Diagnosis(u32, String, u8),
    /// `(seq_num, "icd9:code")`
    Procedure(u32, String),
    /// An ATC-3 class.
    Medication(String),
}

impl Item {
    /// A charted value `hours` into the window; a value that is not finite is kept as missing.
    pub fn observation(channel: &str, hours: f64, value: Option<f64>, unit: &str) -> Self {
        Item::Observation(Observation {
            reference: None,
            channel: channel.to_string(),
            hours,
            value: value.filter(|v| v.is_finite()),
            unit: (!unit.is_empty()).then(|| unit.to_string()),
        })
    }
}

/// Where the items go: memory, or a file per bucket.
enum Store {
    Memory(Vec<Vec<Item>>),
    Spilled {
        dir: tempfile::TempDir,
        files: Vec<BufWriter<File>>,
    },
}

/// The items of every admission of a cohort, by bucket of admissions.
pub struct Items {
    admissions: u32,
    bucket: u32,
    store: Store,
    error: Option<ciborium::ser::Error<std::io::Error>>,
}

impl Items {
    /// Items of `admissions`, `bucket` admissions to a bucket; more than one bucket spills to a
    /// temporary directory in `spill` (default: the system's).
    pub fn new(
        admissions: &Admissions,
        bucket: usize,
        spill: Option<&std::path::Path>,
    ) -> Result<Self> {
        let n = admissions.list.len();
        let bucket = bucket.clamp(1, u32::MAX as usize);
        let store = if n <= bucket {
            Store::Memory((0..n).map(|_| Vec::new()).collect())
        } else {
            let parent = spill.map_or_else(std::env::temp_dir, PathBuf::from);
            let dir = tempfile::Builder::new()
                .prefix("bedside-cohort-")
                .tempdir_in(&parent)
                .with_context(|| {
                    format!("cannot make a spill directory in {}", parent.display())
                })?;
            let files = (0..n.div_ceil(bucket))
                .map(|b| File::create(dir.path().join(format!("{b}.cbor"))).map(BufWriter::new))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("cannot write in {}", dir.path().display()))?;
            Store::Spilled { dir, files }
        };
        Ok(Self {
            admissions: n as u32,
            bucket: bucket as u32,
            store,
            error: None,
        })
    }

    /// One item of admission `a`. A write error is kept and returned by [`Items::records`].
    pub fn push(&mut self, a: u32, item: Item) {
        match &mut self.store {
            Store::Memory(items) => items[a as usize].push(item),
            Store::Spilled { files, .. } => {
                let file = &mut files[(a / self.bucket) as usize];
                if let Err(e) = ciborium::into_writer(&(a, item), &mut *file) {
                    self.error.get_or_insert(e);
                }
            }
        }
    }

    /// Builds every admission's record, bucket by bucket, in patient and time order: `build`
    /// makes it from the admission, its items and the patient's visits so far (this one last);
    /// each goes to the summary and to `sink`.
    pub fn records(
        self,
        admissions: &Admissions,
        summary: &mut Summary,
        mut build: impl FnMut(&Admission, Gathered, &[Visit]) -> PatientRecord,
        mut sink: impl FnMut(PatientRecord) -> Result<()>,
    ) -> Result<()> {
        if let Some(e) = self.error {
            return Err(e).context("cannot write the spill files");
        }
        let (mut memory, dir) = match self.store {
            Store::Memory(items) => (Some(items), None),
            Store::Spilled { dir, files } => {
                for f in files {
                    f.into_inner()
                        .map_err(|e| e.into_error())
                        .with_context(|| format!("cannot write in {}", dir.path().display()))?;
                }
                (None, Some(dir))
            }
        };
        let list = &admissions.list;
        let mut history: Vec<Visit> = Vec::new();
        let buckets = (0..self.admissions)
            .step_by(self.bucket as usize)
            .map(|start| start..(start.saturating_add(self.bucket)).min(self.admissions));
        for (b, range) in buckets.enumerate() {
            let mut items = match (memory.take(), &dir) {
                (Some(all), _) => all,
                (None, Some(dir)) => {
                    let path = dir.path().join(format!("{b}.cbor"));
                    let items = read_bucket(&path, range.clone())?;
                    std::fs::remove_file(&path).ok(); // the disk back as soon as read
                    items
                }
                (None, None) => anyhow::bail!("the cohort's items were read twice"),
            };
            let offset = range.start;
            for a in range.clone() {
                let admission = &list[a as usize];
                if a > 0 && list[a as usize - 1].subject != admission.subject {
                    history.clear();
                }
                let gathered = Gathered::from(std::mem::take(&mut items[(a - offset) as usize]));
                history.push(gathered.visit());
                let record = build(admission, gathered, &history);
                summary.add(&record);
                sink(record)?;
            }
        }
        let subjects = list
            .iter()
            .enumerate()
            .filter(|(i, a)| *i == 0 || list[i - 1].subject != a.subject)
            .count();
        summary.finish(subjects);
        Ok(())
    }
}

/// The items of the admissions `range` from a bucket's file.
fn read_bucket(path: &std::path::Path, range: std::ops::Range<u32>) -> Result<Vec<Vec<Item>>> {
    let mut items: Vec<Vec<Item>> = (range.clone()).map(|_| Vec::new()).collect();
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut file = BufReader::new(file);
    while !file
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?
        .is_empty()
    {
        let (a, item): (u32, Item) = ciborium::from_reader(&mut file)
            .with_context(|| format!("{}: a damaged spill file", path.display()))?;
        anyhow::ensure!(
            range.contains(&a),
            "{}: admission {a} outside its bucket",
            path.display()
        );
        items[(a - range.start) as usize].push(item);
    }
    Ok(items)
}

/// One admission's items, in order: observations by time, diagnoses and procedures by
/// `seq_num`, medications by name.
#[derive(Debug, Default)]
pub struct Gathered {
    pub observations: Vec<Observation>,
    pub notes: Vec<Note>,
    pub diagnoses: Vec<(u32, String, u8)>,
    pub procedures: Vec<(u32, String)>,
    pub medications: BTreeSet<String>,
}

impl From<Vec<Item>> for Gathered {
    fn from(items: Vec<Item>) -> Self {
        let mut g = Gathered::default();
        for item in items {
            match item {
                Item::Observation(o) => g.observations.push(o),
                Item::Note(n) => g.notes.push(n),
                Item::Diagnosis(seq, code, version) => g.diagnoses.push((seq, code, version)),
                Item::Procedure(seq, code) => g.procedures.push((seq, code)),
                Item::Medication(m) => {
                    g.medications.insert(m);
                }
            }
        }
        g.observations.sort_by(|x, y| x.hours.total_cmp(&y.hours));
        g.diagnoses.sort();
        g.procedures.sort();
        g
    }
}

impl Gathered {
    /// The admission as a visit of the patient's history.
    pub fn visit(&self) -> Visit {
        Visit {
            diagnoses: self
                .diagnoses
                .iter()
                .map(|(_, code, version)| format!("icd{version}:{code}"))
                .collect(),
            procedures: self.procedures.iter().map(|(_, c)| c.clone()).collect(),
            medications: self.medications.iter().cloned().collect(),
        }
    }

    /// The phenotypes its diagnoses name, in the knowledge base's order.
    pub fn phenotypes(&self) -> Vec<String> {
        let mut phenotypes: BTreeSet<usize> = BTreeSet::new();
        for (_, code, version) in &self.diagnoses {
            let version = match version {
                9 => IcdVersion::Icd9,
                _ => IcdVersion::Icd10,
            };
            phenotypes.extend(phenotypes_for_icd(code, version));
        }
        phenotypes
            .iter()
            .map(|&p| PHENOTYPES[p].name.to_string())
            .collect()
    }
}

/// A MIMIC admission's record: `source` names the ids (`mimic4-<hadm_id>`), `age` and `sex` come
/// from the reader's patients table.
pub fn record(
    source: &str,
    a: &Admission,
    g: Gathered,
    history: &[Visit],
    age: Option<f64>,
    sex: Option<Sex>,
) -> PatientRecord {
    let labels = Labels {
        phenotypes: g.phenotypes(),
        medications: g.medications.iter().cloned().collect(),
        outcomes: Some(Outcomes {
            in_hospital_death: a.death,
            length_of_stay_days: a
                .discharge
                .map(|d| (d - a.admit).num_seconds() as f64 / 86_400.0)
                .filter(|d| *d >= 0.0),
            ..Outcomes::default()
        }),
    };
    PatientRecord {
        skipped: Vec::new(),
        window_start: Some(a.window_kind()),
        format_version: RECORD_FORMAT_VERSION,
        id: format!("{source}-{}", a.hadm),
        patient: Some(format!("{source}-{}", a.subject)),
        demographics: Demographics {
            age: age.filter(|a| (0.0..=130.0).contains(a)),
            sex,
            care_unit: a.icu.as_ref().map(|(_, unit)| unit.clone()),
        },
        notes: g.notes,
        observations: g.observations,
        visits: history.to_vec(),
        labels: Some(labels),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Options, Summary, mimic3, mimic4};
    use bedside::PatientRecord;
    use std::path::{Path, PathBuf};

    /// Spilled to buckets of one patient or of sixteen admissions, both MIMIC readers give the
    /// records and the summary they give in memory, and leave no spill file behind.
    #[test]
    fn spilled_buckets_give_the_records_held_in_memory() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let atc = bedside::test_layers::shared_data("medrec/gsn_atc_ndc_mapping.csv.gz");
        // (the MIMIC-IV fixtures have no prescriptions)
        let mut sources: Vec<(&str, PathBuf, Option<PathBuf>)> = vec![
            ("mimic3", fixtures.join("mimic3"), atc.clone()),
            ("mimic4", fixtures.join("mimic4"), None),
        ];
        sources.extend(
            bedside::test_layers::shared_data("mimic-iv-demo").map(|dir| ("mimic4", dir, atc)),
        );
        let spill = tempfile::tempdir().unwrap();
        for (source, dir, atc) in sources {
            let read = |bucket: usize| {
                let options = Options {
                    bucket_admissions: bucket,
                    spill: Some(spill.path().to_path_buf()),
                    atc: atc.clone(),
                    ..Options::default()
                };
                let (mut records, mut summary) = (Vec::new(), Summary::new(source));
                let sink = |r: PatientRecord| {
                    records.push(r);
                    Ok(())
                };
                match source {
                    "mimic3" => mimic3::stream(&dir, &options, &mut summary, sink),
                    _ => mimic4::stream(&dir, &options, &mut summary, sink),
                }
                .unwrap();
                (records, serde_json::to_string(&summary).unwrap())
            };
            let (memory, summary) = read(usize::MAX);
            assert!(memory.len() > 1, "{}", dir.display());
            for bucket in [1, 16] {
                let (spilled, spilled_summary) = read(bucket);
                assert!(spilled == memory, "{}: bucket {bucket}", dir.display());
                assert_eq!(spilled_summary, summary);
            }
            let left: Vec<_> = std::fs::read_dir(spill.path()).unwrap().collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
