//! FHIR R4 import: a `Bundle` (or a single resource) → PatientRecord, in the library so the
//! browser can read what an EHR exports.
//!
//! Patient → demographics; Encounter → the admission (its `period.start` is hour 0);
//! Observation (LOINC, UCUM units) → observations; Condition (ICD-9-CM/ICD-10-CM) → diagnoses of
//! the current visit and phenotype labels; Procedure → procedures; MedicationRequest and
//! MedicationStatement (ATC, or RxNorm where the NDC tables reach a class) → ATC-3 medications; DocumentReference (text attachments) and
//! Composition (section narrative) → notes. What cannot be mapped is kept with its system
//! (`loinc:…`, `rxnorm:…`, `snomed:…`) so the record reports it rather than dropping it.

use super::{
    Demographics, Labels, Note, Observation, PatientRecord, RECORD_FORMAT_VERSION, Sex, Skipped,
    Visit,
};
use crate::error::{BedsideError, Result};
use crate::knowledge::{IcdVersion, LOINC_CODES, PHENOTYPES, normalise_code, phenotypes_for_icd};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

const LOINC: &str = "http://loinc.org";
const ICD9: &[&str] = &[
    "http://hl7.org/fhir/sid/icd-9-cm",
    "http://hl7.org/fhir/sid/icd-9",
];
const ICD10: &[&str] = &[
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10",
];
const ATC: &str = "http://www.whocc.no/atc";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

fn invalid(path: &str, message: impl std::fmt::Display) -> BedsideError {
    BedsideError::Fhir {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// A FHIR instant, dateTime or date; a date alone is taken at midnight UTC.
fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    parse_span(text).map(|(start, _)| start)
}

/// The time a FHIR instant, dateTime or date covers: an instant for the first two, the whole
/// day (UTC) for a date, so that a condition recorded on the day of admission is of that day.
type Span = (DateTime<FixedOffset>, DateTime<FixedOffset>);

fn parse_span(text: &str) -> Option<Span> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t, t));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let start = date.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset();
    Some((start, start + chrono::Duration::seconds(86_399)))
}

/// A reference as `Type/id`: a Bundle entry's `fullUrl` (`urn:uuid:…`) by the resource it names,
/// an absolute or versioned URL (`…/Encounter/1/_history/2`) by its last two segments.
fn canonical(reference: &str, aliases: &HashMap<String, String>) -> String {
    if let Some(alias) = aliases.get(reference) {
        return alias.clone();
    }
    let plain = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = plain.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(kind)) => format!("{kind}/{id}"),
        _ => plain.to_string(),
    }
}

fn codings(concept: &Value) -> impl Iterator<Item = (&str, &str)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str().unwrap_or(""), c["code"].as_str()?)))
}

fn short_system(system: &str) -> &str {
    match system {
        LOINC => "loinc",
        RXNORM => "rxnorm",
        ATC => "atc",
        "http://snomed.info/sct" => "snomed",
        "" => "code",
        other => other,
    }
}

/// What the reader is told besides the chart.
#[derive(Debug, Clone, Default)]
pub struct FhirOptions {
    /// The encounter to read (`Encounter/123` or `123`), as a SMART launch names it; absent: the
    /// latest inpatient encounter, else the latest.
    pub encounter: Option<String>,
}

/// One resource of the input: where it sits, and its reference (`Observation/123`) where it has
/// an id.
struct Resource<'a> {
    path: String,
    value: &'a Value,
    reference: Option<String>,
}

impl Resource<'_> {
    fn skip(&self, reason: impl Into<String>) -> Skipped {
        Skipped {
            path: self.path.clone(),
            reference: self.reference.clone(),
            reason: reason.into(),
        }
    }

    /// The encounter the resource names (`encounter`, or a note's `context.encounter`).
    fn encounter(&self) -> Option<&str> {
        let v = self.value;
        v["encounter"]["reference"]
            .as_str()
            .or_else(|| v["context"]["encounter"][0]["reference"].as_str())
            .or_else(|| v["context"]["encounter"]["reference"].as_str())
    }

    fn status(&self) -> Option<&str> {
        self.value["status"].as_str()
    }
}

