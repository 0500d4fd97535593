// bedside/smart against the local FHIR + SMART sandbox (tests/sandbox/server.mjs), in Node: both
// launches end to end, every page of each search read, notes at a URL and referenced Medications
// resolved, the chart diagnosed with every evidence reference resolving on the server to the value
// the answer states; toFhir's Bundle written back and read again; and each failure a user can
// meet — a server not on the allowlist, a state that does not match, a wrong PKCE verifier, an
// expired token, a scope not granted, a server error, an empty chart — as its coded error.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Bedside, toFhir } from "../../pkg/bedside.js";
import { authorize, completeAuthorization, readChart } from "../../pkg/smart.js";
import { SYNTHEA, startSandbox } from "../sandbox/server.mjs";
import { quantityFor } from "../sandbox/us-core.mjs";
import { layerUnavailable, root, samples } from "./helpers.mjs";

// the browser's sessionStorage, for the launch state across the "redirect"
const stored = new Map();
globalThis.sessionStorage ??= {
  getItem: (k) => stored.get(k) ?? null,
  setItem: (k, v) => stored.set(k, String(v)),
  removeItem: (k) => stored.delete(k),
};

const APP = "http://127.0.0.1:9/bedside/";
const WRITE = "patient/RiskAssessment.c patient/MedicationRequest.c patient/DetectedIssue.c patient/Provenance.c";
let sandbox;
let model;

before(async () => {
  const bare = { resourceType: "Patient", id: "empty-chart", gender: "female", birthDate: "1960-01-01" };
  // notes the reader cannot fetch: on another server, and a Binary the server does not have
  const elsewhere = { resourceType: "Patient", id: "notes-elsewhere", gender: "male", birthDate: "1950-01-01" };
  const note = (id, url) => ({ resourceType: "DocumentReference", id, status: "current", subject: { reference: "Patient/notes-elsewhere" }, content: [{ attachment: { contentType: "text/plain", url } }] });
  const resources = [bare, elsewhere, note("off-server", "http://127.0.0.1:1/notes/1"), note("missing", "Binary/missing")];
  sandbox = await startSandbox({ charts: samples, synthea: existsSync(SYNTHEA) ? SYNTHEA : undefined, resources });
  model = await Bedside.load(pathToFileURL(path.join(root, "models/demo/")), { backend: "cpu", cache: false });
});

after(async () => {
  model?.dispose();
  await sandbox?.close();
});

/** An app's launch, as the browser would follow it: the URL it comes back to. */
async function signIn({ patient, encounter, scope = `launch ${WRITE} patient/*.rs`, standalone = false, tamper }) {
  let iss = sandbox.fhirBase;
  let launch;
  if (!standalone) {
    const ehr = await fetch(sandbox.launchUrl(APP, patient, encounter), { redirect: "manual" });
    const at = new URL(ehr.headers.get("location"));
    assert.equal(at.origin + at.pathname, APP, "the EHR sends the browser to the app");
    [iss, launch] = [at.searchParams.get("iss"), at.searchParams.get("launch")];
  }
  const url = await authorize({ iss, launch, clientId: "bedside", scope, redirectUri: APP, allowed: [sandbox.fhirBase] });
  const query = new URL(url).searchParams;
  assert.equal(query.get("code_challenge_method"), "S256");
  assert.equal(query.get("aud"), sandbox.fhirBase);
  tamper?.();
  // the standalone launch's patient picker, chosen
  const answer = await fetch(standalone ? `${url}&patient=${patient}` : url, { redirect: "manual" });
  return answer.headers.get("location");
}

