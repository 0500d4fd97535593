// The Web Worker side of `bedside/worker`: runs a Bedside model off the main thread and answers
// the messages of `BedsideWorker`, which replaces this worker when its wasm instance dies.
import { Bedside } from "./bedside.js";

let model;

function describe(m) {
  return { backend: m.backend, manifest: m.manifest, selfTestDifference: m.selfTestDifference, fallbackReason: m.fallbackReason };
}

self.onmessage = async ({ data }) => {
  const { id, method, args = [] } = data;
  const reply = (message) => self.postMessage({ id, ...message });
  try {
    if (method === "load") {
      model?.dispose();
      const [source, options = {}] = args;
      const onProgress = options.progress ? (p) => reply({ progress: p }) : undefined;
      model = await Bedside.load(source, { ...options, onProgress });
      reply({ result: describe(model) });
    } else if (method === "dispose") {
      model?.dispose();
      model = undefined;
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
    reply({ error: { code: e?.code ?? "INTERNAL", message: String(e?.message ?? e) } });
  }
};
