//! Lab and vital-sign channels: the union of the 17 MIMIC-III-benchmark variables and the 37
//! PhysioNet 2012 time series (invasive and non-invasive blood pressure share a channel).
//!
//! Valid ranges follow `variable_ranges.csv` of the MIMIC-III benchmark where it has one (values
//! outside are artefacts and are dropped); normal ranges are common adult reference intervals and
//! are what the model input is scaled by.

/// One channel. `name` is the canonical, stable identifier used in records and bundles.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    pub name: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub valid_low: f64,
    pub valid_high: f64,
    pub normal_low: f64,
    pub normal_high: f64,
    /// Other names the channel goes by in the sources (PhysioNet 2012 parameters, MIMIC-III
    /// benchmark variables); matched case-insensitively.
    pub aliases: &'static [&'static str],
}

impl Channel {
    /// The middle of the normal range and half its width.
    fn normal_mid_half(&self) -> (f64, f64) {
        (
            0.5 * (self.normal_low + self.normal_high),
            (0.5 * (self.normal_high - self.normal_low)).max(1e-6),
        )
    }

    /// Scales a value so that the normal range maps onto [-1, 1]; the model's input unit.
    pub fn standardise(&self, value: f64) -> f64 {
        let (mid, half) = self.normal_mid_half();
        ((value - mid) / half).clamp(-10.0, 10.0)
    }

    /// How far a value lies from the middle of the normal range, in normal half-widths, without
    /// [`Channel::standardise`]'s clamp: what ranks abnormal values against each other.
    pub fn deviation(&self, value: f64) -> f64 {
        let (mid, half) = self.normal_mid_half();
        (value - mid) / half
    }

    /// The value `z` normal half-widths from the middle of the normal range: the inverse of
    /// [`Channel::standardise`] within its clamp.
    pub fn from_standard(&self, z: f64) -> f64 {
        let (mid, half) = self.normal_mid_half();
        mid + half * z
    }

    /// Whether a value is physiologically possible (not a charting or device artefact).
    pub fn is_valid(&self, value: f64) -> bool {
        value.is_finite() && value >= self.valid_low && value <= self.valid_high
    }
}

#[allow(clippy::too_many_arguments)]
const fn c(
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    valid: (f64, f64),
    normal: (f64, f64),
    aliases: &'static [&'static str],
) -> Channel {
    Channel {
        name,
        label,
        unit,
        valid_low: valid.0,
        valid_high: valid.1,
        normal_low: normal.0,
        normal_high: normal.1,
        aliases,
    }
}

