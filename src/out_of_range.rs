//! When bedside abstains. A record unlike what the model was trained and calibrated on gets an
//! out-of-range answer — its reasons, nothing diagnosed, no drug recommended — never a confident
//! number under a warning. The rule, as every bundle's model card states it: a child (under 18),
//! a setting outside the hospital (outpatient, clinic, home, virtual), no observations, or fewer
//! than [`MIN_CHANNELS`] of the model's channels observed in its window. The recommender, which
//! reads the coded visits and no observation, abstains by the first two alone. The probabilities
//! are still computed and returned, so held-out figures count every admission.

use serde::Serialize;

use crate::record::{GridNotice, PatientRecord, SeriesGrid, record_notices};

/// Fewer channels than this in the window, and the time-series model has next to nothing to read
/// (the MIMIC-IV demo's admissions with any labs in their first 48 h have a median of 14).
pub const MIN_CHANNELS: usize = 3;

/// Why a record is out of the model's range: one reason per rule it breaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutOfRange {
    pub reasons: Vec<GridNotice>,
}

impl OutOfRange {
    /// The rule applied to `record`, whose window `grid` reads; `None` when it is in range.
    pub fn of(record: &PatientRecord, grid: &SeriesGrid) -> Option<Self> {
        let mut reasons = reasons(
            record,
            &[
                "no_observations",
                "age_outside_training",
                "setting_outside_training",
            ],
        );
        let channels = grid.observed_channels();
        if !record.observations.is_empty() && channels < MIN_CHANNELS {
            reasons.push(GridNotice {
                path: "$.observations".into(),
                kind: "few_channels",
                message: format!(
                    "{channels} of the model's {} channels observed in its {}-hour window; it \
                     reads at least {MIN_CHANNELS}",
                    grid.channels, grid.hours
                ),
            });
        }
        (!reasons.is_empty()).then_some(Self { reasons })
    }

    /// The recommender's rule: a child or a setting outside the hospital (it reads the coded
    /// visits, not the observations).
    pub fn for_recommender(record: &PatientRecord) -> Option<Self> {
        let reasons = reasons(
            record,
            &["age_outside_training", "setting_outside_training"],
        );
        (!reasons.is_empty()).then_some(Self { reasons })
    }

    /// The answer as text for people.
    pub fn text(&self) -> String {
        let reasons: Vec<&str> = self.reasons.iter().map(|r| r.message.as_str()).collect();
        format!(
            "Out of the model's range, so no diagnosis or drug is offered: {}.",
            reasons.join("; ")
        )
    }
}

/// The record-level notices of `kinds`, as reasons.
fn reasons(record: &PatientRecord, kinds: &[&str]) -> Vec<GridNotice> {
    record_notices(record)
        .into_iter()
        .filter(|n| kinds.contains(&n.kind))
        .collect()
}
