// Cold start in headless Chromium, two builds of the package side by side: each run opens a fresh
// browser (a new profile: no HTTP or code cache), imports the package and times
// `Bedside.load(bundle, { backend: "cpu", cache: false })` — the module's instantiation included,
// as a page meets it — and the first `diagnose`. The two packages take turns, the order swapped
// every run, so that the machine's drift falls on both.
// --mbps N throttles the page's network (Chromium's emulation: N Mbit/s down, 20 ms latency; the
// files go uncompressed, as this server sends them) to a network where the downloads count.
//   node bench/cold-start.mjs --a DIR --b DIR [--bundle models/demo] [--record FILE] [--runs 7] [--mbps N]
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import sirv from "sirv";
import { timing } from "./measure.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string" },
    bundle: { type: "string", default: path.join(root, "models/demo") },
    record: { type: "string", default: path.join(root, "target/demo/samples/samples.json") },
    runs: { type: "string", default: "7" },
    mbps: { type: "string" },
  },
});
const records = JSON.parse(readFileSync(values.record, "utf8"));
const record = Array.isArray(records) ? records[0] : records;
const options = { dev: true };
const mounts = { a: sirv(path.resolve(values.a), options), b: sirv(path.resolve(values.b), options), model: sirv(path.resolve(values.bundle), options) };
const server = http.createServer((req, res) => {
  const [, mount] = req.url.split("/");
  if (!mounts[mount]) return res.writeHead(200, { "Content-Type": "text/html" }).end("<!doctype html><title>cold start</title>");
  req.url = req.url.slice(mount.length + 1);
  mounts[mount](req, res, () => res.writeHead(404).end());
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

async function once(variant) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-features=WebGPU"] });
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    if (values.mbps) {
      const cdp = await page.context().newCDPSession(page);
      const bytesPerSecond = (Number(values.mbps) * 1e6) / 8;
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: bytesPerSecond, uploadThroughput: bytesPerSecond });
    }
    return await page.evaluate(async ({ which, patient }) => {
      const t0 = performance.now();
      const { Bedside } = await import(`/${which}/bedside.js`);
      const model = await Bedside.load(new URL("/model/", location.href), { backend: "cpu", cache: false });
      const t1 = performance.now();
      await model.diagnose(patient);
      const t2 = performance.now();
      return { load_ms: t1 - t0, first_diagnose_ms: t2 - t1, total_ms: t2 - t0 };
    }, { which: variant, patient: record });
  } finally {
    await browser.close();
  }
}

const results = { a: [], b: [] };
for (let run = 0; run < Number(values.runs); run++) {
  for (const variant of run % 2 ? ["b", "a"] : ["a", "b"]) results[variant].push(await once(variant));
}
server.close();
for (const variant of ["a", "b"]) {
  const of = (key) => timing(results[variant].map((r) => r[key]));
  const summary = Object.fromEntries(["load_ms", "first_diagnose_ms", "total_ms"].map((k) => [k, of(k)]));
  console.log(`${variant} (${values[variant]}): ${JSON.stringify(summary)}`);
}
