// Adult inpatient charts for the FHIR sandbox, made from bedside's synthetic cohort as US Core R4
// resources: a Patient, the admission as an inpatient Encounter with earlier encounters before it,
// every observation as a vital-signs or laboratory Observation coded in LOINC (systolic and
// diastolic pressure measured together as one blood-pressure panel with two components, as US
// Core writes them), each visit's diagnoses as Conditions (ICD-9-CM) and medications as
// MedicationRequests (ATC; one through a Medication resource), and the notes as DocumentReferences
// (base64 text/plain, one text/html, one at a Binary `url`). Synthea's charts have no
// Observations; these give the evidence check labs to check.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const LOINC = "http://loinc.org";
const CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";
const HOUR = 3600_000;
/** Channels a ward charts at the bedside; the rest are laboratory results. */
const VITAL = new Set(["heart_rate", "systolic_bp", "diastolic_bp", "mean_bp", "resp_rate", "temperature", "spo2", "gcs_total", "gcs_eye", "gcs_motor", "gcs_verbal", "weight", "height", "urine_output", "fio2"]);

/** The LOINC codes bedside's reader knows, as `[code, channel]` pairs (src/knowledge/channels.rs,
 * the one source), read once. */
const LOINC_TABLE = (() => {
  const source = readFileSync(path.join(root, "src/knowledge/channels.rs"), "utf8");
  const table = source.slice(source.indexOf("pub const LOINC_CODES"));
  return [...table.slice(0, table.indexOf("];")).matchAll(/\("([0-9]+-[0-9])", "([a-z0-9_]+)"\)/g)].map(([, code, channel]) => [code, channel]);
})();
/** Each channel's LOINC code: the first the reader knows it by. */
const CODE_OF = new Map([...LOINC_TABLE].reverse().map(([code, channel]) => [channel, code]));
const CHANNEL_OF = new Map(LOINC_TABLE);

/** An Observation's quantity for `channel`: its value, or the component coded as that channel (a panel). */
export function quantityFor(observation, channel) {
  const of = (concept) => concept?.coding?.some((c) => c.system === LOINC && CHANNEL_OF.get(c.code) === channel);
  if (of(observation.code) && observation.valueQuantity) return observation.valueQuantity;
  return observation.component?.find((c) => of(c.code))?.valueQuantity;
}

const coding = (system, code, display) => ({ coding: [{ system, code, ...(display ? { display } : {}) }], ...(display ? { text: display } : {}) });
const quantity = (value, unit) => ({ value, unit, system: "http://unitsofmeasure.org", code: unit });
const category = (code) => [coding(CATEGORY, code)];
const base64 = (text) => Buffer.from(text, "utf8").toString("base64");

/**
 * One record of the synthetic cohort (a PatientRecord) as FHIR resources; `n` numbers the chart,
 * `admitted` is the admission's start. Returns `{ resources, patient, encounter, charted }`:
 * `charted` is the record as charted (the observations of channels with a LOINC code).
 */
