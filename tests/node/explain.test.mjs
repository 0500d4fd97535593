// A clinical bundle with a medication recommender (tiny models distilled here in seconds) in
// wasm: the streamed pieces add up to the text and arrive while it is generated; the text, the
// chart data, phenotype and drug probabilities equal the native CLI's, on the CPU and on WebGPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Bedside, webgpuAvailable } from "../../pkg/bedside.js";
import { create, globals } from "webgpu";
import { CPU_TOLERANCE, GPU_TOLERANCE, assertSameProbabilities, layerUnavailable, maxAbsDiff, samples, train } from "./helpers.mjs";

Object.assign(globalThis, globals);
globalThis.navigator ??= {};
globalThis.navigator.gpu = create([]);
globalThis.Window ??= class Window {};

const dir = mkdtempSync(path.join(tmpdir(), "bedside-clinical-"));
writeFileSync(
  path.join(dir, "run.toml"),
  `synthetic = 40
vocab_size = 700
max_prompt_tokens = 96
max_target_tokens = 64
batch_size = 8
epochs = [1, 1, 1]
[model]
d_model = 32
d_kv = 16
d_ff = 64
encoder_layers = 1
decoder_layers = 1
heads = 2
series_d_model = 16
series_layers = 1
prototypes = 4
knowledge_heads = 2
`,
);
writeFileSync(
  path.join(dir, "medrec.toml"),
  `synthetic = 60
epochs = 2
batch_size = 8
[student]
d_model = 16
heads = 2
visit_layers = 1
[teacher]
d_model = 32
layers = 1
heads = 2
d_ff = 64
vocab_size = 400
max_prompt_tokens = 96
epochs = 1
`,
);
execFileSync(train, ["distill", "--config", path.join(dir, "run.toml"), "--out", path.join(dir, "run")], { stdio: "ignore" });
execFileSync(train, ["medrec", "--config", path.join(dir, "medrec.toml"), "--out", path.join(dir, "medrec")], { stdio: "ignore" });
const bundle = path.join(dir, "bundle");
execFileSync(train, ["export", "--run", path.join(dir, "run"), "--medrec", path.join(dir, "medrec"), "--out", bundle, "--dtype", "f16"], { stdio: "ignore" });
// WebGPU on a software adapter is slow per token; the CPU test writes whole answers: the tiny
// model's head selects many groups, and a small vocabulary spells each in many tokens
const MAX_TOKENS = 40;
const CPU_TOKENS = 400;

