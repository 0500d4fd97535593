//! The 25 phenotype groups of the MIMIC-III benchmark (HCUP CCS groups with
//! `use_in_benchmark: True` in `hcup_ccs_2015_definitions.yaml`), the labels ClinRaGen diagnoses.

/// Whether a phenotype is an acute condition of this admission or a chronic one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhenotypeKind {
    Acute,
    Chronic,
}

/// One phenotype group: its CCS name (the label text the model emits), a short display name, the
/// channels whose abnormal values suggest it, and words by which notes describe it (lower case).
#[derive(Debug, Clone, Copy)]
pub struct Phenotype {
    pub name: &'static str,
    pub short: &'static str,
    pub kind: PhenotypeKind,
    pub channels: &'static [&'static str],
    pub keywords: &'static [&'static str],
}

const fn p(
    name: &'static str,
    short: &'static str,
    kind: PhenotypeKind,
    channels: &'static [&'static str],
    keywords: &'static [&'static str],
) -> Phenotype {
    Phenotype {
        name,
        short,
        kind,
        channels,
        keywords,
    }
}

use PhenotypeKind::{Acute, Chronic};

/// In the order of the benchmark's label columns.
pub const PHENOTYPES: &[Phenotype] = &[
    p(
        "Acute and unspecified renal failure",
        "Acute kidney failure",
        Acute,
        &[
            "creatinine",
            "bun",
            "potassium",
            "urine_output",
            "bicarbonate",
        ],
        &[
            "acute kidney injury",
            "acute renal failure",
            "renal failure",
            "creatinine rose",
            "oliguria",
        ],
    ),
    p(
        "Acute cerebrovascular disease",
        "Stroke",
        Acute,
        &["gcs_total", "gcs_motor", "gcs_verbal", "systolic_bp"],
        &[
            "stroke",
            "cerebrovascular",
            "hemiparesis",
            "weakness",
            "slurred speech",
        ],
    ),
    p(
        "Acute myocardial infarction",
        "Myocardial infarction",
        Acute,
        &["troponin_i", "troponin_t", "heart_rate"],
        &[
            "myocardial infarction",
            "nstemi",
            "stemi",
            "troponin elevation",
            "rising troponin",
        ],
    ),
    p(
        "Cardiac dysrhythmias",
        "Dysrhythmia",
        Chronic,
        &["heart_rate"],
        &[
            "atrial fibrillation",
            "arrhythmia",
            "tachyarrhythmia",
            "dysrhythmia",
        ],
    ),
    p(
        "Chronic kidney disease",
        "Chronic kidney disease",
        Chronic,
        &["creatinine", "bun", "hematocrit", "potassium"],
        &["chronic kidney disease", "ckd"],
    ),
    p(
        "Chronic obstructive pulmonary disease and bronchiectasis",
        "COPD",
        Chronic,
        &["paco2", "ph", "spo2", "resp_rate"],
        &["copd", "emphysema", "bronchiectasis", "inhalers"],
    ),
    p(
        "Complications of surgical procedures or medical care",
        "Complication of care",
        Acute,
        &["wbc", "temperature"],
        &[
            "complicated by",
            "postoperative",
            "line infection",
            "wound infection",
        ],
    ),
    p(
        "Conduction disorders",
        "Conduction disorder",
        Chronic,
        &["heart_rate"],
        &["heart block", "bundle branch block", "bradycardia"],
    ),
    p(
        "Congestive heart failure; nonhypertensive",
        "Heart failure",
        Acute,
        &["spo2", "resp_rate", "sodium", "bun", "weight"],
        &[
            "heart failure",
            "volume overload",
            "pulmonary oedema",
            "pulmonary edema",
            "ejection fraction",
        ],
    ),
    p(
        "Coronary atherosclerosis and other heart disease",
        "Coronary artery disease",
        Chronic,
        &["cholesterol", "troponin_t"],
        &["coronary artery disease", "cad", "stents"],
    ),
    p(
        "Diabetes mellitus with complications",
        "Diabetes, complicated",
        Chronic,
        &["glucose", "creatinine", "bicarbonate", "ph"],
        &["ketoacidosis", "dka", "diabetes complicated", "nephropathy"],
    ),
    p(
        "Diabetes mellitus without complication",
        "Diabetes",
        Chronic,
        &["glucose"],
        &["diabetes", "sliding scale", "oral agents"],
    ),
    p(
        "Disorders of lipid metabolism",
        "Lipid disorder",
        Chronic,
        &["cholesterol"],
        &["hyperlipidaemia", "hyperlipidemia", "cholesterol", "statin"],
    ),
    p(
        "Essential hypertension",
        "Hypertension",
        Chronic,
        &["systolic_bp", "diastolic_bp", "mean_bp"],
        &["hypertension", "antihypertensives"],
    ),
    p(
        "Fluid and electrolyte disorders",
        "Fluid/electrolyte disorder",
        Acute,
        &["sodium", "potassium", "magnesium", "bicarbonate"],
        &[
            "hyponatraemia",
            "hyponatremia",
            "hypokalaemia",
            "hypokalemia",
            "electrolyte",
        ],
    ),
    p(
        "Gastrointestinal hemorrhage",
        "GI haemorrhage",
        Acute,
        &["hematocrit", "heart_rate", "bun", "systolic_bp"],
        &[
            "melena",
            "bleed",
            "haematemesis",
            "hematemesis",
            "ulcer",
            "transfused",
        ],
    ),
    p(
        "Hypertension with complications and secondary hypertension",
        "Hypertension, complicated",
        Chronic,
        &["systolic_bp", "creatinine"],
        &[
            "hypertensive heart",
            "hypertensive urgency",
            "hypertensive emergency",
        ],
    ),
    p(
        "Other liver diseases",
        "Liver disease",
        Acute,
        &["bilirubin", "alt", "ast", "alp", "albumin"],
        &[
            "cirrhosis",
            "hepatitis",
            "jaundice",
            "transaminases",
            "bilirubin",
        ],
    ),
    p(
        "Other lower respiratory disease",
        "Lower respiratory disease",
        Acute,
        &["resp_rate", "spo2"],
        &["nodule", "chest imaging", "cough"],
    ),
    p(
        "Other upper respiratory disease",
        "Upper respiratory disease",
        Acute,
        &["temperature", "resp_rate"],
        &["pharyngitis", "upper airway", "hoarse"],
    ),
    p(
        "Pleurisy; pneumothorax; pulmonary collapse",
        "Pleurisy/pneumothorax",
        Acute,
        &["spo2", "resp_rate"],
        &[
            "pneumothorax",
            "pleural effusion",
            "lung collapse",
            "atelectasis",
        ],
    ),
    p(
        "Pneumonia (except that caused by tuberculosis or sexually transmitted disease)",
        "Pneumonia",
        Acute,
        &["temperature", "wbc", "spo2", "resp_rate"],
        &["pneumonia", "infiltrate", "productive cough"],
    ),
    p(
        "Respiratory failure; insufficiency; arrest (adult)",
        "Respiratory failure",
        Acute,
        &["mech_vent", "fio2", "pao2", "paco2", "spo2"],
        &["respiratory failure", "intubat", "ventilat"],
    ),
    p(
        "Septicemia (except in labor)",
        "Sepsis",
        Acute,
        &["temperature", "heart_rate", "wbc", "lactate", "mean_bp"],
        &["sepsis", "septic", "blood cultures", "bacteremia"],
    ),
    p(
        "Shock",
        "Shock",
        Acute,
        &[
            "mean_bp",
            "systolic_bp",
            "lactate",
            "heart_rate",
            "urine_output",
        ],
        &["shock", "vasopressor", "norepinephrine", "hypotensive"],
    ),
];