/// The chosen encounter: hour 0 at its start, its end where it has one; and the Bundle's
/// `fullUrl`s, by which its resources may reference each other.
struct Window {
    encounter: Option<String>,
    care_unit: Option<String>,
    start: Option<DateTime<FixedOffset>>,
    end: Option<DateTime<FixedOffset>>,
    aliases: HashMap<String, String>,
    /// Every encounter's start, by `Type/id`: where another encounter's items fall.
    starts: HashMap<String, Span>,
}

impl Window {
    fn hours(&self, t: DateTime<FixedOffset>) -> f64 {
        self.start
            .map_or(0.0, |s| (t - s).num_seconds() as f64 / 3600.0)
    }

    /// Where a dated span falls: wholly before the encounter, overlapping it, or after it.
    fn place(&self, (from, to): Span) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self.start, self.end) {
            (Some(s), _) if to < s => Less,
            (_, Some(e)) if from > e => Greater,
            _ => Equal,
        }
    }

    /// Whether two references name the same resource.
    fn same(&self, a: &str, b: &str) -> bool {
        canonical(a, &self.aliases) == canonical(b, &self.aliases)
    }

    /// Whether a resource linked to `encounter` belongs to another one than the chosen (a
    /// resource linked to none is placed by its time).
    fn is_other(&self, encounter: Option<&str>) -> bool {
        match (encounter, &self.encounter) {
            (Some(e), Some(chosen)) => canonical(e, &self.aliases) != *chosen,
            _ => false,
        }
    }

    /// The start of the encounter `e` names, where the chart has it.
    fn start_of(&self, e: &str) -> Option<Span> {
        self.starts.get(&canonical(e, &self.aliases)).copied()
    }

    /// Where a resource falls by the encounter it is linked to (its start), else by its own time.
    /// An undated resource linked to none is taken as the encounter's; one of another encounter
    /// that cannot be dated, or that overlaps or follows this one, as not this admission's.
    fn place_linked(&self, r: &Resource, own: Option<Span>) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match r.encounter() {
            Some(e) if !self.is_other(Some(e)) => Equal,
            Some(e) => match self.start_of(e).or(own).map(|span| self.place(span)) {
                Some(Less) => Less,
                _ => Greater,
            },
            None => own.map_or(Equal, |span| self.place(span)),
        }
    }
}

/// Reads a FHIR R4 Bundle (or one resource) as a PatientRecord.
pub fn from_fhir(value: &Value) -> Result<PatientRecord> {
    from_fhir_with(value, &FhirOptions::default())
}

