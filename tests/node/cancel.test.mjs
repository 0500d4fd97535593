// Cancellation in wasm (the committed demo bundle, CPU): an aborted signal stops explain after the
// next token with the decoder's own ABORTED, and load and diagnose before they run; leaving the
// explain loop stops decoding too; after each, the model answers the next call exactly as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Bedside } from "../../pkg/bedside.js";
import { root, samples } from "./helpers.mjs";

const demo = path.join(root, "models/demo");

async function pieces(model, options, onPiece = () => {}) {
  const out = [];
  for await (const item of model.explain(samples[0], { maxTokens: 80, ...options })) {
    if (typeof item !== "string") break;
    out.push(item);
    if (onPiece(out) === "leave") break;
  }
  return out;
}

test("an aborted signal or a left loop stops explain; the model carries on", async () => {
  const model = await Bedside.load(demo, { backend: "cpu" });
  const whole = await pieces(model, {});
  assert.ok(whole.length >= 5, `the sample's answer streams in several pieces (${whole.length})`);

  const controller = new AbortController();
  const seen = [];
  await assert.rejects(
    pieces(model, { signal: controller.signal }, (out) => {
      seen.push(...out.slice(seen.length));
      if (out.length === 1) controller.abort();
    }),
    (e) => {
      assert.equal(e.code, "ABORTED");
      // the decoder's own error: it stopped, rather than running to the end unseen
      assert.equal(e.message, "explain stopped by the caller");
      return true;
    },
  );
  assert.deepEqual(seen, whole.slice(0, 1), "no piece after the abort");

  assert.deepEqual(await pieces(model, {}, () => "leave"), whole.slice(0, 1));
  assert.deepEqual(await pieces(model, {}), whole, "the next call gives the whole answer again");

  const aborted = AbortSignal.abort();
  await assert.rejects(model.diagnose(samples[0], { signal: aborted }), { code: "ABORTED" });
  await assert.rejects(model.recommend(samples[0], { signal: aborted }), { code: "ABORTED" });
  await assert.rejects(pieces(model, { signal: aborted }), { code: "ABORTED" });
  await assert.rejects(Bedside.load(demo, { backend: "cpu", signal: aborted }), { code: "ABORTED" });
  // aborted while the files come in: the load ends with ABORTED, not with a model
  const loading = new AbortController();
  const onProgress = ({ file }) => file === "model.safetensors" && loading.abort();
  await assert.rejects(Bedside.load(demo, { backend: "cpu", signal: loading.signal, onProgress }), { code: "ABORTED" });
  assert.ok((await model.diagnose(samples[0])).phenotypes.length > 0);
  model.dispose();
});
