//! PatientRecord parsing and the hourly grid: errors name their field, nothing is dropped
//! silently, units are converted.

use bedside::PatientRecord;
use bedside::knowledge::{CHANNELS, channel_index};
use bedside::record::SeriesGrid;

fn grid(observations: serde_json::Value) -> SeriesGrid {
    let record = PatientRecord::from_json(
        &serde_json::json!({ "id": "t", "observations": observations }).to_string(),
    )
    .unwrap();
    SeriesGrid::from_record(&record, 48)
}

fn cell(g: &SeriesGrid, channel: &str, hour: usize) -> (f32, f32) {
    let i = channel_index(channel).unwrap() * g.hours + hour;
    (g.values[i], g.mask[i])
}

#[test]
fn json_errors_name_the_path() {
    let err = PatientRecord::from_json(
        r#"{"id":"x","observations":[{"channel":"hr","hours":1,"value":"high"}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.code(), "RECORD_JSON");
    assert!(err.to_string().contains("$.observations[0].value"), "{err}");
    let err = PatientRecord::from_json(r#"{"id":"x","colour":"blue"}"#).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let err = PatientRecord::from_json("[1,2").unwrap_err();
    assert_eq!(err.code(), "RECORD_JSON");
}

#[test]
fn validation_reports_every_problem() {
    let err = PatientRecord::from_json(
        r#"{"id":"","format_version":9,"demographics":{"age":-1},"observations":[{"channel":"","hours":1,"value":1}]}"#,
    )
    .unwrap_err();
    let text = err.to_string();
    for path in [
        "$.id",
        "$.format_version",
        "$.demographics.age",
        "$.observations[0].channel",
    ] {
        assert!(text.contains(path), "{path} missing from {text}");
    }
}

#[test]
fn grid_bins_standardises_and_reports() {
    let g = grid(serde_json::json!([
        { "channel": "heart_rate", "hours": 2.1, "value": 70 },
        { "channel": "HR", "hours": 2.9, "value": 90 },
        { "channel": "temperature", "hours": 5, "value": 98.96, "unit": "[degF]" },
        { "channel": "glucose", "hours": 6, "value": 5.828, "unit": "mmol/L" },
        { "channel": "heart_rate", "hours": 60, "value": 80 },
        { "channel": "heart_rate", "hours": 7, "value": 900 },
        { "channel": "sodium", "hours": 7, "value": null },
        { "channel": "sodium", "hours": 8, "value": 140, "unit": "furlongs" },
        { "channel": "mystery", "hours": 1, "value": 3 }
    ]));
    assert_eq!((g.channels, g.hours), (CHANNELS.len(), 48));
    // mean of 70 and 90 is 80, the middle of 60..100
    assert_eq!(cell(&g, "heart_rate", 2), (0.0, 1.0));
    // 98.96 °F = 37.2 °C; normal 36.1..37.8 → (37.2 - 36.95) / 0.85
    let (t, m) = cell(&g, "temperature", 5);
    assert!((t - 0.25 / 0.85).abs() < 1e-4 && m == 1.0, "{t}");
    // 5.828 mmol/L glucose ≈ 105 mg/dL, the middle of 70..140
    assert!(cell(&g, "glucose", 6).0.abs() < 0.01);
    assert_eq!(cell(&g, "heart_rate", 3), (0.0, 0.0));
    assert_eq!(g.observed(), 3);
    let kinds: Vec<(&str, &str)> = g
        .notices
        .iter()
        .map(|n| (n.path.as_str(), n.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("$.observations[2].unit", "unit_converted"),
            ("$.observations[3].unit", "unit_converted"),
            ("$.observations[4].hours", "outside_window"),
            ("$.observations[5].value", "out_of_range"),
            ("$.observations[6].value", "missing_value"),
            ("$.observations[7].unit", "unknown_unit"),
            ("$.observations[8].channel", "unknown_channel"),
        ]
    );
}

/// A long ICU stay as a record: `observations` hourly values cycling over the channels, and
/// `visits` coded visits.
fn large_record(observations: usize, visits: usize) -> serde_json::Value {
    let obs: Vec<_> = (0..observations)
        .map(|i| serde_json::json!({ "channel": CHANNELS[i % CHANNELS.len()].name, "hours": (i / CHANNELS.len()) as f64 * 0.25, "value": CHANNELS[i % CHANNELS.len()].normal_low }))
        .collect();
    let visits: Vec<_> = (0..visits).map(|_| serde_json::json!({ "diagnoses": ["4019", "5849"], "procedures": ["9604"], "medications": ["C09A"] })).collect();
    serde_json::json!({ "id": "large", "observations": obs, "visits": visits })
}

#[test]
fn large_records_are_read_and_oversized_ones_refused_naming_the_field() {
    // 10,000 observations and 100 visits: everyday, accepted
    let record = PatientRecord::from_json(&large_record(10_000, 100).to_string()).unwrap();
    let grid = SeriesGrid::from_record(&record, 48);
    assert!(grid.mask.iter().filter(|&&m| m > 0.0).count() > 1_000);
    // past the documented bounds: refused, the field named
    for (value, field) in [
        (
            large_record(bedside::record::MAX_OBSERVATIONS + 1, 1),
            "$.observations",
        ),
        (
            large_record(10, bedside::record::MAX_VISITS + 1),
            "$.visits",
        ),
        (
            serde_json::json!({ "id": "n", "notes": [{ "text": "x".repeat(bedside::record::MAX_NOTE_CHARS + 1) }] }),
            "$.notes",
        ),
        (
            serde_json::json!({ "id": "c", "visits": [{ "diagnoses": vec!["4019"; bedside::record::MAX_CODES_PER_VISIT + 1] }] }),
            "$.visits[0].diagnoses",
        ),
    ] {
        let err = PatientRecord::from_json(&value.to_string()).unwrap_err();
        assert_eq!(err.code(), "RECORD_INVALID");
        assert!(err.to_string().contains(field), "{err}");
    }
}
