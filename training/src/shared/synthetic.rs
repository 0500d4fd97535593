//! A seeded synthetic cohort whose labs follow their phenotypes, generated in code: what the
//! walking skeleton trains on, what tests and the demo use, and no patient's data.
//!
//! Each phenotype shifts a few channels by a multiple of the channel's normal half-width (sepsis
//! raises temperature, heart rate, white cells and lactate; acute kidney failure raises
//! creatinine, urea and potassium; ...). Acute phenotypes build up over the first day; each
//! patient gets their own severity; measurement schedules differ between vitals (hourly, with
//! gaps), blood gases and panels (every 6–24 h, more often when clinically indicated).

use bedside::findings::Direction;
use bedside::knowledge::{
    CHANNELS, IcdVersion, PHENOTYPES, PhenotypeKind, channel_index, codes_for_phenotype,
};
use bedside::record::{
    Demographics, Labels, Note, Observation, PatientRecord, RECORD_FORMAT_VERSION, Sex, Visit,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// (phenotype short name, prevalence, [(channel, shift in normal half-widths)]).
type Signature = (&'static str, f64, &'static [(&'static str, f64)]);

const SIGNATURES: &[Signature] = &[
    (
        "Acute kidney failure",
        0.20,
        &[
            ("creatinine", 5.0),
            ("bun", 3.5),
            ("potassium", 1.6),
            ("urine_output", -1.4),
            ("bicarbonate", -1.5),
        ],
    ),
    (
        "Stroke",
        0.08,
        &[
            ("gcs_total", -4.0),
            ("gcs_motor", -2.5),
            ("gcs_verbal", -3.0),
            ("systolic_bp", 1.5),
        ],
    ),
    (
        "Myocardial infarction",
        0.10,
        &[
            ("troponin_i", 40.0),
            ("troponin_t", 30.0),
            ("heart_rate", 0.8),
        ],
    ),
    ("Dysrhythmia", 0.30, &[("heart_rate", 1.6)]),
    (
        "Chronic kidney disease",
        0.14,
        &[
            ("creatinine", 2.5),
            ("bun", 2.0),
            ("hematocrit", -1.5),
            ("potassium", 0.8),
        ],
    ),
    (
        "COPD",
        0.12,
        &[
            ("paco2", 2.5),
            ("ph", -1.0),
            ("spo2", -1.5),
            ("resp_rate", 1.0),
        ],
    ),
    (
        "Complication of care",
        0.18,
        &[("wbc", 1.0), ("temperature", 0.8)],
    ),
    ("Conduction disorder", 0.08, &[("heart_rate", -1.6)]),
    (
        "Heart failure",
        0.22,
        &[
            ("spo2", -1.0),
            ("resp_rate", 1.2),
            ("sodium", -1.2),
            ("bun", 1.0),
            ("weight", 0.8),
        ],
    ),
    (
        "Coronary artery disease",
        0.28,
        &[("cholesterol", 1.0), ("troponin_t", 4.0)],
    ),
    (
        "Diabetes, complicated",
        0.10,
        &[("glucose", 4.0), ("creatinine", 1.0), ("bicarbonate", -0.6)],
    ),
    ("Diabetes", 0.18, &[("glucose", 2.5)]),
    ("Lipid disorder", 0.26, &[("cholesterol", 2.2)]),
    (
        "Hypertension",
        0.40,
        &[
            ("systolic_bp", 1.5),
            ("diastolic_bp", 1.2),
            ("mean_bp", 1.3),
        ],
    ),
    (
        "Fluid/electrolyte disorder",
        0.25,
        &[("sodium", -2.5), ("potassium", -1.5), ("magnesium", -1.5)],
    ),
    (
        "GI haemorrhage",
        0.07,
        &[
            ("hematocrit", -3.0),
            ("heart_rate", 1.0),
            ("bun", 1.5),
            ("systolic_bp", -1.0),
        ],
    ),
    (
        "Hypertension, complicated",
        0.12,
        &[("systolic_bp", 2.5), ("creatinine", 1.0)],
    ),
    (
        "Liver disease",
        0.08,
        &[
            ("bilirubin", 6.0),
            ("alt", 5.0),
            ("ast", 6.0),
            ("alp", 2.0),
            ("albumin", -2.0),
        ],
    ),
    (
        "Lower respiratory disease",
        0.08,
        &[("resp_rate", 1.0), ("spo2", -1.0)],
    ),
    (
        "Upper respiratory disease",
        0.05,
        &[("temperature", 0.6), ("resp_rate", 0.6)],
    ),
    (
        "Pleurisy/pneumothorax",
        0.07,
        &[("spo2", -2.0), ("resp_rate", 1.5)],
    ),
    (
        "Pneumonia",
        0.14,
        &[
            ("temperature", 2.0),
            ("wbc", 2.0),
            ("spo2", -1.5),
            ("resp_rate", 1.5),
        ],
    ),
    (
        "Respiratory failure",
        0.16,
        &[
            ("mech_vent", 2.0),
            ("fio2", 3.0),
            ("pao2", -1.5),
            ("paco2", 2.0),
            ("gcs_total", -1.0),
        ],
    ),
    (
        "Sepsis",
        0.14,
        &[
            ("temperature", 2.5),
            ("heart_rate", 2.0),
            ("wbc", 3.0),
            ("lactate", 3.0),
            ("mean_bp", -1.5),
        ],
    ),
    (
        "Shock",
        0.08,
        &[
            ("mean_bp", -3.0),
            ("systolic_bp", -2.5),
            ("lactate", 5.0),
            ("heart_rate", 2.0),
            ("urine_output", -1.5),
        ],
    ),
];

/// What a discharge summary says about each phenotype (one phrase is picked) and the ATC level-3
/// drug classes that treat it (a visit gets some of them).
const STORIES: &[(&str, &[&str], &[&str])] = &[
    (
        "Acute kidney failure",
        &[
            "creatinine rose and urine output fell, consistent with acute kidney injury",
            "developed acute renal failure, managed with fluids and holding nephrotoxins",
        ],
        &["B05B", "C03C"],
    ),
    (
        "Stroke",
        &[
            "presented with acute left-sided weakness and slurred speech; CT showed an ischaemic stroke",
            "found with reduced consciousness and a new hemiparesis, consistent with a cerebrovascular accident",
        ],
        &["B01A", "C10A"],
    ),
    (
        "Myocardial infarction",
        &[
            "chest pain with a rising troponin, treated as an NSTEMI",
            "ECG changes and troponin elevation consistent with acute myocardial infarction",
        ],
        &["B01A", "C07A", "C10A"],
    ),
    (
        "Dysrhythmia",
        &[
            "atrial fibrillation with rapid ventricular response, rate controlled",
            "intermittent tachyarrhythmia on telemetry",
        ],
        &["C07A", "B01A", "C01B"],
    ),
    (
        "Chronic kidney disease",
        &[
            "known chronic kidney disease with a stable elevated creatinine",
            "history of CKD stage 3",
        ],
        &["B03X", "A12A"],
    ),
    (
        "COPD",
        &[
            "COPD exacerbation with wheeze and hypercapnia",
            "history of COPD on home inhalers",
        ],
        &["R03A", "R03B", "H02A"],
    ),
    (
        "Complication of care",
        &[
            "course complicated by a line infection",
            "postoperative wound infection required antibiotics",
        ],
        &["J01D"],
    ),
    (
        "Conduction disorder",
        &[
            "bradycardia with first-degree heart block",
            "new left bundle branch block on ECG",
        ],
        &["C01C"],
    ),
    (
        "Heart failure",
        &[
            "volume overloaded with pulmonary oedema, diuresed",
            "decompensated congestive heart failure with low ejection fraction",
        ],
        &["C03C", "C09A", "C07A"],
    ),
    (
        "Coronary artery disease",
        &[
            "known coronary artery disease with prior stents",
            "history of CAD",
        ],
        &["B01A", "C10A"],
    ),
    (
        "Diabetes, complicated",
        &[
            "diabetic ketoacidosis with high glucose and an anion gap acidosis, treated with an insulin infusion",
            "diabetes complicated by nephropathy",
        ],
        &["A10A", "A10B"],
    ),
    (
        "Diabetes",
        &[
            "type 2 diabetes, glucose managed with a sliding scale",
            "diabetes mellitus on oral agents",
        ],
        &["A10B", "A10A"],
    ),
    (
        "Lipid disorder",
        &["hyperlipidaemia on a statin", "elevated cholesterol"],
        &["C10A"],
    ),
    (
        "Hypertension",
        &[
            "essential hypertension, home antihypertensives continued",
            "blood pressure elevated, history of hypertension",
        ],
        &["C09A", "C08C", "C03A"],
    ),
    (
        "Fluid/electrolyte disorder",
        &[
            "hyponatraemia and hypokalaemia, repleted",
            "electrolyte abnormalities corrected",
        ],
        &["A12B", "A12C", "B05X"],
    ),
    (
        "GI haemorrhage",
        &[
            "melena with a falling haematocrit, transfused",
            "upper gastrointestinal bleed, endoscopy showed an ulcer",
        ],
        &["A02B", "B05A"],
    ),
    (
        "Hypertension, complicated",
        &[
            "hypertensive heart and kidney disease",
            "hypertensive urgency with end-organ involvement",
        ],
        &["C09A", "C08C"],
    ),
    (
        "Liver disease",
        &[
            "alcoholic cirrhosis with jaundice and elevated transaminases",
            "hepatitis with rising bilirubin",
        ],
        &["A06A", "A07A"],
    ),
    (
        "Lower respiratory disease",
        &[
            "pulmonary nodule noted on imaging",
            "chronic cough with abnormal chest imaging",
        ],
        &["R05C"],
    ),
    (
        "Upper respiratory disease",
        &["pharyngitis with hoarse voice", "upper airway swelling"],
        &["R01A"],
    ),
    (
        "Pleurisy/pneumothorax",
        &[
            "small pneumothorax managed conservatively",
            "pleural effusion with partial lung collapse",
        ],
        &["N02B"],
    ),
    (
        "Pneumonia",
        &[
            "fever, productive cough and an infiltrate on chest x-ray, treated for pneumonia",
            "community-acquired pneumonia on antibiotics",
        ],
        &["J01D", "J01F", "J01M"],
    ),
    (
        "Respiratory failure",
        &[
            "hypoxic respiratory failure requiring intubation",
            "intubated for hypercapnic respiratory failure",
        ],
        &["N05C", "N01A", "N02A"],
    ),
    (
        "Sepsis",
        &[
            "febrile and tachycardic with a raised lactate, treated for sepsis",
            "septic from a urinary source, blood cultures drawn and antibiotics started",
        ],
        &["J01D", "J01X", "B05B"],
    ),
    (
        "Shock",
        &[
            "hypotensive despite fluids, started on vasopressors for shock",
            "in shock with rising lactate, required norepinephrine",
        ],
        &["C01C", "B05B", "H02A"],
    ),
];

const OPENINGS: &[&str] = &[
    "Brief Hospital Course: {age} year old {sex} admitted to the ICU.",
    "Brief Hospital Course: The patient is a {age} year old {sex} who was admitted to the intensive care unit.",
    "Brief Hospital Course: {age}F/M admitted for further management.",
];
const NEGATIVES: &[(&str, &str)] = &[
    ("Pneumonia", "Chest x-ray without infiltrate."),
    ("Myocardial infarction", "Troponins negative."),
    ("Sepsis", "Afebrile throughout, cultures negative."),
    ("Acute kidney failure", "Renal function stable."),
    ("GI haemorrhage", "No signs of bleeding."),
];

fn story(short: &str) -> (&'static [&'static str], &'static [&'static str]) {
    STORIES
        .iter()
        .find(|(s, _, _)| *s == short)
        .map(|(_, phrases, drugs)| (*phrases, *drugs))
        .unwrap_or((&[], &[]))
}

/// A discharge summary's "Brief Hospital Course" that mentions most of the findings, in varied
/// words, with some pertinent negatives; and the drugs of the stay.
fn note_and_drugs(rng: &mut StdRng, has: &[bool], age: f64, sex: Sex) -> (String, Vec<String>) {
    let sex_word = if sex == Sex::Female { "woman" } else { "man" };
    let opening = OPENINGS[rng.random_range(0..OPENINGS.len())]
        .replace("{age}", &format!("{age}"))
        .replace("{sex}", sex_word)
        .replace("F/M", if sex == Sex::Female { "F" } else { "M" });
    let mut sentences = vec![opening];
    let mut drugs: Vec<String> = Vec::new();
    for (p, phenotype) in PHENOTYPES.iter().enumerate() {
        if !has[p] {
            continue;
        }
        let (phrases, classes) = story(phenotype.short);
        // notes miss some diagnoses, as real ones do
        if !phrases.is_empty() && rng.random_bool(0.85) {
            let phrase = phrases[rng.random_range(0..phrases.len())];
            let mut chars = phrase.chars();
            let capitalised: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            sentences.push(format!("{capitalised}."));
        }
        for class in classes {
            if rng.random_bool(0.7) && !drugs.iter().any(|d| d == class) {
                drugs.push((*class).to_string());
            }
        }
    }
    for (short, negative) in NEGATIVES {
        if !has[phenotype_index(short)] && rng.random_bool(0.15) {
            sentences.push((*negative).to_string());
        }
    }
    if rng.random_bool(0.5) {
        sentences.push("Discharged in stable condition.".into());
    }
    drugs.sort();
    (sentences.join(" "), drugs)
}

/// Earlier admissions: chronic phenotypes were already there, with their codes and drugs.
fn history(rng: &mut StdRng, has: &[bool]) -> Vec<Visit> {
    let earlier = [0, 0, 1, 1, 2, 3][rng.random_range(0..6)];
    (0..earlier)
        .map(|_| {
            let mut visit = Visit::default();
            for (p, phenotype) in PHENOTYPES.iter().enumerate() {
                let chronic = phenotype.kind == PhenotypeKind::Chronic;
                if (has[p] && chronic && rng.random_bool(0.7)) || rng.random_bool(0.03) {
                    if let Some(code) = codes_for_phenotype(p, IcdVersion::Icd9).first() {
                        visit.diagnoses.push(format!("icd9:{code}"));
                    }
                    for class in story(phenotype.short).1 {
                        if rng.random_bool(0.6) && !visit.medications.iter().any(|d| d == class) {
                            visit.medications.push((*class).to_string());
                        }
                    }
                }
            }
            visit.medications.sort();
            visit
        })
        .collect()
}

/// Comorbidity: having the first makes the second likelier (probability added).
const LINKS: &[(&str, &str, f64)] = &[
    ("Sepsis", "Shock", 0.30),
    ("Sepsis", "Acute kidney failure", 0.25),
    ("Diabetes, complicated", "Chronic kidney disease", 0.30),
    ("Pneumonia", "Respiratory failure", 0.25),
    ("Coronary artery disease", "Myocardial infarction", 0.15),
    ("Heart failure", "Dysrhythmia", 0.20),
];

const VITALS: &[&str] = &[
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "mean_bp",
    "resp_rate",
    "spo2",
];
const ROUTINE_LABS: &[&str] = &[
    "bun",
    "creatinine",
    "sodium",
    "potassium",
    "glucose",
    "hematocrit",
    "wbc",
    "platelets",
    "bicarbonate",
    "magnesium",
];
/// Panels drawn when indicated by a phenotype touching them, else with this probability.
const PANELS: &[(&[&str], f64, f64)] = &[
    (&["ph", "paco2", "pao2", "fio2", "sao2"], 0.3, 6.0),
    (&["bilirubin", "alt", "ast", "alp", "albumin"], 0.25, 24.0),
    (&["lactate"], 0.2, 6.0),
    (&["troponin_i", "troponin_t"], 0.2, 8.0),
    (&["cholesterol"], 0.1, 48.0),
];

fn phenotype_index(short: &str) -> usize {
    PHENOTYPES
        .iter()
        .position(|p| p.short == short)
        .unwrap_or_else(|| unreachable!("{short} is a phenotype"))
}

fn channel(name: &str) -> usize {
    channel_index(name).unwrap_or_else(|| unreachable!("{name} is a channel"))
}

/// The synthetic cohort's split protocol (RESULTS.md, "How the figures are made"): committed
/// models train on seed 7; every choice is scored on the development seed; the final-test seed is
/// scored once per committed model.
pub const DEVELOPMENT_SEED: u64 = 2025;
pub const FINAL_TEST_SEED: u64 = 4051;

/// Generates `n` admissions of `hours` hours; the same seed gives the same cohort.
pub fn cohort(n: usize, hours: usize, seed: u64) -> Vec<PatientRecord> {
    (0..n).map(|i| admission(i, hours, seed)).collect()
}

/// What the generator gave one admission, which the record alone does not say: each phenotype it
/// has, how severe, and which channels it shifted in which direction. `eval` scores the evidence
/// the model cites against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub phenotypes: Vec<TruePhenotype>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TruePhenotype {
    /// Index into [`PHENOTYPES`].
    pub phenotype: usize,
    /// The factor (0.6–1.3) that scaled its shifts.
    pub severity: f64,
    /// The channels (indices into [`CHANNELS`]) it shifted, and the side it shifted them to.
    pub shifts: Vec<(usize, Direction)>,
}

fn rng_of(i: usize, seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64))
}