test("an EHR launch reads the chart, every page, and the diagnosis's evidence resolves on the server", async () => {
  const chart = sandbox.charts.find((c) => c.record.notes?.length && c.resources.some((r) => r.resourceType === "Binary"));
  const session = await completeAuthorization({ url: await signIn({ patient: chart.patient, encounter: `Encounter/${chart.encounter}` }) });
  assert.equal(session.patient, chart.patient);
  assert.equal(session.encounter, `Encounter/${chart.encounter}`);
  assert.equal(sessionStorage.getItem("bedside.smart.pending"), null, "the launch state is used once");
  const steps = [];
  const bundle = await readChart(session, { onProgress: (p) => steps.push(p) });
  const made = chart.resources.filter((r) => r.resourceType !== "Binary");
  assert.deepEqual(bundle.entry.map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort(), made.map((r) => `${r.resourceType}/${r.id}`).sort(), "every resource of the chart, once");
  const observations = made.filter((r) => r.resourceType === "Observation").length;
  assert.ok(observations > 100, "the chart spans several pages of 50");
  assert.ok(sandbox.requests.some((r) => /_offset=50/.test(r.path)), "the next pages were read");
  assert.deepEqual(steps.at(-1), { step: "Clinical notes", done: 9, total: 9, resources: chart.record.notes.length });
  // the note at a Binary URL is inlined as text
  const note = bundle.entry.find((e) => e.resource.resourceType === "DocumentReference").resource;
  assert.equal(Buffer.from(note.content[0].attachment.data, "base64").toString("utf8"), chart.record.notes[0].text);

  const diagnosis = await model.diagnose(bundle, { encounter: session.encounter });
  assert.equal(diagnosis.out_of_range, null);
  const lab = diagnosis.evidence.filter((e) => e.source === "observation");
  assert.ok(lab.length > 0, "the answer states lab findings");
  for (const e of lab) {
    const resource = await sandbox.read(e.reference);
    assert.ok(resource, `${e.reference} is on the server`);
    const quantity = quantityFor(resource, e.channel);
    assert.ok(quantity, `${e.reference} holds a ${e.channel} value`);
    assert.equal(quantity.unit, e.unit, `${e.reference}: the channel's unit`);
    assert.ok(Math.abs(quantity.value - e.value) <= 1e-9 * Math.max(1, Math.abs(e.value)), `${e.reference}: ${quantity.value} on the server, ${e.value} stated`);
  }
  // the same numbers as the record the chart was made from (as charted: the channels with a LOINC code)
  const direct = await model.diagnose(chart.charted);
  for (const p of diagnosis.phenotypes) assert.ok(Math.abs(p.probability - direct.phenotypes.find((q) => q.name === p.name).probability) <= 1e-6, `${p.name}: the chart and the record agree`);

  // the answer written back as FHIR, and read again
  const recommendation = await model.recommend(bundle, { encounter: session.encounter });
  const written = toFhir({ diagnosis, recommendation }, { patient: `Patient/${session.patient}`, encounter: session.encounter, manifest: model.manifest });
  const response = await session.save(written);
  const locations = response.entry.map((e) => e.response.location.split("/_history")[0]);
  assert.equal(locations.length, written.entry.length);
  const assessments = [];
  for (const location of locations) {
    const resource = await session.request(location);
    if (resource.resourceType === "RiskAssessment") assessments.push(resource);
  }
  assert.equal(assessments.length, diagnosis.diagnosed.length);
  for (const a of assessments) {
    assert.equal(a.subject.reference, `Patient/${session.patient}`);
    for (const basis of a.basis ?? []) assert.ok(await sandbox.read(basis.reference), `basis ${basis.reference} resolves`);
  }
});

test("a standalone launch of a Synthea chart (no observations) reads it and gets reasons, not an answer", async (t) => {
  if (!existsSync(SYNTHEA)) return layerUnavailable(t, "data", `${SYNTHEA} is missing`);
  const patient = sandbox.patients.find((p) => !p.startsWith("Patient/bedside") && p !== "Patient/empty-chart").slice("Patient/".length);
  const session = await completeAuthorization({ url: await signIn({ patient, standalone: true, scope: "launch/patient patient/*.rs" }) });
  assert.equal(session.encounter, undefined);
  const bundle = await readChart(session);
  const types = new Set(bundle.entry.map((e) => e.resource.resourceType));
  for (const type of ["Patient", "Encounter", "Condition", "MedicationRequest", "DocumentReference"]) assert.ok(types.has(type), `${type} read`);
  const diagnosis = await model.diagnose(bundle);
  assert.ok(diagnosis.out_of_range, "no observations: out of range");
  assert.ok(diagnosis.out_of_range.reasons.some((r) => r.kind === "no_observations"));
  assert.equal(session.canCreate(["RiskAssessment"]), false);
  const assessment = { resourceType: "Bundle", type: "transaction", entry: [{ resource: { resourceType: "RiskAssessment", status: "preliminary" }, request: { method: "POST", url: "RiskAssessment" } }] };
  await assert.rejects(session.save(assessment), (e) => e.code === "FHIR_FORBIDDEN" && /RiskAssessment/.test(e.message));
});

