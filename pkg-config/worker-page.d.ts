import type { Bedside, BundleFiles, LoadOptions } from "./bedside.js";

export interface WorkerLoadOptions extends LoadOptions {
  /** The worker script's URL, where a bundler moved the package's `worker-thread.js`. */
  worker?: string | URL;
}

/**
 * The Bedside API run in a Web Worker (browsers): the same calls, off the main thread. When the
 * worker's wasm instance dies (`WASM_PANIC`) or its GPU is lost (`WEBGPU_LOST`), that call fails
 * and a fresh worker loads the same bundle for the next calls.
 */
export class BedsideWorker {
  static load(source: string | URL | BundleFiles, options?: WorkerLoadOptions): Promise<BedsideWorker>;
  /** As `Bedside.isCached` (the worker shares the page's Cache API). */
  static isCached(source: string | URL): Promise<boolean>;
  /** As `Bedside.clearCache`. */
  static clearCache(source?: string | URL): Promise<boolean>;
  /** How many times the worker was replaced. */
  readonly restarts: number;
  readonly backend: "webgpu" | "cpu";
  readonly manifest: Bedside["manifest"];
  /** As `Bedside.card`. */
  readonly card: Bedside["card"];
  readonly selfTestDifference: Bedside["selfTestDifference"];
  /** As `Bedside.fallbackReason`. */
  readonly fallbackReason: Bedside["fallbackReason"];
  /** As `Bedside.backendReason`. */
  readonly backendReason: Bedside["backendReason"];
  /** As `Bedside.diagnose`, `recommend`, `risk` and `explain`, run in the worker. */
  diagnose: Bedside["diagnose"];
  recommend: Bedside["recommend"];
  risk: Bedside["risk"];
  explain: Bedside["explain"];
  dispose(): void;
}

export default BedsideWorker;
