// The bundle cache (the Cache API, keyed by each file's sha256 in the manifest) and integrity
// pinning; `readBundle` gets a bundle's files from a URL (cache first where the hash matches) or
// from the caller's bytes.
import { BedsideError } from "./errors.js";
import { isNode } from "./instance.js";
import { join, readBytes } from "./download.js";

export const CACHE_NAME = "bedside-bundles-v1";
const BUNDLE_FILES = ["manifest.json", "model.safetensors", "tokenizer.json", "medrec.safetensors"];

/**
 * The Cache API's bundle cache, where there is one and files can be hashed: browsers on secure
 * pages (https, localhost); not Node, not plain-http pages (no Web Crypto there).
 */
export async function openCache() {
  if (!globalThis.caches || !globalThis.crypto?.subtle) return undefined;
  return globalThis.caches.open(CACHE_NAME).catch(() => undefined);
}

/** The hex sha256 of `bytes` (Web Crypto), as a manifest writes it. */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The base64 sha256 that `integrity` ("sha256-" and the base64 of a sha256, as Subresource
 * Integrity writes it) pins, checked before anything is fetched; undefined when not pinned.
 */
export function pinnedSha256(integrity) {
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
export async function checkIntegrity(bytes, pinned, integrity) {
  if (pinned === undefined) return;
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  const actual = btoa(String.fromCharCode(...digest));
  if (actual !== pinned) {
    throw new BedsideError("BUNDLE_HASH_MISMATCH", `bundle manifest.json: sha256-${actual} does not match the pinned integrity ${integrity}`);
  }
}

/** The sha256 the manifest names for `file`, if it names one. */
export function listedSha256(manifestJson, file) {
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
export async function manifestBytes(url, onProgress, cache, signal) {
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
export async function cachedFetch(url, file, sha256, onProgress, cache, signal) {
  if (!cache || sha256 === undefined) return digested(await readBytes(url, file, onProgress, { signal }));
  const hit = await cache.match(url).catch(() => undefined);
  if (hit) {
    const cached = await digested(new Uint8Array(await hit.arrayBuffer()));
    if (cached.digest === sha256) {
      onProgress?.({ file, loaded: cached.bytes.length, total: cached.bytes.length, cached: true });
      return cached;
    }
  }
  let fetched = await digested(await readBytes(url, file, onProgress, { signal }));
  if (fetched.digest !== sha256) fetched = await digested(await readBytes(url, file, onProgress, { cache: "reload", signal }));
  if (fetched.digest === sha256) {
    await cache.put(url, new Response(fetched.bytes, { headers: { "content-type": "application/octet-stream" } })).catch(() => {});
  }
  return fetched;
}

/**
 * `{ bytes, digest }`: the bytes with their hex sha256 where Web Crypto can compute it (browsers
 * on secure pages, Node), once; the engine then compares that digest with the manifest instead
 * of hashing the file again in wasm (several times slower than the platform's own).
 */
async function digested(bytes) {
  return { bytes, digest: globalThis.crypto?.subtle ? await sha256Hex(bytes) : undefined };
}

export async function forgetCached(source) {
  if (!(typeof source === "string" || source instanceof URL)) return;
  const cache = await openCache();
  for (const file of BUNDLE_FILES) {
    await cache?.delete(join(source, file)).catch(() => {});
  }
}


/** Whether the manifest lists `file`. */
function listsFile(manifestJson, file) {
  try {
    return Object.hasOwn(JSON.parse(manifestJson).files ?? {}, file);
  } catch {
    return false; // the engine reports the broken manifest with its code
  }
}


/**
 * A bundle's files — `{ manifest, weights, tokenizer, medrec, digests, store }` — from its base URL (the
 * manifest network first, each other file from `store`, the bundle cache, where its hash is the
 * one the manifest names) or from the caller's `{ manifest, weights, tokenizer, medrec }`; a
 * pinned `integrity` checks the manifest's bytes before anything else is fetched. `watch`: the
 * caller watches the progress, so downloads stream chunk by chunk into `progress`.
 */
export async function readBundle(source, { cache, signal, pinned, integrity, progress, watch }) {
  const files = {};
  if (typeof source === "string" || source instanceof URL) {
    const store = cache ? await openCache() : undefined;
    const onBytes = watch ? progress.bytes : undefined;
    const bytes = await manifestBytes(join(source, "manifest.json"), onBytes, store, signal);
    await checkIntegrity(bytes, pinned, integrity);
    const manifest = new TextDecoder().decode(bytes);
    progress.expect(manifest);
    for (const [file, key] of [["model.safetensors", "weights"], ["tokenizer.json", "tokenizer"], ["medrec.safetensors", "medrec"]]) {
      if (key === "weights" || listsFile(manifest, file)) {
        files[file] = await cachedFetch(join(source, file), file, listedSha256(manifest, file), onBytes, store, signal);
      }
    }
    return bundleOf(manifest, files, store);
  }
  if (source && source.manifest !== undefined && source.weights !== undefined) {
    const m = source.manifest;
    const bytes = typeof m === "string" ? new TextEncoder().encode(m) : m instanceof Uint8Array || m instanceof ArrayBuffer ? new Uint8Array(m) : undefined;
    if (pinned !== undefined && bytes === undefined) {
      throw new BedsideError("BAD_OPTION", "options.integrity pins a manifest's bytes: pass the manifest as text or bytes, not as an object");
    }
    await checkIntegrity(bytes, pinned, integrity);
    const text = (file) => (typeof file === "string" ? new TextEncoder().encode(file) : new Uint8Array(file));
    files["model.safetensors"] = await digested(source.weights instanceof Uint8Array ? source.weights : new Uint8Array(source.weights));
    if (source.tokenizer !== undefined) files["tokenizer.json"] = await digested(text(source.tokenizer));
    if (source.medrec !== undefined) files["medrec.safetensors"] = await digested(new Uint8Array(source.medrec));
    return bundleOf(bytes ? new TextDecoder().decode(bytes) : JSON.stringify(m), files);
  }
  throw new BedsideError("BAD_OPTION", "source must be a bundle URL or { manifest, weights, tokenizer }");
}

/** A bundle's files as the engine takes them, with the digests the package computed. */
function bundleOf(manifest, files, store) {
  const digests = {};
  for (const [file, { digest }] of Object.entries(files)) if (digest !== undefined) digests[file] = digest;
  return {
    manifest,
    weights: files["model.safetensors"].bytes,
    tokenizer: files["tokenizer.json"]?.bytes,
    medrec: files["medrec.safetensors"]?.bytes,
    digests,
    store,
  };
}