/// [`from_fhir`] of the encounter `options` names. A real chart holds years: the record is the
/// chosen encounter — its observations (components too), its conditions as the current visit
/// and the labels, the patient's earlier conditions and medications as earlier visits, the
/// medications active in it, its procedures and notes. Resources of other encounters or times are
/// left out (observations counted in one `skipped` entry, notes named); what cannot be read or
/// placed in time (no time, no code, entered in error, an undated medication, a note at a URL or
/// not decodable) is named in the record's `skipped`, never silently dropped. References may be
/// `Type/id`, absolute, versioned or an entry's `fullUrl`. Each observation and note keeps its
/// `reference`.
pub fn from_fhir_with(value: &Value, options: &FhirOptions) -> Result<PatientRecord> {
    let resources = resources(value)?;
    let of = |kind: &'static str| {
        resources
            .iter()
            .filter(move |r| r.value["resourceType"] == kind)
    };
    let patient = of("Patient").next();
    let id = patient
        .and_then(|r| r.value["id"].as_str())
        .or_else(|| value["id"].as_str())
        .unwrap_or("fhir-patient")
        .to_string();
    let mut skipped = Vec::new();
    let window = window(value, &resources, options)?;
    let mut demographics = match patient {
        Some(p) => demographics(p, window.start)?,
        None => Demographics::default(),
    };
    demographics.care_unit = window.care_unit.clone();
    let observations = observations(of("Observation"), &window, &mut skipped);
    let (mut visits, mut current, phenotypes) = visits(
        of("Condition").collect(),
        of("MedicationRequest")
            .chain(of("MedicationStatement"))
            .collect(),
        &resources,
        &window,
        &mut skipped,
    );
    // the encounter's procedures (linked to it, or dated in it, or undated and linked to none)
    current.procedures = of("Procedure")
        .filter(|p| !matches!(p.status(), Some("entered-in-error" | "not-done")))
        .filter(|p| {
            let own = p.value["performedDateTime"]
                .as_str()
                .or_else(|| p.value["performedPeriod"]["start"].as_str())
                .and_then(parse_span);
            window.place_linked(p, own).is_eq()
        })
        .flat_map(|p| codings(&p.value["code"]).map(procedure_code))
        .collect();
    visits.push(current);
    let mut notes = notes(of("DocumentReference"), &window, &mut skipped);
    notes.extend(compositions(of("Composition"), &window, &mut skipped));

    let record = PatientRecord {
        window_start: None,
        format_version: RECORD_FORMAT_VERSION,
        id,
        patient: patient
            .and_then(|r| r.value["id"].as_str())
            .map(str::to_string),
        demographics,
        notes,
        observations,
        visits,
        labels: (!phenotypes.is_empty()).then(|| Labels {
            phenotypes: phenotypes
                .iter()
                .map(|&p| PHENOTYPES[p].name.to_string())
                .collect(),
            ..Labels::default()
        }),
        skipped,
    };
    record.validate()?;
    Ok(record)
}

/// The resources of a Bundle (or the one resource given), with their paths and references.
fn resources(value: &Value) -> Result<Vec<Resource<'_>>> {
    let reference = |r: &Value| {
        Some(format!(
            "{}/{}",
            r["resourceType"].as_str()?,
            r["id"].as_str()?
        ))
    };
    match value["resourceType"].as_str() {
        Some("Bundle") => Ok(value["entry"]
            .as_array()
            .ok_or_else(|| invalid("$.entry", "a Bundle needs an entry array"))?
            .iter()
            .enumerate()
            .map(|(i, e)| Resource {
                path: format!("$.entry[{i}].resource"),
                value: &e["resource"],
                reference: reference(&e["resource"]),
            })
            .collect()),
        Some("Patient") => Ok(vec![Resource {
            path: "$".to_string(),
            value,
            reference: reference(value),
        }]),
        Some(other) => Err(invalid(
            "$.resourceType",
            format!("{other:?}: a Bundle of the patient's resources (or a Patient) expected"),
        )),
        None => Err(invalid("$.resourceType", "missing; not a FHIR resource")),
    }
}

