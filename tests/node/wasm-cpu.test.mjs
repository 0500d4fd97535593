// The wasm package in Node on the CPU: same numbers as the native CLI, and clear errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Bedside } from "../../pkg/bedside.js";
import { CPU_TOLERANCE, assertSameProbabilities, assertSameRisk, labBundleDir, bundleFiles, mortalityDir, nativePredict, root, samples } from "./helpers.mjs";

// flex in wasm and flex natively run the same Rust code; only float summation order may differ.
const TOLERANCE = CPU_TOLERANCE;

test("wasm on the CPU gives the native CLI's probabilities", async () => {
  const model = await Bedside.load(labBundleDir, { backend: "cpu" });
  assert.equal(model.backend, "cpu");
  assert.equal(model.card, null, "a bundle without a model card loads, and says it has none");
  for (const record of samples.slice(0, 3)) {
    const wasm = await model.diagnose(record);
    assert.equal(wasm.backend, "cpu");
    assert.equal(wasm.id, record.id);
    const worst = assertSameProbabilities(wasm, nativePredict(record), TOLERANCE);
    console.log(`# ${record.id}: max |wasm - native| = ${worst.toExponential(2)}`);
  }
  model.dispose();
  assert.equal(model.backend, "disposed");
  await assert.rejects(model.diagnose(samples[0]), { code: "DISPOSED" });
});

test("wasm on the CPU gives the native CLI's risk with the mortality bundle", async () => {
  const model = await Bedside.load(mortalityDir, { backend: "cpu" });
  assert.equal(model.manifest.model.kind, "mortality");
  assert.ok(model.card.trained_on[0].cohort.includes("PhysioNet"), "the card names the data");
  for (const record of samples.slice(0, 3)) {
    const wasm = await model.risk(record);
    assert.equal(wasm.outcome, "In-hospital death");
    assert.ok(wasm.probability > 0 && wasm.probability < 1);
    assert.ok(wasm.findings.length > 0, "a sample stay has findings");
    const sizes = wasm.findings.map((f) => Math.abs(f.effect));
    assert.deepEqual(sizes, [...sizes].sort((x, y) => y - x), "largest effect first");
    for (const f of wasm.findings) assert.equal(record.observations[f.observation].channel, f.channel);
    const worst = assertSameRisk(wasm, nativePredict(record, "cpu", mortalityDir), TOLERANCE);
    console.log(`# ${record.id}: max |wasm - native| risk = ${worst.toExponential(2)}`);
  }
  // it answers risk only, and the clinical bundle does not answer risk
  await assert.rejects(model.diagnose(samples[0]), { code: "BUNDLE_INCOMPATIBLE" });
  model.dispose();
  const clinical = await Bedside.load(labBundleDir, { backend: "cpu" });
  await assert.rejects(clinical.risk(samples[0]), { code: "BUNDLE_INCOMPATIBLE" });
  clinical.dispose();
});

test("the committed bundle carries its model card", async () => {
  const model = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu" });
  const card = model.card;
  assert.ok(card, "models/demo has a model card");
  assert.deepEqual(card.evaluations.map((e) => e.admissions), [300, 300, 62, 41, 136]);
  assert.ok(card.trained_on.some((t) => t.licence.includes("ODbL")), "the MIMIC-IV demo's licence is stated");
  assert.match(card.out_of_range, /under 18/);
  // a healthy child's outpatient chart: reasons, not answers, in wasm as natively
  const child = JSON.parse(readFileSync(path.join(root, "tests/fixtures/fhir/healthy-child-bundle.json"), "utf8"));
  const diagnosis = await model.diagnose(child);
  assert.deepEqual(diagnosis.out_of_range?.reasons.map((r) => r.kind), ["no_observations", "age_outside_training", "setting_outside_training"]);
  assert.deepEqual([diagnosis.diagnosed, diagnosis.evidence], [[], []]);
  let explanation;
  for await (const piece of model.explain(child)) if (typeof piece !== "string") explanation = piece;
  assert.deepEqual([explanation.diagnoses, explanation.evidence], [[], []]);
  const drugs = await model.recommend(child);
  assert.deepEqual([drugs.medications, drugs.ddi_warnings], [[], []]);
  assert.ok(drugs.out_of_range && drugs.scores.length > 0);
  const native = nativePredict(child, "cpu", path.join(root, "models/demo"), ["--explain", "--recommend"]);
  assert.deepEqual(diagnosis.out_of_range, native.diagnosis.out_of_range);
  assert.equal(explanation.text, native.explanation.text);
  assert.deepEqual(drugs.out_of_range, native.recommendation.out_of_range);
  model.dispose();
});

