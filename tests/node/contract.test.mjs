// The package's contract with the engine, checked against what the engine really returns:
// bedside.d.ts's result types describe the JSON the wasm façade gives (every field the engine
// writes is declared, every required field is written: the answers of the committed bundles are
// type-checked as object literals, which TypeScript checks for excess and missing fields), and
// the error codes have one source (ERROR_CODES) that the engine's codes, the types and the demo
// page's messages agree with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Bedside, ERROR_CODES } from "../../pkg/bedside.js";
import { root, samples } from "./helpers.mjs";

const read = (file) => readFileSync(path.join(root, file), "utf8");

test("every error code comes from ERROR_CODES, the engine's among them", () => {
  const rust = [...read("src/error.rs").matchAll(/=> "([A-Z_]+)",/g)].map((m) => m[1]);
  assert.ok(rust.length >= 8, `read ${rust.length} codes from src/error.rs`);
  for (const code of rust) assert.ok(ERROR_CODES.includes(code), `the engine's ${code} is not in ERROR_CODES`);
  const union = read("pkg-config/bedside.d.ts").match(/export type ErrorCode =([\s\S]*?);\n/)[1];
  const typed = [...union.matchAll(/\| "([A-Z_]+)"/g)].map((m) => m[1]);
  assert.deepEqual([...typed].sort(), [...ERROR_CODES].sort(), "bedside.d.ts's ErrorCode and ERROR_CODES differ");
  const page = read("www/app.js").match(/const PLAIN = \{([^}]*)\}/)[1];
  for (const [, code] of page.matchAll(/^\s*([A-Z_]+):/gm)) assert.ok(ERROR_CODES.includes(code), `the page explains ${code}, which no error carries`);
  const thrown = new Set();
  for (const file of ["bedside.js", "errors.js", "instance.js", "backend.js", "download.js", "cache.js", "fhir.js", "worker-page.js"]) {
    for (const [, code] of read(`pkg-config/${file}`).matchAll(/new BedsideError\(\s*"([A-Z_]+)"/g)) thrown.add(code);
  }
  for (const code of thrown) assert.ok(ERROR_CODES.includes(code), `the package throws ${code}, which is not in ERROR_CODES`);
});

test("bedside.d.ts declares exactly what the engine returns", async () => {
  const clinical = await Bedside.load(path.join(root, "models/demo"), { backend: "cpu" });
  const mortality = await Bedside.load(path.join(root, "models/mortality"), { backend: "cpu" });
  const fhir = JSON.parse(read("tests/fixtures/fhir/real-chart-bundle.json"));
  const child = { id: "child", demographics: { age: 6 }, observations: [{ channel: "heart_rate", hours: 1, value: 120 }] };
  const visits = { id: "visits", observations: [], visits: [{ diagnoses: ["icd9:4280"], procedures: [], medications: ["C03C"] }, { diagnoses: ["icd9:5849"], procedures: [], medications: [] }] };
  const records = [...samples.slice(0, 3), fhir, child, visits];
  const answers = [];
  for (const [i, record] of records.entries()) {
    answers.push([`diagnosis${i}`, "Diagnosis", await clinical.diagnose(record)]);
    // a record without visits has nothing to recommend from (RECORD_INVALID)
    const recommendation = await clinical.recommend(record).catch((e) => assert.equal(e.code, "RECORD_INVALID"));
    if (recommendation) answers.push([`recommendation${i}`, "Recommendation", recommendation]);
    answers.push([`risk${i}`, "Risk", await mortality.risk(record)]);
  }
  for (const [i, record] of records.slice(0, 2).entries()) {
    let last;
    for await (const item of clinical.explain(record, { maxTokens: 48 })) last = item;
    answers.push([`explanation${i}`, "Explanation", last]);
  }
  answers.push(["card", "ModelCard", mortality.card]);
  assert.ok(answers.some(([, type]) => type === "Recommendation"), "no record gave a recommendation");
  clinical.dispose();
  mortality.dispose();
  const types = [...new Set(answers.map(([, type]) => type))].sort();
  const lines = [
    "// Written by tests/node/contract.test.mjs: the engine's answers as typed literals.",
    `import type { ${types.join(", ")} } from "bedside";`,
    ...answers.map(([name, type, value]) => `export const ${name}: ${type} = ${JSON.stringify(value)};`),
  ];
  const dir = path.join(root, "target/contract");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "answers.ts"), lines.join("\n") + "\n");
  const config = JSON.parse(read("tests/types/tsconfig.json"));
  config.compilerOptions.paths = { bedside: [path.join(root, "pkg/bedside.d.ts")] };
  config.compilerOptions.exactOptionalPropertyTypes = true;
  config.files = ["answers.ts"];
  writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(config));
  try {
    execFileSync(path.join(root, "node_modules/.bin/tsc"), ["-p", path.join(dir, "tsconfig.json")], { encoding: "utf8" });
  } catch (e) {
    assert.fail(`bedside.d.ts does not describe the engine's answers:\n${e.stdout}`);
  }
});
