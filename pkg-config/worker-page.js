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
  #disposed = false;
  backend;
  manifest;
  selfTestDifference;
  fallbackReason;
  backendReason;
  /** How many times the worker was replaced after its wasm instance died or its GPU was lost. */
  restarts = 0;

  /** As `Bedside.card`. */
  get card() {
    return this.manifest?.model_card ?? null;
  }

  constructor(url) {
    this.#url = url;
    this.#spawn();
  }

  #spawn() {
    // the literal `new Worker(new URL(...))` is what bundlers (Vite, webpack) recognise and bundle
    const worker = this.#url
      ? new Worker(this.#url, { type: "module" })
      : new Worker(new URL("./worker-thread.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => this.#pending.get(data.id)?.(data);
    worker.onerror = (event) => this.#failPending(`the worker failed: ${event.message ?? "unknown error"}`);
    this.#worker = worker;
  }

  #failPending(message, code = "WORKER_FAILED") {
    const error = new BedsideError(code, message);
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
   * `options.worker`: the URL of the worker script, where a bundler moved the package's worker-thread.js.
   */
  static async load(source, options = {}) {
    const { onProgress, worker, signal, ...rest } = options;
    const model = new BedsideWorker(worker === undefined ? undefined : new URL(worker, globalThis.location?.href));
    const resolved = typeof source === "string" || source instanceof URL ? new URL(source, globalThis.location?.href).href : source;
    model.#loadArgs = [resolved, { ...rest, progress: false }];
    try {
      Object.assign(model, await model.#send("load", [resolved, { ...rest, signal, progress: !!onProgress }], { onProgress }));
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

  /**
   * One call in the worker. An options object's `signal` stays here (it cannot be posted): when
   * it aborts, the worker is told to cancel the call, which then fails with `ABORTED`.
   */
  #send(method, args, { onProgress, onPiece } = {}) {
    if (this.#disposed) return Promise.reject(new BedsideError("DISPOSED", "this model was disposed"));
    const id = this.#next++;
    const signal = args.find((a) => a?.signal)?.signal;
    if (signal?.aborted) return Promise.reject(new BedsideError("ABORTED", `${method} stopped by the caller`));
    const posted = args.map((a) => (a?.signal ? { ...a, signal: undefined } : a));
    const cancel = () => this.#worker.postMessage({ id: this.#next++, method: "cancel", args: [id] });
    signal?.addEventListener("abort", cancel, { once: true });
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (message) => {
        if (message.progress) return onProgress?.(message.progress);
        if (message.piece !== undefined) return onPiece?.(message.piece);
        this.#pending.delete(id);
        signal?.removeEventListener("abort", cancel);
        if (message.error) reject(message.error instanceof BedsideError ? message.error : new BedsideError(message.error.code, message.error.message));
        // an answer that crossed the cancel on its way is not given
        else if (signal?.aborted) reject(new BedsideError("ABORTED", `${method} stopped by the caller`));
        else resolve(message.result);
      });
      this.#worker.postMessage({ id, method, args: posted });
    });
  }

  diagnose(record, options = {}) {
    return this.#call("diagnose", [record, options]);
  }

  recommend(record, options = {}) {
    return this.#call("recommend", [record, options]);
  }

  risk(record, options = {}) {
    return this.#call("risk", [record, options]);
  }

  /**
   * Text pieces as they are decoded, then the whole explanation (as `Bedside.explain`: an aborted
   * `options.signal`, or leaving the loop, stops the decoding in the worker).
   */
  async *explain(record, options = {}) {
    const pieces = [];
    let wake;
    let done = false;
    let result;
    let failure;
    // the caller's signal, or leaving the loop early, cancels the call in the worker
    const stop = new AbortController();
    const forward = () => stop.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", forward, { once: true });
    if (options.signal?.aborted) forward();
    const finished = this.#call("explain", [record, { ...options, signal: stop.signal }], { onPiece: (p) => { pieces.push(p); wake?.(); } })
      .then((r) => { result = r; }, (e) => { failure = e; })
      .finally(() => { done = true; wake?.(); });
    try {
      while (true) {
        while (pieces.length && !stop.signal.aborted) yield pieces.shift();
        if (done) break;
        await new Promise((resolve) => { wake = resolve; });
        wake = undefined;
      }
    } finally {
      options.signal?.removeEventListener("abort", forward);
      if (!done) stop.abort();
      await finished;
    }
    if (failure) throw failure;
    if (options.signal?.aborted) throw new BedsideError("ABORTED", "explain stopped by the caller");
    yield { type: "explanation", ...result };
  }

  /** Frees the model and ends the worker; calls still pending fail with `DISPOSED`. */
  dispose() {
    this.#disposed = true;
    this.#worker.postMessage({ id: this.#next++, method: "dispose" });
    this.#worker.terminate();
    this.#failPending("the model was disposed while this call was pending", "DISPOSED");
  }
}

export default BedsideWorker;
