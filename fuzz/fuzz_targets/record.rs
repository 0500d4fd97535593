//! PatientRecord JSON (or FHIR) text → record → hourly grid: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(record) = bedside::PatientRecord::from_json_or_fhir(text) {
            let _ = bedside::record::SeriesGrid::from_record(&record, 48);
        }
    }
});
