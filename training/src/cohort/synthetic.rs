//! A seeded synthetic cohort whose labs follow their phenotypes, generated in code: what the
//! walking skeleton trains on, what tests and the demo use, and no patient's data.
//!
//! Each phenotype shifts a few channels by a multiple of the channel's normal half-width (sepsis
//! raises temperature, heart rate, white cells and lactate; acute kidney failure raises
//! creatinine, urea and potassium; ...). Acute phenotypes build up over the first day; each
//! patient gets their own severity; measurement schedules differ between vitals (hourly, with
//! gaps), blood gases and panels (every 6–24 h, more often when clinically indicated).

use bedside::knowledge::{CHANNELS, PHENOTYPES, PhenotypeKind, channel_index};
use bedside::record::{Demographics, Labels, Observation, PatientRecord, RECORD_FORMAT_VERSION, Sex, Visit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// (phenotype short name, prevalence, [(channel, shift in normal half-widths)]).
type Signature = (&'static str, f64, &'static [(&'static str, f64)]);

const SIGNATURES: &[Signature] = &[
    ("Acute kidney failure", 0.20, &[("creatinine", 5.0), ("bun", 3.5), ("potassium", 1.6), ("urine_output", -1.4), ("bicarbonate", -1.5)]),
    ("Stroke", 0.08, &[("gcs_total", -4.0), ("gcs_motor", -2.5), ("gcs_verbal", -3.0), ("systolic_bp", 1.5)]),
    ("Myocardial infarction", 0.10, &[("troponin_i", 40.0), ("troponin_t", 30.0), ("heart_rate", 0.8)]),
    ("Dysrhythmia", 0.30, &[("heart_rate", 1.6)]),
    ("Chronic kidney disease", 0.14, &[("creatinine", 2.5), ("bun", 2.0), ("hematocrit", -1.5), ("potassium", 0.8)]),
    ("COPD", 0.12, &[("paco2", 2.5), ("ph", -1.0), ("spo2", -1.5), ("resp_rate", 1.0)]),
    ("Complication of care", 0.18, &[("wbc", 1.0), ("temperature", 0.8)]),
    ("Conduction disorder", 0.08, &[("heart_rate", -1.6)]),
    ("Heart failure", 0.22, &[("spo2", -1.0), ("resp_rate", 1.2), ("sodium", -1.2), ("bun", 1.0), ("weight", 0.8)]),
    ("Coronary artery disease", 0.28, &[("cholesterol", 1.0), ("troponin_t", 4.0)]),
    ("Diabetes, complicated", 0.10, &[("glucose", 4.0), ("creatinine", 1.0), ("bicarbonate", -0.6)]),
    ("Diabetes", 0.18, &[("glucose", 2.5)]),
    ("Lipid disorder", 0.26, &[("cholesterol", 2.2)]),
    ("Hypertension", 0.40, &[("systolic_bp", 1.5), ("diastolic_bp", 1.2), ("mean_bp", 1.3)]),
    ("Fluid/electrolyte disorder", 0.25, &[("sodium", -2.5), ("potassium", -1.5), ("magnesium", -1.5)]),
    ("GI haemorrhage", 0.07, &[("hematocrit", -3.0), ("heart_rate", 1.0), ("bun", 1.5), ("systolic_bp", -1.0)]),
    ("Hypertension, complicated", 0.12, &[("systolic_bp", 2.5), ("creatinine", 1.0)]),
    ("Liver disease", 0.08, &[("bilirubin", 6.0), ("alt", 5.0), ("ast", 6.0), ("alp", 2.0), ("albumin", -2.0)]),
    ("Lower respiratory disease", 0.08, &[("resp_rate", 1.0), ("spo2", -1.0)]),
    ("Upper respiratory disease", 0.05, &[("temperature", 0.6), ("resp_rate", 0.6)]),
    ("Pleurisy/pneumothorax", 0.07, &[("spo2", -2.0), ("resp_rate", 1.5)]),
    ("Pneumonia", 0.14, &[("temperature", 2.0), ("wbc", 2.0), ("spo2", -1.5), ("resp_rate", 1.5)]),
    ("Respiratory failure", 0.16, &[("mech_vent", 2.0), ("fio2", 3.0), ("pao2", -1.5), ("paco2", 2.0), ("gcs_total", -1.0)]),
    ("Sepsis", 0.14, &[("temperature", 2.5), ("heart_rate", 2.0), ("wbc", 3.0), ("lactate", 3.0), ("mean_bp", -1.5)]),
    ("Shock", 0.08, &[("mean_bp", -3.0), ("systolic_bp", -2.5), ("lactate", 5.0), ("heart_rate", 2.0), ("urine_output", -1.5)]),
];

/// Comorbidity: having the first makes the second likelier (probability added).
const LINKS: &[(&str, &str, f64)] = &[
    ("Sepsis", "Shock", 0.30),
    ("Sepsis", "Acute kidney failure", 0.25),
    ("Diabetes, complicated", "Chronic kidney disease", 0.30),
    ("Pneumonia", "Respiratory failure", 0.25),
    ("Coronary artery disease", "Myocardial infarction", 0.15),
    ("Heart failure", "Dysrhythmia", 0.20),
];

const VITALS: &[&str] = &["heart_rate", "systolic_bp", "diastolic_bp", "mean_bp", "resp_rate", "spo2"];
const ROUTINE_LABS: &[&str] = &[
    "bun", "creatinine", "sodium", "potassium", "glucose", "hematocrit", "wbc", "platelets", "bicarbonate", "magnesium",
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
    PHENOTYPES.iter().position(|p| p.short == short).unwrap_or_else(|| unreachable!("{short} is a phenotype"))
}

fn channel(name: &str) -> usize {
    channel_index(name).unwrap_or_else(|| unreachable!("{name} is a channel"))
}

/// Generates `n` admissions of `hours` hours; the same seed gives the same cohort.
pub fn cohort(n: usize, hours: usize, seed: u64) -> Vec<PatientRecord> {
    (0..n).map(|i| admission(i, hours, seed)).collect()
}

fn admission(i: usize, hours: usize, seed: u64) -> PatientRecord {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
    let mut has = vec![false; PHENOTYPES.len()];
    for (short, prevalence, _) in SIGNATURES {
        has[phenotype_index(short)] = rng.random_bool(*prevalence);
    }
    for (from, to, extra) in LINKS {
        if has[phenotype_index(from)] && rng.random_bool(*extra) {
            has[phenotype_index(to)] = true;
        }
    }

    // shift[c] for acute phenotypes ramps up over the first day; chronic ones are there from h0
    let mut acute = vec![0.0; CHANNELS.len()];
    let mut chronic = vec![0.0; CHANNELS.len()];
    for (short, _, effects) in SIGNATURES {
        let p = phenotype_index(short);
        if !has[p] {
            continue;
        }
        let severity = rng.random_range(0.6..1.3);
        let target = if PHENOTYPES[p].kind == PhenotypeKind::Acute { &mut acute } else { &mut chronic };
        for (name, shift) in *effects {
            target[channel(name)] += shift * severity;
        }
    }
    let baseline: Vec<f64> = (0..CHANNELS.len()).map(|_| 0.35 * normal(&mut rng)).collect();
    let onset = rng.random_range(0.0..24.0);

    let mut observations = Vec::new();
    let mut observe = |rng: &mut StdRng, c: usize, hour: f64| {
        let ch = &CHANNELS[c];
        let ramp = ((hour - onset) / 12.0).clamp(0.0, 1.0) * 0.7 + 0.3;
        let z = baseline[c] + chronic[c] + acute[c] * ramp + 0.25 * normal(rng);
        let mid = 0.5 * (ch.normal_low + ch.normal_high);
        let half = 0.5 * (ch.normal_high - ch.normal_low);
        let mut value = (mid + half * z).clamp(ch.valid_low, ch.valid_high);
        if matches!(ch.name, "mech_vent" | "capillary_refill") {
            value = if value >= 0.5 { 1.0 } else { 0.0 };
        }
        if ch.name.starts_with("gcs") {
            value = value.round();
        }
        observations.push(Observation {
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
            for name in ["temperature", "gcs_total", "gcs_eye", "gcs_motor", "gcs_verbal"] {
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
        let indicated = channels.iter().any(|n| acute[channel(n)] != 0.0 || chronic[channel(n)] != 0.0);
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
    PatientRecord {
        format_version: RECORD_FORMAT_VERSION,
        id: format!("synthetic-{seed}-{i:05}"),
        demographics: Demographics {
            age: Some(rng.random_range(18.0_f64..92.0).round()),
            sex: Some(if rng.random_bool(0.5) { Sex::Female } else { Sex::Male }),
            care_unit: None,
        },
        notes: Vec::new(),
        observations,
        visits: vec![Visit::default()],
        labels: Some(Labels {
            phenotypes,
            medications: Vec::new(),
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
                .filter(|r| r.labels.as_ref().unwrap().phenotypes.iter().any(|p| p == aki) == with)
                .flat_map(|r| r.observations.iter().filter(|o| o.channel == "creatinine").map(|o| o.value.unwrap()))
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        };
        assert!(mean_creatinine(true) > 1.5 * mean_creatinine(false));
    }
}
