//! What `risk` returns for a mortality bundle: one calibrated probability, the clinical model's
//! out-of-range state and notices, and the record's findings ordered by how much each moved the
//! risk.
//!
//! How much a finding moved the risk is measured by occlusion: the risk computed again with every
//! observation of the finding's channel taken out of the record (the channel then reads as
//! unmeasured, to the encoder and to the linear part's summaries alike), and the finding's
//! `effect` is the risk less that one. It is faithful by construction — taking the finding's
//! channel out moves the risk by exactly `-effect` — which is what a reader of "this raised the
//! risk" needs, where a gradient would only say which way a small change would move it. One batch
//! holds the record and each of its occluded copies, so the cost is one forward pass of
//! 1 + findings rows.

use crate::findings::Findings;
use crate::grounded::{Evidence, Fact};
use crate::out_of_range::OutOfRange;
use crate::record::{GridNotice, PatientRecord, read_observation};
use serde::Serialize;

/// One of the record's findings with its effect on the risk.
#[derive(Debug, Clone, Serialize)]
pub struct RiskFinding {
    /// The finding, rendered from the record as the clinical model's evidence is (channel,
    /// value, unit, hour, normal range, observation index, the sentence; `diagnosis` is none).
    #[serde(flatten)]
    pub evidence: Evidence,
    /// The risk less the risk without this channel's observations: positive where the finding
    /// raised it.
    pub effect: f32,
}

/// What `risk` returns for one record.
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    pub id: String,
    /// What the probability is of ([`crate::model::mortality::MORTALITY_LABEL`]).
    pub outcome: String,
    /// The calibrated probability (the bundle's Platt scaling applied).
    pub probability: f32,
    /// The record's findings, the largest effect (either way) first; none when out of range.
    pub findings: Vec<RiskFinding>,
    /// Grid cells (channel × hour) that held a measurement.
    pub observed_cells: usize,
    /// Observations that could not be used, and why.
    pub notices: Vec<GridNotice>,
    /// Why the record is outside the model's range, when it is: the probability is still
    /// computed, and shown only with the reasons ([`crate::out_of_range`]).
    pub out_of_range: Option<OutOfRange>,
    /// The observed channels on the hourly grid, for a chart of the findings in time.
    pub series: Vec<crate::chart::ChannelSeries>,
    pub backend: &'static str,
}

/// What a mortality model trained on PhysioNet 2012 (the first 48 hours of ICU stays, with the
/// ICU type) reads differently in `record`: hours that count from the hospital admission rather
/// than the ICU's, and a care unit that is not one of the four ICU types it knows (the ICU type
/// then reads as unknown). Notices, not reasons to abstain: the risk is still an estimate.
pub fn unlike_training(record: &PatientRecord) -> Vec<GridNotice> {
    use crate::model::mortality::ICU_TYPES;
    use crate::record::WindowStart;
    let mut notices = Vec::new();
    if record.window_start != Some(WindowStart::IcuAdmission) {
        notices.push(GridNotice {
            path: "$.window_start".into(),
            kind: "window_start",
            message: "the hours count from the hospital admission, not from an ICU admission as \
                      in the stays the mortality model learned from"
                .into(),
        });
    }
    let unit = record.demographics.care_unit.as_deref();
    if !unit.is_some_and(|u| ICU_TYPES.contains(&u)) {
        notices.push(GridNotice {
            path: "$.demographics.care_unit".into(),
            kind: "care_unit",
            message: format!(
                "{}: the model knows the ICU types {}; it reads this one as unknown",
                unit.map_or("no care unit".to_string(), |u| format!("care unit {u:?}")),
                ICU_TYPES.join(", ")
            ),
        });
    }
    notices
}

/// `record` with every observation of `channel` (an index into
/// [`crate::knowledge::CHANNELS`]) inside the `hours`-hour window taken out.
pub fn without_channel(record: &PatientRecord, channel: usize, hours: usize) -> PatientRecord {
    let mut out = record.clone();
    out.observations
        .retain(|o| !matches!(read_observation(o, hours).1, Ok(used) if used.channel == channel));
    out
}

/// The records whose risks `risk` computes in one batch: `record` first, then one copy per lab
/// finding with that finding's channel taken out.
pub fn occlusions(record: &PatientRecord, findings: &Findings, hours: usize) -> Vec<PatientRecord> {
    std::iter::once(record.clone())
        .chain(
            findings
                .labs
                .iter()
                .map(|f| without_channel(record, f.channel, hours)),
        )
        .collect()
}

/// The findings with their effects, `risks` being the probabilities of [`occlusions`] in order;
/// the largest effect either way first.
pub fn ranked_findings(
    record: &PatientRecord,
    findings: &Findings,
    risks: &[f32],
) -> Vec<RiskFinding> {
    let Some((&risk, occluded)) = risks.split_first() else {
        return Vec::new();
    };
    let mut out: Vec<RiskFinding> = findings
        .labs
        .iter()
        .zip(occluded)
        .map(|(f, &without)| RiskFinding {
            evidence: Fact::Lab(f).evidence(record, None),
            effect: risk - without,
        })
        .collect();
    out.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    out
}
