// bedside's answers as FHIR R4, for an EHR to store: `toFhir` writes a transaction Bundle with a
// RiskAssessment per diagnosed phenotype group (its probability, the evidence resources as its
// basis, the rationale as its note and narrative), the recommended drug classes as
// MedicationRequest proposals, a DetectedIssue per drug–drug interaction, and a Provenance that
// names bedside, the model bundle (its weights' sha256) and every resource the evidence came from.
// An answer outside the model's range is written as its reasons only (an OperationOutcome in a
// collection Bundle): nothing an EHR would file as an assessment. Pure JavaScript, no I/O.
import { BedsideError } from "./errors.js";

const ATC = "http://www.whocc.no/atc";
const DRUG_INTERACTION = { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "DRG", display: "Drug Interaction Alert" };
const ASSEMBLER = { system: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", code: "assembler", display: "Assembler" };

/** A fresh `urn:uuid:` (Web Crypto where there is one, else Math.random: ids, not secrets). */
function urn() {
  const uuid = globalThis.crypto?.randomUUID?.() ??
    "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) => (c ^ ((Math.random() * 16) >> (c / 4))).toString(16));
  return `urn:uuid:${uuid}`;
}

/** Text as an XHTML narrative div (escaped), as FHIR's `text.div` requires. */
function narrative(text) {
  const escaped = String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  return { status: "generated", div: `<div xmlns="http://www.w3.org/1999/xhtml"><p>${escaped}</p></div>` };
}

function reference(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" && /^[A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(value)) return { reference: value };
  if (typeof value === "object" && (typeof value.reference === "string" || typeof value.display === "string")) return value;
  throw new BedsideError("BAD_OPTION", `options.${what} must be a FHIR reference such as "${what === "patient" ? "Patient" : "Encounter"}/123", not ${JSON.stringify(value)}`);
}

/**
 * The answer as a FHIR R4 Bundle.
 * @param answer `{ diagnosis, explanation, recommendation }`: any of a `diagnose` result, an
 *   `explain` result (its rationale becomes each assessment's note) and a `recommend` result, for
 *   the same record.
 * @param options `{ patient, encounter, manifest, date, groups }`: the chart's Patient (and
 *   Encounter) reference ("Patient/123"); the loaded model's `manifest` (for the Provenance);
 *   `date` (ISO 8601, default now); `groups: "all"` writes an assessment for every phenotype group
 *   the model scores, not only the diagnosed ones.
 */
export function toFhir(answer, options = {}) {
  const { diagnosis, explanation, recommendation } = answer ?? {};
  const scored = diagnosis ?? explanation;
  if (!scored && !recommendation) {
    throw new BedsideError("BAD_OPTION", "toFhir needs { diagnosis, explanation, recommendation }: at least one of them");
  }
  const id = scored?.id ?? recommendation.id;
  const subject = reference(options.patient, "patient") ?? { display: `bedside record ${id}` };
  const encounter = reference(options.encounter, "encounter");
  const when = new Date(options.date ?? Date.now());
  if (Number.isNaN(when.getTime())) {
    throw new BedsideError("BAD_OPTION", `options.date must be an ISO 8601 date, not ${JSON.stringify(options.date)}`);
  }
  // an R4 instant: seconds and a zone
  const date = when.toISOString();
  // each part stands on its own: an out-of-range diagnosis writes no assessment, and the
  // recommender (which abstains only for a child or a setting outside the hospital) may still
  // propose; only an answer with nothing in range is its reasons alone
  const scoredOut = scored && (diagnosis?.out_of_range ?? explanation?.out_of_range);
  const recommendedOut = recommendation?.out_of_range;
  const reasons = (scoredOut ?? recommendedOut)?.reasons ?? [];
  const inRange = { scored: scored && !scoredOut ? scored : undefined, recommendation: recommendedOut ? undefined : recommendation };
  if (!inRange.scored && !inRange.recommendation) {
    return {
      resourceType: "Bundle",
      type: "collection",
      timestamp: date,
      entry: [{
        fullUrl: urn(),
        resource: {
          resourceType: "OperationOutcome",
          issue: reasons.map((r) => ({ severity: "information", code: "not-supported", diagnostics: r.message })),
        },
      }],
    };
  }
  const entries = [];
  const add = (resource) => {
    const fullUrl = urn();
    entries.push({ fullUrl, resource, request: { method: "POST", url: resource.resourceType } });
    return fullUrl;
  };
  // the facts stated: the explanation's where there is one (what the rationale says), else the
  // diagnosis's; the resources cited: both
  const evidence = inRange.scored ? (explanation?.evidence ?? diagnosis.evidence) : [];
  const cited = inRange.scored ? [...(diagnosis?.evidence ?? []), ...(explanation?.evidence ?? [])] : [];
  const references = [...new Set(cited.map((e) => e.reference).filter(Boolean))];
  const rationale = explanation?.rationale;
  const context = { subject, ...(encounter ? { encounter } : {}) };

  if (inRange.scored) {
    const diagnosed = new Set(diagnosis?.diagnosed ?? explanation.diagnoses);
    const scores = diagnosis?.phenotypes ?? [...diagnosed].map((name) => ({ name, probability: undefined }));
    for (const { name, probability } of scores) {
      if (options.groups !== "all" && !diagnosed.has(name)) continue;
      const basis = [...new Set(cited.filter((e) => e.diagnosis === name && e.reference).map((e) => e.reference))];
      const stated = evidence.filter((e) => e.diagnosis === name).map((e) => e.text);
      const summary = `${name}: ${probability === undefined ? "written by the model" : `probability ${probability.toFixed(3)}`}${diagnosed.has(name) ? " (diagnosed)" : ""}.`;
      add({
        resourceType: "RiskAssessment",
        status: "preliminary",
        ...context,
        occurrenceDateTime: date,
        method: { text: "bedside: a clinical language model run in the browser (ClinRaGen)" },
        ...(basis.length ? { basis: basis.map((r) => ({ reference: r })) } : {}),
        prediction: [{ outcome: { text: name }, ...(probability === undefined ? {} : { probabilityDecimal: probability }) }],
        ...(rationale || stated.length ? { note: [{ text: rationale || stated.join(" ") }] } : {}),
        text: narrative([summary, ...stated].join(" ")),
      });
    }
  }

  if (inRange.recommendation) {
    const proposals = new Map();
    for (const drug of recommendation.medications) {
      proposals.set(drug.code, add({
        resourceType: "MedicationRequest",
        status: "draft",
        intent: "proposal",
        medicationCodeableConcept: { coding: [{ system: ATC, code: drug.code, display: drug.name }], text: drug.name },
        ...context,
        authoredOn: date,
        note: [{ text: `Recommended by bedside (probability ${drug.probability.toFixed(3)}); a proposal, not an order.` }],
      }));
    }
    for (const w of recommendation.ddi_warnings) {
      const involved = [
        { reference: proposals.get(w.drug), display: w.drug_name },
        proposals.has(w.with) && !w.with_current
          ? { reference: proposals.get(w.with), display: w.with_name }
          : { display: `current medication: ${w.with_name} (ATC ${w.with})` },
      ].map((r) => (r.reference ? r : { display: r.display }));
      add({
        resourceType: "DetectedIssue",
        status: "preliminary",
        code: { coding: [DRUG_INTERACTION] },
        severity: "moderate",
        patient: subject,
        identifiedDateTime: date,
        implicated: involved,
        detail: `${w.drug_name} (${w.drug}) interacts with ${w.with_name} (${w.with})${w.with_current ? ", a current medication" : ""}.`,
      });
    }
  }

  if (entries.length === 0) {
    throw new BedsideError("BAD_OPTION", "the answer has nothing to write: no diagnosed group and no recommended drug");
  }
  const manifest = options.manifest;
  const weights = manifest?.files?.["model.safetensors"]?.sha256;
  add({
    resourceType: "Provenance",
    target: entries.map((e) => ({ reference: e.fullUrl })),
    recorded: date,
    // why a part has no resource: an out-of-range diagnosis beside an in-range recommendation
    ...(scoredOut ? { reason: reasons.map((r) => ({ text: r.message })) } : {}),
    agent: [{ type: { coding: [ASSEMBLER] }, who: { display: manifest?.created_by ?? "bedside" } }],
    entity: [
      ...(weights ? [{ role: "derivation", what: { identifier: { system: "urn:ietf:rfc:3986", value: `urn:sha256:${weights}` }, display: `bedside model bundle (${manifest.model?.kind ?? "model"}, model.safetensors)` } }] : []),
      ...references.map((r) => ({ role: "source", what: { reference: r } })),
    ],
  });
  return { resourceType: "Bundle", type: "transaction", timestamp: date, entry: entries };
}
