//! The lab and vital charts `explain` returns: each observed channel's hourly values in its
//! unit, its normal range, and where in time the series encoder looked.

use crate::knowledge::CHANNELS;
use crate::record::SeriesGrid;
use serde::Serialize;

/// One observed lab or vital channel as the model read it, for charts: its hourly values over the
/// model's window in the channel's unit (the mean of the hour's valid observations; `None` where
/// nothing was observed), its normal range, and the time-series encoder's attention per hour
/// (the mean attention its last layer gave the patches covering the hour, scaled so that the
/// channel's most attended hour is 1).
#[derive(Debug, Clone, Serialize)]
pub struct ChannelSeries {
    pub name: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub normal_low: f64,
    pub normal_high: f64,
    pub values: Vec<Option<f32>>,
    pub attention: Vec<f32>,
}

/// The observed channels of `grid` with their per-hour attention, from the patch attention
/// `[channels, patches]` (one record) and each patch's hours.
pub(crate) fn channel_series(
    grid: &SeriesGrid,
    patch_attention: &[f32],
    patches: &[(usize, usize)],
) -> Vec<ChannelSeries> {
    let hours = grid.hours;
    CHANNELS
        .iter()
        .enumerate()
        .filter_map(|(c, channel)| {
            let row = c * hours..(c + 1) * hours;
            let mask = grid.mask.get(row.clone())?;
            if !mask.iter().any(|m| *m > 0.0) {
                return None;
            }
            let values = grid
                .values
                .get(row)?
                .iter()
                .zip(mask)
                .map(|(z, m)| (*m > 0.0).then(|| channel.from_standard(f64::from(*z)) as f32))
                .collect();
            let weights = patch_attention
                .get(c * patches.len()..(c + 1) * patches.len())
                .unwrap_or(&[]);
            // each hour: the mean weight of the patches covering it (edge hours have fewer)
            let mut attention = vec![0f32; hours];
            let mut covering = vec![0u32; hours];
            for (w, (start, end)) in weights.iter().zip(patches) {
                for h in *start..(*end).min(hours) {
                    attention[h] += w;
                    covering[h] += 1;
                }
            }
            for (a, n) in attention.iter_mut().zip(&covering) {
                *a /= (*n).max(1) as f32;
            }
            // scaled to the largest weight; a non-finite weight (a broken backend) leaves the
            // series unscaled rather than hiding among the others
            if attention.iter().all(|a| a.is_finite())
                && let Some(top) = attention
                    .iter()
                    .copied()
                    .max_by(f32::total_cmp)
                    .filter(|t| *t > 0.0)
            {
                attention.iter_mut().for_each(|a| *a /= top);
            }
            Some(ChannelSeries {
                name: channel.name,
                label: channel.label,
                unit: channel.unit,
                normal_low: channel.normal_low,
                normal_high: channel.normal_high,
                values,
                attention,
            })
        })
        .collect()
}
