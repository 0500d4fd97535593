//! The medical knowledge bedside is built on, embedded in the library and versioned by a content
//! hash: the lab/vital channels the model reads, the phenotype groups it diagnoses and their
//! ICD-9-CM/ICD-10-CM codes, a clinical description of each, and the ATC level-3 drug classes
//! with their interactions.
//!
//! Every bundle records [`knowledge_hash`]; a bundle trained against other knowledge is refused,
//! because its channel and label indices would mean something else.

mod channels;
mod descriptions;
mod icd;
mod medications;
mod phenotypes;

pub use channels::{
    CHANNELS, Channel, LOINC_CODES, MIMIC_IV_LAB_ITEMS, channel_index, mimic3_item,
};
pub use descriptions::{channel_description, knowledge_texts, phenotype_description};
pub use icd::{IcdVersion, codes_for_phenotype, normalise_code, phenotypes_for_icd};
pub use medications::{atc3_codes, atc3_name, atc3_of, atc3_of_rxnorm, ddi_pairs, interacts};
pub use phenotypes::{PHENOTYPES, Phenotype, PhenotypeKind};

use sha2::{Digest, Sha256};

/// Version of the knowledge tables; bump it with every change to them.
pub const KNOWLEDGE_VERSION: &str = "3";

/// sha256 over every table, hex-encoded: what a bundle manifest pins.
pub fn knowledge_hash() -> String {
    let mut hash = Sha256::new();
    hash.update(KNOWLEDGE_VERSION.as_bytes());
    for c in CHANNELS {
        hash.update(
            format!(
                "c|{}|{}|{}|{}|{}|{}|{}\n",
                c.name, c.unit, c.valid_low, c.valid_high, c.normal_low, c.normal_high, c.label
            )
            .as_bytes(),
        );
    }
    for p in PHENOTYPES {
        hash.update(
            format!(
                "p|{}|{:?}|{:?}|{:?}\n",
                p.name, p.kind, p.channels, p.keywords
            )
            .as_bytes(),
        );
    }
    hash.update(icd::TABLE.as_bytes());
    hash.update(descriptions::TABLE.as_bytes());
    hash.update(channels::MIMIC_III_ITEMS_TABLE.as_bytes());
    hash.update(medications::ATC3_TABLE.as_bytes());
    hash.update(medications::DDI_TABLE.as_bytes());
    hash.update(medications::RXNORM_TABLE.as_bytes());
    for (code, channel) in LOINC_CODES {
        hash.update(format!("loinc|{code}|{channel}\n").as_bytes());
    }
    for (item, channel) in MIMIC_IV_LAB_ITEMS {
        hash.update(format!("m4|{item}|{channel}\n").as_bytes());
    }
    hex::encode(hash.finalize())
}
