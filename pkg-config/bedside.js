// bedside: the npm package's entry point. Loads a bundle, picks a backend (WebGPU where the
// browser or runtime has a working adapter, else the CPU), and runs the model in wasm.
// Patient data never leaves this process: the only network requests are for the bundle URL.
import * as firstGlue from "./wasm/bedside.js";

/** Errors thrown by bedside carry a stable `code`. */
export class BedsideError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "BedsideError";
    this.code = code;
  }
}

const isNode = typeof process !== "undefined" && !!process.versions?.node;
// Node's own modules are imported only in Node, and marked so that bundlers for the browser
// (webpack and so Next.js, Vite) leave the import alone instead of refusing or stubbing it.

function asBedsideError(error, fallbackCode = "INTERNAL") {
  if (error instanceof BedsideError) return error;
  if (error?.name === "AbortError" || error?.name === "TimeoutError") {
    return new BedsideError("ABORTED", `stopped by the caller: ${error.message}`, { cause: error });
  }
  if (error && typeof error === "object" && typeof error.code === "string") {
    return new BedsideError(error.code, error.message, { cause: error });
  }
  if (error instanceof WebAssembly.RuntimeError) return trap(error);
  return new BedsideError(fallbackCode, String(error?.message ?? error), { cause: error });
}

/** wasm-bindgen's module of the current instance (a copy of its own after a restart, below). */
let glue = firstGlue;
/** What the instance was made from: the `wasm` option, the file's bytes in Node, or its URL. */
let wasmSource;
let wasmReady;
/** The wasm instance, started once (`WASM_LOAD` if it cannot be), replaced if it trapped. */
async function initWasm(wasm) {
  wasmReady ??= (async () => {
    if (wasm) wasmSource = wasm;
    else if (isNode) {
      const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ "node:fs/promises");
      wasmSource = await readFile(new URL("./wasm/bedside_bg.wasm", import.meta.url));
    } else wasmSource = new URL("./wasm/bedside_bg.wasm", import.meta.url);
    return glue.default({ module_or_path: wasmSource });
  })();
  try {
    await wasmReady;
  } catch (e) {
    wasmReady = undefined;
    throw new BedsideError("WASM_LOAD", `cannot load the wasm module: ${e.message}`, { cause: e });
  }
  if (wasmTrapped) await resetWasm();
}

/** Whether the wasm instance trapped (a `WebAssembly.RuntimeError`): its memory may be torn. */
let wasmTrapped = false;

/** A trap's error; the instance is marked dead (the next load replaces it) and every call in
 * flight fails with it too. */
function trap(error) {
  const failure = new BedsideError("WASM_PANIC", `the wasm module crashed: ${error.message}`, { cause: error });
  wasmTrapped = true;
  trapped.reject(failure);
  return failure;
}

/**
 * A trap inside an asynchronous step of a call (a task of wasm-bindgen-futures, run from
 * `queueMicrotask`, e.g. the next token of `explain`) reaches no caller: it surfaces as an
 * uncaught error (or an unhandled rejection), and the call would wait for ever. Every engine call
 * therefore races `trapped.promise`, which the page's (or worker's) `error` and
 * `unhandledrejection` events reject with `WASM_PANIC` while a call is in flight (a trap with no
 * bedside call running is another module's). Listening changes nothing else: the error still
 * reaches the console. (Node has no such events on the global object; there an uncaught error
 * ends the process by default, which is loud, not a hang.)
 */
let trapped = trapWatch();
function trapWatch() {
  let reject;
  const promise = new Promise((_, r) => { reject = r; });
  promise.catch(() => {}); // rejected only while some call races it
  return { promise, reject };
}
let inFlight = 0;
for (const [type, field] of [["error", "error"], ["unhandledrejection", "reason"]]) {
  globalThis.addEventListener?.(type, (event) => {
    if (inFlight > 0 && event[field] instanceof WebAssembly.RuntimeError) trap(event[field]);
  });
}