test("the self-test runs where the bundle records an answer, and says so where it does not", async () => {
  const trained = await Bedside.load(labBundleDir, { backend: "cpu" });
  assert.equal(trained.manifest.self_test.length, 25, "train records the known answer");
  assert.ok(trained.selfTestDifference !== null && trained.selfTestDifference <= 1e-5, `${trained.selfTestDifference}`);
  trained.dispose();
  const fixture = await Bedside.load(path.join(root, "tests/fixtures/tiny-bundle"), { backend: "cpu" });
  assert.equal(fixture.manifest.self_test, undefined);
  assert.equal(fixture.selfTestDifference, null, "not run: null, not 0");
  fixture.dispose();
});

test("load reports its phases in order, bytes against the manifest's sizes, a fraction that ends at 1", async () => {
  const events = [];
  const model = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu", onProgress: (p) => events.push(p) });
  model.dispose();
  const phases = events.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1]);
  assert.deepEqual(phases, ["wasm", "download", "verify", "self-test", "ready"]);
  const fractions = events.map((e) => e.fraction);
  assert.ok(fractions.every((f, i) => f >= (fractions[i - 1] ?? 0) && f <= 1), `fractions never fall: ${fractions}`);
  assert.equal(fractions.at(-1), 1);
  const manifest = JSON.parse(readFileSync(path.join(root, "models/demo/manifest.json"), "utf8"));
  for (const [file, { bytes }] of Object.entries(manifest.files)) {
    const last = events.filter((e) => e.file === file).at(-1);
    assert.deepEqual([last.loaded, last.total], [bytes, bytes], file);
  }
  assert.equal(events.find((e) => e.phase === "download" && e.file === "model.safetensors" && e.loaded === e.total)?.fraction < 0.8, true);
  assert.equal(events.filter((e) => e.phase === "ready")[0].backend, "cpu");
});

test("integrity pins the manifest, and through it the bundle", async () => {
  const dir = path.join(root, "models/demo");
  const integrity = `sha256-${createHash("sha256").update(readFileSync(path.join(dir, "manifest.json"))).digest("base64")}`;
  const model = await Bedside.load(dir, { backend: "cpu", integrity });
  model.dispose();
  const other = `sha256-${createHash("sha256").update("another manifest").digest("base64")}`;
  await assert.rejects(Bedside.load(dir, { backend: "cpu", integrity: other }), (e) => {
    assert.equal(e.code, "BUNDLE_HASH_MISMATCH");
    assert.match(e.message, /^bundle manifest\.json: sha256-\S+ does not match the pinned integrity sha256-/);
    return true;
  });
  await assert.rejects(Bedside.load(dir, { backend: "cpu", integrity: "md5-abc" }), { code: "BAD_OPTION" });
  // the bytes are what is pinned: the same manifest given as bytes loads, as an object it cannot
  const files = {
    manifest: readFileSync(path.join(dir, "manifest.json")),
    weights: readFileSync(path.join(dir, "model.safetensors")),
    tokenizer: readFileSync(path.join(dir, "tokenizer.json")),
    medrec: readFileSync(path.join(dir, "medrec.safetensors")),
  };
  (await Bedside.load(files, { backend: "cpu", integrity })).dispose();
  const parsed = { ...files, manifest: JSON.parse(files.manifest) };
  await assert.rejects(Bedside.load(parsed, { backend: "cpu", integrity }), { code: "BAD_OPTION" });
});

test("auto picks the CPU where there is no WebGPU", async () => {
  const model = await Bedside.load(bundleFiles(), { backend: "auto" });
  assert.equal(model.backend, "cpu");
  assert.equal(model.fallbackReason, "this browser or runtime has no WebGPU adapter", "says why");
  assert.equal(model.manifest.labels.length, 25);
  model.dispose();
  const asked = await Bedside.load(bundleFiles(), { backend: "cpu" });
  assert.equal(asked.fallbackReason, 'the CPU was asked for (backend: "cpu")');
  asked.dispose();
});

