//! The hourly grid the time-series encoder reads: for every channel and every hour of the window,
//! the mean of the standardised valid values in that hour, and a mask saying whether there was one.
//!
//! Nothing is imputed: an empty hour is value 0 with mask 0, and the model learns from the mask.
//! Every observation that cannot be used is reported as a [`GridNotice`] naming its field path,
//! and so is every unit conversion (kind `unit_converted`; the value is used).

use super::{PatientRecord, units};
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
            let Some(c) = channel_index(&o.channel) else {
                notice(i, ".channel", "unknown_channel", format!("unknown channel {:?}, kept but not used", o.channel));
                continue;
            };
            let channel = &CHANNELS[c];
            let Some(raw) = o.value else {
                notice(i, ".value", "missing_value", "no value".into());
                continue;
            };
            let Some(value) = units::to_canonical(channel, raw, o.unit.as_deref().unwrap_or("")) else {
                let unit = o.unit.as_deref().unwrap_or("");
                notice(i, ".unit", "unknown_unit", format!("cannot convert {unit:?} to {} for {}", channel.unit, channel.name));
                continue;
            };
            let unit = o.unit.as_deref().unwrap_or("");
            if !units::is_canonical(channel, unit) {
                notice(i, ".unit", "unit_converted", format!("{raw} {unit} read as {value:.4} {}", channel.unit));
            }
            if !channel.is_valid(value) {
                notice(
                    i,
                    ".value",
                    "out_of_range",
                    format!("{value} {} is outside the valid range {}..{} of {}", channel.unit, channel.valid_low, channel.valid_high, channel.name),
                );
                continue;
            }
            if !(o.hours >= 0.0 && o.hours < hours as f64) {
                notice(i, ".hours", "outside_window", format!("hour {} is outside the first {hours} h", o.hours));
                continue;
            }
            let cell = c * hours + o.hours.floor() as usize;
            sum[cell] += channel.standardise(value);
            count[cell] += 1;
        }
        let values = sum
            .iter()
            .zip(&count)
            .map(|(s, &n)| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
            .collect();
        let mask = count.iter().map(|&n| if n > 0 { 1.0 } else { 0.0 }).collect();
        Self { channels, hours, values, mask, notices }
    }

    /// Stacks grids of the same shape into the model's input: values and mask,
    /// `[grids, channels, hours]` each.
    pub fn tensors<'a>(grids: &[&'a SeriesGrid], device: &Device) -> (Tensor<3>, Tensor<3>) {
        let (channels, hours) = grids.first().map_or((0, 0), |g| (g.channels, g.hours));
        let shape = [grids.len(), channels, hours];
        let stack = |field: fn(&'a SeriesGrid) -> &'a [f32]| {
            let data: Vec<f32> = grids.iter().flat_map(|g| field(g).iter().copied()).collect();
            Tensor::<1>::from_floats(data.as_slice(), device).reshape(shape)
        };
        (stack(|g| &g.values), stack(|g| &g.mask))
    }

    /// How many cells hold a measurement.
    pub fn observed(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }
}
