//! Any JSON value read as a FHIR R4 resource (seeded with bundles): errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(record) = bedside::record::fhir::from_fhir(&value) {
            let _ = bedside::record::SeriesGrid::from_record(&record, 48);
        }
    }
});
