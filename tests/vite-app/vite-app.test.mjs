// The `npm pack` tarball installs into a fresh app, builds with Vite (the wasm and the worker
// emitted as assets) and runs in Node from the installed package; and the same app runs under
// Vite's dev server in Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { createServer } from "vite";
import { root, samples } from "../node/helpers.mjs";

/** A fresh app in a temporary directory with the `npm pack` tarball of pkg/ installed. */
function appDir(name) {
  const work = mkdtempSync(path.join(tmpdir(), `bedside-${name}-`));
  const tarball = execFileSync("npm", ["pack", path.join(root, "pkg"), "--pack-destination", work, "--silent"], { encoding: "utf8" }).trim().split("\n").pop();
  const dir = path.join(work, "app");
  cpSync(path.join(root, "tests/vite-app"), dir, { recursive: true, filter: (f) => !f.endsWith(".test.mjs") });
  execFileSync("npm", ["init", "-y"], { cwd: dir, stdio: "ignore" });
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", path.join(work, tarball)], { cwd: dir, stdio: "ignore" });
  return dir;
}

test("the npm pack tarball installs, builds with Vite and runs in Node", async () => {
  const app = appDir("vite");
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

test("under Vite's dev server the app runs in Chromium, with the README's optimizeDeps setting", async () => {
  const app = appDir("vite-dev");
  // the demo bundle, served from the app's public/ directory at /model/
  mkdirSync(path.join(app, "public"));
  symlinkSync(path.join(root, "models/demo"), path.join(app, "public/model"));
  const server = await createServer({ root: app, configFile: path.join(app, "vite.config.js"), logLevel: "error", server: { host: "127.0.0.1", port: 0 } });
  await server.listen();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-features=WebGPU"] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(server.resolvedUrls.local[0]);
    await page.waitForFunction(() => document.getElementById("out").textContent !== "loading…", null, { timeout: 120_000 });
    assert.deepEqual(errors, []);
    assert.match(await page.textContent("#out"), /^cpu: .*; worker same$/, "the model loaded and diagnosed, on the page and in its worker");
  } finally {
    await browser.close();
    await server.close();
  }
});