/// The admission's phenotypes and severities: the generator's first draws, before any that
/// depends on the window, so [`truth`] can redraw them from the id alone.
fn draw_truth(rng: &mut StdRng) -> Truth {
    let mut has = vec![false; PHENOTYPES.len()];
    for (short, prevalence, _) in SIGNATURES {
        has[phenotype_index(short)] = rng.random_bool(*prevalence);
    }
    for (from, to, extra) in LINKS {
        if has[phenotype_index(from)] && rng.random_bool(*extra) {
            has[phenotype_index(to)] = true;
        }
    }
    let mut phenotypes = Vec::new();
    for (short, _, effects) in SIGNATURES {
        let p = phenotype_index(short);
        if !has[p] {
            continue;
        }
        let severity = rng.random_range(0.6..1.3);
        let shifts = effects
            .iter()
            .map(|(name, shift)| {
                let side = if *shift > 0.0 {
                    Direction::High
                } else {
                    Direction::Low
                };
                (channel(name), side)
            })
            .collect();
        phenotypes.push(TruePhenotype {
            phenotype: p,
            severity,
            shifts,
        });
    }
    Truth { phenotypes }
}

/// The truth behind a record of [`cohort`], from its id (`synthetic-<seed>-<index>`); `None`
/// for any other id.
pub fn truth(id: &str) -> Option<Truth> {
    let (seed, i) = id.strip_prefix("synthetic-")?.split_once('-')?;
    Some(draw_truth(&mut rng_of(i.parse().ok()?, seed.parse().ok()?)))
}