/// Every channel, in the model's channel order.
pub const CHANNELS: &[Channel] = &[
    c(
        "heart_rate",
        "Heart rate",
        "/min",
        (0.0, 350.0),
        (60.0, 100.0),
        &["HR", "Heart Rate"],
    ),
    c(
        "systolic_bp",
        "Systolic blood pressure",
        "mm[Hg]",
        (0.0, 375.0),
        (90.0, 140.0),
        &["SysABP", "NISysABP", "Systolic blood pressure"],
    ),
    c(
        "diastolic_bp",
        "Diastolic blood pressure",
        "mm[Hg]",
        (0.0, 375.0),
        (60.0, 90.0),
        &["DiasABP", "NIDiasABP", "Diastolic blood pressure"],
    ),
    c(
        "mean_bp",
        "Mean arterial pressure",
        "mm[Hg]",
        (0.0, 375.0),
        (70.0, 105.0),
        &["MAP", "NIMAP", "Mean blood pressure"],
    ),
    c(
        "resp_rate",
        "Respiratory rate",
        "/min",
        (0.0, 330.0),
        (12.0, 20.0),
        &["RespRate", "Respiratory rate"],
    ),
    c(
        "temperature",
        "Temperature",
        "Cel",
        (14.2, 47.0),
        (36.1, 37.8),
        &["Temp", "Temperature"],
    ),
    c(
        "spo2",
        "Oxygen saturation (pulse oximetry)",
        "%",
        (0.0, 100.0),
        (94.0, 100.0),
        &["Oxygen saturation", "O2 sat"],
    ),
    c(
        "sao2",
        "Arterial oxygen saturation",
        "%",
        (0.0, 100.0),
        (94.0, 100.0),
        &["SaO2"],
    ),
    c(
        "fio2",
        "Fraction of inspired oxygen",
        "1",
        (0.21, 1.0),
        (0.21, 0.4),
        &["FiO2", "Fraction inspired oxygen"],
    ),
    c(
        "gcs_total",
        "Glasgow coma scale total",
        "{score}",
        (3.0, 15.0),
        (13.0, 15.0),
        &["GCS", "Glascow coma scale total"],
    ),
    c(
        "gcs_eye",
        "Glasgow coma scale eye opening",
        "{score}",
        (1.0, 4.0),
        (3.0, 4.0),
        &["Glascow coma scale eye opening"],
    ),
    c(
        "gcs_motor",
        "Glasgow coma scale motor response",
        "{score}",
        (1.0, 6.0),
        (5.0, 6.0),
        &["Glascow coma scale motor response"],
    ),
    c(
        "gcs_verbal",
        "Glasgow coma scale verbal response",
        "{score}",
        (1.0, 5.0),
        (4.0, 5.0),
        &["Glascow coma scale verbal response"],
    ),
    c(
        "capillary_refill",
        "Capillary refill rate",
        "1",
        (0.0, 1.0),
        (0.0, 0.5),
        &["Capillary refill rate"],
    ),
    c(
        "weight",
        "Weight",
        "kg",
        (0.0, 250.0),
        (50.0, 100.0),
        &["Weight"],
    ),
    c(
        "height",
        "Height",
        "cm",
        (0.0, 240.0),
        (150.0, 190.0),
        &["Height"],
    ),
    c(
        "urine_output",
        "Urine output",
        "mL",
        (0.0, 10000.0),
        (30.0, 250.0),
        &["Urine", "Urine output"],
    ),
    c(
        "mech_vent",
        "Mechanical ventilation",
        "1",
        (0.0, 1.0),
        (0.0, 0.5),
        &["MechVent"],
    ),
    c(
        "glucose",
        "Glucose",
        "mg/dL",
        (33.0, 2000.0),
        (70.0, 140.0),
        &["Glucose"],
    ),
    c(
        "ph",
        "pH (arterial)",
        "[pH]",
        (6.3, 8.4),
        (7.35, 7.45),
        &["pH"],
    ),
    c(
        "paco2",
        "Arterial CO2 partial pressure",
        "mm[Hg]",
        (0.0, 200.0),
        (35.0, 45.0),
        &["PaCO2"],
    ),
    c(
        "pao2",
        "Arterial O2 partial pressure",
        "mm[Hg]",
        (0.0, 800.0),
        (80.0, 100.0),
        &["PaO2"],
    ),
    c(
        "bicarbonate",
        "Bicarbonate",
        "mmol/L",
        (0.0, 60.0),
        (22.0, 29.0),
        &["HCO3", "Bicarbonate"],
    ),
    c(
        "lactate",
        "Lactate",
        "mmol/L",
        (0.0, 30.0),
        (0.5, 2.0),
        &["Lactate"],
    ),
    c(
        "sodium",
        "Sodium",
        "mmol/L",
        (50.0, 225.0),
        (135.0, 145.0),
        &["Na", "Sodium"],
    ),
    c(
        "potassium",
        "Potassium",
        "mmol/L",
        (0.0, 15.0),
        (3.5, 5.0),
        &["K", "Potassium"],
    ),
    c(
        "magnesium",
        "Magnesium",
        "mg/dL",
        (0.0, 20.0),
        (1.7, 2.2),
        &["Mg", "Magnesium"],
    ),
    c(
        "bun",
        "Blood urea nitrogen",
        "mg/dL",
        (0.0, 250.0),
        (7.0, 20.0),
        &["BUN", "Blood urea nitrogen"],
    ),
    c(
        "creatinine",
        "Creatinine",
        "mg/dL",
        (0.1, 60.0),
        (0.6, 1.2),
        &["Creatinine"],
    ),
    c(
        "hematocrit",
        "Hematocrit",
        "%",
        (0.0, 75.0),
        (36.0, 50.0),
        &["HCT", "Hematocrit"],
    ),
    c(
        "wbc",
        "White blood cells",
        "10*3/uL",
        (0.0, 1000.0),
        (4.0, 11.0),
        &["WBC", "White blood cell count"],
    ),
    c(
        "platelets",
        "Platelets",
        "10*3/uL",
        (0.0, 2000.0),
        (150.0, 400.0),
        &["Platelets"],
    ),
    c(
        "albumin",
        "Albumin",
        "g/dL",
        (0.6, 6.0),
        (3.5, 5.0),
        &["Albumin"],
    ),
    c(
        "alp",
        "Alkaline phosphatase",
        "U/L",
        (20.0, 3625.0),
        (44.0, 147.0),
        &["ALP", "Alkaline phosphate"],
    ),
    c(
        "alt",
        "Alanine aminotransferase",
        "U/L",
        (2.0, 10000.0),
        (7.0, 56.0),
        &["ALT", "Alanine aminotransferase"],
    ),
    c(
        "ast",
        "Aspartate aminotransferase",
        "U/L",
        (6.0, 20000.0),
        (10.0, 40.0),
        &["AST", "Asparate aminotransferase"],
    ),
    c(
        "bilirubin",
        "Bilirubin (total)",
        "mg/dL",
        (0.1, 60.0),
        (0.1, 1.2),
        &["Bilirubin"],
    ),
    c(
        "cholesterol",
        "Cholesterol",
        "mg/dL",
        (32.0, 600.0),
        (100.0, 200.0),
        &["Cholesterol"],
    ),
    c(
        "troponin_i",
        "Troponin I",
        "ng/mL",
        (0.0, 500.0),
        (0.0, 0.04),
        &["TroponinI"],
    ),
    c(
        "troponin_t",
        "Troponin T",
        "ng/mL",
        (0.0, 500.0),
        (0.0, 0.01),
        &["TroponinT"],
    ),
];

