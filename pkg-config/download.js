// A bundle file's bytes: from disk in Node, else fetched (streamed chunk by chunk where the
// caller watches the progress), and the one progress stream of a load.
import { BedsideError, checkSignal } from "./errors.js";
import { isNode } from "./instance.js";

/** A bundle file's URL under the bundle's base URL. */
export function join(base, file) {
  const text = String(base);
  return text.endsWith("/") ? text + file : `${text}/${file}`;
}

export async function readBytes(url, file, onProgress, init) {
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
export class LoadProgress {
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

