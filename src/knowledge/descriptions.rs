//! Clinical descriptions of every channel and phenotype (`data/descriptions.tsv`): the medical
//! knowledge text whose token embeddings become the knowledge prototypes of the knowledge-augmented
//! attention, and what the built-in teacher and the demo page explain with.

use super::{CHANNELS, PHENOTYPES};

pub(crate) const TABLE: &str = include_str!("data/descriptions.tsv");

fn lookup(kind: &str, name: &str) -> Option<&'static str> {
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.splitn(3, '\t');
            Some((cols.next()?, cols.next()?, cols.next()?))
        })
        .find(|(k, n, _)| *k == kind && *n == name)
        .map(|(_, _, d)| d)
}

/// The description of a channel, by canonical name.
pub fn channel_description(name: &str) -> Option<&'static str> {
    lookup("channel", name)
}

/// The description of a phenotype, by its CCS name.
pub fn phenotype_description(name: &str) -> Option<&'static str> {
    lookup("phenotype", name)
}

/// Every knowledge text in a fixed order (channels, then phenotypes, in the model's order): the
/// corpus of the knowledge prototypes.
pub fn knowledge_texts() -> Vec<&'static str> {
    let channels = CHANNELS.iter().filter_map(|c| channel_description(c.name));
    let phenotypes = PHENOTYPES
        .iter()
        .filter_map(|p| phenotype_description(p.name));
    channels.chain(phenotypes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_and_phenotype_is_described_once() {
        for c in CHANNELS {
            assert!(
                channel_description(c.name).is_some_and(|d| d.len() > 40),
                "{}",
                c.name
            );
        }
        for p in PHENOTYPES {
            assert!(
                phenotype_description(p.name).is_some_and(|d| d.len() > 40),
                "{}",
                p.name
            );
        }
        let rows = TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(
            rows,
            CHANNELS.len() + PHENOTYPES.len(),
            "a row names nothing in the knowledge base, or twice"
        );
        assert_eq!(knowledge_texts().len(), rows);
    }
}