/// The encounter named in `options`, else the latest inpatient one, else the latest; hour 0 at
/// its start (no encounter: at the first observation).
fn window<'a>(
    value: &Value,
    resources: &'a [Resource<'a>],
    options: &FhirOptions,
) -> Result<Window> {
    // a Bundle's resources may reference each other by their entries' fullUrl
    let aliases: HashMap<String, String> = value["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(resources)
        .filter_map(|(e, r)| Some((e["fullUrl"].as_str()?.to_string(), r.reference.clone()?)))
        .collect();
    // an encounter that has not taken place is no one's admission
    let encounters: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.value["resourceType"] == "Encounter")
        .filter(|r| {
            !matches!(
                r.status(),
                Some("entered-in-error" | "planned" | "cancelled")
            )
        })
        .collect();
    let named_is = |r: &str, named: &str| {
        canonical(r, &aliases) == canonical(named, &aliases) || r.rsplit('/').next() == Some(named)
    };
    let start_of = |e: &Resource| parse_time(e.value["period"]["start"].as_str()?);
    let chosen = match &options.encounter {
        Some(named) => Some(
            *encounters
                .iter()
                .find(|e| e.reference.as_deref().is_some_and(|r| named_is(r, named)))
                .ok_or_else(|| {
                    invalid(
                        "encounter",
                        format!("{named}: no such Encounter in the chart"),
                    )
                })?,
        ),
        None => encounters
            .iter()
            .copied()
            .filter(|e| inpatient(e.value))
            .max_by_key(|e| start_of(e))
            .or_else(|| encounters.iter().copied().max_by_key(|e| start_of(e))),
    };
    let first_observation = || {
        resources
            .iter()
            .filter(|r| r.value["resourceType"] == "Observation")
            .filter_map(|o| effective(o.value).and_then(parse_time))
            .min()
    };
    Ok(Window {
        encounter: chosen.and_then(|e| e.reference.clone()),
        care_unit: chosen.and_then(|e| care_unit(e.value)),
        start: chosen.and_then(start_of).or_else(first_observation),
        end: chosen.and_then(|e| parse_span(e.value["period"]["end"].as_str()?).map(|s| s.1)),
        starts: resources
            .iter()
            .filter(|r| r.value["resourceType"] == "Encounter")
            .filter_map(|e| {
                let start = parse_span(e.value["period"]["start"].as_str()?)?;
                Some((e.reference.clone()?, start))
            })
            .collect(),
        aliases,
    })
}

/// An inpatient encounter (class `IMP`, `ACUTE` or `NONAC`, as R4 or R5 writes the class).
fn inpatient(e: &Value) -> bool {
    let class = e["class"]["code"]
        .as_str()
        .or(e["class"][0]["coding"][0]["code"].as_str());
    matches!(class, Some("IMP" | "ACUTE" | "NONAC"))
}

/// A resource's clinical time: `effective[x]`, else its other dates.
fn effective(v: &Value) -> Option<&str> {
    v["effectiveDateTime"]
        .as_str()
        .or_else(|| v["effectiveInstant"].as_str())
        .or_else(|| v["effectivePeriod"]["start"].as_str())
}

fn demographics(p: &Resource, start: Option<DateTime<FixedOffset>>) -> Result<Demographics> {
    let path = &p.path;
    let p = p.value;
    let sex = match &p["gender"] {
        Value::String(g) if g == "female" => Some(Sex::Female),
        Value::String(g) if g == "male" => Some(Sex::Male),
        Value::String(g) if g == "other" => Some(Sex::Other),
        Value::Null => None,
        Value::String(g) if g == "unknown" => None,
        other => {
            return Err(invalid(
                &format!("{path}.gender"),
                format!("{other} is not a FHIR gender"),
            ));
        }
    };
    let birth = match &p["birthDate"] {
        Value::Null => None,
        value => Some(value.as_str().and_then(parse_time).ok_or_else(|| {
            invalid(
                &format!("{path}.birthDate"),
                format!("{value} is not a FHIR date"),
            )
        })?),
    };
    Ok(Demographics {
        age: birth
            .zip(start)
            .map(|(birth, start)| ((start - birth).num_days() as f64 / 365.25).floor()),
        sex,
        care_unit: None,
    })
}

/// The ward where the encounter names one; a class outside the hospital is said whatever the
/// location's name (an outpatient visit at "… County Hospital" is still outpatient).
fn care_unit(e: &Value) -> Option<String> {
    let class = match e["class"]["code"]
        .as_str()
        .or(e["class"][0]["coding"][0]["code"].as_str())
    {
        Some("AMB") => Some("outpatient (ambulatory encounter)"),
        Some("VR") => Some("virtual encounter"),
        Some("HH") => Some("home health encounter"),
        _ => None,
    };
    let location = e["location"][0]["location"]["display"].as_str();
    match (class, location) {
        (Some(class), Some(location)) => Some(format!("{class} at {location}")),
        (class, location) => class.or(location).map(str::to_string),
    }
}

