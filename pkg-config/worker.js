// The Web Worker side of `bedside/worker`: runs a Bedside model off the main thread and answers
// the messages of `BedsideWorker`. When the wasm instance dies (a panic or an out-of-memory
// trap), the next call finds the model recreated from the same bundle.
import { Bedside } from "./bedside.js";

let model;
let loadArgs;

async function recreate(code) {
  model = undefined;
  if (!loadArgs) return;
  // after a lost WebGPU device this instance has only the CPU left ("auto" picks it)
  const [source, options] = loadArgs;
  const backend = code === "WEBGPU_LOST" ? "auto" : options.backend;
  model = await Bedside.load(source, { ...options, backend }).catch(() => undefined);
}

function describe(m) {
  return { backend: m.backend, manifest: m.manifest, selfTestDifference: m.selfTestDifference };
}

self.onmessage = async ({ data }) => {
  const { id, method, args = [] } = data;
  const reply = (message) => self.postMessage({ id, ...message });
  try {
    if (method === "load") {
      model?.dispose();
      const [source, options = {}] = args;
      const onProgress = options.progress ? (p) => reply({ progress: p }) : undefined;
      loadArgs = [source, { ...options, onProgress }];
      model = await Bedside.load(...loadArgs);
      reply({ result: describe(model) });
    } else if (method === "dispose") {
      model?.dispose();
      model = loadArgs = undefined;
      reply({ result: null });
    } else if (!model) {
      reply({ error: { code: "DISPOSED", message: "no model is loaded in this worker" } });
    } else if (method === "explain") {
      for await (const item of model.explain(...args)) {
        reply(typeof item === "string" ? { piece: item } : { result: item });
      }
    } else if (method === "diagnose" || method === "recommend") {
      reply({ result: await model[method](...args) });
    } else {
      reply({ error: { code: "BAD_OPTION", message: `unknown method ${method}` } });
    }
  } catch (e) {
    const fatal = e?.code === "WASM_PANIC" || e?.code === "WEBGPU_LOST";
    if (fatal) await recreate(e.code);
    reply({ error: { code: e?.code ?? "INTERNAL", message: String(e?.message ?? e), recreated: fatal && !!model } });
  }
};