export function chartOf(record, n, admitted) {
  const id = (kind, i = "") => `bedside-${n}-${kind}${i === "" ? "" : `-${i}`}`;
  const subject = { reference: `Patient/${id("patient")}` };
  const at = (hours) => new Date(admitted.getTime() + hours * HOUR).toISOString();
  const born = new Date(admitted.getTime() - record.demographics.age * 365.25 * 24 * HOUR);
  const resources = [{
    resourceType: "Patient",
    id: id("patient"),
    meta: { profile: ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"] },
    name: [{ family: `Synthetic${n}`, given: [record.id] }],
    gender: record.demographics.sex ?? "unknown",
    birthDate: born.toISOString().slice(0, 10),
  }];
  // the visits: the earlier ones a year apart before the admission, the last is the admission
  const visits = record.visits ?? [];
  const current = id("encounter", visits.length ? visits.length - 1 : 0);
  const lastHour = Math.max(48, ...record.observations.map((o) => o.hours));
  const encounters = Math.max(visits.length, 1);
  for (let v = 0; v < encounters; v += 1) {
    const admission = v === encounters - 1;
    const start = admission ? admitted : new Date(admitted.getTime() - (encounters - 1 - v) * 365 * 24 * HOUR);
    resources.push({
      resourceType: "Encounter",
      id: id("encounter", v),
      status: "finished",
      class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "IMP", display: "inpatient encounter" },
      type: [coding("http://snomed.info/sct", "32485007", "Hospital admission")],
      subject,
      period: { start: start.toISOString(), end: new Date(start.getTime() + (admission ? lastHour + 1 : 72) * HOUR).toISOString() },
    });
    const visit = visits[v] ?? { diagnoses: [], medications: [] };
    const encounter = { reference: `Encounter/${id("encounter", v)}` };
    for (const [i, diagnosis] of visit.diagnoses.entries()) {
      resources.push({
        resourceType: "Condition",
        id: id(`condition-${v}`, i),
        clinicalStatus: coding("http://terminology.hl7.org/CodeSystem/condition-clinical", admission ? "active" : "resolved"),
        verificationStatus: coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
        category: [coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")],
        code: coding("http://hl7.org/fhir/sid/icd-9-cm", diagnosis.replace(/^icd9:/, "")),
        subject,
        encounter,
        recordedDate: start.toISOString(),
      });
    }
    for (const [i, atc] of visit.medications.entries()) {
      const concept = coding("http://www.whocc.no/atc", atc);
      const request = {
        resourceType: "MedicationRequest",
        id: id(`medication-${v}`, i),
        status: admission ? "active" : "completed",
        intent: "order",
        subject,
        encounter,
        authoredOn: start.toISOString(),
      };
      if (i === 0) {
        // one drug through a Medication resource, as many EHRs write them
        resources.push({ resourceType: "Medication", id: id(`drug-${v}`, i), code: concept });
        request.medicationReference = { reference: `Medication/${id(`drug-${v}`, i)}` };
      } else {
        request.medicationCodeableConcept = concept;
      }
      resources.push(request);
    }
  }
  const encounter = { reference: `Encounter/${current}` };
  const observation = (i, code, hours, body, kind) => ({
    resourceType: "Observation",
    id: id("observation", i),
    meta: { profile: [`http://hl7.org/fhir/us/core/StructureDefinition/us-core-${kind === "vital-signs" ? "vital-signs" : "observation-lab"}`] },
    status: "final",
    category: category(kind),
    code,
    subject,
    encounter,
    effectiveDateTime: at(hours),
    ...body,
  });
  // systolic and diastolic taken at one time become one panel (85354-9) with two components
  const byTime = new Map();
  for (const o of record.observations) if (o.channel === "systolic_bp" || o.channel === "diastolic_bp") byTime.set(`${o.hours}`, [...(byTime.get(`${o.hours}`) ?? []), o]);
  for (const [i, o] of record.observations.entries()) {
    const code = CODE_OF.get(o.channel);
    if (!code) continue;
    const pair = byTime.get(`${o.hours}`);
    if (pair?.length === 2 && pair.includes(o)) {
      if (o.channel !== "systolic_bp") continue; // the panel is written once, at the systolic
      resources.push(observation(i, coding(LOINC, "85354-9", "Blood pressure panel with all children optional"), o.hours, {
        component: pair.map((p) => ({ code: coding(LOINC, CODE_OF.get(p.channel)), valueQuantity: quantity(p.value, p.unit) })),
      }, "vital-signs"));
      continue;
    }
    resources.push(observation(i, coding(LOINC, code), o.hours, { valueQuantity: quantity(o.value, o.unit) }, VITAL.has(o.channel) ? "vital-signs" : "laboratory"));
  }
  for (const [i, note] of (record.notes ?? []).entries()) {
    const reference = {
      resourceType: "DocumentReference",
      id: id("note", i),
      status: "current",
      type: { ...coding(LOINC, "18842-5", "Discharge summary"), text: note.kind },
      subject,
      date: at(note.hours ?? 0),
      context: { encounter: [encounter], period: { start: at(note.hours ?? 0) } },
    };
    // the notes of the charts in turn: inline text, inline HTML, text at a Binary URL
    if (n % 3 === 1) {
      const html = `<html><body><p>${note.text.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</p></body></html>`;
      reference.content = [{ attachment: { contentType: "text/html", data: base64(html) } }];
    } else if (n % 3 === 2) {
      resources.push({ resourceType: "Binary", id: id("binary", i), contentType: "text/plain", data: base64(note.text) });
      reference.content = [{ attachment: { contentType: "text/plain", url: `Binary/${id("binary", i)}` } }];
    } else {
      reference.content = [{ attachment: { contentType: "text/plain; charset=utf-8", data: base64(note.text) } }];
    }
    resources.push(reference);
  }
  const charted = { ...record, observations: record.observations.filter((o) => CODE_OF.has(o.channel)) };
  return { resources, patient: id("patient"), encounter: current, charted };
}