/** `call` (a promise from the engine), failing with `WASM_PANIC` if the instance traps meanwhile. */
function watched(call) {
  inFlight += 1;
  return Promise.race([call, trapped.promise]).finally(() => { inFlight -= 1; });
}
/** Which wasm instance this is; a model loaded in an earlier one cannot be used. */
let wasmInstance = 0;

/** Whether an object made in wasm instance `instance` can still be used. */
function liveIn(instance) {
  return instance === wasmInstance && !wasmTrapped;
}

function crashed(what) {
  return new BedsideError("WASM_PANIC", `the wasm instance this ${what} was loaded in crashed; load the ${what} again`);
}

/**
 * Replaces a trapped wasm instance with a fresh one: everything the old one held — its engines
 * and its GPU device — is gone, so models must be loaded again. A second copy of the glue
 * module (its own state, imported under another URL) instantiates the same file asynchronously,
 * so that a callback the old instance left pending (a GPU read-back) can only ever reach the old
 * memory; the old instance's memory stays allocated until the page goes (a trap for want of
 * memory may leave too little for the new one). Where the glue cannot be imported again (a
 * bundler folded it into its own chunk), wasm-bindgen's synchronous reset (built with
 * `--experimental-reset-state-function`) is the fallback, which workers and Node allow and a
 * browser's main thread refuses for a module this large: then `WASM_PANIC` asks for a reload.
 * Loads that meet a dead instance at once share one reset.
 */
let resetting;
let restartAttempts = 0;
function resetWasm() {
  resetting ??= (async () => {
    try {
      try {
        const url = `${new URL("./wasm/bedside.js", import.meta.url).href}?instance=${++restartAttempts}`;
        const fresh = await import(/* webpackIgnore: true */ /* @vite-ignore */ url);
        await fresh.default({ module_or_path: wasmSource });
        glue = fresh;
      } catch (unimportable) {
        try {
          glue.__wbg_reset_state();
        } catch (refused) {
          throw new BedsideError("WASM_PANIC", `the wasm module crashed and cannot be restarted here (${unimportable.message}; ${refused.message}); reload the page`, { cause: refused });
        }
      }
      wasmTrapped = false;
      wasmInstance += 1;
      trapped = trapWatch();
      const old = gpu.device;
      gpu.device = undefined; // the new instance makes its own device on its first WebGPU load
      gpu.lost = undefined;
      old?.destroy(); // its buffers go with it; its loss no longer counts (capturingDevice)
    } finally {
      resetting = undefined;
    }
  })();
  return resetting;
}

/**
 * The GPUDevice wgpu made for this wasm instance (captured at its first WebGPU load: burn keeps
 * one device per instance) and, once it is lost (driver reset, GPU process crash, `destroy()`),
 * why. After a loss only the CPU is left in this instance: "auto" loads fall back to it.
 */
const gpu = { device: undefined, lost: undefined };

async function capturingDevice(load) {
  const navigatorGpu = globalThis.navigator?.gpu;
  if (!navigatorGpu || gpu.device) return load();
  const own = Object.hasOwn(navigatorGpu, "requestAdapter");
  const requestAdapter = navigatorGpu.requestAdapter;
  navigatorGpu.requestAdapter = async function (...args) {
    const adapter = await requestAdapter.apply(this, args);
    if (adapter) {
      const requestDevice = adapter.requestDevice;
      adapter.requestDevice = async function (...options) {
        const device = await requestDevice.apply(this, options);
        gpu.device = device;
        device.lost.then((info) => {
          if (gpu.device === device) gpu.lost = info; // not a device of an instance since replaced
        });
        return device;
      };
    }
    return adapter;
  };
  try {
    return await load();
  } finally {
    if (own) navigatorGpu.requestAdapter = requestAdapter;
    else delete navigatorGpu.requestAdapter;
  }
}