/// The channel of a coded concept: its LOINC code where bedside knows it, else the first coding
/// with its system.
fn channel_of(code: &Value) -> Option<String> {
    codings(code)
        .find_map(|(system, c)| {
            (system == LOINC)
                .then(|| LOINC_CODES.iter().find(|(l, _)| *l == c))
                .flatten()
                .map(|(_, ch)| ch.to_string())
        })
        .or_else(|| {
            codings(code)
                .next()
                .map(|(system, c)| format!("{}:{c}", short_system(system)))
        })
}

/// The observations of the chosen encounter in time order, each panel's components as
/// observations of their own (a US Core blood-pressure panel gives systolic and diastolic).
fn observations<'a>(
    list: impl Iterator<Item = &'a Resource<'a>>,
    window: &Window,
    skipped: &mut Vec<Skipped>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut outside = 0usize;
    for o in list {
        if matches!(o.status(), Some("entered-in-error" | "cancelled")) {
            skipped.push(o.skip(format!("status {}", o.status().unwrap_or(""))));
            continue;
        }
        let Some(time) = effective(o.value) else {
            skipped.push(
                o.skip("an Observation without effectiveDateTime: it cannot be placed in time"),
            );
            continue;
        };
        let Some(span) = parse_span(time) else {
            skipped.push(o.skip(format!("effective time {time:?} is not a FHIR dateTime")));
            continue;
        };
        if window.is_other(o.encounter()) || window.place(span).is_ne() {
            outside += 1;
            continue;
        }
        let time = span.0;
        let observation = |code: &Value, quantity: &Value| {
            Some(Observation {
                channel: channel_of(code)?,
                hours: window.hours(time),
                value: quantity["value"].as_f64(),
                unit: quantity["code"]
                    .as_str()
                    .or_else(|| quantity["unit"].as_str())
                    .map(str::to_string),
                reference: o.reference.clone(),
            })
        };
        let components: Vec<&Value> = o.value["component"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let before = out.len();
        // a panel's own value, where it has one; else the panel is its components
        if components.is_empty() || !o.value["valueQuantity"].is_null() {
            match observation(&o.value["code"], &o.value["valueQuantity"]) {
                Some(obs) => out.push(obs),
                None => skipped.push(o.skip("an Observation without a coded code")),
            }
        }
        out.extend(
            components
                .iter()
                .filter_map(|c| observation(&c["code"], &c["valueQuantity"])),
        );
        if out.len() == before && !components.is_empty() {
            skipped.push(o.skip("a panel without a coded component"));
        }
    }
    if outside > 0 {
        skipped.push(Skipped {
            path: "$.entry".into(),
            reference: None,
            reason: format!("{outside} observations outside the encounter read: not used"),
        });
    }
    out.sort_by(|a, b| a.hours.total_cmp(&b.hours));
    out
}

fn procedure_code((system, code): (&str, &str)) -> String {
    match system {
        s if s.ends_with("icd-9-cm") => format!("icd9:{}", normalise_code(code)),
        s if s.ends_with("icd-10-pcs") => format!("icd10:{}", normalise_code(code)),
        s => format!("{}:{code}", short_system(s)),
    }
}

/// A condition's code as a visit diagnosis, and its phenotypes.
fn diagnosis((system, code): (&str, &str)) -> (String, &'static [usize]) {
    let version = if ICD9.contains(&system) {
        Some(IcdVersion::Icd9)
    } else if ICD10.contains(&system) {
        Some(IcdVersion::Icd10)
    } else {
        None
    };
    match version {
        Some(v) => {
            let n = if v == IcdVersion::Icd9 { 9 } else { 10 };
            (
                format!("icd{n}:{}", normalise_code(code)),
                phenotypes_for_icd(code, v),
            )
        }
        None => (format!("{}:{code}", short_system(system)), &[]),
    }
}

