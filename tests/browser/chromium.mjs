// Headless Chromium (Debian's chromium, driven by playwright-core) for the browser tests, with
// every request watched: what a page may ask for is the test's to say, and any other request
// fails the test when the browser closes.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const baseArgs = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/**
 * Chromium with every request of every context it opens watched (pages, workers and, where
 * Chromium reports them to the context, service workers): only URLs `allowed(url)` accepts, and
 * data:/blob: URLs; `close()` fails the test on any other.
 */
export async function launchWatched(args, allowed) {
  const browser = await chromium.launch({ executablePath, headless: true, args: [...baseArgs, ...args] });
  const foreign = [];
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...options) => {
    const context = await newContext(...options);
    context.on("request", (request) => {
      const url = request.url();
      if (!allowed(url) && !/^(data|blob):/.test(url)) foreign.push(url);
    });
    return context;
  };
  browser.newPage = async (...options) => (await browser.newContext(...options)).newPage();
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    assert.deepEqual(foreign, [], "requests outside the origins the test allows");
  };
  return browser;
}