function deviceLost() {
  const { reason, message } = gpu.lost;
  return new BedsideError(
    "WEBGPU_LOST",
    `the WebGPU device was lost (${reason}${message ? `: ${message}` : ""}); load the model again: the CPU backend still works`,
  );
}

/** Throws `ABORTED` where `signal` (an AbortSignal, or undefined) has aborted. */
function checkSignal(signal, what) {
  if (signal?.aborted) {
    throw new BedsideError("ABORTED", `${what} stopped by the caller: ${signal.reason?.message ?? signal.reason ?? "aborted"}`, { cause: signal.reason });
  }
}

/** Whether a WebGPU adapter can be had here. wgpu must never be started without one. */
export async function webgpuAvailable() {
  return (await webgpuAdapter()) !== undefined;
}

/**
 * The WebGPU adapter here, if any: `{ software }`, true for a CPU rasteriser standing in for a GPU
 * (SwiftShader, llvmpipe/lavapipe, WARP), which runs this model tens of times slower than the
 * CPU backend (BENCHMARKS.md: 1.4 s against 33 ms per diagnose in Chromium), and its `name`.
 */
async function webgpuAdapter() {
  const navigatorGpu = globalThis.navigator?.gpu;
  if (!navigatorGpu) return undefined;
  let adapter;
  try {
    adapter = await navigatorGpu.requestAdapter();
  } catch {
    return undefined;
  }
  if (!adapter) return undefined;
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter";
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true ||
    /swiftshader|llvmpipe|lavapipe|software|basic render|\bwarp\b/i.test(`${info.architecture} ${info.device} ${info.description}`);
  return { software, name };
}

/**
 * What "auto" measured (see [`probeKey`]), so that the timed probe runs once: in localStorage
 * where a page has it, else in this module's memory (Node, and a worker for its lifetime).
 */
const PROBE_KEY = "bedside.backendProbe";
const probeMemory = new Map();

function probeRecall(key) {
  try {
    const stored = JSON.parse(globalThis.localStorage?.getItem(PROBE_KEY) ?? "{}")[key];
    if (stored && typeof stored.backend === "string" && typeof stored.reason === "string") return stored;
  } catch {
    // storage switched off or garbled: measure again
  }
  return probeMemory.get(key);
}

function probeRemember(key, verdict) {
  probeMemory.set(key, verdict);
  try {
    const storage = globalThis.localStorage;
    if (!storage) return;
    const all = JSON.parse(storage.getItem(PROBE_KEY) ?? "{}");
    all[key] = verdict;
    storage.setItem(PROBE_KEY, JSON.stringify(all));
  } catch {
    // storage full or switched off: the probe runs again next time
  }
}

/** The fastest of `runs` self-tests on a loaded engine, in milliseconds (the first run, with
 * its shader compilation, was the load's own self-test). */
async function timedSelfTest(engine, runs = 2) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await watched(engine.selfTest(SELF_TEST_TOLERANCE));
    best = Math.min(best, performance.now() - start); // nan-ok: a timing, not a check
  }
  return best;
}

/**
 * Where "auto" keeps what it measured: per adapter, browser and bundle (the weights' hash), so
 * that a new browser or model is timed again; none for a bundle without hashes.
 */
function probeKey(adapter, manifest) {
  const weights = listedSha256(manifest, "model.safetensors");
  return weights ? `${adapter.name}|${globalThis.navigator?.userAgent ?? ""}|${weights}` : undefined;
}

/**
 * "auto"'s timed probe: `webgpu` (an engine that passed its self-test on a hardware adapter)
 * against the CPU, each timed on the self-test; the CPU is kept only when it is at least 20%
 * faster, since WebGPU leaves the page's thread free. The verdict is remembered under `key`; a
 * `known` WebGPU verdict, or a bundle without a self-test, keeps WebGPU untimed. Returns
 * `{ engine, difference, backend, reason }` and frees the other engine; when the CPU cannot be
 * loaded or timed, WebGPU is kept and the reason says why.
 */
