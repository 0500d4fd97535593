// `toFhir`: the committed clinical bundle's answers for a FHIR chart, written back as FHIR R4.
// The output is type-checked against the R4 base resources (`@types/fhir`'s fhir/r4, generated
// from hl7.fhir.r4.core 4.0.1: an unknown field, a missing required one or a wrong code fails),
// and checked for what the types cannot say: every assessment's basis is an evidence resource of
// that group that exists in the chart with the value the answer states, the Provenance covers
// every entry and names every evidence resource, and every in-bundle reference resolves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Bedside, toFhir } from "../../pkg/bedside.js";
import { root } from "./helpers.mjs";

const chart = JSON.parse(readFileSync(path.join(root, "tests/fixtures/fhir/sepsis-bundle.json"), "utf8"));
const inChart = new Map(chart.entry.map((e) => [`${e.resource.resourceType}/${e.resource.id}`, e.resource]));

/** Type-checks each bundle against @types/fhir's R4 Bundle and every resource against its own type. */
function typeCheck(bundles) {
  const dir = path.join(root, "target/fhir-out");
  mkdirSync(dir, { recursive: true });
  const lines = ['import type * as R4 from "fhir/r4";'];
  bundles.forEach((bundle, i) => {
    lines.push(`export const bundle${i}: R4.Bundle<R4.FhirResource> = ${JSON.stringify(bundle)};`);
    bundle.entry.forEach((e, k) => lines.push(`export const resource${i}_${k}: R4.${e.resource.resourceType} = ${JSON.stringify(e.resource)};`));
  });
  writeFileSync(path.join(dir, "bundles.ts"), lines.join("\n") + "\n");
  const config = {
    compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, exactOptionalPropertyTypes: true, types: [], typeRoots: [path.join(root, "node_modules/@types")] },
    files: ["bundles.ts"],
  };
  writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(config));
  try {
    execFileSync(path.join(root, "node_modules/.bin/tsc"), ["-p", path.join(dir, "tsconfig.json")], { encoding: "utf8" });
  } catch (e) {
    assert.fail(`toFhir's output is not valid FHIR R4:\n${e.stdout}`);
  }
}

