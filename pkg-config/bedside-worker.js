// `bedside/worker`: the Bedside API run in a Web Worker, so that decoding on the CPU never blocks
// the page. The same calls and results as `Bedside`; records and results cross by structured
// clone (nothing leaves the browser).
import { BedsideError } from "./bedside.js";

export class BedsideWorker {
  #worker;
  #next = 0;
  #pending = new Map();
  backend;
  manifest;
  selfTestDifference;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => this.#pending.get(data.id)?.(data);
    worker.onerror = (event) => {
      const error = new BedsideError("WORKER_FAILED", `the worker failed: ${event.message ?? "unknown error"}`);
      for (const handler of this.#pending.values()) handler({ error });
      this.#pending.clear();
    };
  }

  /** As `Bedside.load`; `source` may be a relative URL (resolved against the page). */
  static async load(source, options = {}) {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    const model = new BedsideWorker(worker);
    const { onProgress, ...rest } = options;
    const resolved = typeof source === "string" || source instanceof URL ? new URL(source, globalThis.location?.href).href : source;
    try {
      Object.assign(model, await model.#call("load", [resolved, { ...rest, progress: !!onProgress }], { onProgress }));
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return model;
  }

  #call(method, args, { onProgress, onPiece } = {}) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (message) => {
        if (message.progress) return onProgress?.(message.progress);
        if (message.piece !== undefined) return onPiece?.(message.piece);
        this.#pending.delete(id);
        if (message.error) reject(message.error instanceof BedsideError ? message.error : new BedsideError(message.error.code, message.error.message));
        else resolve(message.result);
      });
      this.#worker.postMessage({ id, method, args });
    });
  }

  diagnose(record) {
    return this.#call("diagnose", [record]);
  }

  recommend(record) {
    return this.#call("recommend", [record]);
  }

  /** Text pieces as they are decoded, then the whole explanation (as `Bedside.explain`). */
  async *explain(record, options = {}) {
    const pieces = [];
    let wake;
    let done = false;
    let result;
    let failure;
    this.#call("explain", [record, options], { onPiece: (p) => { pieces.push(p); wake?.(); } })
      .then((r) => { result = r; }, (e) => { failure = e; })
      .finally(() => { done = true; wake?.(); });
    while (true) {
      while (pieces.length) yield pieces.shift();
      if (done) break;
      await new Promise((resolve) => { wake = resolve; });
      wake = undefined;
    }
    if (failure) throw failure;
    yield { type: "explanation", ...result };
  }

  /** Frees the model and ends the worker. */
  dispose() {
    this.#worker.postMessage({ id: this.#next++, method: "dispose" });
    this.#worker.terminate();
  }
}

export default BedsideWorker;