async function probeBackends(webgpu, adapter, key, known, loadEngine) {
  if (known?.backend === "webgpu") return { ...webgpu, backend: "webgpu", reason: `WebGPU is as fast or faster here: ${known.reason} (measured earlier)` };
  if (webgpu.difference === undefined || webgpu.difference === null) {
    return { ...webgpu, backend: "webgpu", reason: `WebGPU on ${adapter.name}, not timed: the bundle records no self-test` };
  }
  const instance = wasmInstance;
  let gpuMs, cpu;
  try {
    gpuMs = await timedSelfTest(webgpu.engine);
  } catch (e) {
    if (liveIn(instance)) webgpu.engine.free();
    throw e; // WebGPU failed: the load tries the CPU
  }
  try {
    cpu = await loadEngine("cpu");
    const cpuMs = await timedSelfTest(cpu.engine);
    const faster = cpuMs * 1.2 < gpuMs ? "cpu" : "webgpu";
    const measured = `the self-test took ${gpuMs.toFixed(1)} ms on WebGPU (${adapter.name}) and ${cpuMs.toFixed(1)} ms on the CPU`;
    if (key) probeRemember(key, { backend: faster, reason: measured });
    const [kept, freed] = faster === "cpu" ? [cpu, webgpu] : [webgpu, cpu];
    freed.engine.free();
    return { ...kept, backend: faster, reason: `${faster === "cpu" ? "the CPU is faster here" : "WebGPU is as fast or faster here"}: ${measured}` };
  } catch (e) {
    if (!liveIn(instance)) throw e; // a trap: both engines went with the instance
    cpu?.engine.free();
    const error = asBedsideError(e);
    return { ...webgpu, backend: "webgpu", reason: `WebGPU on ${adapter.name}; the CPU could not be timed (${error.code}: ${error.message})` };
  }
}

