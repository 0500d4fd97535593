//! ICD-9-CM and ICD-10-CM diagnosis codes → the 25 phenotype groups (see `data/README.md` for
//! where the table comes from). Codes are matched without dots, whitespace or case.

use super::PHENOTYPES;
use std::collections::HashMap;
use std::sync::OnceLock;

pub(super) const TABLE: &str = include_str!("data/phenotype_icd.tsv");

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum IcdVersion {
    #[serde(rename = "9")]
    Icd9,
    #[serde(rename = "10")]
    Icd10,
}

fn index() -> &'static HashMap<(IcdVersion, String), Vec<usize>> {
    static INDEX: OnceLock<HashMap<(IcdVersion, String), Vec<usize>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map: HashMap<(IcdVersion, String), Vec<usize>> = HashMap::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split('\t');
            let (Some(name), Some(version), Some(code)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(p) = PHENOTYPES.iter().position(|p| p.name == name) else {
                continue;
            };
            let version = if version == "9" {
                IcdVersion::Icd9
            } else {
                IcdVersion::Icd10
            };
            let entry = map.entry((version, code.to_string())).or_default();
            if !entry.contains(&p) {
                entry.push(p);
            }
        }
        map
    })
}

/// Normalises a code as written in records and FHIR ("428.0 " → "4280").
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Indices into [`PHENOTYPES`] of the groups a diagnosis code belongs to (empty when none).
/// The codes of phenotype `p` (index into `PHENOTYPES`) in one ICD version, in table order.
pub fn codes_for_phenotype(p: usize, version: IcdVersion) -> Vec<&'static str> {
    let (Some(phenotype), tag) = (
        PHENOTYPES.get(p),
        if version == IcdVersion::Icd9 {
            "9"
        } else {
            "10"
        },
    ) else {
        return Vec::new();
    };
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split('\t');
            match (f.next(), f.next(), f.next()) {
                (Some(name), Some(v), Some(code)) if name == phenotype.name && v == tag => {
                    Some(code)
                }
                _ => None,
            }
        })
        .collect()
}

pub fn phenotypes_for_icd(code: &str, version: IcdVersion) -> &'static [usize] {
    index()
        .get(&(version, normalise_code(code)))
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(code: &str, version: IcdVersion) -> Vec<&'static str> {
        phenotypes_for_icd(code, version)
            .iter()
            .map(|&i| PHENOTYPES[i].short)
            .collect()
    }

    #[test]
    fn known_codes() {
        assert_eq!(names("038.9", IcdVersion::Icd9), ["Sepsis"]);
        assert_eq!(names("99592", IcdVersion::Icd9), ["Sepsis"]);
        assert_eq!(names("5849", IcdVersion::Icd9), ["Acute kidney failure"]);
        assert_eq!(names("4280", IcdVersion::Icd9), ["Heart failure"]);
        assert_eq!(names("N17.9", IcdVersion::Icd10), ["Acute kidney failure"]);
        assert_eq!(names("a41.9", IcdVersion::Icd10), ["Sepsis"]);
        assert_eq!(names("I10", IcdVersion::Icd10), ["Hypertension"]);
        assert!(names("V3000", IcdVersion::Icd9).is_empty()); // a birth code: in no group
        assert!(names("not a code", IcdVersion::Icd10).is_empty());
    }

    #[test]
    fn every_group_has_codes_in_both_versions() {
        for (i, p) in PHENOTYPES.iter().enumerate() {
            for version in [IcdVersion::Icd9, IcdVersion::Icd10] {
                assert!(
                    index()
                        .iter()
                        .any(|((v, _), ps)| *v == version && ps.contains(&i)),
                    "{} has no {version:?} codes",
                    p.name
                );
            }
        }
    }
}
