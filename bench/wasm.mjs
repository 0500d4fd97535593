// The wasm package in Node on one backend, for `make bench`:
//   node bench/wasm.mjs --backend cpu|webgpu --record FILE --out FILE [--repeats 15] [--tokens 128] [--ort DIR]
// WebGPU in Node comes from Dawn (npm `webgpu`) over a CPU Vulkan driver (VK_ICD_FILENAMES, as in
// `make test`). One backend per process, so that the cold start is cold. With --ort DIR (the
// export of bench/onnx_export.py) the CPU run also measures the onnxruntime-web peer on its wasm
// backend, in the same process after bedside, and bedside's encoder + head and greedy decoding
// on the peer's own inputs.
import { readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { create, globals } from "webgpu";
import { BedsideEngine } from "../pkg/wasm/bedside.js";
import { Bedside } from "../pkg/bedside.js";
import { measure } from "./measure.js";
import { countWebGPU } from "./webgpu-count.js";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "cpu" },
    record: { type: "string" },
    bundle: { type: "string", default: new URL("../models/demo", import.meta.url).pathname },
    repeats: { type: "string", default: "15" },
    tokens: { type: "string", default: "128" },
    out: { type: "string" },
    ort: { type: "string" },
  },
});
if (values.backend === "webgpu") {
  Object.assign(globalThis, globals);
  globalThis.navigator ??= {};
  globalThis.navigator.gpu = create([]);
  globalThis.Window ??= class Window {};
}
const count = values.backend === "webgpu" ? countWebGPU(globals) : null;
const record = JSON.parse(readFileSync(values.record, "utf8"));
// the model's parts on the peer's own inputs, on the same backend (with --ort)
const bundleFile = (name) => readFile(path.join(values.bundle, name)).catch(() => undefined);
const parts = values.ort ? {
  inputs: JSON.parse(readFileSync(path.join(values.ort, "inputs.json"), "utf8")),
  engine: async () => BedsideEngine.load(
    new TextDecoder().decode(await bundleFile("manifest.json")), await bundleFile("model.safetensors"),
    await bundleFile("tokenizer.json"), await bundleFile("medrec.safetensors"), values.backend, undefined),
} : null;
const result = await measure({
  Bedside,
  parts,
  wasm: readFileSync(new URL("../pkg/wasm/bedside_bg.wasm", import.meta.url)),
  source: values.bundle,
  backend: values.backend,
  record: Array.isArray(record) ? record[0] : record,
  repeats: Number(values.repeats),
  tokens: Number(values.tokens),
  count,
});
result.runtime = `node ${process.version}`;
result.peak_rss_mib = process.resourceUsage().maxRSS / 1024;
if (values.ort && values.backend === "cpu") {
  const { measureOrt } = await import("./ort-measure.js");
  const ort = await import(new URL("../target/ortweb/node_modules/onnxruntime-web/dist/ort.node.min.mjs", import.meta.url));
  const fetchBytes = async (name) => new Uint8Array(await readFile(path.join(values.ort, name)));
  result.ort = await measureOrt({ ort, fetchBytes, provider: "wasm", repeats: Number(values.repeats), tokens: Number(values.tokens) });
  console.log(`onnxruntime-web in Node (wasm): encode ${result.ort.encode_b1.median_ms.toFixed(2)} ms, decode ${result.ort.decode.tokens_per_s.toFixed(1)} tokens/s`);
}
writeFileSync(values.out, JSON.stringify(result, null, 2));
console.log(`wasm in Node (${result.backend}): diagnose ${result.diagnose_b1.median_ms.toFixed(2)} ms, explain ${result.explain.tokens_per_s.toFixed(1)} tokens/s`);
if (result.parts) console.log(`  encoder + head ${result.parts.encode_b1.median_ms.toFixed(2)} ms, greedy decode ${result.parts.decode.tokens_per_s.toFixed(1)} tokens/s`);
process.exit(0);
