//! The phenotype head's calibration as a bundle carries it: the map from the head's logits to the
//! probabilities a reader sees, fitted on validation records by `bedside-train distill` (Platt
//! scaling with a shift per label, one map for records with notes and one for records without).
//! It lives apart from the engine so that the manifest can bound it before anything is built and
//! the engine applies it in one batch, whatever mix of records the batch holds.

use serde::{Deserialize, Serialize};

/// The bounds of [`LogitMap::scale`]: positive keeps every logit's order (and each AUROC).
const SCALE: std::ops::RangeInclusive<f32> = 0.05..=20.0;
/// The bounds of every shift.
const SHIFT: std::ops::RangeInclusive<f32> = -20.0..=20.0;

/// An affine map of the head's logits: p = σ(scale · z + shift + label_shifts[label]). Platt
/// scaling (scale and shift) adapts the spread of the logits; the label shifts (empty: none) the
/// base rate of each label, where real records differ from the synthetic ones the model learnt
/// most from. Temperature scaling is the case scale = 1/T, no shifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitMap {
    pub scale: f32,
    #[serde(default)]
    pub shift: f32,
    /// One per label, in the order of the manifest's `labels`; or none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_shifts: Vec<f32>,
}

impl LogitMap {
    /// Temperature scaling: logits divided by `t`.
    pub fn temperature(t: f32) -> Self {
        Self {
            scale: 1.0 / t,
            shift: 0.0,
            label_shifts: Vec::new(),
        }
    }

    /// The shift added to label `label`'s scaled logit.
    pub fn shift_of(&self, label: usize) -> f32 {
        self.shift + self.label_shifts.get(label).copied().unwrap_or(0.0)
    }

    /// The calibrated probability of one logit.
    pub fn probability(&self, logit: f32, label: usize) -> f32 {
        1.0 / (1.0 + (-(self.scale * logit + self.shift_of(label))).exp())
    }

    /// `Err` naming the field at fault (under `field`) when a number is not finite or out of
    /// bounds, or there is a label shift for other than each of `labels` labels.
    pub fn check(&self, field: &str, labels: usize) -> Result<(), String> {
        if !(self.scale.is_finite() && SCALE.contains(&self.scale)) {
            return Err(format!(
                "{field}.scale = {} is outside [{}, {}]",
                self.scale,
                SCALE.start(),
                SCALE.end()
            ));
        }
        let shifts = std::iter::once(("shift".to_string(), self.shift)).chain(
            self.label_shifts
                .iter()
                .enumerate()
                .map(|(i, &s)| (format!("label_shifts[{i}]"), s)),
        );
        for (name, shift) in shifts {
            if !(shift.is_finite() && SHIFT.contains(&shift)) {
                return Err(format!(
                    "{field}.{name} = {shift} is outside [{}, {}]",
                    SHIFT.start(),
                    SHIFT.end()
                ));
            }
        }
        if !self.label_shifts.is_empty() && self.label_shifts.len() != labels {
            return Err(format!(
                "{field}.label_shifts has {} values for {labels} labels",
                self.label_shifts.len()
            ));
        }
        Ok(())
    }
}

/// The head's calibration in a manifest: one map for records with notes, and one for records
/// without (labs alone, as most real feeds are) where the run validated on some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadCalibration {
    pub with_notes: LogitMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_notes: Option<LogitMap>,
}

impl HeadCalibration {
    /// The map for a record with or without notes.
    pub fn for_record(&self, has_notes: bool) -> &LogitMap {
        match (&self.without_notes, has_notes) {
            (Some(without), false) => without,
            _ => &self.with_notes,
        }
    }

    /// Both maps' [`LogitMap::check`], under `calibration.with_notes` / `.without_notes`.
    pub fn check(&self, labels: usize) -> Result<(), String> {
        self.with_notes.check("calibration.with_notes", labels)?;
        if let Some(without) = &self.without_notes {
            without.check("calibration.without_notes", labels)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_shifts_each_label_and_keeps_the_order() {
        let map = LogitMap {
            scale: 0.5,
            shift: -1.0,
            label_shifts: vec![0.0, 2.0],
        };
        assert!((map.probability(2.0, 0) - 0.5).abs() < 1e-6);
        // label 1: 0.5·2 − 1 + 2 = 2
        assert!((map.probability(2.0, 1) - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-6);
        assert!(map.probability(3.0, 0) > map.probability(2.0, 0));
        let t = LogitMap::temperature(2.0);
        assert!((t.probability(2.0, 7) - 1.0 / (1.0 + (-1f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn a_map_out_of_bounds_is_named() {
        let good = LogitMap {
            scale: 1.0,
            shift: 0.0,
            label_shifts: vec![0.1; 3],
        };
        assert!(good.check("m", 3).is_ok());
        let cases = [
            (
                LogitMap {
                    scale: 0.0,
                    ..good.clone()
                },
                "m.scale",
            ),
            (
                LogitMap {
                    shift: f32::NAN,
                    ..good.clone()
                },
                "m.shift",
            ),
            (
                LogitMap {
                    label_shifts: vec![0.0, 50.0, 0.0],
                    ..good.clone()
                },
                "m.label_shifts[1]",
            ),
            (
                LogitMap {
                    label_shifts: vec![0.0; 2],
                    ..good.clone()
                },
                "m.label_shifts has 2 values for 3 labels",
            ),
        ];
        for (map, named) in cases {
            let message = map.check("m", 3).unwrap_err();
            assert!(message.contains(named), "{message}");
        }
    }

    #[test]
    fn records_without_notes_take_their_own_map_where_there_is_one() {
        let calibration = HeadCalibration {
            with_notes: LogitMap::temperature(1.0),
            without_notes: Some(LogitMap::temperature(3.0)),
        };
        assert_eq!(calibration.for_record(true).scale, 1.0);
        assert!((calibration.for_record(false).scale - 1.0 / 3.0).abs() < 1e-6);
        let one = HeadCalibration {
            without_notes: None,
            ..calibration
        };
        assert_eq!(one.for_record(false).scale, 1.0);
    }
}