test("launch failures are coded and say why", async () => {
  const chart = sandbox.charts[0];
  await assert.rejects(
    authorize({ iss: "http://127.0.0.1:1/fhir", launch: "x", clientId: "bedside", redirectUri: APP, allowed: [sandbox.fhirBase] }),
    (e) => e.code === "SMART_LAUNCH" && /not on this deployment's list/.test(e.message),
  );
  // an answer whose state is not the one kept
  const url = await signIn({ patient: chart.patient });
  const forged = new URL(url);
  forged.searchParams.set("state", "another");
  await assert.rejects(completeAuthorization({ url: forged.href }), (e) => e.code === "SMART_LAUNCH" && /state/.test(e.message));
  // a verifier that is not the challenge's
  const wrong = await signIn({
    patient: chart.patient,
    tamper: () => {
      const pending = JSON.parse(sessionStorage.getItem("bedside.smart.pending"));
      sessionStorage.setItem("bedside.smart.pending", JSON.stringify({ ...pending, verifier: "x".repeat(64) }));
    },
  });
  await assert.rejects(completeAuthorization({ url: wrong }), (e) => e.code === "SMART_LAUNCH" && /code_verifier/.test(e.message));
  // the EHR's refusal
  const refused = new URL(APP);
  await authorize({ iss: sandbox.fhirBase, launch: "x", clientId: "bedside", redirectUri: APP, allowed: [sandbox.fhirBase] });
  refused.searchParams.set("state", JSON.parse(sessionStorage.getItem("bedside.smart.pending")).state);
  refused.searchParams.set("error", "access_denied");
  await assert.rejects(completeAuthorization({ url: refused.href }), (e) => e.code === "SMART_LAUNCH" && /access_denied/.test(e.message));
});

test("FHIR failures are coded: a scope not granted, a server error, an empty chart, an expired token", async () => {
  const chart = sandbox.charts[1];
  const reader = await completeAuthorization({ url: await signIn({ patient: chart.patient, scope: "launch patient/Patient.rs patient/Observation.rs" }) });
  await assert.rejects(readChart(reader), (e) => e.code === "FHIR_FORBIDDEN" && /Encounter/.test(e.message));
  await assert.rejects(reader.request("Observation/none/extra/path", { method: "DELETE" }), (e) => e.code === "FHIR_SERVER" && /405/.test(e.message));
  await assert.rejects(reader.request("http://127.0.0.1:1/elsewhere"), (e) => e.code === "FHIR_SERVER" && /token is sent to no other/.test(e.message));
  await assert.rejects(reader.request(`${sandbox.fhirBase}-evil/Patient/x`), (e) => e.code === "FHIR_SERVER" && /token is sent to no other/.test(e.message), "a look-alike prefix is another server");
  // notes that cannot be fetched are left unread and reported, not a failed chart
  const notes = await completeAuthorization({ url: await signIn({ patient: "notes-elsewhere" }) });
  const unread = await model.diagnose(await readChart(notes));
  const reported = unread.notices.filter((n) => /a note at a URL is read once fetched/.test(n.message)).map((n) => n.path);
  assert.equal(reported.length, 2, JSON.stringify(unread.notices));
  const empty = await completeAuthorization({ url: await signIn({ patient: "empty-chart" }) });
  await assert.rejects(readChart(empty), (e) => e.code === "FHIR_EMPTY");
  sandbox.expireTokens();
  await assert.rejects(readChart(empty), (e) => e.code === "FHIR_UNAUTHORIZED" && /launch again/.test(e.message));
});
