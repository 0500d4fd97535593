// The wasm instance's life: started once, every engine call watched for a trap, a trapped
// instance replaced by a fresh one, and the GPUDevice wgpu made in it (captured at its first
// WebGPU load) with its loss. Everything loaded in an instance dies with it.
import * as firstGlue from "./wasm/bedside.js";
import { BedsideError, toBedsideError } from "./errors.js";

export const isNode = typeof process !== "undefined" && !!process.versions?.node;
// Node's own modules are imported only in Node, and marked so that bundlers for the browser
// (webpack and so Next.js, Vite) leave the import alone instead of refusing or stubbing it.

/** Any error as a BedsideError; a trap (`WebAssembly.RuntimeError`) marks the instance dead. */
export function asBedsideError(error, fallbackCode = "INTERNAL") {
  if (error instanceof WebAssembly.RuntimeError) return trap(error);
  return toBedsideError(error, fallbackCode);
}

/** wasm-bindgen's module of the current instance (a copy of its own after a restart, below). */
export let glue = firstGlue;
/** What the instance was made from: the `wasm` option, the file's bytes in Node, or its URL. */
let wasmSource;
let wasmReady;
/** The wasm instance, started once (`WASM_LOAD` if it cannot be), replaced if it trapped. */
export async function initWasm(wasm) {
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
export let wasmTrapped = false;

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
export function watched(call) {
  inFlight += 1;
  return Promise.race([call, trapped.promise]).finally(() => { inFlight -= 1; });
}
/** Which wasm instance this is; a model loaded in an earlier one cannot be used. */
export let wasmInstance = 0;

/** Whether an object made in wasm instance `instance` can still be used. */
export function liveIn(instance) {
  return instance === wasmInstance && !wasmTrapped;
}

export function crashed(what) {
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
export function resetWasm() {
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
export const gpu = { device: undefined, lost: undefined };

export async function capturingDevice(load) {
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

export function deviceLost() {
  const { reason, message } = gpu.lost;
  return new BedsideError(
    "WEBGPU_LOST",
    `the WebGPU device was lost (${reason}${message ? `: ${message}` : ""}); load the model again: the CPU backend still works`,
  );
}

