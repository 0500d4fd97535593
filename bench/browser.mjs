// The npm package in headless Chromium (Debian's chromium, driven by playwright-core), for
// `make bench`: each backend in a fresh browser (WebGPU on whatever adapter Chromium finds --
// SwiftShader on a machine without a GPU -- and the CPU with WebGPU switched off), measuring the
// cold start and the warm calls with bench/measure.js. With --ort, the onnxruntime-web peer runs
// in the same browser after bedside (bench/ort-page.html): WebGPU against bedside's WebGPU, wasm
// against bedside's CPU backend.
// --backends picks the runs (webgpu,cpu) and --gpu launches Chromium on the machine's GPU
// (Vulkan; bench/gpu.sh) instead of whatever adapter it finds.
//   node bench/browser.mjs --record FILE --out FILE [--repeats 15] [--tokens 128] [--ort]
//     [--backends webgpu,cpu] [--gpu]
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import sirv from "sirv";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    record: { type: "string" },
    repeats: { type: "string", default: "15" },
    tokens: { type: "string", default: "128" },
    out: { type: "string" },
    ort: { type: "boolean", default: false },
    backends: { type: "string", default: "webgpu,cpu" },
    gpu: { type: "boolean", default: false },
  },
});
const record = JSON.parse(readFileSync(values.record, "utf8"));
const serve = sirv(root, { dev: true });
const server = http.createServer((req, res) => serve(req, res, () => { res.statusCode = 404; res.end(); }));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const baseArgs = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const gpuArgs = ["--enable-features=Vulkan", "--use-angle=vulkan", "--use-vulkan", "--ignore-gpu-blocklist", "--enable-gpu"];
const allRuns = {
  webgpu: ["--enable-unsafe-webgpu", ...(values.gpu ? gpuArgs : [])],
  cpu: ["--disable-features=WebGPU"],
};
const runs = Object.fromEntries(values.backends.split(",").map((b) => {
  if (!allRuns[b]) throw new Error(`--backends: unknown backend ${b} (webgpu, cpu)`);
  return [b, allRuns[b]];
}));
const ortProvider = { webgpu: "webgpu", cpu: "wasm" };
const results = {};
try {
  for (const [backend, args] of Object.entries(runs)) {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: [...baseArgs, ...args] });
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/bench/page.html`);
      await page.waitForFunction(() => window.benchReady === true);
      const options = { backend, record: Array.isArray(record) ? record[0] : record, repeats: Number(values.repeats), tokens: Number(values.tokens), parts: values.ort };
      const result = await page.evaluate((o) => window.runBench(o), options);
      result.browser = `chromium ${browser.version()}`;
      results[backend] = result;
      console.log(`chromium ${backend}: cold start ${JSON.stringify(result.cold_start)}; diagnose ${result.diagnose_b1.median_ms.toFixed(2)} ms; explain ${result.explain.tokens_per_s.toFixed(1)} tokens/s`);
      if (result.parts) console.log(`chromium ${backend}: encoder + head ${result.parts.encode_b1.median_ms.toFixed(2)} ms; greedy decode ${result.parts.decode.tokens_per_s.toFixed(1)} tokens/s`);
      if (values.ort) {
        const ortPage = await browser.newPage();
        await ortPage.goto(`${origin}/bench/ort-page.html`);
        await ortPage.waitForFunction(() => window.ortReady === true);
        const provider = ortProvider[backend];
        try {
          result.ort = await ortPage.evaluate((o) => window.runOrt(o), { provider, repeats: options.repeats, tokens: options.tokens });
          console.log(`chromium onnxruntime-web ${provider}: encode ${result.ort.encode_b1.median_ms.toFixed(2)} ms; decode ${result.ort.decode.tokens_per_s.toFixed(1)} tokens/s`);
        } catch (e) {
          // bedside's figures stand; the report says the peer failed
          result.ort = { provider, error: String(e.message ?? e) };
          console.error(`chromium onnxruntime-web ${provider} failed: ${result.ort.error}`);
        }
      }
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
writeFileSync(values.out, JSON.stringify(results, null, 2));