test("asking for WebGPU where there is none is an error, not a crash", async () => {
  await assert.rejects(Bedside.load(bundleFiles(), { backend: "webgpu" }), { code: "WEBGPU_UNAVAILABLE" });
});

test("bad records give errors that name the field", async () => {
  const model = await Bedside.load(bundleFiles(), { backend: "cpu" });
  await assert.rejects(model.diagnose("{ not json"), { code: "RECORD_JSON" });
  await assert.rejects(model.diagnose({ id: "x", observations: [{ channel: "heart_rate", hours: "soon", value: 80 }] }), (e) => {
    assert.equal(e.code, "RECORD_JSON");
    assert.match(e.message, /observations\[0\]\.hours/);
    return true;
  });
  await assert.rejects(model.diagnose({ id: " ", demographics: { age: 300 } }), (e) => {
    assert.equal(e.code, "RECORD_INVALID");
    assert.match(e.message, /\$\.id/);
    assert.match(e.message, /\$\.demographics\.age/);
    return true;
  });
  // unknown channels and missing values are reported, not fatal
  const result = await model.diagnose({
    id: "notices",
    observations: [
      { channel: "heart_rate", hours: 1, value: 120 },
      { channel: "not_a_channel", hours: 1, value: 1 },
      { channel: "sodium", hours: 2, value: null },
      { channel: "temperature", hours: 3, value: 102.2, unit: "[degF]" },
    ],
  });
  assert.deepEqual(result.notices.map((n) => [n.path, n.kind]), [
    ["$.notes", "no_notes"],
    ["$.observations[1].channel", "unknown_channel"],
    ["$.observations[2].value", "missing_value"],
    ["$.observations[3].unit", "unit_converted"],
  ]);
  assert.match(result.notices[3].message, /102\.2 \[degF\] read as 39\.0+ Cel/);
  assert.equal(result.observed_cells, 2);
  // the model still works after every one of those errors
  assert.equal((await model.diagnose(samples[0])).phenotypes.length, 25);
  model.dispose();
});

test("bad bundles are refused before any tensor is built", async () => {
  const good = bundleFiles();
  const manifest = JSON.parse(good.manifest);
  const cases = [
    ["truncated weights", { ...good, weights: good.weights.slice(0, good.weights.length - 100) }, "BUNDLE_INVALID", /truncated/],
    ["flipped byte", { ...good, weights: good.weights.map((b, i) => (i === 5000 ? b ^ 1 : b)) }, "BUNDLE_HASH_MISMATCH", /sha256/],
    ["newer format", { ...good, manifest: { ...manifest, format_version: 99 } }, "BUNDLE_INCOMPATIBLE", /format_version/],
    ["other knowledge", { ...good, manifest: { ...manifest, knowledge_hash: "0".repeat(64) } }, "BUNDLE_INCOMPATIBLE", /knowledge_hash/],
    ["not JSON", { ...good, manifest: "{" }, "BUNDLE_INVALID", /manifest\.json/],
  ];
  for (const [name, files, code, message] of cases) {
    await assert.rejects(Bedside.load(files, { backend: "cpu" }), (e) => {
      assert.equal(e.code, code, name);
      assert.match(e.message, message, name);
      return true;
    });
  }
  await assert.rejects(Bedside.load("/nonexistent/bundle", { backend: "cpu" }), { code: "BUNDLE_FETCH" });
  await assert.rejects(Bedside.load(good, { backend: "tpu" }), { code: "BAD_OPTION" });
});

test("a FHIR R4 Bundle is diagnosed like a PatientRecord", async () => {
  const model = await Bedside.load(bundleFiles(), { backend: "cpu" });
  const bundle = JSON.parse(readFileSync(path.join(root, "tests/fixtures/fhir/sepsis-bundle.json"), "utf8"));
  const result = await model.diagnose(bundle);
  assert.equal(result.id, "example-1");
  assert.equal(result.observed_cells, 4);
  assert.deepEqual(result.notices.map((n) => n.kind), ["unit_converted", "unknown_channel", "unit_converted"]);
  await assert.rejects(model.diagnose({ resourceType: "Bundle", entry: {} }), (e) => {
    assert.equal(e.code, "RECORD_FHIR");
    assert.match(e.message, /\$\.entry/);
    return true;
  });
  model.dispose();
});

