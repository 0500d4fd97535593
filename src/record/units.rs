//! Unit normalisation: converts an observation's value into its channel's canonical unit.
//! Units are compared after trimming and case folding; UCUM spellings and common clinical ones
//! are both accepted.

use crate::knowledge::Channel;

/// Converts `value` given in `unit` to the canonical unit of `channel`; `None` when the unit is
/// unknown for that channel (the value is then not used, and reported).
pub fn to_canonical(channel: &Channel, value: f64, unit: &str) -> Option<f64> {
    let u = normalise(unit);
    let t = normalise(channel.unit);
    if u.is_empty() || synonyms(&u) == synonyms(&t) {
        return Some(value);
    }
    if let Some(v) = molar_to_mg_dl(channel.name, value, &u) {
        return Some(v);
    }
    let converted = match (synonyms(&u), synonyms(&t)) {
        ("degf", "cel") => (value - 32.0) * 5.0 / 9.0,
        ("lb", "kg") => value * 0.453_592_37,
        ("oz", "kg") => value * 0.028_349_523,
        ("in", "cm") => value * 2.54,
        ("%", "1") => value / 100.0,
        ("kpa", "mm[hg]") => value * 7.500_62,
        _ => return None,
    };
    Some(converted)
}

/// Whether `unit` is the canonical unit of `channel` (or empty, meaning it), so that no
/// conversion happens.
pub fn is_canonical(channel: &Channel, unit: &str) -> bool {
    let u = normalise(unit);
    u.is_empty() || synonyms(&u) == synonyms(&normalise(channel.unit))
}

/// Analyte-specific molar → mass conversions to mg/dL (`unit` already normalised).
fn molar_to_mg_dl(channel: &str, value: f64, unit: &str) -> Option<f64> {
    let factor = match (channel, unit) {
        ("glucose", "mmol/l") => 18.016,
        ("bun", "mmol/l") => 2.801,
        ("creatinine", "umol/l" | "µmol/l") => 1.0 / 88.42,
        ("bilirubin", "umol/l" | "µmol/l") => 1.0 / 17.1,
        ("cholesterol", "mmol/l") => 38.67,
        ("magnesium", "mmol/l") => 2.431,
        _ => return None,
    };
    Some(value * factor)
}

fn normalise(unit: &str) -> String {
    unit.trim().to_ascii_lowercase().replace(' ', "")
}

fn synonyms(u: &str) -> &str {
    match u {
        "cel" | "°c" | "degc" | "c" => "cel",
        "[degf]" | "°f" | "degf" | "f" => "degf",
        "/min" | "bpm" | "beats/min" | "breaths/min" | "{beats}/min" | "{breaths}/min" => "/min",
        "mm[hg]" | "mmhg" => "mm[hg]",
        "mg/dl" => "mg/dl",
        "meq/l" | "mmol/l" => "mmol/l",
        "10*3/ul" | "k/ul" | "10^3/ul" | "10*9/l" | "x10e3/ul" => "10*3/ul",
        "%" | "percent" => "%",
        "1" | "{ratio}" | "fraction" => "1",
        "kg" => "kg",
        "[lb_av]" | "lb" | "lbs" => "lb",
        "[oz_av]" | "oz" => "oz",
        "cm" => "cm",
        "[in_i]" | "in" | "inch" => "in",
        "ml" => "ml",
        "u/l" | "iu/l" => "u/l",
        "g/dl" => "g/dl",
        "ng/ml" | "ug/l" => "ng/ml",
        "kpa" => "kpa",
        "{score}" | "score" => "{score}",
        "[ph]" | "ph" => "[ph]",
        other => other,
    }
}