/// The medication a request or statement names: its own concept, or the Medication resource
/// its `medicationReference` points to (in the Bundle, or contained).
fn resolve_medication<'v>(
    r: &Resource<'v>,
    all: &[Resource<'v>],
    window: &Window,
) -> Option<&'v Value> {
    let v = r.value;
    if !v["medicationCodeableConcept"].is_null() {
        return Some(&v["medicationCodeableConcept"]);
    }
    let target = v["medicationReference"]["reference"].as_str()?;
    if let Some(local) = target.strip_prefix('#') {
        return v["contained"]
            .as_array()?
            .iter()
            .find(|c| c["id"].as_str() == Some(local))
            .map(|c| &c["code"]);
    }
    all.iter()
        .find(|m| {
            m.value["resourceType"] == "Medication"
                && m.reference
                    .as_deref()
                    .is_some_and(|r| window.same(r, target))
        })
        .map(|m| &m.value["code"])
}

fn medication_code((system, code): (&str, &str)) -> String {
    match (
        system,
        code.get(..4),
        crate::knowledge::atc3_of_rxnorm(code),
    ) {
        (ATC, Some(atc3), _) => atc3.to_ascii_uppercase(),
        (RXNORM, _, Some(atc3)) => atc3.to_string(),
        _ => format!("{}:{code}", short_system(system)),
    }
}

/// The visits: the patient's earlier conditions and medications as earlier visits (one per
/// earlier encounter, or per date for those linked to none, in time order; at most
/// [`crate::record::MAX_VISITS`] in all, the latest kept), the chosen encounter's as the current
/// visit, and the current conditions' phenotypes (the labels). A condition is current where
/// linked to the encounter, or linked to none and dated in it (a date covers its whole day) or
/// undated; a medication where active or on hold since before or during the encounter, or
/// completed or stopped with its period overlapping it (or linked to it), and dated. Resources
/// of later encounters and refuted or entered-in-error ones are not the patient's history here.
fn visits(
    conditions: Vec<&Resource>,
    medications: Vec<&Resource>,
    resources: &[Resource],
    window: &Window,
    skipped: &mut Vec<Skipped>,
) -> (Vec<Visit>, Visit, BTreeSet<usize>) {
    use std::cmp::Ordering::*;
    type Key = (Option<DateTime<chrono::Utc>>, String);
    let mut earlier: std::collections::BTreeMap<Key, Visit> = Default::default();
    // an earlier item's visit: by the start of its encounter, else by its own time
    let key = |r: &Resource, own: Option<Span>| -> Key {
        let start = r
            .encounter()
            .and_then(|e| window.start_of(e))
            .or(own)
            .map(|s| s.0);
        (
            start.map(|t| t.with_timezone(&chrono::Utc)),
            r.encounter()
                .map(|e| canonical(e, &window.aliases))
                .unwrap_or_default(),
        )
    };
    let mut current = Visit::default();
    let mut phenotypes = BTreeSet::new();
    for c in conditions {
        let status = c.value["verificationStatus"]["coding"][0]["code"].as_str();
        if matches!(status, Some("refuted" | "entered-in-error")) {
            continue;
        }
        let own = c.value["onsetDateTime"]
            .as_str()
            .or_else(|| c.value["recordedDate"].as_str())
            .and_then(parse_span);
        let codes = codings(&c.value["code"]).map(diagnosis);
        match window.place_linked(c, own) {
            Equal => {
                for (code, groups) in codes {
                    phenotypes.extend(groups.iter().copied());
                    current.diagnoses.push(code);
                }
            }
            Less => earlier
                .entry(key(c, own))
                .or_default()
                .diagnoses
                .extend(codes.map(|(code, _)| code)),
            Greater => {}
        }
    }
    for m in medications {
        let status = m.status().unwrap_or("");
        let from = m.value["authoredOn"]
            .as_str()
            .or_else(|| effective(m.value))
            .or_else(|| m.value["dateAsserted"].as_str())
            .and_then(parse_span);
        let until = m.value["effectivePeriod"]["end"]
            .as_str()
            .and_then(parse_span);
        let Some(concept) = resolve_medication(m, resources, window) else {
            skipped.push(m.skip("no medication code (medicationCodeableConcept, or a medicationReference in the Bundle)"));
            continue;
        };
        let Some(from) = from else {
            if matches!(status, "active" | "on-hold" | "completed" | "stopped") {
                skipped.push(m.skip("an undated medication: whether it is current cannot be told"));
            }
            continue;
        };
        let span = (from.0, until.map_or(from.1, |u| u.1));
        let codes = codings(concept).map(medication_code);
        let place = window.place_linked(m, Some(span));
        match (status, place) {
            ("active" | "on-hold" | "intended", Less | Equal)
            | ("completed" | "stopped", Equal) => current.medications.extend(codes),
            ("completed" | "stopped", Less) => earlier
                .entry(key(m, Some(span)))
                .or_default()
                .medications
                .extend(codes),
            _ => {} // draft, cancelled, entered-in-error, unknown; or after the encounter
        }
    }
    let tidy = |v: &mut Visit| {
        v.medications.sort();
        v.medications.dedup();
    };
    tidy(&mut current);
    let mut history: Vec<Visit> = earlier
        .into_values()
        .map(|mut v| {
            tidy(&mut v);
            v
        })
        .collect();
    let keep = crate::record::MAX_VISITS - 1;
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
    (history, current, phenotypes)
}