test("a record of 10,000 observations and 100 visits stays within the documented memory bound", async () => {
  const model = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu" }); // with the recommender
  // real values: a sample admission's observations, repeated across the window
  const real = samples[0].observations.filter((o) => o.value !== null && o.hours < 48);
  const record = {
    id: "large",
    notes: samples[0].notes,
    observations: Array.from({ length: 10_000 }, (_, i) => {
      const o = real[i % real.length];
      return { ...o, hours: (o.hours + Math.floor(i / real.length) * 0.37) % 48 };
    }),
    visits: Array.from({ length: 100 }, () => ({ diagnoses: ["4019", "5849"], procedures: ["9604"], medications: ["C09A"] })),
  };
  await model.diagnose(samples[0]); // the first call's allocations are not the record's
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const diagnosis = await model.diagnose(record);
  const drugs = await model.recommend(record);
  const ms = performance.now() - started;
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  assert.equal(diagnosis.phenotypes.length, 25);
  assert.deepEqual(diagnosis.notices.map((n) => n.kind), [], "real values in range raise no notice");
  assert.ok(diagnosis.diagnosed.length > 0, "the repeated admission is still diagnosed");
  assert.ok(drugs.medications.length > 0);
  console.log(`# 10,000 observations, 100 visits (${(JSON.stringify(record).length / 1e6).toFixed(2)} MB JSON): ${ms.toFixed(0)} ms, resident memory +${grown.toFixed(1)} MiB`);
  // README: a record within the bounds costs at most a few tens of MB beyond the model
  assert.ok(grown < 64, `memory grew by ${grown} MiB`);
  // past the bound: refused before any work, the field named
  const huge = { id: "huge", observations: Array.from({ length: 200_001 }, () => ({ channel: "heart_rate", hours: 1, value: 80 })) };
  await assert.rejects(model.diagnose(huge), (e) => e.code === "RECORD_INVALID" && e.message.includes("$.observations"));
  model.dispose();
});

// The documented bounds (README, "Bounds"): 1,000 visits of 1,000 codes each and 2 MB of notes are
// read, diagnosed and explained in wasm. The time is printed; the generous limit only catches a
// loop that grows quadratically with the input (at these sizes that would take hours), it is not a
// speed target (those are in `make bench`).
test("a record at the documented bounds (1,000 visits × 1,000 codes, 2 MB of notes) is answered", async () => {
  const model = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu" });
  const codes = (prefix) => Array.from({ length: 1_000 }, (_, i) => `${prefix}${i}`);
  const sentence = "Patient febrile overnight with rising lactate and new oxygen requirement. ";
  const record = {
    id: "bounds",
    notes: Array.from({ length: 4 }, (_, i) => ({ text: sentence.repeat(Math.floor(500_000 / sentence.length)), hours: i })),
    observations: samples[0].observations,
    visits: Array.from({ length: 1_000 }, () => ({ diagnoses: codes("D"), procedures: codes("P"), medications: codes("M") })),
  };
  const mb = JSON.stringify(record).length / 1e6;
  const started = performance.now();
  const diagnosis = await model.diagnose(record);
  const diagnosed = performance.now() - started;
  let explanation;
  for await (const item of model.explain(record, { maxTokens: 40 })) if (typeof item !== "string") explanation = item;
  const total = performance.now() - started;
  console.log(`# bounds record (${mb.toFixed(1)} MB JSON): diagnose ${diagnosed.toFixed(0)} ms, + explain ${(total - diagnosed).toFixed(0)} ms`);
  assert.equal(diagnosis.phenotypes.length, 25);
  assert.ok(explanation.text.length > 0);
  assert.ok(total < 120_000, `${total} ms: something grows faster than the input`);
  // one more visit, or one more code in a visit: refused, the field named
  const more = { ...record, visits: [...record.visits, { diagnoses: ["D"] }] };
  await assert.rejects(model.diagnose(more), (e) => e.code === "RECORD_INVALID" && e.message.includes("$.visits"));
  const longer = { ...record, visits: [{ diagnoses: [...codes("D"), "D"] }, ...record.visits.slice(1)] };
  await assert.rejects(model.diagnose(longer), (e) => e.code === "RECORD_INVALID" && e.message.includes("$.visits[0].diagnoses"));
  model.dispose();
});
