// `bedside/worker`: the Bedside API run in a Web Worker, so that decoding on the CPU never blocks
// the page. The same calls and results as `Bedside`; records and results cross by structured
// clone (nothing leaves the browser).
import { Bedside, BedsideError } from "./bedside.js";

// A worker whose wasm instance died (a trap) or lost its GPU device is replaced by a fresh one
// that loads the same bundle: a wasm instance cannot be restarted in place.
const FATAL = new Set(["WASM_PANIC", "WEBGPU_LOST"]);

export class BedsideWorker {
  #url;
  #worker;
  #next = 0;
  #pending = new Map();
  #loadArgs;
  #restarting;
  backend;
  manifest;
  selfTestDifference;
  fallbackReason;
  /** How many times the worker was replaced after its wasm instance died or its GPU was lost. */
  restarts = 0;

  constructor(url) {
    this.#url = url;
    this.#spawn();
  }

  #spawn() {
    // the literal `new Worker(new URL(...))` is what bundlers (Vite, webpack) recognise and bundle
    const worker = this.#url
      ? new Worker(this.#url, { type: "module" })
      : new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => this.#pending.get(data.id)?.(data);
    worker.onerror = (event) => this.#failPending(`the worker failed: ${event.message ?? "unknown error"}`);
    this.#worker = worker;
  }

  #failPending(message) {
    const error = new BedsideError("WORKER_FAILED", message);
    for (const handler of this.#pending.values()) handler({ error });
    this.#pending.clear();
  }

  /** As `Bedside.isCached`: the worker shares the page's Cache API. */
  static isCached(source) {
    return Bedside.isCached(source);
  }

  /** As `Bedside.clearCache`. */
  static clearCache(source) {
    return Bedside.clearCache(source);
  }

  /**
   * As `Bedside.load`; `source` may be a relative URL (resolved against the page).
   * `options.worker`: the URL of the worker script, where a bundler moved the package's worker.js.
   */
  static async load(source, options = {}) {
    const { onProgress, worker, ...rest } = options;
    const model = new BedsideWorker(worker === undefined ? undefined : new URL(worker, globalThis.location?.href));
    const resolved = typeof source === "string" || source instanceof URL ? new URL(source, globalThis.location?.href).href : source;
    model.#loadArgs = [resolved, { ...rest, progress: false }];
    try {
      Object.assign(model, await model.#send("load", [resolved, { ...rest, progress: !!onProgress }], { onProgress }));
    } catch (e) {
      model.#worker.terminate();
      throw e;
    }
    return model;
  }

  async #call(method, args, handlers) {
    await this.#restarting;
    try {
      return await this.#send(method, args, handlers);
    } catch (e) {
      if (FATAL.has(e.code)) this.#restart();
      throw e;
    }
  }

  /** A fresh worker (a fresh wasm instance, a fresh GPU device) with the same bundle. */
  #restart() {
    if (this.#restarting) return;
    this.#worker.terminate();
    this.#failPending("the worker was restarted after its wasm instance died; call again");
    this.#spawn();
    this.restarts += 1;
    this.#restarting = this.#send("load", this.#loadArgs)
      .then((loaded) => { Object.assign(this, loaded); }, () => {})
      .finally(() => { this.#restarting = undefined; });
  }

  #send(method, args, { onProgress, onPiece } = {}) {
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
