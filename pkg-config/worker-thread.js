// The Web Worker side of `bedside/worker`: runs a Bedside model off the main thread and answers
// the messages of `BedsideWorker`, which replaces this worker when its wasm instance dies.
import { Bedside } from "./bedside.js";

let model;
/** The calls in progress that a `cancel` message can stop, by id. */
const running = new Map();

function describe(m) {
  return { backend: m.backend, manifest: m.manifest, selfTestDifference: m.selfTestDifference, fallbackReason: m.fallbackReason, backendReason: m.backendReason };
}

self.onmessage = async ({ data }) => {
  const { id, method, args = [] } = data;
  if (method === "cancel") return running.get(args[0])?.abort();
  const reply = (message) => self.postMessage({ id, ...message });
  const controller = new AbortController();
  running.set(id, controller);
  // the options object of a call (its second argument, or a load's) gets this call's signal
  const [first, options = {}] = args;
  const signal = controller.signal;
  try {
    if (method === "load") {
      model?.dispose();
      const onProgress = options.progress ? (p) => reply({ progress: p }) : undefined;
      model = await Bedside.load(first, { ...options, onProgress, signal });
      reply({ result: describe(model) });
    } else if (method === "dispose") {
      model?.dispose();
      model = undefined;
      reply({ result: null });
    } else if (!model) {
      reply({ error: { code: "DISPOSED", message: "no model is loaded in this worker" } });
    } else if (method === "explain") {
      for await (const item of model.explain(first, { ...options, signal })) {
        reply(typeof item === "string" ? { piece: item } : { result: item });
      }
    } else if (method === "diagnose" || method === "recommend" || method === "risk") {
      reply({ result: await model[method](first, { ...options, signal }) });
    } else {
      reply({ error: { code: "BAD_OPTION", message: `unknown method ${method}` } });
    }
  } catch (e) {
    reply({ error: { code: e?.code ?? "INTERNAL", message: String(e?.message ?? e) } });
  } finally {
    running.delete(id);
  }
};
