//! The one patient split every run cuts a cohort by. Each patient lands on the training,
//! validation or test side by a hash of their key alone (the record's `patient`, else its id),
//! not by a shuffle of whatever cohort a run reads: the clinical model (`distill`) and the
//! recommender (`medrec`) read different files yet hold out the same MIMIC-IV patients, every
//! choice is made on the validation patients, and `eval --side test` scores exactly the test
//! patients. The synthetic cohort's test admissions are other seeds (`eval --split`), so runs
//! may fold its test side into training ([`PatientSplit::without_test`]).

use bedside::record::PatientRecord;
use serde::{Deserialize, Serialize};

/// A side of the split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    Train,
    Validation,
    Test,
}

/// The shares of patients on the validation and test sides (the rest train). Runs that share
/// patients must use the same shares; the defaults are the committed bundle's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientSplit {
    pub validation_fraction: f64,
    pub test_fraction: f64,
    /// The test side trains ([`PatientSplit::without_test`]).
    #[serde(skip)]
    test_trains: bool,
}

impl Default for PatientSplit {
    fn default() -> Self {
        Self {
            validation_fraction: 0.15,
            test_fraction: 0.2,
            test_trains: false,
        }
    }
}

/// The key a record is split by: its patient, else the admission alone.
pub fn patient_key(record: &PatientRecord) -> &str {
    record.patient.as_deref().unwrap_or(&record.id)
}

/// A number in [0, 1) fixed by the key (the first 8 bytes of a salted sha256).
fn unit(key: &str) -> f64 {
    let hash = bedside::bundle::sha256_hex(format!("bedside patient split\0{key}").as_bytes());
    let head = u64::from_str_radix(&hash[..16], 16).unwrap_or(0);
    (head >> 11) as f64 / (1u64 << 53) as f64
}

impl PatientSplit {
    pub fn check(&self) -> anyhow::Result<()> {
        let (v, t) = (self.validation_fraction, self.test_fraction);
        anyhow::ensure!(
            v >= 0.0 && t >= 0.0 && v + t < 0.9,
            "split: validation_fraction and test_fraction must be non-negative, their sum below 0.9"
        );
        Ok(())
    }

    /// The same validation side, the test side folded into training.
    pub fn without_test(self) -> Self {
        Self {
            test_trains: true,
            ..self
        }
    }

    pub fn side(&self, key: &str) -> Side {
        let u = unit(key);
        if u < self.test_fraction {
            match self.test_trains {
                true => Side::Train,
                false => Side::Test,
            }
        } else if u < self.test_fraction + self.validation_fraction {
            Side::Validation
        } else {
            Side::Train
        }
    }

    /// The indexes of `records` on each side: [train, validation, test].
    pub fn sides(&self, records: &[PatientRecord]) -> [Vec<usize>; 3] {
        let mut out = [Vec::new(), Vec::new(), Vec::new()];
        for (i, record) in records.iter().enumerate() {
            out[self.side(patient_key(record)) as usize].push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, patient: Option<&str>) -> PatientRecord {
        let mut r: PatientRecord = serde_json::from_value(serde_json::json!({ "id": id })).unwrap();
        r.patient = patient.map(str::to_string);
        r
    }

    /// A patient's admissions stay together; a patient's side does not depend on which other
    /// records a run reads; the shares come out near the configured ones.
    #[test]
    fn sides_follow_the_patient_alone() {
        let split = PatientSplit::default();
        let records: Vec<PatientRecord> = (0..4000)
            .map(|i| record(&format!("a{i}"), Some(&format!("p{}", i / 2))))
            .collect();
        let [train, validation, test] = split.sides(&records);
        for side in [&train, &validation, &test] {
            for &i in side.iter() {
                let sibling = i ^ 1;
                assert!(side.contains(&sibling), "admission {i} left its patient");
            }
        }
        let share = |v: &Vec<usize>| v.len() as f64 / records.len() as f64;
        assert!((share(&test) - 0.2).abs() < 0.03, "{}", share(&test));
        assert!(
            (share(&validation) - 0.15).abs() < 0.03,
            "{}",
            share(&validation)
        );
        // the same patient, read among other records, lands on the same side
        let alone = split.sides(&records[100..102]);
        let side = |i: usize| {
            [&train, &validation, &test]
                .iter()
                .position(|s| s.contains(&i))
        };
        let alone_side = alone.iter().position(|s| s.contains(&0));
        assert_eq!(side(100), alone_side);
        // a record without a patient is its own patient
        assert_eq!(patient_key(&record("x", None)), "x");
        // no test side: the test patients train, validation is untouched
        let folded = split.without_test().sides(&records);
        assert!(folded[2].is_empty());
        assert_eq!(folded[1], validation);
    }
}
