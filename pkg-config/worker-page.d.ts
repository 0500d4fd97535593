import type { BundleFiles, CallOptions, Diagnosis, ExplainOptions, Explanation, FhirResource, LoadOptions, ModelCard, PatientRecord, Recommendation, Risk } from "./bedside.js";

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
  readonly manifest: Record<string, unknown>;
  /** As `Bedside.card`. */
  readonly card: ModelCard | null;
  readonly selfTestDifference: number | null;
  /** As `Bedside.fallbackReason`. */
  readonly fallbackReason: string | null;
  /** As `Bedside.backendReason`. */
  readonly backendReason: string;
  diagnose(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Diagnosis>;
  recommend(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Recommendation>;
  risk(record: PatientRecord | FhirResource | string, options?: CallOptions): Promise<Risk>;
  explain(record: PatientRecord | FhirResource | string, options?: ExplainOptions): AsyncGenerator<string | Explanation, void, unknown>;
  dispose(): void;
}

export default BedsideWorker;