/// Index of a channel by canonical name or alias (case-insensitive).
pub fn channel_index(name: &str) -> Option<usize> {
    CHANNELS.iter().position(|c| {
        c.name.eq_ignore_ascii_case(name) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// MIMIC-IV `hosp/labevents` item ids (`d_labitems`) of each lab channel, whole-blood (blood-gas)
/// measurements included.
pub const MIMIC_IV_LAB_ITEMS: &[(u32, &str)] = &[
    (50912, "creatinine"),
    (52546, "creatinine"),
    (51006, "bun"),
    (50983, "sodium"),
    (50824, "sodium"),
    (50971, "potassium"),
    (50822, "potassium"),
    (50931, "glucose"),
    (50809, "glucose"),
    (50882, "bicarbonate"),
    (50803, "bicarbonate"),
    (51221, "hematocrit"),
    (51301, "wbc"),
    (51300, "wbc"),
    (51265, "platelets"),
    (50960, "magnesium"),
    (50813, "lactate"),
    (50820, "ph"),
    (50818, "paco2"),
    (50821, "pao2"),
    (50817, "sao2"),
    (50816, "fio2"),
    (50861, "alt"),
    (50878, "ast"),
    (50863, "alp"),
    (50885, "bilirubin"),
    (50862, "albumin"),
    (50907, "cholesterol"),
    (51003, "troponin_t"),
    (51002, "troponin_i"),
];

/// LOINC codes of each channel, for FHIR Observations (`code.coding` with system
/// `http://loinc.org`).
pub const LOINC_CODES: &[(&str, &str)] = &[
    ("8867-4", "heart_rate"),
    ("8480-6", "systolic_bp"),
    ("76534-7", "systolic_bp"),
    ("8462-4", "diastolic_bp"),
    ("76535-4", "diastolic_bp"),
    ("8478-0", "mean_bp"),
    ("9279-1", "resp_rate"),
    ("8310-5", "temperature"),
    ("8331-1", "temperature"),
    ("8332-9", "temperature"),
    ("59408-5", "spo2"),
    ("2708-6", "sao2"),
    ("3150-0", "fio2"),
    ("9269-2", "gcs_total"),
    ("9267-6", "gcs_eye"),
    ("9268-4", "gcs_motor"),
    ("9270-0", "gcs_verbal"),
    ("29463-7", "weight"),
    ("3141-9", "weight"),
    ("8302-2", "height"),
    ("9187-6", "urine_output"),
    ("2345-7", "glucose"),
    ("2339-0", "glucose"),
    ("2744-1", "ph"),
    ("11558-4", "ph"),
    ("2019-8", "paco2"),
    ("2703-7", "pao2"),
    ("1963-8", "bicarbonate"),
    ("1959-6", "bicarbonate"),
    ("2524-7", "lactate"),
    ("32693-4", "lactate"),
    ("2951-2", "sodium"),
    ("2947-0", "sodium"),
    ("2823-3", "potassium"),
    ("6298-4", "potassium"),
    ("19123-9", "magnesium"),
    ("2601-3", "magnesium"),
    ("3094-0", "bun"),
    ("2160-0", "creatinine"),
    ("4544-3", "hematocrit"),
    ("20570-8", "hematocrit"),
    ("6690-2", "wbc"),
    ("26464-8", "wbc"),
    ("777-3", "platelets"),
    ("26515-7", "platelets"),
    ("1751-7", "albumin"),
    ("6768-6", "alp"),
    ("1742-6", "alt"),
    ("1920-8", "ast"),
    ("1975-2", "bilirubin"),
    ("2093-3", "cholesterol"),
    ("10839-9", "troponin_i"),
    ("42757-5", "troponin_i"),
    ("6598-7", "troponin_t"),
];

pub(crate) const MIMIC_III_ITEMS_TABLE: &str = include_str!("data/mimic3_items.tsv");

/// The channel and charted unit of a MIMIC-III CHARTEVENTS/LABEVENTS item id of the MIMIC-III
/// benchmark's variables (CareVue and MetaVision; `data/mimic3_items.tsv`). The unit is empty
/// where the channel's own applies. MIMIC-III lab items not listed here share their ids with
/// MIMIC-IV: see [`MIMIC_IV_LAB_ITEMS`].
pub fn mimic3_item(itemid: u32) -> Option<(&'static str, &'static str)> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static ITEMS: OnceLock<HashMap<u32, (&'static str, &'static str)>> = OnceLock::new();
    ITEMS
        .get_or_init(|| {
            MIMIC_III_ITEMS_TABLE
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some((f.next()?.parse().ok()?, (f.next()?, f.next()?)))
                })
                .collect()
        })
        .get(&itemid)
        .copied()
        .or_else(|| {
            MIMIC_IV_LAB_ITEMS
                .iter()
                .find(|(id, _)| *id == itemid)
                .map(|(_, c)| (*c, ""))
        })
}
