//! MIMIC chart events as the model's channels, shared by the MIMIC-III and MIMIC-IV readers
//! (both chart with MetaVision's item ids; MIMIC-III's CareVue ids too): the number a charted
//! value holds, and whether a ventilation item marks a ventilated hour.

/// The number of a charted value: VALUENUM, else what the text says (CareVue charts GCS as
/// "4 Spontaneously", capillary refill as "Normal <3 secs").
pub fn chart_value(channel: &str, valuenum: &str, value: &str) -> Option<f64> {
    if channel == "capillary_refill" {
        let v = value.to_ascii_lowercase();
        return if v.contains("abnormal") {
            Some(1.0)
        } else if v.contains("normal") {
            Some(0.0)
        } else {
            None
        };
    }
    let number = valuenum
        .parse::<f64>()
        .ok()
        .or_else(|| value.split_whitespace().next()?.parse().ok())?;
    match channel {
        // FiO2 is charted as a fraction or as a percentage
        "fio2" if number > 1.0 => Some(number / 100.0),
        _ => Some(number),
    }
}

/// Whether a CHARTEVENTS row of a ventilation item marks a ventilated hour, as mimic-code's
/// `ventilation_classification` decides: a ventilator type other than "Other/Remarks" (720), a
/// ventilator mode other than "Other" (223848), an oxygen delivery device that is the ventilator
/// (467), and any other ventilation item (settings, pressures, volumes) by being charted.
pub fn ventilated(item: u32, value: &str) -> bool {
    let value = value.trim();
    !value.is_empty()
        && match item {
            720 => value != "Other/Remarks",
            223848 => value != "Other",
            467 => value == "Ventilator",
            _ => true,
        }
}

/// A chart event as the model reads it: `(channel, value, unit)` for a row of an item the
/// readers know, the item's unit (not the row's: CareVue leaves it blank or writes "?F"); `None`
/// for other items, for urine items (read from the output events) and for a ventilation item
/// that does not mark a ventilated hour.
pub fn chart_event(
    item: &str,
    valuenum: &str,
    value: &str,
) -> Option<(&'static str, Option<f64>, &'static str)> {
    let item = item.parse::<u32>().ok()?;
    let (channel, unit) = bedside::knowledge::mimic3_item(item)?;
    let value = match channel {
        "urine_output" => return None,
        "mech_vent" => ventilated(item, value).then_some(Some(1.0))?,
        _ => chart_value(channel, valuenum, value),
    };
    Some((channel, value, unit))
}

/// The unit of an output event's item where it is urine output; `None` for other items.
pub fn urine_item(item: &str) -> Option<&'static str> {
    match bedside::knowledge::mimic3_item(item.parse().ok()?)? {
        ("urine_output", unit) => Some(unit),
        _ => None,
    }
}

/// A record's (hours, value) of one channel, in order: what the readers' tests compare.
#[cfg(test)]
pub(crate) fn values(
    record: &bedside::record::PatientRecord,
    channel: &str,
) -> Vec<(f64, Option<f64>)> {
    record
        .observations
        .iter()
        .filter(|o| o.channel == channel)
        .map(|o| (o.hours, o.value))
        .collect()
}
