// The bad-input catalogue (tests/catalogue/) against the wasm package in Node on the CPU: each
// record through diagnose (and recommend), each damaged bundle through load. Refused inputs must
// give their stable code and name the field or file at fault; a panic would show as WASM_PANIC.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Bedside } from "../../pkg/bedside.js";
import { cases, demoFiles, edited, mismatch, refusedForNoVisits } from "../catalogue/catalogue.mjs";

const filesOf = (f) => ({ manifest: f["manifest.json"], weights: f["model.safetensors"], tokenizer: f["tokenizer.json"], medrec: f["medrec.safetensors"] });

/** Runs every case of `file` through `run` (its notices when accepted); the cases that went wrong. */
async function check(file, run) {
  const all = cases(file);
  const failures = [];
  for (const c of all) {
    let outcome;
    try {
      outcome = { notices: await run(c) };
    } catch (e) {
      outcome = { code: e.code ?? `not a BedsideError: ${e}`, message: String(e.message) };
    }
    const wrong = mismatch(c, outcome);
    if (wrong) failures.push(`${c.name}: ${wrong}`);
  }
  console.log(`# wasm ${file}: ${all.length} cases, ${all.length - failures.length} as expected`);
  return failures;
}

test("every catalogued record is refused with its code or accepted with its notice", async () => {
  const model = await Bedside.load(filesOf(demoFiles()), { backend: "cpu" });
  const failures = await check("records.jsonl", async (c) => {
    const diagnosis = await model.diagnose(c.input);
    await model.recommend(c.input).catch((e) => {
      // only a record without visits may be refused; any other refusal is a failure
      if (!refusedForNoVisits(e)) throw e;
    });
    return diagnosis.notices.map((n) => n.kind);
  });
  assert.deepEqual(failures, []);
  // still the same model after all of them
  assert.equal((await model.diagnose({ id: "after" })).phenotypes.length, 25);
  model.dispose();
});

test("every catalogued bundle damage is refused before use", async () => {
  const demo = demoFiles();
  const failures = await check("bundles.jsonl", async (c) => {
    (await Bedside.load(filesOf(edited(demo, c.edits)), { backend: "cpu" })).dispose();
    return [];
  });
  assert.deepEqual(failures, []);
});
