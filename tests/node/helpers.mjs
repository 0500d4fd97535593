// Shared by the Node tests: where the bundle, the samples and the native CLI are, and how two
// diagnoses are compared.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../../", import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
export const bundleDir = process.env.BEDSIDE_BUNDLE ?? path.join(root, "target/demo/model");
export const samples = JSON.parse(readFileSync(path.join(root, "target/demo/samples/samples.json"), "utf8"));
export const train = process.env.BEDSIDE_TRAIN ?? path.join(target, "debug/bedside-train");

/** What the native CLI predicts for a record. */
export function nativePredict(record, backend = "cpu", bundle = bundleDir, extra = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "bedside-"));
  const file = path.join(dir, "record.json");
  writeFileSync(file, JSON.stringify(record));
  const out = execFileSync(train, ["predict", "--bundle", bundle, "--record", file, "--backend", backend, ...extra], {
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/** Asserts that two diagnoses give every phenotype the same probability within `tolerance`. */
export function assertSameProbabilities(actual, expected, tolerance) {
  const byName = new Map(expected.phenotypes.map((p) => [p.name, p.probability]));
  assert.equal(actual.phenotypes.length, byName.size);
  let worst = 0;
  for (const p of actual.phenotypes) {
    assert.ok(byName.has(p.name), `unexpected phenotype ${p.name}`);
    worst = Math.max(worst, Math.abs(p.probability - byName.get(p.name)));
  }
  assert.ok(worst <= tolerance, `largest probability difference ${worst} exceeds ${tolerance}`);
  return worst;
}

export function bundleFiles() {
  const files = {
    manifest: readFileSync(path.join(bundleDir, "manifest.json"), "utf8"),
    weights: new Uint8Array(readFileSync(path.join(bundleDir, "model.safetensors"))),
  };
  const tokenizer = path.join(bundleDir, "tokenizer.json");
  if (existsSync(tokenizer)) files.tokenizer = new Uint8Array(readFileSync(tokenizer));
  return files;
}
