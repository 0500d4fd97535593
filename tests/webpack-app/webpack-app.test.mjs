// The `npm pack` tarball installs into a fresh app and bundles with webpack 5 for the browser (as
// Next.js does for a client component); the bundle runs in Chromium against the demo bundle and
// gives the same answer on the page and in its Web Worker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { appAnswer } from "../app-page.mjs";
import { root } from "../node/helpers.mjs";

test("the npm pack tarball bundles with webpack 5 and runs in Chromium", async () => {
  const work = mkdtempSync(path.join(tmpdir(), "bedside-webpack-"));
  const tarball = execFileSync("npm", ["pack", path.join(root, "pkg"), "--pack-destination", work, "--silent"], { encoding: "utf8" }).trim().split("\n").pop();
  const app = path.join(work, "app");
  cpSync(path.join(root, "tests/webpack-app"), app, { recursive: true, filter: (f) => !f.endsWith(".test.mjs") });
  execFileSync("npm", ["init", "-y"], { cwd: app, stdio: "ignore" });
  execFileSync("npm", ["pkg", "set", "type=module"], { cwd: app, stdio: "ignore" });
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", path.join(work, tarball)], { cwd: app, stdio: "ignore" });
  execFileSync(path.join(root, "node_modules/.bin/webpack"), ["--config", "webpack.config.js"], { cwd: app, stdio: ["ignore", "ignore", "inherit"] });
  const dist = path.join(app, "dist");
  const files = readdirSync(dist);
  const wasm = files.find((f) => f.endsWith(".wasm"));
  assert.ok(wasm, `no wasm asset in ${files}`);
  assert.deepEqual(readFileSync(path.join(dist, wasm)), readFileSync(path.join(root, "pkg/wasm/bedside_bg.wasm")));
  assert.ok(files.filter((f) => f.endsWith(".js")).length >= 2, `the worker is a chunk of its own: ${files}`);
  assert.doesNotMatch(readFileSync(path.join(dist, "main.js"), "utf8"), /require\("fs"\)|node:fs\/promises"\)\)\.then/, "no Node module bundled");
  // served with the demo bundle next to it
  cpSync(path.join(app, "index.html"), path.join(dist, "index.html"));
  const out = await appAnswer(dist);
  assert.equal(out.backend, "cpu");
  assert.equal(out.same, true, "the page and the worker give the same probabilities");
});
