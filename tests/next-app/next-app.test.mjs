// The `npm pack` tarball installs into a fresh Next.js app whose page is a client component;
// `next build` exports it statically, and the export runs in Chromium against the demo bundle:
// the page and its Web Worker give the same answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { appAnswer } from "../app-page.mjs";
import { root } from "../node/helpers.mjs";

test("the npm pack tarball builds in a Next.js client component and runs in Chromium", async () => {
  // inside the project (target/), so that Next.js and React resolve from its own pinned install
  // as an app's dependencies would: Turbopack compiles nothing outside the workspace root it
  // finds (the nearest lockfile), so neither a copy in /tmp nor symlinks to here would do
  const work = mkdtempSync(path.join(root, "target", "next-app-"));
  const tarball = execFileSync("npm", ["pack", path.join(root, "pkg"), "--pack-destination", work, "--silent"], { encoding: "utf8" }).trim().split("\n").pop();
  const app = path.join(work, "app");
  cpSync(path.join(root, "tests/next-app"), app, { recursive: true, filter: (f) => !f.endsWith(".test.mjs") });
  execFileSync("npm", ["init", "-y"], { cwd: app, stdio: "ignore" });
  execFileSync("npm", ["pkg", "set", "type=module"], { cwd: app, stdio: "ignore" });
  execFileSync("npm", ["install", "--offline", "--no-package-lock", "--no-audit", "--no-fund", path.join(work, tarball)], { cwd: app, stdio: "ignore" });
  execFileSync(path.join(root, "node_modules/.bin/next"), ["build"], { cwd: app, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
  const out = path.join(app, "out");
  const assets = readdirSync(path.join(out, "_next/static/media"), { recursive: true }).map(String);
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the wasm is an asset of the export: ${assets}`);
  try {
    const answer = await appAnswer(out);
    assert.equal(answer.backend, "cpu");
    assert.equal(answer.same, true, "the page and the worker give the same probabilities");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
