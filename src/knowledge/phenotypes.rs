//! The 25 phenotype groups of the MIMIC-III benchmark (HCUP CCS groups with
//! `use_in_benchmark: True` in `hcup_ccs_2015_definitions.yaml`), the labels ClinRaGen diagnoses.

/// Whether a phenotype is an acute condition of this admission or a chronic one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhenotypeKind {
    Acute,
    Chronic,
}

/// One phenotype group: its CCS name (the label text the model emits) and a short display name.
#[derive(Debug, Clone, Copy)]
pub struct Phenotype {
    pub name: &'static str,
    pub short: &'static str,
    pub kind: PhenotypeKind,
}

const fn p(name: &'static str, short: &'static str, kind: PhenotypeKind) -> Phenotype {
    Phenotype { name, short, kind }
}

use PhenotypeKind::{Acute, Chronic};

/// In the order of the benchmark's label columns.
pub const PHENOTYPES: &[Phenotype] = &[
    p("Acute and unspecified renal failure", "Acute kidney failure", Acute),
    p("Acute cerebrovascular disease", "Stroke", Acute),
    p("Acute myocardial infarction", "Myocardial infarction", Acute),
    p("Cardiac dysrhythmias", "Dysrhythmia", Chronic),
    p("Chronic kidney disease", "Chronic kidney disease", Chronic),
    p("Chronic obstructive pulmonary disease and bronchiectasis", "COPD", Chronic),
    p("Complications of surgical procedures or medical care", "Complication of care", Acute),
    p("Conduction disorders", "Conduction disorder", Chronic),
    p("Congestive heart failure; nonhypertensive", "Heart failure", Acute),
    p("Coronary atherosclerosis and other heart disease", "Coronary artery disease", Chronic),
    p("Diabetes mellitus with complications", "Diabetes, complicated", Chronic),
    p("Diabetes mellitus without complication", "Diabetes", Chronic),
    p("Disorders of lipid metabolism", "Lipid disorder", Chronic),
    p("Essential hypertension", "Hypertension", Chronic),
    p("Fluid and electrolyte disorders", "Fluid/electrolyte disorder", Acute),
    p("Gastrointestinal hemorrhage", "GI haemorrhage", Acute),
    p("Hypertension with complications and secondary hypertension", "Hypertension, complicated", Chronic),
    p("Other liver diseases", "Liver disease", Acute),
    p("Other lower respiratory disease", "Lower respiratory disease", Acute),
    p("Other upper respiratory disease", "Upper respiratory disease", Acute),
    p("Pleurisy; pneumothorax; pulmonary collapse", "Pleurisy/pneumothorax", Acute),
    p("Pneumonia (except that caused by tuberculosis or sexually transmitted disease)", "Pneumonia", Acute),
    p("Respiratory failure; insufficiency; arrest (adult)", "Respiratory failure", Acute),
    p("Septicemia (except in labor)", "Sepsis", Acute),
    p("Shock", "Shock", Acute),
];
