//! The hourly grid the time-series encoder reads: for every channel and every hour of the window,
//! the mean of the standardised valid values in that hour, and a mask saying whether there was one.
//!
//! Nothing is imputed: an empty hour is value 0 with mask 0, and the model learns from the mask.
//! Every observation that cannot be used is reported as a [`GridNotice`] naming its field path,
//! and so is every unit conversion (kind `unit_converted`; the value is used).

use super::{Observation, PatientRecord, units};
use crate::knowledge::{CHANNELS, channel_index};
use burn::prelude::*;
use serde::Serialize;

/// Why an observation was not used, or (`unit_converted`) how its value was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridNotice {
    pub path: String,
    pub kind: &'static str,
    pub message: String,
}

/// Channel-major `[channels, hours]` values and mask, row `c` holding channel `c` of
/// [`CHANNELS`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesGrid {
    pub channels: usize,
    pub hours: usize,
    pub values: Vec<f32>,
    pub mask: Vec<f32>,
    pub notices: Vec<GridNotice>,
}

/// What the model was not trained to read in a record, said before its results: no observations,
/// no notes, a child, a setting outside the ICU (from the care unit's name).
pub fn record_notices(record: &PatientRecord) -> Vec<GridNotice> {
    let mut out = Vec::new();
    let mut notice = |path: &str, kind: &'static str, message: String| {
        out.push(GridNotice {
            path: path.into(),
            kind,
            message,
        })
    };
    if record.observations.is_empty() {
        notice("$.observations", "no_observations", "no lab or vital-sign observations: the model reads none of its time series, and no lab finding can be stated".into());
    }
    if record.notes.iter().all(|n| n.text.trim().is_empty()) {
        notice("$.notes", "no_notes", "no clinical notes: the answer rests on the observations and history, and quotes no note".into());
    }
    if let Some(age) = record.demographics.age.filter(|a| *a < 18.0) {
        notice(
            "$.demographics.age",
            "age_outside_training",
            format!("age {age} y: the model was trained on adult admissions (18 y and older)"),
        );
    }
    for skipped in &record.skipped {
        let what = skipped.reference.as_deref().unwrap_or("");
        notice(
            &skipped.path,
            "resource_skipped",
            format!("{what} not read: {}", skipped.reason)
                .trim()
                .to_string(),
        );
    }
    if let Some(unit) = &record.demographics.care_unit {
        let lower = unit.to_lowercase();
        if ["outpatient", "ambulatory", "clinic", "virtual", "home"]
            .iter()
            .any(|w| lower.contains(w))
        {
            notice(
                "$.demographics.care_unit",
                "setting_outside_training",
                format!("{unit:?}: the model was trained on hospital (ICU) admissions"),
            );
        }
    }
    out
}

/// A notice's field (after `$.observations[i]`), kind and message.
pub type Notice = (&'static str, &'static str, String);

/// An observation the grid uses: its channel (index into [`CHANNELS`]), its value in the
/// channel's unit and its hour inside the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsedObservation {
    pub channel: usize,
    pub value: f64,
    pub hours: f64,
}

/// How the grid of a `hours`-hour window reads `o`: the `unit_converted` notice when its unit was
/// converted, and the observation as used or why it is not. The one rule for which observations
/// the model sees: the grid and the record's findings ([`crate::findings`]) both read
/// observations through it.
pub fn read_observation(
    o: &Observation,
    hours: usize,
) -> (Option<Notice>, std::result::Result<UsedObservation, Notice>) {
    let Some(c) = channel_index(&o.channel) else {
        return (
            None,
            Err((
                ".channel",
                "unknown_channel",
                format!("unknown channel {:?}, kept but not used", o.channel),
            )),
        );
    };
    let channel = &CHANNELS[c];
    let Some(raw) = o.value else {
        return (None, Err((".value", "missing_value", "no value".into())));
    };
    let unit = o.unit.as_deref().unwrap_or("");
    let Some(value) = units::to_canonical(channel, raw, unit) else {
        return (
            None,
            Err((
                ".unit",
                "unknown_unit",
                format!(
                    "cannot convert {unit:?} to {} for {}",
                    channel.unit, channel.name
                ),
            )),
        );
    };
    let converted = (!units::is_canonical(channel, unit)).then(|| {
        (
            ".unit",
            "unit_converted",
            format!("{raw} {unit} read as {value:.4} {}", channel.unit),
        )
    });
    if !channel.is_valid(value) {
        let message = format!(
            "{value} {} is outside the valid range {}..{} of {}",
            channel.unit, channel.valid_low, channel.valid_high, channel.name
        );
        return (converted, Err((".value", "out_of_range", message)));
    }
    if !(o.hours >= 0.0 && o.hours < hours as f64) {
        return (
            converted,
            Err((
                ".hours",
                "outside_window",
                format!("hour {} is outside the first {hours} h", o.hours),
            )),
        );
    }
    (
        converted,
        Ok(UsedObservation {
            channel: c,
            value,
            hours: o.hours,
        }),
    )
}

impl SeriesGrid {
    /// Bins the record's observations of the first `hours` hours of the admission.
    pub fn from_record(record: &PatientRecord, hours: usize) -> Self {
        let channels = CHANNELS.len();
        let mut sum = vec![0f64; channels * hours];
        let mut count = vec![0u32; channels * hours];
        let mut notices = Vec::new();
        let mut notice = |i: usize, field: &str, kind: &'static str, message: String| {
            notices.push(GridNotice {
                path: format!("$.observations[{i}]{field}"),
                kind,
                message,
            })
        };
        for (i, o) in record.observations.iter().enumerate() {
            let (converted, used) = read_observation(o, hours);
            if let Some((field, kind, message)) = converted {
                notice(i, field, kind, message);
            }
            match used {
                Ok(used) => {
                    let cell = used.channel * hours + used.hours.floor() as usize;
                    sum[cell] += CHANNELS[used.channel].standardise(used.value);
                    count[cell] += 1;
                }
                Err((field, kind, message)) => notice(i, field, kind, message),
            }
        }
        let values = sum
            .iter()
            .zip(&count)
            .map(|(s, &n)| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
            .collect();
        let mask = count
            .iter()
            .map(|&n| if n > 0 { 1.0 } else { 0.0 })
            .collect();
        Self {
            channels,
            hours,
            values,
            mask,
            notices,
        }
    }

    /// Stacks grids of the same shape into the model's input: values and mask,
    /// `[grids, channels, hours]` each.
    pub fn tensors<'a>(grids: &[&'a SeriesGrid], device: &Device) -> (Tensor<3>, Tensor<3>) {
        let (channels, hours) = grids.first().map_or((0, 0), |g| (g.channels, g.hours));
        let shape = [grids.len(), channels, hours];
        let stack = |field: fn(&'a SeriesGrid) -> &'a [f32]| {
            let data: Vec<f32> = grids
                .iter()
                .flat_map(|g| field(g).iter().copied())
                .collect();
            Tensor::<1>::from_floats(data.as_slice(), device).reshape(shape)
        };
        (stack(|g| &g.values), stack(|g| &g.mask))
    }

    /// How many cells hold a measurement.
    pub fn observed(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }

    /// Channels with at least one measurement in the window.
    pub fn observed_channels(&self) -> usize {
        self.mask
            .chunks(self.hours.max(1))
            .filter(|row| row.iter().any(|&m| m > 0.0))
            .count()
    }
}
