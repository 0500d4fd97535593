// bedside: the npm package's entry point. Loads a bundle, picks a backend (WebGPU where the
// browser or runtime has a working adapter, else the CPU), and runs the model in wasm.
// Patient data never leaves this process: the only network requests are for the bundle URL.
// The jobs behind it: errors.js, instance.js (the wasm instance and its GPU device),
// backend.js (backend choice), download.js and cache.js (a bundle's files).
import { BedsideError, checkSignal } from "./errors.js";
import {
  asBedsideError, capturingDevice, crashed, deviceLost, glue, gpu, initWasm, liveIn, resetWasm, wasmInstance, wasmTrapped, watched,
} from "./instance.js";
import { SELF_TEST_TOLERANCE, planBackends, probeBackends } from "./backend.js";
import { LoadProgress, join, readBytes } from "./download.js";
import { CACHE_NAME, forgetCached, listedSha256, openCache, pinnedSha256, readBundle, sha256Hex } from "./cache.js";

export { BedsideError, ERROR_CODES } from "./errors.js";
export { webgpuAvailable } from "./backend.js";
export { toFhir } from "./fhir.js";

function recordJson(record) {
  let json;
  try {
    json = typeof record === "string" ? record : JSON.stringify(record);
  } catch (e) {
    throw new BedsideError("RECORD_JSON", `record cannot be turned into JSON: ${e.message}`);
  }
  if (json === undefined) throw new BedsideError("RECORD_JSON", "record is undefined");
  return json;
}

export class Bedside {
  #engine;
  #manifest;
  #backend;
  #instance;

  /** `instance`: the wasm instance the engine was made in. */
  constructor(engine, manifest, instance = wasmInstance) {
    this.#engine = engine;
    this.#manifest = manifest;
    this.#backend = engine.backend;
    this.#instance = instance;
  }

  /**
   * @param source the bundle's base URL (or, in Node, directory), or its files' contents
   *   `{ manifest, weights }`.
   * @param options `{ backend: "auto" | "webgpu" | "cpu", probe, onProgress, wasm, cache,
   *   signal, integrity }`; `cache: false` keeps the bundle out of the Cache API; `signal` (an
   *   AbortSignal) stops the downloads and the load with `ABORTED`; `integrity` ("sha256-…")
   *   pins the manifest, and through its hashes every file. On a hardware adapter "auto" times
   *   the self-test on WebGPU and on the CPU once per adapter, browser and bundle and keeps the
   *   faster ([`probeBackends`]; `backendReason` says what it measured); `probe: false` takes
   *   WebGPU without timing.
   */
  static async load(source, options = {}) {
    const { backend = "auto", probe = true, onProgress, wasm, cache = true, signal, integrity } = options;
    checkSignal(signal, "load");
    const pinned = pinnedSha256(integrity);
    const progress = new LoadProgress(onProgress);
    progress.phase("wasm", 0);
    if (!["auto", "webgpu", "cpu"].includes(backend)) {
      throw new BedsideError("BAD_OPTION", `options.backend must be "auto", "webgpu" or "cpu", not ${JSON.stringify(backend)}`);
    }
    // the module streams in and compiles while the bundle downloads and is hashed
    const [, files] = await Promise.all([
      initWasm(wasm),
      readBundle(source, { cache, signal, pinned, integrity, progress, watch: !!onProgress }),
    ]);
    const { manifest, weights, tokenizer, medrec, digests, store } = files;
    checkSignal(signal, "load");
    const plan = await planBackends(backend, probe, manifest);
    const { adapter, key, known } = plan;
    let { fallbackReason } = plan;
    let lastError;
    const loadEngine = async (candidate) => {
      const instance = wasmInstance;
      progress.phase("verify", 0.8, { backend: candidate });
      const loadOn = () => glue.BedsideEngine.load(manifest, weights, tokenizer, medrec, candidate, digests);
      const engine = await watched(candidate === "webgpu" ? capturingDevice(loadOn) : loadOn());
      try {
        // the known answer recorded at export: a backend that computes wrong numbers (a shader
        // that failed validation can return zeros on wasm) is not used
        progress.phase("self-test", 0.9, { backend: candidate });
        return { engine, difference: await watched(engine.selfTest(SELF_TEST_TOLERANCE)) };
      } catch (e) {
        if (liveIn(instance)) engine.free(); // a dead instance's memory went with it
        throw e;
      }
    };
    for (const candidate of plan.candidates) {
      checkSignal(signal, "load");
      if (wasmTrapped) await resetWasm(); // a trap on WebGPU leaves a dead instance, not one to retry in
      const instance = wasmInstance;
      let loaded;
      try {
        loaded = await loadEngine(candidate);
        // "auto" on a hardware adapter: the faster of WebGPU and the CPU on this device
        if (candidate === "webgpu" && backend === "auto" && probe) loaded = await probeBackends(loaded, adapter, key, known, loadEngine);
      } catch (e) {
        lastError = asBedsideError(e);
        if (lastError.code.startsWith("BUNDLE_")) {
          await forgetCached(source); // a cached copy may be what is broken
          throw lastError; // the bundle is bad on every backend
        }
        fallbackReason = `WebGPU failed (${lastError.code}: ${lastError.message})`;
        continue;
      }
      const { engine, difference } = loaded;
      if (signal?.aborted) engine.free();
      checkSignal(signal, "load");
      // the bundle loaded: its manifest now stands for the cached files (offline loads)
      await store?.put(join(source, "manifest.json"), new Response(manifest, { headers: { "content-type": "application/json" } })).catch(() => {});
      const model = new Bedside(engine, engine.manifest, instance);
      model.selfTestDifference = difference ?? null; // null: the bundle records no answer
      const ran = loaded.backend ?? candidate;
      model.fallbackReason = ran === "cpu" ? (loaded.reason ?? fallbackReason) : null;
      model.backendReason = loaded.reason ??
        (ran === "cpu" ? fallbackReason : backend === "webgpu" ? 'WebGPU was asked for (backend: "webgpu")' : `WebGPU on ${adapter.name}, not timed (probe: false)`);
      progress.phase("ready", 1, { backend: ran });
      return model;
    }
    throw lastError;
  }