test("toFhir writes the answer as R4 resources traced to the chart", async () => {
  const model = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu" });
  const diagnosis = await model.diagnose(chart);
  const recommendation = await model.recommend(chart);
  let explanation;
  for await (const item of model.explain(chart, { maxTokens: 64 })) explanation = item;
  const child = await model.diagnose({ id: "child", demographics: { age: 6 }, observations: [{ channel: "heart_rate", hours: 1, value: 120 }] });
  // coded visits and no observation: the diagnosis is out of range, the recommendation is not
  const codedOnly = { id: "coded", observations: [], visits: [{ diagnoses: ["icd9:4280"], procedures: [], medications: ["C03C"] }, { diagnoses: ["icd9:5849"], procedures: [], medications: [] }] };
  const codedAnswer = { diagnosis: await model.diagnose(codedOnly), recommendation: await model.recommend(codedOnly) };
  const manifest = model.manifest;
  model.dispose();
  assert.ok(diagnosis.diagnosed.length > 0, "the chart is diagnosed with something");
  assert.ok(diagnosis.evidence.some((e) => e.reference), "the evidence names its resources");

  const patient = `Patient/${chart.entry.find((e) => e.resource.resourceType === "Patient").resource.id}`;
  const date = "2026-12-07T12:00:00Z";
  const written = toFhir({ diagnosis, explanation, recommendation }, { patient, encounter: "Encounter/enc-1", manifest, date });
  const all = toFhir({ diagnosis }, { patient, manifest, date, groups: "all" });
  const outside = toFhir({ diagnosis: child }, { patient, manifest, date });
  const partly = toFhir(codedAnswer, { patient, manifest, date: "2026-12-07" });
  typeCheck([written, all, outside, partly]);

  const of = (bundle, type) => bundle.entry.filter((e) => e.resource.resourceType === type).map((e) => e.resource);
  const urls = new Set(written.entry.map((e) => e.fullUrl));
  assert.equal(written.type, "transaction");
  assert.ok(written.entry.every((e) => e.request?.method === "POST" && e.request.url === e.resource.resourceType));

  // one assessment per diagnosed group, its basis the group's evidence resources, each in the chart
  const assessments = of(written, "RiskAssessment");
  assert.deepEqual(assessments.map((a) => a.prediction[0].outcome.text).sort(), [...diagnosis.diagnosed].sort());
  for (const a of assessments) {
    const group = a.prediction[0].outcome.text;
    const expected = [...new Set(diagnosis.evidence.filter((e) => e.diagnosis === group && e.reference).map((e) => e.reference))];
    assert.deepEqual((a.basis ?? []).map((b) => b.reference).sort(), expected.sort(), group);
    assert.equal(a.prediction[0].probabilityDecimal, diagnosis.phenotypes.find((p) => p.name === group).probability);
    assert.equal(a.status, "preliminary");
    assert.equal(a.subject.reference, patient);
    assert.equal(a.note[0].text, explanation.rationale);
    for (const b of a.basis ?? []) {
      const source = inChart.get(b.reference);
      assert.ok(source, `${b.reference} is not a resource of the chart`);
      const stated = diagnosis.evidence.find((e) => e.reference === b.reference);
      if (stated.source === "observation" && source.valueQuantity) {
        // the value the answer states is the resource's, where the chart uses the channel's unit
        if (source.valueQuantity.unit === stated.unit) assert.ok(Math.abs(source.valueQuantity.value - stated.value) < 1e-6, b.reference);
      }
    }
  }
  assert.equal(of(all, "RiskAssessment").length, diagnosis.phenotypes.length, 'groups: "all" writes every group');

  // proposals and interactions, each pointing at what is in the bundle
  const proposals = of(written, "MedicationRequest");
  assert.deepEqual(proposals.map((m) => m.medicationCodeableConcept.coding[0].code), recommendation.medications.map((m) => m.code));
  assert.ok(proposals.every((m) => m.status === "draft" && m.intent === "proposal"));
  const issues = of(written, "DetectedIssue");
  assert.equal(issues.length, recommendation.ddi_warnings.length);
  for (const issue of issues) {
    for (const implicated of issue.implicated.filter((i) => i.reference)) assert.ok(urls.has(implicated.reference), implicated.reference);
  }

  // the Provenance: every other entry its target; bedside's bundle and every evidence resource its entities
  const [provenance] = of(written, "Provenance");
  const targets = provenance.target.map((t) => t.reference);
  assert.deepEqual(targets.sort(), written.entry.filter((e) => e.resource.resourceType !== "Provenance").map((e) => e.fullUrl).sort());
  const sources = provenance.entity.filter((e) => e.role === "source").map((e) => e.what.reference);
  const cited = new Set([...diagnosis.evidence, ...explanation.evidence].map((e) => e.reference).filter(Boolean));
  assert.deepEqual(sources.sort(), [...cited].sort());
  assert.ok(provenance.entity.some((e) => e.what.identifier?.value === `urn:sha256:${manifest.files["model.safetensors"].sha256}`));

  // outside the model's range: the reasons, no assessment
  assert.equal(outside.type, "collection");
  assert.deepEqual(outside.entry.map((e) => e.resource.resourceType), ["OperationOutcome"]);
  assert.deepEqual(outside.entry[0].resource.issue.map((i) => i.diagnostics), child.out_of_range.reasons.map((r) => r.message));

  // an out-of-range diagnosis writes no assessment, the in-range recommendation still proposes,
  // and the Provenance says why; a bare date becomes an R4 instant
  assert.ok(codedAnswer.diagnosis.out_of_range && !codedAnswer.recommendation.out_of_range);
  assert.equal(of(partly, "RiskAssessment").length, 0);
  assert.equal(of(partly, "MedicationRequest").length, codedAnswer.recommendation.medications.length);
  assert.deepEqual(of(partly, "Provenance")[0].reason.map((r) => r.text), codedAnswer.diagnosis.out_of_range.reasons.map((r) => r.message));
  assert.equal(partly.timestamp, "2026-12-07T00:00:00.000Z");

  // each stated fact once in an assessment's narrative
  for (const a of assessments) {
    const facts = explanation.evidence.filter((e) => e.diagnosis === a.prediction[0].outcome.text).map((e) => e.text);
    for (const fact of facts) assert.equal(a.text.div.split(fact.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c])).length - 1, 1, fact);
  }
  assert.throws(() => toFhir({ diagnosis }, { date: "yesterday" }), (e) => e.code === "BAD_OPTION" && /options\.date/.test(e.message));
  assert.throws(() => toFhir({ diagnosis }, { patient: "not a reference" }), (e) => e.code === "BAD_OPTION" && /options\.patient/.test(e.message));
  assert.throws(() => toFhir({}), (e) => e.code === "BAD_OPTION");
});
