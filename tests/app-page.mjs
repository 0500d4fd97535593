// Shared by the bundler tests (tests/webpack-app, tests/next-app): a built app's static files
// served on 127.0.0.1 with the demo bundle at /model/, opened in headless Chromium on the CPU.
import assert from "node:assert/strict";
import http from "node:http";
import { symlinkSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import sirv from "sirv";
import { root } from "./node/helpers.mjs";

/**
 * Serves `dir`, opens it and waits for the app to write JSON into `#out`; that JSON, once the
 * page raised no error. The apps write `{ backend, same, first }` (`same`: the page and its
 * Web Worker gave the same probabilities).
 */
export async function appAnswer(dir) {
  symlinkSync(path.join(root, "models/demo"), path.join(dir, "model"));
  const server = http.createServer(sirv(dir, { dev: true }));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-features=WebGPU"] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => document.getElementById("out")?.textContent.startsWith("{"), null, { timeout: 120_000 });
    assert.deepEqual(errors, []);
    return JSON.parse(await page.textContent("#out"));
  } finally {
    await browser.close();
    server.close();
  }
}