/// The notes of the encounter: DocumentReference text (base64 `data`; `text/html` without its
/// tags); a note at a `url` (the SMART client fetches those first), a note of another encounter
/// or from before this one, and an entered-in-error one are reported.
fn notes<'a>(
    list: impl Iterator<Item = &'a Resource<'a>>,
    window: &Window,
    skipped: &mut Vec<Skipped>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    for d in list {
        if matches!(d.status(), Some("entered-in-error" | "superseded")) {
            continue;
        }
        let date = d.value["date"]
            .as_str()
            .or_else(|| d.value["context"]["period"]["start"].as_str())
            .and_then(parse_span);
        if window.place_linked(d, date).is_ne() {
            skipped.push(d.skip("a note of another encounter or time: not read"));
            continue;
        }
        for (i, content) in d.value["content"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let attachment = &content["attachment"];
            let at = format!("{}.content[{i}].attachment", d.path);
            let Some(data) = attachment["data"].as_str() else {
                if attachment["url"].is_string() {
                    skipped.push(d.skip(format!("{at}.url: a note at a URL is read once fetched")));
                }
                continue;
            };
            let text = match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(bytes) => String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string()),
                Err(e) => Err(format!("not base64: {e}")),
            };
            let text = match text {
                Ok(text) => text,
                Err(why) => {
                    skipped.push(d.skip(format!("{at}.data: {why}")));
                    continue;
                }
            };
            let html = attachment["contentType"]
                .as_str()
                .is_some_and(|t| t.starts_with("text/html"));
            notes.push(Note {
                kind: d.value["type"]["text"]
                    .as_str()
                    .unwrap_or("document")
                    .to_string(),
                text: if html { strip_tags(&text) } else { text },
                hours: date.map(|t| window.hours(t.0)).filter(|h| *h >= 0.0),
                reference: d.reference.clone(),
            });
        }
    }
    notes
}

/// Composition section narratives as notes, where the Composition is of the encounter.
fn compositions<'a>(
    list: impl Iterator<Item = &'a Resource<'a>>,
    window: &Window,
    skipped: &mut Vec<Skipped>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    for c in list {
        let date = c.value["date"].as_str().and_then(parse_span);
        if window.place_linked(c, date).is_ne() {
            skipped.push(c.skip("a document of another encounter or time: not read"));
            continue;
        }
        for section in c.value["section"].as_array().into_iter().flatten() {
            if let Some(div) = section["text"]["div"].as_str() {
                notes.push(Note {
                    kind: section["title"]
                        .as_str()
                        .unwrap_or("composition")
                        .to_string(),
                    text: strip_tags(div),
                    hours: None,
                    reference: c.reference.clone(),
                });
            }
        }
    }
    notes
}

/// The text of a FHIR narrative (`<div xmlns=…>…</div>`), tags removed.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