async function readBytes(url, file, onProgress, init) {
  if (isNode && !/^(https?|data|blob):/.test(String(url))) {
    const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ "node:fs/promises");
    const { fileURLToPath } = await import(/* webpackIgnore: true */ /* @vite-ignore */ "node:url");
    const path = String(url).startsWith("file:") ? fileURLToPath(url) : String(url);
    const bytes = new Uint8Array(await readFile(path).catch((e) => {
      throw new BedsideError("BUNDLE_FETCH", `cannot read ${file} at ${path}: ${e.message}`, { cause: e });
    }));
    onProgress?.({ file, loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    checkSignal(init?.signal, `fetching ${file}`);
    throw new BedsideError("BUNDLE_FETCH", `cannot fetch ${file} from ${url}: ${e.message}`, { cause: e });
  }
  if (!response.ok) throw new BedsideError("BUNDLE_FETCH", `cannot fetch ${file} from ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("content-length")) || undefined;
  if (!response.body || !onProgress) return new Uint8Array(await response.arrayBuffer());
  const chunks = [];
  let loaded = 0;
  for (const reader = response.body.getReader(); ;) {
    const { done, value } = await reader.read().catch((e) => {
      checkSignal(init?.signal, `fetching ${file}`);
      throw new BedsideError("BUNDLE_FETCH", `cannot fetch ${file} from ${url}: ${e.message}`, { cause: e });
    });
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ file, loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * One progress stream for a load, as `onProgress` sees it: `phase` in order "wasm", "download",
 * "verify" (the engine checks each file's sha256 and builds the model), "self-test" (on WebGPU
 * also where the shaders compile), "ready" — "verify" and "self-test" again for the CPU when
 * WebGPU fails; during "download", `file`, `loaded` and `total`, each file's bytes against the
 * size the manifest names (never above it, whatever the transfer encoding); and `fraction`, the
 * share of the whole load done (never decreasing; the downloads weigh 0.8).
 */
class LoadProgress {
  #report;
  #sizes = new Map();
  #loaded = new Map();
  #fraction = 0;

  constructor(report) {
    this.#report = report;
  }

  /** The manifest's file sizes: what the downloads are measured against. */
  expect(manifestJson) {
    try {
      for (const [file, entry] of Object.entries(JSON.parse(manifestJson).files ?? {})) {
        if (Number.isFinite(entry?.bytes) && entry.bytes > 0) this.#sizes.set(file, entry.bytes);
      }
    } catch {
      // the engine reports the broken manifest with its code
    }
  }

  phase(phase, fraction, details = {}) {
    this.#emit({ phase, ...details }, fraction);
  }

  /** A download's progress, as `readBytes` reports it. */
  bytes = ({ file, loaded, total, cached }) => {
    const size = this.#sizes.get(file) ?? total;
    const bytes = size === undefined ? loaded : Math.min(loaded, size);
    let done = 0;
    let all = 0;
    if (this.#sizes.has(file)) this.#loaded.set(file, bytes);
    for (const [name, expected] of this.#sizes) {
      all += expected;
      done += this.#loaded.get(name) ?? 0;
    }
    this.#emit({ phase: "download", file, loaded: bytes, total: size, ...(cached ? { cached } : {}) }, all ? (0.8 * done) / all : 0);
  };

  #emit(event, fraction) {
    this.#fraction = Math.max(this.#fraction, Math.min(1, fraction));
    this.#report?.({ ...event, fraction: this.#fraction });
  }
}

/** How far a backend's self-test probabilities may be from those recorded at export. */
const SELF_TEST_TOLERANCE = 1e-3;
const CACHE_NAME = "bedside-bundles-v1";
const BUNDLE_FILES = ["manifest.json", "model.safetensors", "tokenizer.json", "medrec.safetensors"];

/**
 * The Cache API's bundle cache, where there is one and files can be hashed: browsers on secure
 * pages (https, localhost); not Node, not plain-http pages (no Web Crypto there).
 */
async function openCache() {
  if (!globalThis.caches || !globalThis.crypto?.subtle) return undefined;
  return globalThis.caches.open(CACHE_NAME).catch(() => undefined);
}

/** The hex sha256 of `bytes` (Web Crypto), as a manifest writes it. */
async function sha256Hex(bytes) {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The base64 sha256 that `integrity` ("sha256-" and the base64 of a sha256, as Subresource
 * Integrity writes it) pins, checked before anything is fetched; undefined when not pinned.
 */
function pinnedSha256(integrity) {
  if (integrity === undefined) return undefined;
  const pinned = /^sha256-([A-Za-z0-9+/]{43}=)$/.exec(String(integrity).trim());
  if (!pinned) {
    throw new BedsideError("BAD_OPTION", `options.integrity must be "sha256-" and 44 base64 characters, not ${JSON.stringify(integrity)}`);
  }
  if (!globalThis.crypto?.subtle) {
    throw new BedsideError("BAD_OPTION", "options.integrity needs Web Crypto, which browsers give only to secure pages (https, localhost)");
  }
  return pinned[1];
}

/**
 * Pins a bundle: the manifest's bytes must hash to the pinned sha256, and the manifest pins every
 * other file by its own hash. Checked before any other file is fetched.
 */
async function checkIntegrity(bytes, pinned, integrity) {
  if (pinned === undefined) return;
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  const actual = btoa(String.fromCharCode(...digest));
  if (actual !== pinned) {
    throw new BedsideError("BUNDLE_HASH_MISMATCH", `bundle manifest.json: sha256-${actual} does not match the pinned integrity ${integrity}`);
  }
}

/** The sha256 the manifest names for `file`, if it names one. */
function listedSha256(manifestJson, file) {
  try {
    const sha256 = JSON.parse(manifestJson).files?.[file]?.sha256;
    return typeof sha256 === "string" ? sha256.toLowerCase() : undefined;
  } catch {
    return undefined; // the engine reports the broken manifest with its code
  }
}

/**
 * The manifest's bytes, network first: it names the current files and their hashes, so it is always
 * asked for (revalidating any HTTP-cached copy); the copy in `cache` is used only when the
 * network fails, so a cached bundle loads offline. `load` caches a manifest only once the bundle
 * it names has loaded, so an update cut short leaves the previous bundle whole.
 */
async function manifestBytes(url, onProgress, cache, signal) {
  try {
    const init = isNode ? { signal } : { cache: "no-cache", signal };
    return await readBytes(url, "manifest.json", onProgress, init);
  } catch (e) {
    // only where the network failed (the error has a cause); an HTTP error is the server's answer
    const hit = e.cause && e.code !== "ABORTED" ? await cache?.match(url).catch(() => undefined) : undefined;
    if (!hit) throw e;
    return new Uint8Array(await hit.arrayBuffer());
  }
}

/**
 * A bundle file, keyed by its content: a copy in `cache` is used only when its sha256 is the one
 * the manifest names, else it is fetched again. A fetched file whose hash differs (a bundle
 * republished at the same URL, still in the browser's HTTP cache) is fetched once more past that
 * cache; only a file with the named hash is kept (over the old copy, which stays until then).
 * Without `cache` (or Web Crypto, which browsers give only to secure pages) the file is fetched
 * as it is: the engine checks every hash again either way.
 */
async function cachedFetch(url, file, sha256, onProgress, cache, signal) {
  if (!cache || sha256 === undefined) return readBytes(url, file, onProgress, { signal });
  const hit = await cache.match(url).catch(() => undefined);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await sha256Hex(bytes)) === sha256) {
      onProgress?.({ file, loaded: bytes.length, total: bytes.length, cached: true });
      return bytes;
    }
  }
  let bytes = await readBytes(url, file, onProgress, { signal });
  if ((await sha256Hex(bytes)) !== sha256) bytes = await readBytes(url, file, onProgress, { cache: "reload", signal });
  if ((await sha256Hex(bytes)) === sha256) {
    await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream" } })).catch(() => {});
  }
  return bytes;
}

async function forgetCached(source) {
  if (!(typeof source === "string" || source instanceof URL)) return;
  const cache = await openCache();
  for (const file of BUNDLE_FILES) {
    await cache?.delete(join(source, file)).catch(() => {});
  }
}

function join(base, file) {
  const text = String(base);
  return text.endsWith("/") ? text + file : `${text}/${file}`;
}

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

function listsFile(manifestJson, file) {
  try {
    return Object.hasOwn(JSON.parse(manifestJson).files ?? {}, file);
  } catch {
    return false; // the engine reports the broken manifest with its code
  }
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
    await initWasm(wasm);
    let manifest, weights, tokenizer, medrec, store;
    if (typeof source === "string" || source instanceof URL) {
      store = cache ? await openCache() : undefined;
      // streamed chunk by chunk only for a caller that watches the progress
      const onBytes = onProgress ? progress.bytes : undefined;
      const bytes = await manifestBytes(join(source, "manifest.json"), onBytes, store, signal);
      await checkIntegrity(bytes, pinned, integrity);
      manifest = new TextDecoder().decode(bytes);
      progress.expect(manifest);
      const get = (file) => cachedFetch(join(source, file), file, listedSha256(manifest, file), onBytes, store, signal);
      weights = await get("model.safetensors");
      if (listsFile(manifest, "tokenizer.json")) tokenizer = await get("tokenizer.json");
      if (listsFile(manifest, "medrec.safetensors")) medrec = await get("medrec.safetensors");
    } else if (source && source.manifest !== undefined && source.weights !== undefined) {
      const m = source.manifest;
      const bytes = typeof m === "string" ? new TextEncoder().encode(m) : m instanceof Uint8Array || m instanceof ArrayBuffer ? new Uint8Array(m) : undefined;
      if (pinned !== undefined && bytes === undefined) {
        throw new BedsideError("BAD_OPTION", "options.integrity pins a manifest's bytes: pass the manifest as text or bytes, not as an object");
      }
      await checkIntegrity(bytes, pinned, integrity);
      manifest = bytes ? new TextDecoder().decode(bytes) : JSON.stringify(m);
      weights = source.weights instanceof Uint8Array ? source.weights : new Uint8Array(source.weights);
      if (source.tokenizer !== undefined) {
        tokenizer = typeof source.tokenizer === "string" ? new TextEncoder().encode(source.tokenizer) : new Uint8Array(source.tokenizer);
      }
      if (source.medrec !== undefined) medrec = new Uint8Array(source.medrec);
    } else {
      throw new BedsideError("BAD_OPTION", "source must be a bundle URL or { manifest, weights, tokenizer }");
    }

    checkSignal(signal, "load");
    if (backend === "webgpu" && gpu.lost) throw deviceLost();
    const adapter = backend !== "cpu" && !gpu.lost ? await webgpuAdapter() : undefined;
    if (backend === "webgpu" && !adapter) {
      throw new BedsideError("WEBGPU_UNAVAILABLE", "WebGPU was asked for, but this environment has no WebGPU adapter");
    }
    // "auto" never prefers a software rasteriser to the CPU; asked for by name, it is used
    const webgpu = adapter && (backend === "webgpu" || !adapter.software);
    const candidates = webgpu ? ["webgpu", "cpu"] : ["cpu"];
    // why the CPU runs, if it does: said up front where WebGPU is never tried, else by the failure
    let fallbackReason =
      backend === "cpu"
        ? 'the CPU was asked for (backend: "cpu")'
        : gpu.lost
          ? "WebGPU was lost earlier in this page; only the CPU is left in this wasm instance"
          : webgpu
            ? null
            : adapter
              ? `the WebGPU adapter (${adapter.name}) is a software renderer, slower than the CPU`
              : "this browser or runtime has no WebGPU adapter";
    // "auto" on a hardware adapter: the faster of WebGPU and the CPU here, timed once
    const key = webgpu && backend === "auto" && probe ? probeKey(adapter, manifest) : undefined;
    const known = key && probeRecall(key);
    if (known?.backend === "cpu") fallbackReason = `the CPU is faster here: ${known.reason} (measured earlier)`;
    let lastError;
    const loadEngine = async (candidate) => {
      const instance = wasmInstance;
      progress.phase("verify", 0.8, { backend: candidate });
      const loadOn = () => glue.BedsideEngine.load(manifest, weights, tokenizer, medrec, candidate);
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
    for (const candidate of backend === "webgpu" ? ["webgpu"] : known?.backend === "cpu" ? ["cpu"] : candidates) {
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
   * forward pass returns (a pass is not interrupted).
   */
  async diagnose(record, options = {}) {
    return this.#once("diagnose", record, options.signal);
  }

  /**
   * Recommended ATC level-3 drugs for the record's current visit, from its coded history (bundles
   * with a medication recommender): the drugs above the threshold with names and probabilities,
   * every drug's score, and drug–drug-interaction warnings among the recommended drugs and with
   * the current medications.
   */
  async recommend(record, options = {}) {
    return this.#once("recommend", record, options.signal);
  }

  /**
   * The calibrated risk of a mortality bundle's outcome (in-hospital death) for a PatientRecord
   * or a FHIR R4 Bundle, with the record's findings ordered by how much each moved it (occlusion:
   * the risk without that channel's observations), the notices and the out-of-range state.
   */
  async risk(record, options = {}) {
    return this.#once("risk", record, options.signal);
  }

  /** One engine call, `diagnose`, `recommend` or `risk`, under `signal`. */
  async #once(method, record, signal) {
    checkSignal(signal, method);
    const json = this.#ready(record);
    let result;
    try {
      result = await watched(this.#engine[method](json));
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
    const { signal, maxTokens = 160 } = options;
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
    }, maxTokens));
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
