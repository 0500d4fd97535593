// Which backend runs a model: whether there is a WebGPU adapter (and whether it is a software
// rasteriser), and "auto"'s timed probe of WebGPU against the CPU, remembered per adapter,
// browser and bundle.
import { BedsideError } from "./errors.js";
import { asBedsideError, deviceLost, gpu, liveIn, wasmInstance, watched } from "./instance.js";
import { listedSha256 } from "./cache.js";

/** How far a backend's self-test probabilities may be from those recorded at export. */
export const SELF_TEST_TOLERANCE = 1e-3;

/** Whether a WebGPU adapter can be had here. wgpu must never be started without one. */
export async function webgpuAvailable() {
  return (await webgpuAdapter()) !== undefined;
}

/**
 * The WebGPU adapter here, if any: `{ software }`, true for a CPU rasteriser standing in for a GPU
 * (SwiftShader, llvmpipe/lavapipe, WARP), which runs this model tens of times slower than the
 * CPU backend (BENCHMARKS.md: 1.4 s against 33 ms per diagnose in Chromium), and its `name`.
 */
export async function webgpuAdapter() {
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
export async function probeBackends(webgpu, adapter, key, known, loadEngine) {
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


/**
 * What a load tries, in order: `{ adapter, candidates, fallbackReason, key, known }` — the WebGPU
 * adapter (if any), the backends to try, why the CPU would run (said up front where WebGPU is
 * never tried, else by WebGPU's failure), and for "auto" on a hardware adapter the key of its
 * timed probe and what it measured earlier.
 */
export async function planBackends(backend, probe, manifest) {
  if (backend === "webgpu" && gpu.lost) throw deviceLost();
  const adapter = backend !== "cpu" && !gpu.lost ? await webgpuAdapter() : undefined;
  if (backend === "webgpu" && !adapter) {
    throw new BedsideError("WEBGPU_UNAVAILABLE", "WebGPU was asked for, but this environment has no WebGPU adapter");
  }
  // "auto" never prefers a software rasteriser to the CPU; asked for by name, it is used
  const webgpu = adapter && (backend === "webgpu" || !adapter.software);
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
  const candidates = backend === "webgpu" ? ["webgpu"] : known?.backend === "cpu" || !webgpu ? ["cpu"] : ["webgpu", "cpu"];
  return { adapter, candidates, fallbackReason, key, known };
}