fn admission(i: usize, hours: usize, seed: u64) -> PatientRecord {
    let mut rng = rng_of(i, seed);
    let truth = draw_truth(&mut rng);
    let mut has = vec![false; PHENOTYPES.len()];
    truth
        .phenotypes
        .iter()
        .for_each(|t| has[t.phenotype] = true);

    // shift[c] for acute phenotypes ramps up over the first day; chronic ones are there from h0
    let mut acute = vec![0.0; CHANNELS.len()];
    let mut chronic = vec![0.0; CHANNELS.len()];
    for t in &truth.phenotypes {
        let target = if PHENOTYPES[t.phenotype].kind == PhenotypeKind::Acute {
            &mut acute
        } else {
            &mut chronic
        };
        let (_, _, effects) = SIGNATURES
            .iter()
            .find(|(short, _, _)| *short == PHENOTYPES[t.phenotype].short)
            .unwrap_or_else(|| unreachable!("every true phenotype has a signature"));
        for (name, shift) in *effects {
            target[channel(name)] += shift * t.severity;
        }
    }
    let baseline: Vec<f64> = (0..CHANNELS.len())
        .map(|_| 0.35 * normal(&mut rng))
        .collect();
    let onset = rng.random_range(0.0..24.0);

    let mut observations = Vec::new();
    let mut observe = |rng: &mut StdRng, c: usize, hour: f64| {
        let ch = &CHANNELS[c];
        let ramp = ((hour - onset) / 12.0).clamp(0.0, 1.0) * 0.7 + 0.3;
        let z = baseline[c] + chronic[c] + acute[c] * ramp + 0.25 * normal(rng);
        let mut value = ch.from_standard(z).clamp(ch.valid_low, ch.valid_high);
        if matches!(ch.name, "mech_vent" | "capillary_refill") {
            value = if value >= 0.5 { 1.0 } else { 0.0 };
        }
        if ch.name.starts_with("gcs") {
            value = value.round();
        }
        observations.push(Observation {
            reference: None,
            channel: ch.name.to_string(),
            hours: hour,
            value: Some((value * 1000.0).round() / 1000.0),
            unit: Some(ch.unit.to_string()),
        });
    };

    for hour in 0..hours {
        let h = hour as f64 + rng.random_range(0.0..0.9);
        for name in VITALS {
            if rng.random_bool(0.85) {
                observe(&mut rng, channel(name), h);
            }
        }
        if hour % 4 == 0 {
            for name in [
                "temperature",
                "gcs_total",
                "gcs_eye",
                "gcs_motor",
                "gcs_verbal",
            ] {
                observe(&mut rng, channel(name), h);
            }
        }
        if rng.random_bool(0.6) {
            observe(&mut rng, channel("urine_output"), h);
        }
        if (acute[channel("mech_vent")] > 0.0 || rng.random_bool(0.05)) && hour % 2 == 0 {
            observe(&mut rng, channel("mech_vent"), h);
        }
    }
    observe(&mut rng, channel("weight"), 0.5);
    if rng.random_bool(0.5) {
        observe(&mut rng, channel("height"), 0.5);
    }
    let lab_every = rng.random_range(8..=12);
    for hour in (1..hours).step_by(lab_every) {
        for name in ROUTINE_LABS {
            observe(&mut rng, channel(name), hour as f64 + 0.25);
        }
    }
    for (channels, chance, every) in PANELS {
        let indicated = channels
            .iter()
            .any(|n| acute[channel(n)] != 0.0 || chronic[channel(n)] != 0.0);
        if indicated || rng.random_bool(*chance) {
            let mut hour = rng.random_range(0.0..*every);
            while hour < hours as f64 {
                for name in *channels {
                    observe(&mut rng, channel(name), hour);
                }
                hour += every;
            }
        }
    }
    observations.sort_by(|a, b| a.hours.total_cmp(&b.hours));

    let phenotypes: Vec<String> = PHENOTYPES
        .iter()
        .zip(&has)
        .filter(|(_, h)| **h)
        .map(|(p, _)| p.name.to_string())
        .collect();
    let age = rng.random_range(18.0_f64..92.0).round();
    let sex = if rng.random_bool(0.5) {
        Sex::Female
    } else {
        Sex::Male
    };
    let (text, medications) = note_and_drugs(&mut rng, &has, age, sex);
    let mut visits = history(&mut rng, &has);
    let mut current = Visit::default();
    for (p, _) in has.iter().enumerate().filter(|(_, h)| **h) {
        if let Some(code) = codes_for_phenotype(p, IcdVersion::Icd9).first() {
            current.diagnoses.push(format!("icd9:{code}"));
        }
    }
    visits.push(current);
    PatientRecord {
        skipped: Vec::new(),
        window_start: None,
        format_version: RECORD_FORMAT_VERSION,
        id: format!("synthetic-{seed}-{i:05}"),
        patient: None,
        demographics: Demographics {
            age: Some(age),
            sex: Some(sex),
            care_unit: None,
        },
        notes: vec![Note {
            reference: None,
            kind: "discharge_summary".into(),
            text,
            hours: Some(hours as f64),
        }],
        observations,
        visits,
        labels: Some(Labels {
            phenotypes,
            medications,
            outcomes: None,
        }),
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The truth redrawn from an id is the record's: its phenotypes are the labels, and a strong
    /// shift shows in the record as a finding on its side.
    #[test]
    fn the_truth_behind_each_record() {
        let records = cohort(60, 48, 11);
        let (mut shifts, mut shown) = (0, 0);
        for r in &records {
            let truth = truth(&r.id).unwrap();
            let names: Vec<&str> = truth
                .phenotypes
                .iter()
                .map(|t| PHENOTYPES[t.phenotype].name)
                .collect();
            assert_eq!(names, r.labels.as_ref().unwrap().phenotypes, "{}", r.id);
            let findings = bedside::findings::Findings::of(r, 48);
            for t in &truth.phenotypes {
                assert!((0.6..1.3).contains(&t.severity));
                for &(c, side) in &t.shifts {
                    shifts += 1;
                    shown += usize::from(
                        findings
                            .labs
                            .iter()
                            .any(|f| f.channel == c && f.direction == side),
                    );
                }
            }
        }
        // most shifts (≥ 1.5 half-widths, most of them) push the channel past its normal range
        assert!(
            shifts > 100 && shown * 10 > shifts * 6,
            "{shown} of {shifts}"
        );
        assert_eq!(truth("synthetic-x-1"), None);
        // `admission` labels what `draw_truth` draws: every phenotype has a signature
        for p in PHENOTYPES {
            assert!(
                SIGNATURES.iter().any(|(short, _, _)| *short == p.short),
                "{}",
                p.short
            );
        }
        assert_eq!(truth("mimic4-123"), None);
    }

    #[test]
    fn same_seed_same_cohort_and_records_are_valid() {
        let a = cohort(20, 48, 7);
        assert_eq!(a, cohort(20, 48, 7));
        assert_ne!(a, cohort(20, 48, 8));
        for r in &a {
            r.validate().unwrap();
            let grid = bedside::record::SeriesGrid::from_record(r, 48);
            assert!(grid.notices.is_empty(), "{:?}", grid.notices);
            assert!(grid.observed() > 200);
        }
    }

    #[test]
    fn labs_follow_phenotypes() {
        let records = cohort(400, 48, 1);
        let aki = PHENOTYPES[phenotype_index("Acute kidney failure")].name;
        let mean_creatinine = |with: bool| {
            let values: Vec<f64> = records
                .iter()
                .filter(|r| {
                    r.labels
                        .as_ref()
                        .unwrap()
                        .phenotypes
                        .iter()
                        .any(|p| p == aki)
                        == with
                })
                .flat_map(|r| {
                    r.observations
                        .iter()
                        .filter(|o| o.channel == "creatinine")
                        .map(|o| o.value.unwrap())
                })
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        };
        assert!(mean_creatinine(true) > 1.5 * mean_creatinine(false));
    }

    #[test]
    fn notes_and_drugs_follow_phenotypes() {
        let records = cohort(300, 48, 3);
        let sepsis = PHENOTYPES[phenotype_index("Sepsis")].name;
        let (mut mentioned, mut septic, mut antibiotics) = (0, 0, 0);
        for r in &records {
            let labels = r.labels.as_ref().unwrap();
            assert!(r.notes[0].text.starts_with("Brief Hospital Course:"));
            assert!(!r.visits.is_empty());
            if labels.phenotypes.iter().any(|p| p == sepsis) {
                septic += 1;
                let text = r.notes[0].text.to_lowercase();
                mentioned += usize::from(text.contains("sepsis") || text.contains("septic"));
                antibiotics += usize::from(labels.medications.iter().any(|m| m.starts_with("J01")));
            }
        }
        assert!(septic > 20);
        assert!(
            mentioned * 10 > septic * 7,
            "{mentioned}/{septic} sepsis notes mention it"
        );
        assert!(
            antibiotics * 10 > septic * 7,
            "{antibiotics}/{septic} septic stays get antibacterials"
        );
    }
}
