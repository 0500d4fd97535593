//! Medications: the ATC level-3 classes (the vocabulary LEADER recommends from) with their WHO
//! names, and the drug–drug-interaction pairs between them (TWOSIDES, as derived by GAMENet), from
//! which recommendations get their DDI warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

pub(crate) const ATC3_TABLE: &str = include_str!("data/atc3.tsv");
pub(crate) const DDI_TABLE: &str = include_str!("data/ddi.tsv");
pub(crate) const RXNORM_TABLE: &str = include_str!("data/rxnorm_atc3.tsv");

fn rows(table: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
}

fn names() -> &'static BTreeMap<&'static str, &'static str> {
    static NAMES: OnceLock<BTreeMap<&'static str, &'static str>> = OnceLock::new();
    NAMES.get_or_init(|| rows(ATC3_TABLE).collect())
}

fn ddi() -> &'static BTreeSet<(&'static str, &'static str)> {
    static DDI: OnceLock<BTreeSet<(&'static str, &'static str)>> = OnceLock::new();
    DDI.get_or_init(|| rows(DDI_TABLE).collect())
}

/// Every ATC level-3 code, sorted.
pub fn atc3_codes() -> Vec<&'static str> {
    names().keys().copied().collect()
}

/// The WHO name of an ATC level-3 code (case-insensitive), if it is one.
pub fn atc3_name(code: &str) -> Option<&'static str> {
    names()
        .get(code.trim().to_ascii_uppercase().as_str())
        .copied()
}

/// The ATC level-3 class of any ATC code of level 3 or deeper (`C09AA05` → `C09A`).
pub fn atc3_of(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_uppercase();
    let prefix = code.get(..4)?;
    names().get_key_value(prefix).map(|(k, _)| *k)
}

/// The ATC level-3 class of an RxNorm concept (RxCUI), where the NDC tables reach one
/// (`data/rxnorm_atc3.tsv`; a small share of RxNorm: other codes are kept and reported).
pub fn atc3_of_rxnorm(rxcui: &str) -> Option<&'static str> {
    rows(RXNORM_TABLE)
        .find(|(rx, _)| *rx == rxcui.trim())
        .map(|(_, atc3)| atc3)
}

/// Whether two ATC level-3 classes interact.
pub fn interacts(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_uppercase(), b.to_ascii_uppercase());
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    ddi().iter().any(|(x, y)| *x == a && *y == b)
}

/// Every interacting pair, each once with the smaller code first.
pub fn ddi_pairs() -> Vec<(&'static str, &'static str)> {
    ddi().iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_levels_and_interactions() {
        assert_eq!(atc3_codes().len(), 269);
        assert_eq!(ddi_pairs().len(), 467);
        assert_eq!(atc3_of("c09aa05"), Some("C09A"));
        assert!(atc3_name("J01D").is_some_and(|n| n.to_lowercase().contains("beta-lactam")));
        assert_eq!(atc3_of("C0"), None);
        assert_eq!(atc3_of("Z99X"), None);
        let first = rows(RXNORM_TABLE).next();
        assert!(first.is_some(), "the RxNorm table is empty");
        if let Some((rxcui, atc3)) = first {
            assert_eq!(atc3_of_rxnorm(rxcui), Some(atc3));
        }
        assert_eq!(atc3_of_rxnorm("not-a-code"), None);
        let (a, b) = ddi_pairs()[0];
        assert!(interacts(a, b) && interacts(b, a));
        for (a, b) in ddi_pairs() {
            assert!(atc3_name(a).is_some() && atc3_name(b).is_some(), "{a} {b}");
        }
    }
}
