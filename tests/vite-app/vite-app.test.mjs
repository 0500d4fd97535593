// The `npm pack` tarball installs into a fresh app, builds with Vite (the wasm and the worker
// emitted as assets) and runs in Node from the installed package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, samples } from "../node/helpers.mjs";

test("the npm pack tarball installs, builds with Vite and runs in Node", async () => {
  const work = mkdtempSync(path.join(tmpdir(), "bedside-vite-"));
  const tarball = execFileSync("npm", ["pack", path.join(root, "pkg"), "--pack-destination", work, "--silent"], { encoding: "utf8" }).trim().split("\n").pop();
  const app = path.join(work, "app");
  cpSync(path.join(root, "tests/vite-app"), app, { recursive: true, filter: (f) => !f.endsWith(".test.mjs") });
  execFileSync("npm", ["init", "-y"], { cwd: app, stdio: "ignore" });
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", path.join(work, tarball)], { cwd: app, stdio: "ignore" });
  execFileSync(path.join(root, "node_modules/.bin/vite"), ["build", "--logLevel", "error"], { cwd: app, stdio: "inherit" });
  const assets = readdirSync(path.join(app, "dist/assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `no wasm in ${assets}`);
  assert.ok(assets.some((f) => f.endsWith(".js")), `no script in ${assets}`);
  const wasm = assets.find((f) => f.endsWith(".wasm"));
  // bedside/worker's worker bundled as its own chunk (with the package it imports)
  const worker = assets.find((f) => /^worker.*\.js$/.test(f));
  assert.ok(worker, `no worker chunk in ${assets}`);
  const chunk = readFileSync(path.join(app, "dist/assets", worker), "utf8");
  assert.match(chunk, /onmessage/);
  assert.ok(chunk.includes(wasm) && !/^import /m.test(chunk), "the worker chunk carries the package, not an import of it");
  assert.deepEqual(readFileSync(path.join(app, "dist/assets", wasm)), readFileSync(path.join(root, "pkg/wasm/bedside_bg.wasm")));
  // the installed package in Node, on the committed demo bundle
  const script = `
    import { Bedside } from "bedside";
    const model = await Bedside.load(${JSON.stringify(path.join(root, "models/demo"))}, { backend: "cpu" });
    const record = ${JSON.stringify(samples[0])};
    const d = await model.diagnose(record);
    const r = await model.recommend(record);
    console.log(JSON.stringify({ backend: model.backend, phenotypes: d.phenotypes.length, drugs: r.medications.length }));`;
  const result = JSON.parse(execFileSync("node", ["--input-type=module", "-e", script], { cwd: app, encoding: "utf8" }).trim());
  assert.deepEqual(result.backend, "cpu");
  assert.equal(result.phenotypes, 25);
  assert.ok(result.drugs > 0);
});
