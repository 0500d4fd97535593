// A wasm trap (a `WebAssembly.RuntimeError`: a bug, or an allocator that ran out) kills the
// instance it happens in. The call that hit it fails with WASM_PANIC, models and tokenizers of
// that instance say so instead of touching its torn memory, and the next load replaces the
// instance with a fresh one that gives the same numbers. Its own file: the trap is per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import init from "../../pkg/wasm/bedside.js";
import { Bedside, Tokenizer } from "../../pkg/bedside.js";
import { assertSameProbabilities, labBundleDir, root, samples } from "./helpers.mjs";
import path from "node:path";

test("a trap fails the call, and the next load starts a fresh instance with the same numbers", async () => {
  const record = samples[0];
  const model = await Bedside.load(labBundleDir, { backend: "cpu" });
  const tokenizer = await Tokenizer.load(path.join(root, "models/demo/tokenizer.json"));
  const before = await model.diagnose(record);
  const ids = tokenizer.encode("Lactate 4.2 mmol/L");
  // the instance's memory torn, as a trap leaves it: the next call into it traps. A synchronous
  // call meets it: where an asynchronous one meets it depends on the module's layout, and a trap
  // inside a promise's executor (wasm-bindgen's futures) also leaves that promise rejected with
  // no one to handle it, which Node reports against the test
  const exports = await init(); // the instance the package runs in
  new Uint8Array(exports.memory.buffer).fill(0);
  assert.throws(() => tokenizer.encode("Lactate 4.2 mmol/L"), (e) => {
    console.log(`# the trap: ${e.message}`);
    return e.code === "WASM_PANIC" && e.cause instanceof WebAssembly.RuntimeError;
  });
  // what the dead instance made is refused, not run on its torn memory
  await assert.rejects(model.diagnose(record), (e) => e.code === "WASM_PANIC" && /load the model again/.test(e.message));
  assert.throws(() => tokenizer.encode("x"), (e) => e.code === "WASM_PANIC" && /load the tokenizer again/.test(e.message));
  assert.equal(model.backend, "disposed");
  model.dispose();
  tokenizer.dispose();
  // a fresh instance: the same answers
  const fresh = await Bedside.load(labBundleDir, { backend: "cpu" });
  assertSameProbabilities(await fresh.diagnose(record), before, 0);
  const again = await Tokenizer.load(path.join(root, "models/demo/tokenizer.json"));
  assert.deepEqual(again.encode("Lactate 4.2 mmol/L"), ids);
  fresh.dispose();
  again.dispose();
});
