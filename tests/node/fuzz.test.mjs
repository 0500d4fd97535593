// The short fuzz pass in wasm (Node, CPU): the catalogue's record inputs mutated byte-wise
// (deterministic seed) through diagnose. Errors must be BedsideErrors with a code; a panic inside
// wasm would surface as WASM_PANIC and fail the test (with the input printed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Bedside } from "../../pkg/bedside.js";
import { labBundleDir } from "./helpers.mjs";
import { cases } from "../catalogue/catalogue.mjs";

const RUNS = 20_000;

// mulberry32: a small seeded generator, so a failure reproduces
function generator(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(random, seeds) {
  const pick = (n) => Math.floor(random() * n);
  const interesting = '\0\xff"{}[],:-.e09\\ntu';
  let data = seeds[pick(seeds.length)];
  for (let k = 1 + pick(4); k > 0; k--) {
    const at = pick(data.length + 1);
    const op = pick(5);
    if (op === 0) data = data.slice(0, at) + interesting[pick(interesting.length)] + data.slice(at + 1);
    else if (op === 1) data = data.slice(0, at) + data.slice(at + 1 + pick(16));
    else if (op === 2) data = data.slice(0, at) + data.slice(at, at + 1 + pick(16)) + data.slice(at);
    else if (op === 3) {
      const other = seeds[pick(seeds.length)];
      const from = pick(other.length);
      data = data.slice(0, at) + other.slice(from, from + 1 + pick(64)) + data.slice(at);
    } else data = data.slice(0, at);
  }
  return data;
}

test(`${RUNS} mutated records through wasm diagnose: coded errors, no panic`, async () => {
  const model = await Bedside.load(labBundleDir, { backend: "cpu" });
  const seeds = cases("records.jsonl").map((c) => c.input);
  const random = generator(0x62656473);
  const codes = new Map();
  for (let i = 0; i < RUNS; i++) {
    const input = mutate(random, seeds);
    try {
      await model.diagnose(input);
      codes.set("accepted", (codes.get("accepted") ?? 0) + 1);
    } catch (e) {
      assert.ok(e.code && e.code !== "WASM_PANIC" && e.code !== "INTERNAL", `input ${i} gave ${e.code}: ${e.message}\n${JSON.stringify(input)}`);
      codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    }
  }
  console.log(`# wasm fuzz: ${RUNS} inputs → ${JSON.stringify(Object.fromEntries(codes))}`);
  model.dispose();
});
