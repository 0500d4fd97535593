// Shared by the Node tests: where the bundle, the samples and the native CLI are, and how two
// diagnoses are compared.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../../", import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
/** The lab-phenotype bundle `make lab-bundle` trains for the tests. */
export const labBundleDir = process.env.BEDSIDE_BUNDLE ?? path.join(root, "target/demo/lab-phenotype");
export const samples = JSON.parse(readFileSync(path.join(root, "target/demo/samples/samples.json"), "utf8"));
export const train = process.env.BEDSIDE_TRAIN ?? path.join(target, "debug/bedside-train");

/** What the native CLI predicts for a record. */
export function nativePredict(record, backend = "cpu", bundle = labBundleDir, extra = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "bedside-"));
  const file = path.join(dir, "record.json");
  writeFileSync(file, JSON.stringify(record));
  const out = execFileSync(train, ["predict", "--bundle", bundle, "--record", file, "--backend", backend, ...extra], {
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/**
 * The largest absolute difference between two arrays of numbers, element by element (0 for two
 * empty arrays): Infinity when the lengths differ or any element is not a finite number on either
 * side — NaN, an infinity, or `null` (how JSON writes NaN), which JavaScript's arithmetic would
 * read as 0. The JavaScript twin of `bedside::compare::max_abs_diff`; every numeric check of the
 * Node and browser tests goes through it.
 */
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    worst = Math.max(worst, Math.abs(a[i] - b[i])); // nan-ok: both finite
  }
  return worst;
}

/**
 * How far two backends' probabilities may differ (RESULTS.md, "Numerical agreement"): about 10×
 * the largest difference measured. wasm on the CPU against the native CLI, and Chromium's CPU
 * fallback against it: 7.4e-8 – 1.5e-7 measured. WebGPU (Dawn in Node, Chromium; SwiftShader)
 * against the CPU: 1.0e-7 – 3.0e-7 measured.
 */
export const CPU_TOLERANCE = 2e-6;
export const GPU_TOLERANCE = 3e-6;

/** Asserts that two diagnoses give every phenotype the same probability within `tolerance`. */
export function assertSameProbabilities(actual, expected, tolerance) {
  const byName = new Map(expected.phenotypes.map((p) => [p.name, p.probability]));
  assert.equal(actual.phenotypes.length, byName.size);
  for (const p of actual.phenotypes) assert.ok(byName.has(p.name), `unexpected phenotype ${p.name}`);
  const worst = maxAbsDiff(
    actual.phenotypes.map((p) => p.probability),
    actual.phenotypes.map((p) => byName.get(p.name)),
  );
  assert.ok(worst <= tolerance, `largest probability difference ${worst} exceeds ${tolerance}`);
  return worst;
}

/** The committed mortality bundle (PhysioNet 2012), which answers `risk`. */
export const mortalityDir = path.join(root, "models/mortality");

/**
 * Asserts that two risks agree within `tolerance`: the probability, and each finding's effect
 * (matched by channel; the same findings on both sides).
 */
export function assertSameRisk(actual, expected, tolerance) {
  const byChannel = (r) => [...r.findings].sort((a, b) => a.channel.localeCompare(b.channel));
  const [a, b] = [byChannel(actual), byChannel(expected)];
  assert.deepEqual(a.map((f) => f.channel), b.map((f) => f.channel));
  const worst = maxAbsDiff([actual.probability, ...a.map((f) => f.effect)], [expected.probability, ...b.map((f) => f.effect)]);
  assert.ok(worst <= tolerance, `largest risk difference ${worst} exceeds ${tolerance}`);
  return worst;
}

/**
 * A test could not run the part that needs `layer` ("webgpu", "chromium"), because of `why`. Under
 * CI (`CI=true`) or with `BEDSIDE_REQUIRE_<LAYER>=1` that fails the test; elsewhere the test is
 * marked skipped and the layer is appended to the file `BEDSIDE_SKIPPED` names, which `make test`
 * prints at its end. The rule of `bedside::test_layers` in Rust.
 */
export function layerUnavailable(t, layer, why) {
  const required = process.env.CI === "true" || process.env[`BEDSIDE_REQUIRE_${layer.toUpperCase()}`] === "1";
  assert.ok(!required, `${layer} layer required here but missing: ${why}`);
  if (process.env.BEDSIDE_SKIPPED) appendFileSync(process.env.BEDSIDE_SKIPPED, `${layer}: ${why}\n`);
  t.skip(why);
}

export function bundleFiles() {
  const files = {
    manifest: readFileSync(path.join(labBundleDir, "manifest.json"), "utf8"),
    weights: new Uint8Array(readFileSync(path.join(labBundleDir, "model.safetensors"))),
  };
  const tokenizer = path.join(labBundleDir, "tokenizer.json");
  if (existsSync(tokenizer)) files.tokenizer = new Uint8Array(readFileSync(tokenizer));
  return files;
}