function nativeExplain(record, tokens = MAX_TOKENS) {
  const file = path.join(dir, `${record.id}.json`);
  writeFileSync(file, JSON.stringify(record));
  const out = execFileSync(train, ["predict", "--bundle", bundle, "--record", file, "--explain", "--recommend", "--max-tokens", String(tokens)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return JSON.parse(out);
}

async function explain(model, record, tokens = MAX_TOKENS) {
  let streamed = "";
  let result;
  // a task queued at the first piece runs before the end only if generation lets the event loop
  // run between tokens (on the CPU every read-back completes at once). `setImmediate`, not a
  // timer: on the CPU a step takes a tenth of a millisecond, and the rest of a generation may be
  // over before a timer's shortest delay
  let ticked = false;
  let tickedBeforeEnd = false;
  for await (const item of model.explain(record, { maxTokens: tokens })) {
    if (typeof item === "string") {
      if (!streamed) setImmediate(() => { ticked = true; });
      streamed += item;
    } else {
      result = item;
      tickedBeforeEnd = ticked;
    }
  }
  assert.equal(streamed, result.text, "the streamed pieces add up to the text");
  if (result.tokens >= 10) assert.ok(tickedBeforeEnd, "the pieces stream: the event loop ran while the text was generated");
  return result;
}

/** Every evidence item names a real observation (channel, value, hour) or a real note span. */
function assertEvidenceOfRecord(evidence, record) {
  for (const e of evidence) {
    if (e.source === "observation") {
      const o = record.observations[e.observation];
      // the library parses numbers with serde_json, which may land one ulp from JavaScript's parse
      const same = (a, b) => maxAbsDiff([a], [b]) <= 1e-12 * Math.max(1, Math.abs(b));
      assert.ok(o && o.channel === e.channel && same(e.value, o.value) && same(e.hours, o.hours), `${JSON.stringify(e)} vs ${JSON.stringify(o)}`);
    } else {
      assert.equal(record.notes[e.note].text.slice(e.start, e.end), e.text);
    }
  }
}

/** The chart data equals the native CLI's: the same channels, hourly values and attention. */
function assertSameSeries(actual, expected, tolerance) {
  assert.deepEqual(actual.map((c) => c.name), expected.map((c) => c.name));
  assert.ok(actual.length > 0, "the record's observed channels come back for the charts");
  for (const [i, c] of actual.entries()) {
    const e = expected[i];
    assert.equal(c.values.length, e.values.length);
    c.values.forEach((v, h) => {
      const w = e.values[h];
      // an hour without a value is null on both sides; any other value is a finite number
      assert.ok((v === null && w === null) || maxAbsDiff([v], [w]) <= 1e-4 * Math.max(1, Math.abs(w)), `${c.name} hour ${h}: ${v} vs ${w}`);
    });
    const worst = maxAbsDiff(c.attention, e.attention);
    assert.ok(worst <= tolerance, `${c.name}: attention differs by ${worst}`);
    assert.equal(Math.max(...c.attention), 1, `${c.name}: the most attended hour is scaled to 1`);
  }
}

test("wasm on the CPU explains like the native CLI", async () => {
  const model = await Bedside.load(bundle, { backend: "cpu" });
  assert.equal(model.manifest.model.kind, "clinical");
  assert.equal(model.manifest.self_test.length, 25, "export records the self-test's known answer");
  assert.ok(Number.isFinite(model.selfTestDifference) && model.selfTestDifference <= 1e-5, `self-test difference ${model.selfTestDifference}`);
  let facts = 0;
  for (const record of samples.slice(0, 2)) {
    const native = nativeExplain(record, CPU_TOKENS);
    const wasm = await explain(model, record, CPU_TOKENS);
    assert.equal(wasm.text, native.explanation.text);
    assert.ok(!wasm.text.includes("###") && !wasm.text.includes("<lab:"), `no target markup: ${wasm.text}`);
    assert.deepEqual(wasm.diagnoses, native.explanation.diagnoses);
    assert.equal(wasm.rationale, native.explanation.rationale);
    assert.deepEqual(wasm.evidence, native.explanation.evidence, "the same evidence natively and in wasm");
    assertEvidenceOfRecord(wasm.evidence, record);
    facts += wasm.evidence.length;
    assert.deepEqual((await model.diagnose(record)).evidence, native.diagnosis.evidence);
    assert.equal(wasm.knowledge_attention.length, wasm.channels.length);
    assertSameSeries(wasm.series, native.explanation.series, 1e-5);
    const worst = assertSameProbabilities(await model.diagnose(record), native.diagnosis, CPU_TOLERANCE);
    const drugs = await model.recommend(record);
    assert.deepEqual(drugs.scores.map((d) => d.code), native.recommendation.scores.map((d) => d.code));
    assert.ok(drugs.scores.length > 0, "the recommender scores drugs");
    const drugDelta = maxAbsDiff(drugs.scores.map((d) => d.probability), native.recommendation.scores.map((d) => d.probability));
    assert.ok(drugDelta <= CPU_TOLERANCE, `drug probabilities differ by ${drugDelta}`);
    assert.deepEqual(drugs.medications.map((d) => d.code), native.recommendation.medications.map((d) => d.code));
    assert.deepEqual(drugs.ddi_warnings, native.recommendation.ddi_warnings);
    console.log(`# ${record.id}: ${wasm.tokens} tokens identical to native; max |Δp| ${worst.toExponential(2)}; ${drugs.medications.length} drugs, ${drugs.ddi_warnings.length} DDI warnings, max |Δp| ${drugDelta.toExponential(2)}`);
  }
  assert.ok(facts > 0, "the rationales state facts, so the evidence comparison compares something");
  model.dispose();
});

test("recommend names the drugs and warns of interactions with the current medications", async () => {
  const model = await Bedside.load(bundle, { backend: "cpu" });
  const record = structuredClone(samples[0]);
  // an interacting drug on the current visit must give a warning for the recommended drug
  const drugs = await model.recommend(record);
  assert.ok(drugs.scores.every((d) => typeof d.name === "string" && d.name.length > 0 && d.probability >= 0 && d.probability <= 1));
  const ddi = readFileSync(new URL("../../src/knowledge/data/ddi.tsv", import.meta.url), "utf8")
    .split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split("\t"));
  const recommended = new Set(drugs.medications.map((d) => d.code));
  const pair = ddi.find(([a, b]) => recommended.has(a) !== recommended.has(b));
  assert.ok(pair, `no recommended drug interacts with a drug not recommended: ${[...recommended]}`);
  const [chosen, other] = recommended.has(pair[0]) ? pair : [pair[1], pair[0]];
  record.visits.at(-1).medications = [other];
  const warned = await model.recommend(record);
  assert.ok(warned.ddi_warnings.some((w) => w.drug === chosen && w.with === other && w.with_current), JSON.stringify(warned.ddi_warnings));
  assert.deepEqual(warned.current, [other]);
  await assert.rejects(model.recommend({ id: "no-visits" }), (e) => e.code === "RECORD_INVALID" && /visits/.test(e.message));
  model.dispose();
});

test("a clinical bundle without its tokenizer is refused with the file named", async () => {
  const files = { manifest: readFileSync(path.join(bundle, "manifest.json"), "utf8"), weights: readFileSync(path.join(bundle, "model.safetensors")) };
  await assert.rejects(Bedside.load(files, { backend: "cpu" }), (e) => e.code === "BUNDLE_INVALID" && /tokenizer\.json/.test(e.message));
});

test("wasm on WebGPU writes the CPU's text", async (t) => {
  if (!(await webgpuAvailable())) {
    layerUnavailable(t, "webgpu", "no WebGPU adapter in Node: Dawn found no usable Vulkan driver");
    return;
  }
  const cpu = await Bedside.load(bundle, { backend: "cpu" });
  const gpu = await Bedside.load(bundle, { backend: "webgpu" });
  assert.equal(gpu.backend, "webgpu");
  // one record: WebGPU on a software Vulkan driver takes seconds per token
  for (const record of samples.slice(0, 1)) {
    const a = await explain(gpu, record);
    const b = await explain(cpu, record);
    assert.equal(a.text, b.text);
    assert.deepEqual(a.evidence, b.evidence, "the same evidence on WebGPU and the CPU");
    assertSameSeries(a.series, b.series, 1e-4);
    assertSameProbabilities(await gpu.diagnose(record), await cpu.diagnose(record), GPU_TOLERANCE);
    const [x, y] = [await gpu.recommend(record), await cpu.recommend(record)];
    const byCode = new Map(y.scores.map((d) => [d.code, d.probability]));
    assert.ok(x.scores.length > 0, "the recommender scores drugs");
    const drugDelta = maxAbsDiff(x.scores.map((d) => d.probability), x.scores.map((d) => byCode.get(d.code)));
    assert.ok(drugDelta <= GPU_TOLERANCE, `WebGPU and CPU drug probabilities differ by ${drugDelta}`);
  }
  cpu.dispose();
  gpu.dispose();
});