  /**
   * Whether the bundle at `source` (its base URL) can load from the Cache API alone: its
   * manifest and every file it lists are cached, each with the sha256 the manifest names.
   */
  static async isCached(source) {
    const cache = await openCache();
    const manifest = await (await cache?.match(join(source, "manifest.json")).catch(() => undefined))?.text();
    if (manifest === undefined) return false;
    let files;
    try {
      files = Object.keys(JSON.parse(manifest).files ?? {});
    } catch {
      return false;
    }
    for (const file of files) {
      const hit = await cache.match(join(source, file)).catch(() => undefined);
      if (!hit || (await sha256Hex(new Uint8Array(await hit.arrayBuffer()))) !== listedSha256(manifest, file)) return false;
    }
    return files.length > 0;
  }

  /**
   * Deletes the cached copy of the bundle at `source`, or of every bundle when `source` is
   * left out; whether there was a cache to clear.
   */
  static async clearCache(source) {
    if (!globalThis.caches) return false;
    if (source === undefined) return globalThis.caches.delete(CACHE_NAME);
    await forgetCached(source);
    return true;
  }

  /**
   * Why the model runs on the CPU, in words (no WebGPU adapter, the CPU asked for, WebGPU lost
   * earlier, or WebGPU's failure: a self-test off by more than the tolerance, a shader that did
   * not compile); null on WebGPU.
   */
  fallbackReason = null;

  /**
   * Why this backend runs, in words, on either: the CPU's `fallbackReason`, WebGPU asked for by
   * name, or what "auto"'s timed probe measured on this adapter (or measured earlier).
   */
  backendReason = null;

  /** "webgpu" or "cpu": what runs the model; "disposed" once freed or its wasm instance died. */
  get backend() {
    return this.#alive() ? this.#backend : "disposed";
  }

  /** Whether the engine exists in the current, untrapped wasm instance. */
  #alive() {
    return !!this.#engine && liveIn(this.#instance);
  }

  /** The bundle's manifest. */
  get manifest() {
    return this.#manifest;
  }

  /** What the model was trained on and how it did (`manifest.model_card`); null without one. */
  get card() {
    return this.#manifest?.model_card ?? null;
  }

  /**
   * Phenotype probabilities for a PatientRecord or a FHIR R4 Bundle (object or JSON text).
   * `options.signal`: an aborted signal gives `ABORTED` before the model runs or once its one
   * forward pass returns (a pass is not interrupted). `options.encounter`: of a FHIR chart, the
   * encounter to read (`Encounter/123`, as a SMART launch names it); every call takes it.
   */
  async diagnose(record, options = {}) {
    return this.#once("diagnose", record, options);
  }

  /**
   * Recommended ATC level-3 drugs for the record's current visit, from its coded history (bundles
   * with a medication recommender): the drugs above the threshold with names and probabilities,
   * every drug's score, and drug–drug-interaction warnings among the recommended drugs and with
   * the current medications.
   */
  async recommend(record, options = {}) {
    return this.#once("recommend", record, options);
  }

  /**
   * The calibrated risk of a mortality bundle's outcome (in-hospital death) for a PatientRecord
   * or a FHIR R4 Bundle, with the record's findings ordered by how much each moved it (occlusion:
   * the risk without that channel's observations), the notices and the out-of-range state.
   */
  async risk(record, options = {}) {
    return this.#once("risk", record, options);
  }

  /** One engine call, `diagnose`, `recommend` or `risk`, under `options.signal`, of the FHIR
   * chart's `options.encounter` where one is named. */
  async #once(method, record, { signal, encounter } = {}) {
    checkSignal(signal, method);
    const json = this.#ready(record);
    let result;
    try {
      result = await watched(this.#engine[method](json, encounter));
    } catch (e) {
      throw await this.#failure(e);
    }
    checkSignal(signal, method);
    return result;
  }

  /**
   * Writes the diagnoses and rationale (clinical bundles): an async iterator of text pieces as
   * they are decoded, ending with the whole explanation (text, diagnoses, rationale, knowledge
   * attention per channel and prototype). On WebGPU each token is read back asynchronously, so
   * pieces arrive as they are made; on the CPU they may arrive in bursts. Decoding stops at the
   * next piece of text when `options.signal` aborts (the iterator then throws `ABORTED`) or when
   * the caller leaves the loop (`break`, `return()`).
   */
  async *explain(record, options = {}) {
    const { signal, maxTokens = 160, encounter } = options;
    checkSignal(signal, "explain");
    const json = this.#ready(record);
    const pieces = [];
    let wake;
    let stop = false;
    const onAbort = () => {
      stop = true;
      wake?.();
    };
    const finished = watched(this.#engine.explain(json, (piece) => {
      if (stop) return false; // the decoder stops at this piece
      pieces.push(piece);
      wake?.();
      return true;
    }, maxTokens, encounter));
    signal?.addEventListener("abort", onAbort, { once: true });
    let result, failure, done = false;
    finished.then((r) => { result = r; }, (e) => { failure = e; }).finally(() => { done = true; wake?.(); });
    try {
      while (true) {
        while (pieces.length && !stop) yield pieces.shift();
        if (done) break;
        await new Promise((resolve) => { wake = resolve; });
        wake = undefined;
      }
    } finally {
      // left early (`break`, `return()`) or aborted: stop decoding, and wait for the engine to be
      // free before the next call may use it
      stop = true;
      signal?.removeEventListener("abort", onAbort);
      await finished.catch(() => {});
    }
    // the decoder's own ABORTED where it stopped; else the signal's, if it came after the last token
    if (failure) throw await this.#failure(failure);
    checkSignal(signal, "explain");
    yield { type: "explanation", ...result };
  }

  /** The record as JSON text, once the model is known to be usable. */
  #ready(record) {
    if (!this.#engine) throw new BedsideError("DISPOSED", "this model was disposed");
    if (!this.#alive()) throw crashed("model");
    if (this.#backend === "webgpu" && gpu.lost) throw deviceLost();
    return recordJson(record);
  }

  /** An engine error as a BedsideError; on WebGPU, a lost device says so. */
  async #failure(error) {
    const failure = asBedsideError(error);
    if (failure.code === "ABORTED" || failure.code === "WASM_PANIC") return failure;
    if (this.#backend === "webgpu" && gpu.device && !gpu.lost) {
      // the device's lost promise may settle just after the call that failed because of it
      await Promise.race([gpu.device.lost, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
    return this.#backend === "webgpu" && gpu.lost ? deviceLost() : failure;
  }

  /** Frees the model's memory (GPU buffers included). */
  dispose() {
    if (this.#alive()) this.#engine.free(); // a dead instance's memory went with it
    this.#engine = undefined;
  }
}

/** A HuggingFace `tokenizer.json` run in wasm: the token ids bedside's models see. */
export class Tokenizer {
  #inner;
  #instance = wasmInstance;

  constructor(inner) {
    this.#inner = inner;
  }

  /** The wasm tokenizer, if it was not disposed and its instance did not die. */
  #live() {
    if (!this.#inner) throw new BedsideError("DISPOSED", "this tokenizer was disposed");
    if (!liveIn(this.#instance)) throw crashed("tokenizer");
    return this.#inner;
  }

  /**
   * @param source the tokenizer's URL (or, in Node, path), or its contents (string or bytes).
   * @param options `{ wasm }`.
   */
  static async load(source, options = {}) {
    await initWasm(options.wasm);
    let bytes;
    if (typeof source === "string" && source.trimStart().startsWith("{")) bytes = new TextEncoder().encode(source);
    else if (typeof source === "string" || source instanceof URL) bytes = await readBytes(source, "tokenizer.json");
    else if (source instanceof Uint8Array || source instanceof ArrayBuffer) bytes = new Uint8Array(source);
    else throw new BedsideError("BAD_OPTION", "source must be a tokenizer URL, its JSON text or its bytes");
    try {
      return new Tokenizer(new glue.BedsideTokenizer(bytes));
    } catch (e) {
      throw asBedsideError(e);
    }
  }

  /** Token ids of `text`, the end-of-sequence id last. */
  encode(text) {
    const inner = this.#live();
    if (typeof text !== "string") throw new BedsideError("BAD_OPTION", "text must be a string");
    try {
      return Array.from(inner.encode(text));
    } catch (e) {
      throw asBedsideError(e);
    }
  }

  /** The text of `ids`, special tokens skipped. */
  decode(ids) {
    const inner = this.#live();
    try {
      return inner.decode(Uint32Array.from(ids));
    } catch (e) {
      throw asBedsideError(e);
    }
  }

  get vocabSize() {
    return this.#inner && liveIn(this.#instance) ? this.#inner.vocabSize : 0;
  }

  dispose() {
    if (liveIn(this.#instance)) this.#inner?.free(); // a dead instance's memory went with it
    this.#inner = undefined;
  }
}

export default Bedside;
